// optimizers.hpp - gradient clipping, the optimizers and the learning-rate schedules, as
// mlp/optimizers.py and mlp/schedules.py. Their names and default learning rates come from the
// generated train_defaults.hpp (defaults::kOptimizers, kSchedules).
#pragma once

#include <string>
#include <vector>

#include "model.hpp"

namespace mlp {

// The learning rate an optimizer takes without --lr (defaults::kOptimizers, from
// mlp.options.DEFAULT_LEARNING_RATES); 0 for a name the port does not implement.
double default_learning_rate(const std::string& optimizer);
// Whether the port implements the optimizer / schedule of that name (every one the tables list, as
// the unit test `defaults` checks).
bool is_optimizer(const std::string& name);
bool is_schedule(const std::string& name);
// "sgd, momentum, ..." and "constant, step, ...": the implemented names, in the tables' order.
std::string optimizer_names();
std::string schedule_names();

// Clip by value (c > 0), then by global norm (max_norm > 0), as mlp.optimizers.clip_gradients.
template <class T>
void clip_gradients(std::vector<std::vector<T>>& grads, double clip_value, double clip_norm);

// An optimizer and its state for the trainable arrays in Model::trainable's order: W0, b0, W1, b1,
// ..., then gamma0, beta0, ... with batch norm (adamw's decay on the W's only).
template <class T>
class Optimizer {
 public:
  // name: one of defaults::kOptimizers (throws for one the port does not implement).
  // weight_decay: adamw's decoupled decay.
  Optimizer(const std::string& name, const Model<T>& m, double momentum = 0.9, double rho = 0.9,
            double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.0);
  // One update with learning rate lr at step t (1-based).
  void step(Model<T>& m, const std::vector<std::vector<T>>& grads, double lr, long t);

 private:
  enum Kind { SGD, MOMENTUM, NESTEROV, RMSPROP, ADAM, ADAMW } kind_;
  double momentum_, rho_, beta1_, beta2_, eps_, weight_decay_;
  std::vector<std::vector<T>> s1_, s2_;
};

// A learning-rate schedule with its default parameters, as mlp/schedules.py (get_schedule(name)).
class Schedule {
 public:
  // name: one of defaults::kSchedules (throws for another).
  Schedule(const std::string& name, double base, int epochs, int steps_per_epoch);
  // The learning rate of step `step` (0-based) of epoch `epoch` (0-based).
  double lr(int epoch, int step) const;
  // After each epoch, with the monitored loss (plateau lowers its rate when that stops improving).
  void epoch_end(double monitored);

 private:
  enum Kind { CONSTANT, STEP, EXPONENTIAL, COSINE, PLATEAU } kind_;
  double base_, current_, best_;
  int epochs_, steps_, waited_ = 0;
};

}  // namespace mlp
