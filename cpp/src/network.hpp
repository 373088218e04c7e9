// network.hpp - the forward and backward passes of a Model and its evaluation, as mlp/layers.py
// (forward, loss_and_gradients), mlp/losses.py, mlp.loop.evaluate and MLP.score.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "model.hpp"

namespace mlp {

// Buffers for a forward and backward pass of up to `rows` rows.
template <class T>
struct Workspace {
  std::vector<std::vector<T>> out;    // hidden layer outputs (before dropout): (rows, sizes[l+1])
  std::vector<std::vector<T>> in;     // with dropout: input of layer l+1 (after dropout)
  std::vector<std::vector<T>> mask;   // with dropout: (rows, sizes[l+1]), values 0 or 1/keep
  std::vector<T> logits;              // (rows, n_classes); backward_pass overwrites it with dL/dZ
  std::vector<T> grad[2];             // ping-pong dA / dZ buffers (rows, widest hidden layer)
  // With batch norm, per hidden layer: hat, the normalised H (rows, width); pre ("after" only), the
  // activation output H before normalising; mean, var and inv = 1/sqrt(var + eps) of the last pass
  // (width,): the batch statistics, or inv of the running variance.
  std::vector<std::vector<T>> hat, pre, mean, var, inv;
  std::size_t rows = 0;
  bool dropout = false;
  int batch_norm = BATCH_NORM_NONE;
  bool batch_statistics = false;      // the last forward_pass normalised with the batch's statistics
  Workspace(const std::vector<int>& sizes, std::size_t rows, bool dropout, int batch_norm = BATCH_NORM_NONE);
  const T* input(int layer) const;    // what layer `layer` >= 1 received
};

// Logits of n rows of X into ws.logits (hidden outputs in ws.out; masks applied when ws.dropout).
// Batch norm (m.batch_norm, which ws was made for): a training pass of n >= 2 rows normalises with
// the batch's statistics (into ws.mean, ws.var; update_running_statistics folds them into the
// model); inference, and a training pass of one row, with the running statistics.
template <class T>
void forward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, int n, bool training = false);

// After a training forward_pass with batch statistics over n rows: the model's running statistics
// move towards them, running = (1 - momentum) running + momentum batch (the variance unbiased).
// Nothing to do without batch norm or after a pass with the running statistics.
template <class T>
void update_running_statistics(Model<T>& m, const Workspace<T>& ws, int n, double momentum);

// After forward_pass on the same rows: the mean loss (plus (l2/2) sum W^2 when l2 > 0) and the
// gradients in the optimiser's order dW0, db0, dW1, ..., then dgamma0, dbeta0, ... with batch norm
// (+ l2 W on the W's only). ws.logits becomes dL/dlogits.
// *correct (optional) receives the number of rows whose arg-max logit is the label.
template <class T>
double backward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, const int32_t* y, int n, double l2,
                     std::vector<std::vector<T>>& grads, long* correct = nullptr);
// The same for the value losses (squared_error, binary_cross_entropy, poisson): targets Y (n, n_outputs).
template <class T>
double backward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, const T* Y, int n, double l2,
                     std::vector<std::vector<T>>& grads);

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
// squared_error, exp(z) (the predicted means) for poisson, the probabilities for binary_cross_entropy.
struct ValueScores {
  double loss = 0.0, mse = 0.0, r2 = 0.0, accuracy = 0.0;
};
template <class T>
ValueScores evaluate_values(const Model<T>& model, const T* X, const T* Y, std::size_t n,
                            std::vector<T>* outputs = nullptr);

}  // namespace mlp
