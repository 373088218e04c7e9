// model.hpp - the network's description and parameters (Model, as mlp/model.py's MLP) and the
// training options (TrainConfig, mlp.fit's keywords; defaults generated from mlp/options.py).
//
// The rest mirrors mlp/ file by file: network.hpp (forward and backward passes, evaluation; as
// mlp/layers.py, mlp/losses.py), optimizers.hpp (optimizers, clipping, schedules; as
// mlp/optimizers.py, mlp/schedules.py), training.hpp (train_step and the epochs; as mlp/engines and
// mlp/loop.py) and model_file.hpp (as mlp/model_file.py).
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "json.hpp"
#include "mlp.hpp"
#include "train_defaults.hpp"

namespace mlp {

// The batch normalisation of one hidden layer of width k (mlp.model.MLP.norms' tuples): gamma and
// beta are trained; mean and var are the running statistics that inference uses. All (k,).
template <class T>
struct Norm {
  std::vector<T> gamma, beta, mean, var;
};

template <class T>
struct Model {
  std::vector<int> sizes;            // [n_features, hidden..., n_classes]
  int activation = RELU;
  int loss = CROSS_ENTROPY;
  int batch_norm = BATCH_NORM_NONE;  // where the hidden layers are normalised
  std::vector<std::vector<T>> W, b;  // W[l]: (sizes[l], sizes[l+1]); b[l]: (sizes[l+1],)
  std::vector<Norm<T>> norms;        // one per hidden layer with batch norm, else empty
  std::vector<int64_t> classes;      // label value of each output column; empty for the value losses
                                     // (squared_error, binary_cross_entropy, poisson: "classes": null)
  int image_rows = 0, image_cols = 0;  // recorded as preprocessing.image_shape when known
  // Extra metadata: a loaded file's fields (kept when re-saving); train() puts l2, config and
  // history here, as mlp.model.MLP.metadata does.
  Json metadata;

  int layers() const { return static_cast<int>(sizes.size()) - 1; }
  // The trained parameters (gamma and beta counted, the running statistics not).
  std::size_t n_parameters() const;
  // The trainable arrays in the optimiser's order: W0, b0, W1, b1, ..., WL, bL, then gamma0, beta0,
  // gamma1, beta1, ... (mlp's order: L2, weight decay and max-norm touch only the W's).
  std::size_t n_trainable() const { return 2 * W.size() + 2 * norms.size(); }
  std::vector<T>& trainable(std::size_t p);
  const std::vector<T>& trainable(std::size_t p) const;
  // "784 -> 128 relu -> 64 relu -> 10 softmax; loss=cross_entropy, 109,386 parameters, float32"
  // ("128 bn relu" with batch norm before the activation, "128 relu bn" after it)
  // (the output is "identity" for squared_error, "exp" for poisson, "sigmoid" for mse and
  // binary_cross_entropy)
  std::string describe() const;
  // Allocates zero W and b for sizes; with batch_norm also the norms: gamma 1, beta 0, mean 0, var 1.
  void allocate();
};

struct TrainConfig {  // defaults from train_defaults.hpp (generated from mlp/options.py)
  std::vector<int> hidden{std::begin(defaults::kHiddenSizes), std::end(defaults::kHiddenSizes)};
  int epochs = defaults::kEpochs;
  int batch_size = defaults::kBatchSize;  // 0: full batch
  std::string optimizer = defaults::kOptimizer;  // one of defaults::kOptimizers
  double lr = defaults::kLearningRate;    // 0: the optimizer's default
  double momentum = defaults::kMomentum, rho = 0.9, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int activation = activation_from_name(defaults::kActivation);
  int loss = loss_from_name(defaults::kLoss);
  std::string init = defaults::kInit;
  double weight_decay = defaults::kWeightDecay;  // <0: kWeightDecayAdamw for adamw, else 0; L2 except for adamw
  double dropout = defaults::kDropout;    // probability of dropping a hidden unit
  double clip_value = defaults::kClipValue;  // 0: off
  double clip_norm = defaults::kClipNorm;    // 0: off
  // BATCH_NORM_BEFORE / _AFTER: normalise every hidden layer
  int batch_norm = batch_norm_from_name(defaults::kBatchNorm);
  double batch_norm_momentum = defaults::kBatchNormMomentum;  // running = (1 - m) running + m batch
  std::string schedule = defaults::kSchedule;  // one of defaults::kSchedules
  uint64_t seed = 0;                      // the command line draws one when defaults::kSeed < 0
  bool shuffle = defaults::kShuffle;
};

// 1234567 -> "1,234,567"
std::string with_commas(std::size_t v);

template <class T>
constexpr const char* dtype_name() { return sizeof(T) == 4 ? "float32" : "float64"; }

}  // namespace mlp
