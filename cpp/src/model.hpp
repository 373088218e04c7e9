// model.hpp - the network (parameters + description), its training loop, and model files.
//
// Mirrors mlp/model.py and mlp/training.py: same defaults (learning rate per optimizer, He init for
// the ReLU family else Glorot, cosine schedule), same order of gradient processing
// (+ l2 W, clip by value, clip by global norm), same per-epoch loss (the mean of the mini-batch losses,
// L2 term included) and accuracy (of the mini-batch predictions made before each step).
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "json.hpp"
#include "mlp.hpp"
#include "npz.hpp"
#include "train_defaults.hpp"

namespace mlp {

template <class T>
struct Model {
  std::vector<int> sizes;            // [n_features, hidden..., n_classes]
  int activation = RELU;
  int loss = CROSS_ENTROPY;
  std::vector<std::vector<T>> W, b;  // W[l]: (sizes[l], sizes[l+1]); b[l]: (sizes[l+1],)
  std::vector<int64_t> classes;      // label value of each output column; empty for the value losses
                                     // (squared_error, binary_cross_entropy: "classes": null in files)
  int image_rows = 0, image_cols = 0;  // recorded as preprocessing.image_shape when known
  // Extra metadata: a loaded file's fields (kept when re-saving); train() puts l2, config and
  // history here, as mlp.saving.model_metadata does.
  Json metadata;

  int layers() const { return static_cast<int>(sizes.size()) - 1; }
  std::size_t n_parameters() const;
  // "784 -> 128 relu -> 64 relu -> 10 softmax; loss=cross_entropy, 109,386 parameters, float32"
  // (the output is "identity" for squared_error, "sigmoid" for mse and binary_cross_entropy)
  std::string describe() const;
  // Allocates zero W and b for sizes.
  void allocate();
};

struct TrainConfig {  // defaults from train_defaults.hpp (generated from mlp/options.py)
  std::vector<int> hidden{std::begin(defaults::kHiddenSizes), std::end(defaults::kHiddenSizes)};
  int epochs = defaults::kEpochs;
  int batch_size = defaults::kBatchSize;  // 0: full batch
  std::string optimizer = defaults::kOptimizer;  // sgd | momentum | nesterov | rmsprop | adam | adamw
  double lr = defaults::kLearningRate;    // 0: the optimizer's default
  double momentum = defaults::kMomentum, rho = 0.9, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int activation = activation_from_name(defaults::kActivation);
  int loss = loss_from_name(defaults::kLoss);
  std::string init = defaults::kInit;
  double weight_decay = defaults::kWeightDecay;  // <0: default (0.01 for adamw, else 0); L2 except for adamw
  double dropout = defaults::kDropout;    // probability of dropping a hidden unit
  double clip_value = defaults::kClipValue;  // 0: off
  double clip_norm = defaults::kClipNorm;    // 0: off
  std::string schedule = defaults::kSchedule;  // constant | step | exponential | cosine | plateau
  uint64_t seed = 0;                      // the command line draws one when defaults::kSeed < 0
  bool shuffle = defaults::kShuffle;
};

// Default learning rate of an optimizer (as mlp.training.DEFAULT_LEARNING_RATES); 0 if unknown.
double default_learning_rate(const std::string& optimizer);
bool is_optimizer(const std::string& name);
bool is_schedule(const std::string& name);

struct EpochStats {
  int epoch = 0, epochs = 0;
  double loss = 0.0, accuracy = 0.0, lr = 0.0, seconds = 0.0;
  double cpu_seconds = 0.0;  // CPU time of the process (all threads) during the epoch
};

// Training data: either X (n, features) already scaled, or pixels (n, features) of 0..255, scaled on
// the fly (divided by 255) as mini-batches are gathered: a quarter of the memory traffic of gathering
// float rows. Targets: y, class indices in [0, n_outputs), for cross_entropy and mse; Y, a matrix
// (n, n_outputs) of real values, for squared_error and binary_cross_entropy (values in [0, 1]).
template <class T>
struct Batch {
  const T* X = nullptr;
  const uint8_t* pixels = nullptr;
  const int32_t* y = nullptr;
  const T* Y = nullptr;
  std::size_t n = 0;
};

// Trains a new model with n_outputs outputs (the number of classes, or the targets' columns).
// Throws std::runtime_error when the loss becomes NaN/inf (with advice). on_epoch, when given, is
// called after each epoch (its accuracy is NaN for the value losses).
template <class T>
Model<T> train(const TrainConfig& config, const Batch<T>& data, int n_features, int n_outputs,
               const std::function<void(const EpochStats&)>& on_epoch = nullptr);

// ---- the pieces of a training step (used by train(), and by the golden and unit tests) -----------

// Buffers for a forward and backward pass of up to `rows` rows.
template <class T>
struct Workspace {
  std::vector<std::vector<T>> out;    // hidden layer outputs (before dropout): (rows, sizes[l+1])
  std::vector<std::vector<T>> in;     // with dropout: input of layer l+1 (after dropout)
  std::vector<std::vector<T>> mask;   // with dropout: (rows, sizes[l+1]), values 0 or 1/keep
  std::vector<T> logits;              // (rows, n_classes); backward_pass overwrites it with dL/dZ
  std::vector<T> grad[2];             // ping-pong dA / dZ buffers (rows, widest hidden layer)
  std::size_t rows = 0;
  bool dropout = false;
  Workspace(const std::vector<int>& sizes, std::size_t rows, bool dropout);
  const T* input(int layer) const;    // what layer `layer` >= 1 received
};

// Logits of n rows of X into ws.logits (hidden outputs in ws.out; masks applied when ws.dropout).
template <class T>
void forward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, int n);

// After forward_pass on the same rows: the mean loss (plus (l2/2) sum W^2 when l2 > 0) and the
// gradients in the flat order dW0, db0, dW1, ... (+ l2 W). ws.logits becomes dL/dlogits.
// *correct (optional) receives the number of rows whose arg-max logit is the label.
template <class T>
double backward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, const int32_t* y, int n, double l2,
                     std::vector<std::vector<T>>& grads, long* correct = nullptr);
// The same for the value losses (squared_error, binary_cross_entropy): targets Y (n, n_outputs).
template <class T>
double backward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, const T* Y, int n, double l2,
                     std::vector<std::vector<T>>& grads);

// Clip by value (c > 0), then by global norm (max_norm > 0), as mlp.optimizers.clip_gradients.
template <class T>
void clip_gradients(std::vector<std::vector<T>>& grads, double clip_value, double clip_norm);

// An optimizer and its state for the flat parameter list W0, b0, W1, b1, ...
template <class T>
class Optimizer {
 public:
  // name: sgd | momentum | nesterov | rmsprop | adam | adamw. weight_decay: adamw's decoupled decay.
  Optimizer(const std::string& name, const Model<T>& m, double momentum = 0.9, double rho = 0.9,
            double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.0);
  // One update with learning rate lr at step t (1-based).
  void step(Model<T>& m, const std::vector<std::vector<T>>& grads, double lr, long t);

 private:
  std::string name_;
  double momentum_, rho_, beta1_, beta2_, eps_, weight_decay_;
  std::vector<std::vector<T>> s1_, s2_;
};

// Logits of X (n, features) in chunks; returns (mean loss without L2, accuracy) against y.
template <class T>
std::pair<double, double> evaluate(const Model<T>& model, const T* X, const int32_t* y, std::size_t n);

// Scores of a model trained on a target matrix, against Y (n, n_outputs):
//   loss      the model's loss without L2 (squared_error: mean over rows of 0.5 ||z - y||^2)
//   mse       mean over rows and outputs of (output - y)^2 (scikit-learn's mean_squared_error)
//   r2        1 - SS_res / SS_tot per output, averaged over the outputs (scikit-learn's r2_score; an
//             output with constant targets scores 1 when predicted exactly, else 0), as mlp.model.r2_score
//   accuracy  binary_cross_entropy: the share of rows whose every output is right (output > 0.5), as
//             MLP.score; NaN for squared_error
// outputs, when not null, receives what the network outputs (n, n_outputs): the values for
// squared_error, the probabilities for binary_cross_entropy.
struct ValueScores {
  double loss = 0.0, mse = 0.0, r2 = 0.0, accuracy = 0.0;
};
template <class T>
ValueScores evaluate_values(const Model<T>& model, const T* X, const T* Y, std::size_t n,
                            std::vector<T>* outputs = nullptr);

// Pixels 0..255 -> T, divided by `divisor` (255: [0, 1] as mlp.datasets.load_mnist; 1: raw).
template <class T>
std::vector<T> scale_pixels(const uint8_t* pixels, std::size_t count, double divisor = 255.0);

// The divisor a model's metadata asks for: "preprocessing": {"input": "pixels / 255"} (also the
// default when absent) gives 255, "pixels" gives 1; anything else throws, naming it.
double pixel_divisor(const Json& metadata, const std::string& path);

// ---- model files (.npz, see the README's "The math, precisely") ------------------------------------------------------
// Writes the model file (write_file_atomic: a temporary file renamed into place). Returns a warning
// for the user, empty unless something was left out: when the history would take the metadata over
// defaults::kMaxMetadataBytes, its oldest epochs are (the newest that fit are kept, the weights
// always), as mlp.model_file.fit_metadata does, and the warning says how many, in Python's words.
template <class T>
std::string save_model(const Model<T>& model, const std::string& path);

// A model file in whichever dtype it was saved: exactly one of f32 / f64 is filled.
struct AnyModel {
  std::string dtype;  // "float32" or "float64"
  Model<float> f32;
  Model<double> f64;
};
// Throws std::runtime_error("<path>: ...") for anything malformed or inconsistent. Every size in
// the metadata is checked against limits and against the sizes the archive declares for W<l>, b<l>
// before the weights are allocated or decompressed; entries with other names are not decompressed.
AnyModel load_model(const std::string& path);
AnyModel load_model(const NpzArchive& archive);  // an archive already open (the fuzz harness's)

}  // namespace mlp
