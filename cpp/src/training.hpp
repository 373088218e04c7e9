// training.hpp - training a Model: train_step (one optimizer step on a mini-batch, as
// mlp/engines/generic.py's Trainer.train_step) and train (the epochs, as mlp.fit and mlp/loop.py).
//
// Same defaults as mlp.fit (learning rate per optimizer, He init for the ReLU family else Glorot,
// cosine schedule), same order of gradient processing (+ l2 W, clip by value, clip by global norm),
// same per-epoch loss (the mean of the mini-batch losses, L2 term included) and accuracy (of the
// mini-batch predictions made before each step).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model.hpp"
#include "network.hpp"
#include "optimizers.hpp"

namespace mlp {

struct EpochStats {
  int epoch = 0, epochs = 0;
  double loss = 0.0, accuracy = 0.0, lr = 0.0, seconds = 0.0;
  double cpu_seconds = 0.0;  // CPU time of the process (all threads) during the epoch
  // Only with $MLP_PROFILE set (gemm.hpp's profiling()), the wall seconds of the epoch spent drawing
  // the epoch's order, in the batch gather, in gemm(), in the rest of forward and backward
  // (elementwise and loss), and in clipping and the optimizer.
  double order_seconds = 0.0, gather_seconds = 0.0, gemm_seconds = 0.0, elementwise_seconds = 0.0,
         update_seconds = 0.0;
};

// Training data: either X (n, features) already scaled, or pixels (n, features) of 0..255, scaled on
// the fly (divided by 255) as mini-batches are gathered: a quarter of the memory traffic of gathering
// float rows. Targets: y, class indices in [0, n_outputs), for cross_entropy and mse; Y, a matrix
// (n, n_outputs) of real values, for squared_error, binary_cross_entropy (values in [0, 1]) and
// poisson (values >= 0).
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

// A model, its optimizer and the buffers of a step: what mlp/engines' Trainer holds.
template <class T>
class Trainer {
 public:
  // l2: the L2 penalty of the loss (0 for adamw); weight_decay: adamw's decoupled decay (else 0);
  // rows: the largest mini-batch.
  Trainer(Model<T>& model, const TrainConfig& config, double l2, double weight_decay, std::size_t rows);
  // One optimizer step on a mini-batch of n rows: forward (in training mode: with batch norm the
  // batch's statistics, folded into the running ones, when n >= 2), backward, clipping, update (the
  // step count t advances). Targets: class indices y or a target matrix Y (the other null), as the loss
  // takes. Returns the mean loss with the L2 term, from before the update; *correct (optional)
  // receives the rows whose arg-max logit was the label.
  double train_step(const T* X, const int32_t* y, const T* Y, int n, double lr, long* correct = nullptr);
  Workspace<T>& workspace() { return ws_; }
  const std::vector<std::vector<T>>& grads() const { return grads_; }

 private:
  Model<T>& model_;
  Optimizer<T> optimizer_;
  Workspace<T> ws_;
  std::vector<std::vector<T>> grads_;
  double l2_, batch_norm_momentum_, clip_value_, clip_norm_;
  long t_ = 0;

 public:
  double update_seconds = 0.0;  // clipping and optimizer time so far, with $MLP_PROFILE (else 0)
};

// Pixels 0..255 -> T, divided by `divisor` (255: [0, 1] as mlp.datasets.load_mnist; 1: raw).
template <class T>
std::vector<T> scale_pixels(const uint8_t* pixels, std::size_t count, double divisor = 255.0);

}  // namespace mlp
