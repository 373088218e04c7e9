// optimizers.cpp - gradient clipping, the optimizers and the learning-rate schedules (mlp/optimizers.py,
// mlp/schedules.py). The names are the generated tables'; each implementation below is marked by
// the name it answers to, and a name in the tables without one is refused (the unit test `defaults`
// fails until it is implemented).
#include "optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace mlp {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

// The port's optimizers and schedules, by name, in the order of their Kind enums.
const char* const kOptimizerKinds[] = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"};
const char* const kScheduleKinds[] = {"constant", "step", "exponential", "cosine", "plateau"};

template <std::size_t N>
int index_of(const char* const (&names)[N], const std::string& name) {
  for (std::size_t i = 0; i < N; ++i)
    if (name == names[i]) return static_cast<int>(i);
  return -1;
}

const defaults::OptimizerName* optimizer_entry(const std::string& name) {
  for (const auto& entry : defaults::kOptimizers)
    if (name == entry.name) return &entry;
  return nullptr;
}

}  // namespace

double default_learning_rate(const std::string& optimizer) {
  const defaults::OptimizerName* entry = optimizer_entry(optimizer);
  return entry && index_of(kOptimizerKinds, optimizer) >= 0 ? entry->learning_rate : 0.0;
}

bool is_optimizer(const std::string& name) { return default_learning_rate(name) > 0.0; }

bool is_schedule(const std::string& name) {
  return index_of(defaults::kSchedules, name) >= 0 && index_of(kScheduleKinds, name) >= 0;
}

std::string optimizer_names() {
  std::string s;
  for (const auto& entry : defaults::kOptimizers)
    if (is_optimizer(entry.name)) s += (s.empty() ? "" : ", ") + std::string(entry.name);
  return s;
}

std::string schedule_names() {
  std::string s;
  for (const char* name : defaults::kSchedules)
    if (is_schedule(name)) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

template <class T>
void clip_gradients(std::vector<std::vector<T>>& grads, double clip_value, double clip_norm) {
  if (clip_value > 0.0)
    for (auto& g : grads) clip_by_value(g.data(), clip_value, g.size());
  if (clip_norm > 0.0) {
    double total = 0.0;
    for (auto& g : grads) total += grad_sq_norm(g.data(), g.size());
    const double norm = std::sqrt(total);
    if (norm > clip_norm)
      for (auto& g : grads) scale(g.data(), clip_norm / std::max(norm, 1e-30), g.size());
  }
}

template <class T>
Optimizer<T>::Optimizer(const std::string& name, const Model<T>& m, double momentum, double rho, double beta1,
                        double beta2, double eps, double weight_decay)
    : momentum_(momentum), rho_(rho), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
  if (!is_optimizer(name)) fail("unknown optimizer '" + name + "'; choose " + optimizer_names());
  kind_ = static_cast<Kind>(index_of(kOptimizerKinds, name));
  const bool has_s1 = kind_ != SGD, has_s2 = kind_ == ADAM || kind_ == ADAMW;
  for (std::size_t p = 0; p < m.n_trainable(); ++p) {  // W0, b0, ..., then gamma0, beta0, ...
    const std::size_t size = m.trainable(p).size();
    s1_.emplace_back(has_s1 ? size : 0, T(0));
    s2_.emplace_back(has_s2 ? size : 0, T(0));
  }
}

template <class T>
void Optimizer<T>::step(Model<T>& m, const std::vector<std::vector<T>>& grads, double lr, long t) {
  if (grads.size() != s1_.size()) fail("Optimizer::step: the gradients do not match the model's parameters");
  for (std::size_t p = 0; p < grads.size(); ++p) {
    const bool is_weight = p < 2 * m.W.size() && p % 2 == 0;  // decay only for W (not b, gamma, beta)
    T* param = m.trainable(p).data();
    const T* g = grads[p].data();
    const std::size_t size = grads[p].size();
    switch (kind_) {
      case SGD: sgd_step(param, g, lr, size); break;
      case MOMENTUM:
      case NESTEROV: momentum_step(param, s1_[p].data(), g, lr, momentum_, kind_ == NESTEROV, size); break;
      case RMSPROP: rmsprop_step(param, s1_[p].data(), g, lr, rho_, eps_, size); break;
      case ADAM:
      case ADAMW:
        adam_step(param, s1_[p].data(), s2_[p].data(), g, lr, beta1_, beta2_, eps_, t,
                  kind_ == ADAMW && is_weight ? weight_decay_ : 0.0, size);
    }
  }
}

Schedule::Schedule(const std::string& name, double base, int epochs, int steps_per_epoch)
    : base_(base), current_(base), best_(HUGE_VAL), epochs_(epochs), steps_(steps_per_epoch) {
  if (!is_schedule(name)) fail("unknown schedule '" + name + "'; choose " + schedule_names());
  kind_ = static_cast<Kind>(index_of(kScheduleKinds, name));
}

double Schedule::lr(int epoch, int step) const {
  switch (kind_) {
    case STEP: return base_ * std::pow(0.1, epoch / 10);
    case EXPONENTIAL: return base_ * std::pow(0.95, epoch);
    case COSINE: {
      const double progress = epoch + static_cast<double>(step) / steps_;
      const double fraction = std::min(progress / std::max(static_cast<double>(epochs_), 1e-12), 1.0);
      return 0.5 * base_ * (1.0 + std::cos(3.14159265358979323846 * fraction));
    }
    case PLATEAU: return current_;
    default: return base_;
  }
}

void Schedule::epoch_end(double monitored) {
  if (kind_ != PLATEAU) return;
  if (monitored < best_ - 1e-4) {
    best_ = monitored;
    waited_ = 0;
    return;
  }
  if (++waited_ > 3) {
    current_ = current_ * 0.1;
    waited_ = 0;
  }
}

template void clip_gradients<float>(std::vector<std::vector<float>>&, double, double);
template void clip_gradients<double>(std::vector<std::vector<double>>&, double, double);
template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace mlp
