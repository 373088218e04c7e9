// model.cpp - the training loop, evaluation and model files.
#include "model.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <numeric>
#include <stdexcept>

#include <unistd.h>

#include "gemm.hpp"
#include "npz.hpp"

namespace mlp {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

std::string with_commas(std::size_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

template <class T>
const char* dtype_name() { return sizeof(T) == 4 ? "float32" : "float64"; }

double process_cpu_seconds() {
  timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Learning-rate schedules, as mlp/schedules.py with its default parameters.
class Schedule {
 public:
  Schedule(const std::string& name, double base, int epochs, int steps_per_epoch)
      : name_(name), base_(base), current_(base), epochs_(epochs), steps_(steps_per_epoch) {}
  double lr(int epoch, int step) const {
    if (name_ == "step") return base_ * std::pow(0.1, epoch / 10);
    if (name_ == "exponential") return base_ * std::pow(0.95, epoch);
    if (name_ == "cosine") {
      const double progress = epoch + static_cast<double>(step) / steps_;
      const double fraction = std::min(progress / std::max(static_cast<double>(epochs_), 1e-12), 1.0);
      return 0.5 * base_ * (1.0 + std::cos(3.14159265358979323846 * fraction));
    }
    if (name_ == "plateau") return current_;
    return base_;
  }
  void epoch_end(double monitored) {
    if (name_ != "plateau") return;
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

 private:
  std::string name_;
  double base_, current_, best_ = HUGE_VAL;
  int epochs_, steps_, waited_ = 0;
};

}  // namespace

template <class T>
std::size_t Model<T>::n_parameters() const {
  std::size_t total = 0;
  for (int l = 0; l < layers(); ++l)
    total += static_cast<std::size_t>(sizes[l]) * sizes[l + 1] + static_cast<std::size_t>(sizes[l + 1]);
  return total;
}

template <class T>
std::string Model<T>::describe() const {
  std::string s = "MLP(" + std::to_string(sizes[0]);
  for (int l = 1; l + 1 < static_cast<int>(sizes.size()); ++l)
    s += " -> " + std::to_string(sizes[l]) + " " + activation_name(activation);
  s += " -> " + std::to_string(sizes.back()) + " " + output_activation_name(loss);
  s += "; loss=" + std::string(loss_name(loss)) + ", " + with_commas(n_parameters()) + " parameters, " +
       dtype_name<T>() + ")";
  return s;
}

template <class T>
void Model<T>::allocate() {
  W.clear();
  b.clear();
  for (int l = 0; l < layers(); ++l) {
    W.emplace_back(static_cast<std::size_t>(sizes[l]) * sizes[l + 1], T(0));
    b.emplace_back(static_cast<std::size_t>(sizes[l + 1]), T(0));
  }
}

double default_learning_rate(const std::string& optimizer) {
  if (optimizer == "sgd") return 0.1;
  if (optimizer == "momentum" || optimizer == "nesterov") return 0.05;
  if (optimizer == "rmsprop" || optimizer == "adam" || optimizer == "adamw") return 1e-3;
  return 0.0;
}

bool is_optimizer(const std::string& name) { return default_learning_rate(name) > 0.0; }

bool is_schedule(const std::string& name) {
  return name == "constant" || name == "step" || name == "exponential" || name == "cosine" ||
         name == "plateau";
}

template <class T>
Workspace<T>::Workspace(const std::vector<int>& sizes, std::size_t rows_, bool dropout_)
    : rows(rows_), dropout(dropout_) {
  const int L = static_cast<int>(sizes.size()) - 1;
  std::size_t widest = 1;
  for (int l = 0; l + 1 < L; ++l) {
    const std::size_t w = static_cast<std::size_t>(sizes[l + 1]);
    widest = std::max(widest, w);
    out.emplace_back(rows * w);
    if (dropout) {
      in.emplace_back(rows * w);
      mask.emplace_back(rows * w);
    }
  }
  logits.resize(rows * static_cast<std::size_t>(sizes[L]));
  grad[0].resize(rows * widest);
  grad[1].resize(rows * widest);
}

template <class T>
const T* Workspace<T>::input(int layer) const {
  return dropout ? in[layer - 1].data() : out[layer - 1].data();
}

template <class T>
void forward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, int n) {
  const int L = m.layers();
  const T* input = X;
  for (int l = 0; l + 1 < L; ++l) {
    T* out = ws.out[l].data();
    gemm<T>(out, input, m.W[l].data(), n, m.sizes[l + 1], m.sizes[l], false, false);
    bias_activation_forward(out, out, m.b[l].data(), n, m.sizes[l + 1], m.activation);
    if (ws.dropout) {
      T* in = ws.in[l].data();
      const T* mask = ws.mask[l].data();
      const std::size_t count = static_cast<std::size_t>(n) * m.sizes[l + 1];
      for (std::size_t i = 0; i < count; ++i) in[i] = out[i] * mask[i];
      input = in;
    } else {
      input = out;
    }
  }
  dense_forward(ws.logits.data(), input, m.W[L - 1].data(), m.b[L - 1].data(), n, m.sizes[L - 1],
                m.sizes[L]);
}

namespace {
// Either y (class indices, for cross_entropy and mse) or Y (a target matrix, for the value losses).
template <class T>
double backward_impl(const Model<T>& m, Workspace<T>& ws, const T* X, const int32_t* y, const T* Y, int n,
                     double l2, std::vector<std::vector<T>>& grads, long* correct) {
  const int L = m.layers();
  const int K = m.sizes[L];
  if (grads.size() != static_cast<std::size_t>(2 * L)) {
    grads.assign(static_cast<std::size_t>(2 * L), std::vector<T>());
    for (int l = 0; l < L; ++l) {
      grads[2 * l].resize(m.W[l].size());
      grads[2 * l + 1].resize(m.b[l].size());
    }
  }
  T* dZ = ws.logits.data();
  if (takes_class_indices(m.loss) != (y != nullptr) || (y == nullptr) == (Y == nullptr))
    fail(std::string("backward_pass: loss ") + loss_name(m.loss) + " takes " +
         (takes_class_indices(m.loss) ? "class indices" : "a target matrix"));
  if (correct) *correct = y ? count_correct(dZ, y, n, K) : 0;
  double value;
  switch (m.loss) {
    case CROSS_ENTROPY: value = softmax_cross_entropy(dZ, dZ, y, n, K); break;
    case MSE: value = sigmoid_mse(dZ, dZ, y, n, K); break;
    case SQUARED_ERROR: value = squared_error(dZ, dZ, Y, n, K); break;
    default: value = sigmoid_binary_cross_entropy(dZ, dZ, Y, n, K);
  }
  int pingpong = 0;
  for (int l = L - 1; l >= 0; --l) {
    const T* input = l == 0 ? X : ws.input(l);
    T* dA = l > 0 ? ws.grad[pingpong].data() : nullptr;
    dense_backward(grads[2 * l].data(), grads[2 * l + 1].data(), dA, dZ, input, m.W[l].data(), n, m.sizes[l],
                   m.sizes[l + 1]);
    if (l > 0) {
      const std::size_t count = static_cast<std::size_t>(n) * m.sizes[l];
      if (ws.dropout) {
        const T* mask = ws.mask[l - 1].data();
        for (std::size_t i = 0; i < count; ++i) dA[i] *= mask[i];
      }
      activation_backward(dA, dA, ws.out[l - 1].data(), count, m.activation);
      dZ = dA;
      pingpong ^= 1;
    }
  }
  if (l2 > 0.0) {
    double squares = 0.0;
    for (int l = 0; l < L; ++l) {
      squares += sum_squares(m.W[l].data(), m.W[l].size());
      add_l2_gradient(grads[2 * l].data(), m.W[l].data(), l2, m.W[l].size());
    }
    value += 0.5 * l2 * squares;
  }
  return value;
}
}  // namespace

template <class T>
double backward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, const int32_t* y, int n, double l2,
                     std::vector<std::vector<T>>& grads, long* correct) {
  return backward_impl<T>(m, ws, X, y, nullptr, n, l2, grads, correct);
}

template <class T>
double backward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, const T* Y, int n, double l2,
                     std::vector<std::vector<T>>& grads) {
  return backward_impl<T>(m, ws, X, nullptr, Y, n, l2, grads, nullptr);
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
    : name_(name), momentum_(momentum), rho_(rho), beta1_(beta1), beta2_(beta2), eps_(eps),
      weight_decay_(weight_decay) {
  if (!is_optimizer(name)) fail("unknown optimizer '" + name + "'");
  const bool has_s1 = name != "sgd", has_s2 = name == "adam" || name == "adamw";
  for (int l = 0; l < m.layers(); ++l) {
    for (std::size_t size : {m.W[l].size(), m.b[l].size()}) {
      s1_.emplace_back(has_s1 ? size : 0, T(0));
      s2_.emplace_back(has_s2 ? size : 0, T(0));
    }
  }
}

template <class T>
void Optimizer<T>::step(Model<T>& m, const std::vector<std::vector<T>>& grads, double lr, long t) {
  for (std::size_t p = 0; p < grads.size(); ++p) {
    const int l = static_cast<int>(p / 2);
    const bool is_weight = p % 2 == 0;
    T* param = is_weight ? m.W[l].data() : m.b[l].data();
    const T* g = grads[p].data();
    const std::size_t size = grads[p].size();
    if (name_ == "sgd") sgd_step(param, g, lr, size);
    else if (name_ == "momentum" || name_ == "nesterov")
      momentum_step(param, s1_[p].data(), g, lr, momentum_, name_ == "nesterov", size);
    else if (name_ == "rmsprop") rmsprop_step(param, s1_[p].data(), g, lr, rho_, eps_, size);
    else
      adam_step(param, s1_[p].data(), s2_[p].data(), g, lr, beta1_, beta2_, eps_, t,
                name_ == "adamw" && is_weight ? weight_decay_ : 0.0, size);
  }
}

namespace {
// out[i] = pixels[i] / 255 in T (vectorised; the same correctly rounded division as NumPy's).
template <class T>
void scale_row(T* __restrict out, const uint8_t* __restrict pixels, std::size_t count, T divisor = T(255)) {
  for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<T>(pixels[i]) / divisor;
}
}  // namespace

template <class T>
std::vector<T> scale_pixels(const uint8_t* pixels, std::size_t count, double divisor) {
  std::vector<T> X(count);
  scale_row(X.data(), pixels, count, static_cast<T>(divisor));
  return X;
}

double pixel_divisor(const Json& metadata, const std::string& path) {
  const Json* pre = metadata.find("preprocessing");
  if (!pre || pre->type == Json::NUL) return 255.0;
  const Json* input = pre->find("input");
  if (!input) return 255.0;
  if (input->is_string() && input->string == "pixels / 255") return 255.0;
  if (input->is_string() && input->string == "pixels") return 1.0;
  fail(path + ": the model expects preprocessing " + input->dump() +
       ", which mlp-cpp does not implement (it knows \"pixels / 255\" and \"pixels\")");
}

template <class T>
Model<T> train(const TrainConfig& c, const Batch<T>& data, int n_features, int n_classes,
               const std::function<void(const EpochStats&)>& on_epoch) {
  if (data.n == 0) fail("no training data");
  if (!data.X == !data.pixels) fail("train(): give exactly one of X and pixels");
  const bool by_class = takes_class_indices(c.loss);
  if (by_class ? !data.y : !data.Y)
    fail(std::string("train(): loss ") + loss_name(c.loss) + " needs " +
         (by_class ? "class indices (Batch::y)" : "a target matrix (Batch::Y)"));
  if (data.n > 0x7FFFFFFF) fail("too many training examples for one batch index (max 2^31-1)");
  if (!is_optimizer(c.optimizer)) fail("unknown optimizer '" + c.optimizer + "'");
  if (!is_schedule(c.schedule)) fail("unknown schedule '" + c.schedule + "'");
  const std::string init =
      c.init == "auto" ? (c.activation == RELU || c.activation == LEAKY_RELU ? "he_normal" : "glorot_uniform")
                       : c.init;
  if (!is_initializer(init)) fail("unknown init '" + c.init + "'");

  Rng rng(c.seed);
  Model<T> m;
  m.sizes.push_back(n_features);
  for (int h : c.hidden) m.sizes.push_back(h);
  m.sizes.push_back(n_classes);
  m.activation = c.activation;
  m.loss = c.loss;
  {  // Refuse, with a message, a configuration that cannot fit in memory (rather than being killed).
    const int L = m.layers();
    const bool dropout = c.dropout > 0.0;
    const std::size_t batch_rows =
        c.batch_size == 0 ? data.n : std::min<std::size_t>(static_cast<std::size_t>(c.batch_size), data.n);
    double elements = 4.0 * static_cast<double>(m.n_parameters());  // parameters, gradients, 2 states
    double widest = 1;
    for (int l = 1; l < L; ++l) {
      elements += static_cast<double>(batch_rows) * m.sizes[l] * (dropout ? 3 : 1);
      widest = std::max(widest, static_cast<double>(m.sizes[l]));
    }
    elements += static_cast<double>(batch_rows) * (m.sizes[L] + 2 * widest + static_cast<double>(n_features));
    const double bytes = elements * sizeof(T);
    const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    if (physical > 0 && bytes > 0.9 * physical) {
      char msg[200];
      std::snprintf(msg, sizeof msg, "this network and batch size need about %.1f GB but the machine has %.1f GB; "
                    "use smaller layers or a smaller --batch-size", bytes / 1e9, physical / 1e9);
      fail(msg);
    }
  }
  m.allocate();
  for (int l = 0; l < m.layers(); ++l) initialize(m.W[l].data(), init, m.sizes[l], m.sizes[l + 1], rng);
  if (c.epochs == 0) return m;

  const double lr = c.lr > 0 ? c.lr : default_learning_rate(c.optimizer);
  const bool decoupled = c.optimizer == "adamw";
  const double weight_decay = c.weight_decay >= 0 ? c.weight_decay : (decoupled ? 0.01 : 0.0);
  const double l2 = decoupled ? 0.0 : weight_decay;
  const std::size_t n = data.n;
  const std::size_t rows = c.batch_size == 0 ? n : std::min<std::size_t>(static_cast<std::size_t>(c.batch_size), n);
  const int steps = static_cast<int>((n + rows - 1) / rows);
  const bool dropout = c.dropout > 0.0;
  const double keep = 1.0 - c.dropout;
  const std::size_t features = static_cast<std::size_t>(n_features);
  const bool shuffle = c.shuffle && steps > 1;

  Workspace<T> ws(m.sizes, rows, dropout);
  std::vector<T> scaled;  // pixels scaled once when they are used in file order
  const T* data_X = data.X;
  if (!data_X && !shuffle) {
    scaled = scale_pixels<T>(data.pixels, n * features);
    data_X = scaled.data();
  }
  std::vector<T> xb(shuffle ? rows * features : 0);
  std::vector<int32_t> yb(shuffle && by_class ? rows : 0);
  const std::size_t outputs = static_cast<std::size_t>(n_classes);
  std::vector<T> Yb(shuffle && !by_class ? rows * outputs : 0);
  std::vector<uint32_t> order(shuffle ? n : 0);
  std::vector<std::vector<T>> grads;
  Optimizer<T> optimizer(c.optimizer, m, c.momentum, c.rho, c.beta1, c.beta2, c.eps, decoupled ? weight_decay : 0.0);
  Schedule schedule(c.schedule, lr, c.epochs, steps);
  long t = 0;
  double lr_now = lr;

  // Metadata as mlp.saving.model_metadata writes it: l2, config (the fit options), history.
  auto number_or_null = [](double v) { return v > 0 ? Json::of(v) : Json(); };
  Json opt = Json::make_object();
  opt.set("name", Json::of(c.optimizer));
  if (c.optimizer == "momentum" || c.optimizer == "nesterov") opt.set("momentum", Json::of(c.momentum));
  if (c.optimizer == "rmsprop") { opt.set("rho", Json::of(c.rho)); opt.set("eps", Json::of(c.eps)); }
  if (c.optimizer == "adam" || c.optimizer == "adamw") {
    opt.set("beta1", Json::of(c.beta1));
    opt.set("beta2", Json::of(c.beta2));
    opt.set("eps", Json::of(c.eps));
  }
  if (decoupled) opt.set("weight_decay", Json::of(weight_decay));
  Json hidden = Json::make_array();
  for (int h : c.hidden) hidden.array.push_back(Json::of(h));
  Json config = Json::make_object();
  config.set("hidden_sizes", hidden);
  config.set("activation", Json::of(std::string(activation_name(c.activation))));
  config.set("loss", Json::of(std::string(loss_name(c.loss))));
  config.set("init", Json::of(init));
  config.set("epochs", Json::of(c.epochs));
  config.set("batch_size", c.batch_size > 0 ? Json::of(c.batch_size) : Json());
  config.set("optimizer", opt);
  config.set("learning_rate", Json::of(lr));
  config.set("weight_decay", Json::of(weight_decay));
  config.set("dropout", Json::of(c.dropout));
  config.set("clip_value", number_or_null(c.clip_value));
  config.set("clip_norm", number_or_null(c.clip_norm));
  config.set("schedule", Json::of(c.schedule));
  config.set("dtype", Json::of(std::string(sizeof(T) == 4 ? "float32" : "float64")));
  config.set("seed", Json::of_int(static_cast<long long>(c.seed)));
  Json history = Json::make_object();
  for (const char* key : {"epoch", "loss", "accuracy", "lr", "seconds"})
    if (by_class || std::string(key) != "accuracy") history.set(key, Json::make_array());
  m.metadata = Json::make_object();
  m.metadata.set("l2", Json::of(l2));
  m.metadata.set("config", config);

  for (int epoch = 0; epoch < c.epochs; ++epoch) {
    const auto started = std::chrono::steady_clock::now();
    const double cpu_started = process_cpu_seconds();
    if (shuffle) {
      std::iota(order.begin(), order.end(), 0u);
      for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    }
    double loss_sum = 0.0;
    long correct = 0;
    for (int step = 0; step < steps; ++step) {
      const std::size_t start = static_cast<std::size_t>(step) * rows;
      const int nb = static_cast<int>(std::min(rows, n - start));
      const T* X = shuffle ? nullptr : data_X + start * features;
      const int32_t* y = by_class ? data.y + start : nullptr;
      const T* Y = by_class ? nullptr : data.Y + start * outputs;
      if (shuffle) {
        // Rows come from random places in a data set larger than the caches: fetch a few ahead.
        const std::size_t row_bytes = features * (data.pixels ? 1 : sizeof(T));
        const char* base = data.pixels ? reinterpret_cast<const char*>(data.pixels) : reinterpret_cast<const char*>(data.X);
        auto prefetch_row = [&](int i) {
          if (i >= nb) return;
          const char* p = base + order[start + static_cast<std::size_t>(i)] * row_bytes;
          for (std::size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off);
        };
        constexpr int kAhead = 4;
        for (int i = 0; i < kAhead; ++i) prefetch_row(i);
        for (int i = 0; i < nb; ++i) {
          prefetch_row(i + kAhead);
          const std::size_t src = order[start + static_cast<std::size_t>(i)];
          T* row = &xb[static_cast<std::size_t>(i) * features];
          if (data.pixels) scale_row(row, data.pixels + src * features, features);
          else std::memcpy(row, data.X + src * features, features * sizeof(T));
          if (by_class) yb[static_cast<std::size_t>(i)] = data.y[src];
          else std::memcpy(&Yb[static_cast<std::size_t>(i) * outputs], data.Y + src * outputs, outputs * sizeof(T));
        }
        X = xb.data();
        if (by_class) y = yb.data();
        else Y = Yb.data();
      }
      if (dropout) {
        for (auto& mask : ws.mask) {
          const std::size_t count = mask.size() / rows * static_cast<std::size_t>(nb);
          for (std::size_t i = 0; i < count; ++i)
            mask[i] = rng.uniform() < keep ? static_cast<T>(1.0 / keep) : T(0);
        }
      }
      forward_pass(m, ws, X, nb);
      long step_correct = 0;
      const double value = by_class ? backward_pass(m, ws, X, y, nb, l2, grads, &step_correct)
                                    : backward_pass(m, ws, X, Y, nb, l2, grads);
      // The loss is summed in double, but a mean loss the training dtype cannot hold has diverged
      // as surely as an infinite one (Python computes it in that dtype and stops there: targets
      // near 1e38 in float32 are a loss of inf, not 5e75).
      if (!std::isfinite(static_cast<T>(value))) {
        char msg[320];
        std::snprintf(msg, sizeof msg,
                      "the loss became %g at epoch %d, step %d of %d (learning rate %g); lower the learning rate, "
                      "clip the gradients (--clip-norm 1) or check that the inputs and targets are scaled",
                      static_cast<double>(static_cast<T>(value)), epoch + 1, step + 1, steps, lr_now);
        fail(msg);
      }
      clip_gradients(grads, c.clip_value, c.clip_norm);
      ++t;
      lr_now = schedule.lr(epoch, step);
      optimizer.step(m, grads, lr_now, t);
      loss_sum += value * nb;
      correct += step_correct;
    }
    EpochStats stats;
    stats.epoch = epoch + 1;
    stats.epochs = c.epochs;
    stats.loss = loss_sum / static_cast<double>(n);
    stats.accuracy = by_class ? static_cast<double>(correct) / static_cast<double>(n) : std::nan("");
    stats.lr = lr_now;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stats.cpu_seconds = process_cpu_seconds() - cpu_started;
    schedule.epoch_end(stats.loss);
    const double row[] = {static_cast<double>(stats.epoch), stats.loss, stats.accuracy, stats.lr, stats.seconds};
    for (std::size_t k = 0, slot = 0; k < 5; ++k)  // (no accuracy column for the value losses)
      if (by_class || k != 2) history.object[slot++].second.array.push_back(Json::of(row[k]));
    if (on_epoch) on_epoch(stats);
  }
  m.metadata.set("history", std::move(history));  // once: a copy per epoch costs epochs^2
  return m;
}

template <class T>
std::pair<double, double> evaluate(const Model<T>& m, const T* X, const int32_t* y, std::size_t n) {
  if (!takes_class_indices(m.loss))
    fail(std::string("evaluate: the model's loss ") + loss_name(m.loss) + " takes a target matrix (evaluate_values)");
  const std::size_t chunk = std::min<std::size_t>(n, 8192);
  if (n == 0) return {0.0, 0.0};
  Workspace<T> ws(m.sizes, chunk, false);
  const std::size_t features = static_cast<std::size_t>(m.sizes[0]);
  const int K = m.sizes.back();
  double loss = 0.0;
  long correct = 0;
  for (std::size_t start = 0; start < n; start += chunk) {
    const int nb = static_cast<int>(std::min(chunk, n - start));
    forward_pass(m, ws, X + start * features, nb);
    correct += count_correct(ws.logits.data(), y + start, nb, K);
    const double value = m.loss == CROSS_ENTROPY ? softmax_cross_entropy<T>(nullptr, ws.logits.data(), y + start, nb, K)
                                                 : sigmoid_mse<T>(nullptr, ws.logits.data(), y + start, nb, K);
    loss += value * nb;
  }
  return {loss / static_cast<double>(n), static_cast<double>(correct) / static_cast<double>(n)};
}

template <class T>
ValueScores evaluate_values(const Model<T>& m, const T* X, const T* Y, std::size_t n, std::vector<T>* outputs) {
  if (takes_class_indices(m.loss))
    fail(std::string("evaluate_values: the model's loss ") + loss_name(m.loss) + " takes class labels");
  ValueScores s;
  const std::size_t K = static_cast<std::size_t>(m.sizes.back());
  if (outputs) outputs->assign(n * K, T(0));
  if (n == 0) return s;
  const std::size_t chunk = std::min<std::size_t>(n, 8192);
  Workspace<T> ws(m.sizes, chunk, false);
  const std::size_t features = static_cast<std::size_t>(m.sizes[0]);
  std::vector<double> sum(K, 0.0), sum_sq(K, 0.0), residual(K, 0.0);
  long rows_right = 0;
  for (std::size_t start = 0; start < n; start += chunk) {
    const int nb = static_cast<int>(std::min(chunk, n - start));
    forward_pass(m, ws, X + start * features, nb);
    T* Z = ws.logits.data();
    const T* Yc = Y + start * K;
    const double value = m.loss == SQUARED_ERROR ? squared_error<T>(nullptr, Z, Yc, nb, static_cast<int>(K))
                                                 : sigmoid_binary_cross_entropy<T>(nullptr, Z, Yc, nb, static_cast<int>(K));
    s.loss += value * nb;
    if (m.loss == BINARY_CROSS_ENTROPY)
      for (int i = 0; i < nb; ++i) {
        bool right = true;
        for (std::size_t j = 0; j < K; ++j) right &= (Z[i * K + j] > T(0)) == (Yc[i * K + j] > T(0.5));
        rows_right += right;
      }
    output_values(Z, nb, static_cast<int>(K), m.loss);
    for (std::size_t i = 0; i < static_cast<std::size_t>(nb) * K; ++i) {
      const double y = static_cast<double>(Yc[i]), d = static_cast<double>(Z[i]) - y;
      residual[i % K] += d * d;
      sum[i % K] += y;
    }
    if (outputs) std::memcpy(outputs->data() + start * K, Z, static_cast<std::size_t>(nb) * K * sizeof(T));
  }
  for (std::size_t i = 0; i < n * K; ++i) {  // SS_tot about the mean, in a second pass (no cancellation)
    const double d = static_cast<double>(Y[i]) - sum[i % K] / static_cast<double>(n);
    sum_sq[i % K] += d * d;
  }
  double r2 = 0.0, squares = 0.0;
  for (std::size_t j = 0; j < K; ++j) {
    r2 += sum_sq[j] > 0 ? 1.0 - residual[j] / sum_sq[j] : (residual[j] == 0 ? 1.0 : 0.0);
    squares += residual[j];
  }
  s.loss /= static_cast<double>(n);
  s.mse = squares / (static_cast<double>(n) * static_cast<double>(K));
  s.r2 = r2 / static_cast<double>(K);
  s.accuracy = m.loss == BINARY_CROSS_ENTROPY ? static_cast<double>(rows_right) / static_cast<double>(n) : std::nan("");
  return s;
}

// ---- model files ------------------------------------------------------------------------------

namespace {

// The metadata as JSON within `limit` bytes, as mlp.model_file.fit_metadata makes it: a long run's
// history (about 60 bytes an epoch) can outgrow what every reader accepts, and the model is worth
// more than its oldest epochs, so only the newest epochs that fit are kept (`dropped` says how many
// went). Sizes come from each entry's own length (arrays join items with ", "), so a long history
// costs two dumps, not a search over dumps. Throws when even an empty history does not fit.
std::string fit_metadata(Json meta, std::size_t limit, std::string& dropped) {
  std::string text = meta.dump();
  const Json* found = meta.find("history");
  if (text.size() <= limit || !found || found->type != Json::OBJECT) {
    if (text.size() > limit)
      fail("the model's metadata is " + with_commas(text.size()) + " bytes, over the " + with_commas(limit) +
           "-byte limit of the file format");
    return text;
  }
  const Json history = *found;
  std::size_t epochs = 0;
  for (const auto& kv : history.object)
    if (kv.second.type == Json::ARRAY) epochs = std::max(epochs, kv.second.array.size());
  auto keeping = [&](std::size_t n) {  // the last n entries of every list
    Json cut = history;
    for (auto& kv : cut.object)
      if (kv.second.type == Json::ARRAY) {
        auto& items = kv.second.array;
        items.erase(items.begin(), items.end() - static_cast<std::ptrdiff_t>(std::min(n, items.size())));
      }
    return cut;
  };
  meta.set("history", keeping(0));
  const std::size_t base = meta.dump().size();
  std::vector<std::vector<std::size_t>> tails;  // tails[k][n]: bytes of the last n items of list k
  for (const auto& kv : history.object) {
    if (kv.second.type != Json::ARRAY) continue;
    const auto& items = kv.second.array;
    std::vector<std::size_t> tail(1, 0);
    for (auto it = items.rbegin(); it != items.rend(); ++it) tail.push_back(tail.back() + it->dump().size());
    tails.push_back(std::move(tail));
  }
  auto size = [&](std::size_t n) {
    std::size_t total = base;
    for (const auto& tail : tails) {
      const std::size_t kept = std::min(n, tail.size() - 1);
      if (kept) total += tail[kept] + 2 * (kept - 1);
    }
    return total;
  };
  std::size_t low = 0, high = epochs + 1;  // size(low) fits (or low is 0), size(high) does not
  while (high - low > 1) {
    const std::size_t middle = (low + high) / 2;
    (size(middle) <= limit ? low : high) = middle;
  }
  meta.set("history", keeping(low));
  text = meta.dump();
  while (text.size() > limit && low > 0) {  // never expected (the sizes add up exactly): be safe
    low -= std::max<std::size_t>(1, low / 100);
    meta.set("history", keeping(low));
    text = meta.dump();
  }
  if (text.size() > limit)
    fail("the model's metadata is " + with_commas(text.size()) + " bytes even without its history, over the " +
         with_commas(limit) + "-byte limit of the file format");
  dropped = "the oldest " + with_commas(epochs - low) + " of " + with_commas(epochs) +
            " epochs of history (the last " + with_commas(low) + " kept)";
  return text;
}

}  // namespace

template <class T>
std::string save_model(const Model<T>& m, const std::string& path) {
  Json meta = Json::make_object();
  meta.set("format", Json::of(std::string("mlp-model")));
  const bool by_class = takes_class_indices(m.loss);
  // Version 2 for a model without classes (its preprocessing is null unless recorded, as version 2
  // means); a classifier's file stays version 1, which every reader of the format accepts.
  meta.set("format_version", Json::of(by_class ? 1.0 : 2.0));
  meta.set("library_version", Json::of(std::string("0.1.0")));
  Json hidden = Json::make_array();
  for (int l = 1; l + 1 < static_cast<int>(m.sizes.size()); ++l) hidden.array.push_back(Json::of(m.sizes[l]));
  meta.set("hidden_sizes", hidden);
  meta.set("activation", Json::of(std::string(activation_name(m.activation))));
  meta.set("loss", Json::of(std::string(loss_name(m.loss))));
  meta.set("n_features", Json::of(m.sizes[0]));
  Json classes = Json::make_array();
  for (int64_t v : m.classes) classes.array.push_back(Json::of_int(v));
  meta.set("classes", by_class ? classes : Json());  // null for a model trained on a target matrix
  meta.set("n_outputs", Json::of(m.sizes.back()));
  meta.set("dtype", Json::of(std::string(dtype_name<T>())));
  meta.set("producer", Json::of(std::string("mlp-cpp ") + MLP_VERSION));
  Json pre = Json::make_object();  // as mlp.saving.MNIST_PREPROCESSING; null for data given as floats
  pre.set("input", Json::of(std::string("pixels / 255")));
  Json range = Json::make_array();
  range.array = {Json::of(0.0), Json::of(1.0)};
  pre.set("range", range);
  if (m.image_rows > 0) {
    Json shape = Json::make_array();
    shape.array = {Json::of(m.image_rows), Json::of(m.image_cols)};
    pre.set("image_shape", shape);
  }
  // A model that came from a file keeps its own preprocessing and any other fields.
  if (m.metadata.type == Json::OBJECT) {
    for (const auto& kv : m.metadata.object)
      if (!meta.find(kv.first) || kv.first == "preprocessing" || kv.first == "library_version") meta.set(kv.first, kv.second);
  }
  if (!meta.find("preprocessing")) meta.set("preprocessing", by_class ? pre : Json());

  std::vector<NpyArray> arrays;
  for (int l = 0; l < m.layers(); ++l) {
    const std::vector<std::size_t> wshape = {static_cast<std::size_t>(m.sizes[l]), static_cast<std::size_t>(m.sizes[l + 1])};
    const std::vector<std::size_t> bshape = {static_cast<std::size_t>(m.sizes[l + 1])};
    const std::string wl = "W" + std::to_string(l), bl = "b" + std::to_string(l);
    if (sizeof(T) == 4) {
      arrays.push_back(NpyArray::from_floats(wl, reinterpret_cast<const float*>(m.W[l].data()), wshape));
      arrays.push_back(NpyArray::from_floats(bl, reinterpret_cast<const float*>(m.b[l].data()), bshape));
    } else {
      arrays.push_back(NpyArray::from_doubles(wl, reinterpret_cast<const double*>(m.W[l].data()), wshape));
      arrays.push_back(NpyArray::from_doubles(bl, reinterpret_cast<const double*>(m.b[l].data()), bshape));
    }
  }
  std::string note, text;
  try {
    text = fit_metadata(meta, defaults::kMaxMetadataBytes, note);
  } catch (const std::runtime_error& e) {
    fail("cannot write " + path + ": " + e.what());
  }
  if (!note.empty())
    note = "model file " + path + ": the metadata was over the " + with_commas(defaults::kMaxMetadataBytes) +
           "-byte limit of the file format; written without " + note;
  arrays.push_back(NpyArray::from_bytes("metadata", text));
  write_npz(path, arrays);
  return note;
}

namespace {

// Limits checked before anything is allocated from a model file's sizes: the metadata's size, the
// widths and the number of hidden layers are mlp.options' MAX_* (train_defaults.hpp, generated), so
// both programs accept and refuse the same files, and mlp-cpp train refuses what it could not save.
constexpr std::uint64_t kMaxMetadataBytes = defaults::kMaxMetadataBytes;  // the JSON metadata entry
constexpr double kMaxLayerWidth = static_cast<double>(defaults::kMaxWidth);  // n_features, hidden sizes, outputs
constexpr std::size_t kMaxHiddenLayers = defaults::kMaxHiddenLayers;
constexpr std::uint64_t kMaxParameters = std::uint64_t(1) << 31;  // 8 GiB of float32 weights (this port's own)

std::string shape_text(const std::vector<std::size_t>& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

// An integral number in [lo, hi] ("784" or "784.0", not true or 784.5), as mlp.model_file reads it.
bool integral(const Json& j, double lo, double hi) {
  return j.is_number() && std::isfinite(j.number) && j.number == std::floor(j.number) && j.number >= lo && j.number <= hi;
}

int json_int(const Json* j, const std::string& path, const std::string& key, int lo) {
  if (!j || !integral(*j, lo, kMaxLayerWidth))
    fail(path + ": metadata field '" + key + "' is missing or not an integer from " + std::to_string(lo) + " to " +
         std::to_string(static_cast<long long>(kMaxLayerWidth)));
  return static_cast<int>(j->number);
}

bool is_null_or_object(const Json* j) { return !j || j->type == Json::NUL || j->type == Json::OBJECT; }
bool is_number_or_null(const Json& j) { return j.type == Json::NUMBER || j.type == Json::NUL; }

// The optional fields: l2 (a number >= 0), config and preprocessing (objects or null), config's
// optimizer and preprocessing (objects or null), library_version (a string), history (an object of
// lists of numbers or nulls; per-layer keys may hold a list per epoch).
void check_optional_fields(const Json& meta, const std::string& path) {
  if (const Json* l2 = meta.find("l2"))
    if (!l2->is_number() || !std::isfinite(l2->number) || l2->number < 0)
      fail(path + ": metadata field 'l2' must be a number >= 0, got " + l2->dump().substr(0, 40));
  for (const char* key : {"config", "preprocessing"})
    if (!is_null_or_object(meta.find(key)))
      fail(path + ": metadata field '" + key + "' must be an object or null");
  if (const Json* config = meta.find("config"))
    for (const char* key : {"optimizer", "preprocessing"})
      if (!is_null_or_object(config->find(key)))
        fail(path + ": config['" + key + "'] must be an object or null");
  if (const Json* version = meta.find("library_version"))
    if (!version->is_string()) fail(path + ": metadata field 'library_version' must be a string");
  const Json* history = meta.find("history");
  if (!history || history->type == Json::NUL) return;
  if (history->type != Json::OBJECT) fail(path + ": metadata field 'history' must be an object of lists");
  static const char* const scalar_keys[] = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"};
  for (const auto& kv : history->object) {
    if (kv.second.type != Json::ARRAY) fail(path + ": history[" + Json::of(kv.first).dump() + "] must be a list");
    const bool scalar = std::find(std::begin(scalar_keys), std::end(scalar_keys), kv.first) != std::end(scalar_keys);
    for (const Json& item : kv.second.array) {
      bool ok = is_number_or_null(item);
      if (!ok && !scalar && item.type == Json::ARRAY)
        ok = std::all_of(item.array.begin(), item.array.end(), is_number_or_null);
      if (!ok) fail(path + ": history[" + Json::of(kv.first).dump() + "] holds " + item.dump().substr(0, 40) + ", not a number");
    }
  }
}

std::string json_str(const Json* j, const std::string& path, const std::string& key) {
  if (!j || !j->is_string()) fail(path + ": metadata field '" + key + "' is missing or not a string");
  return j->string;
}

// The model's description from its metadata entry: checked field by field, nothing allocated yet.
struct Description {
  Json meta;
  std::vector<int> sizes;
  std::vector<int64_t> classes;
  int activation = RELU, loss = CROSS_ENTROPY;
  std::string dtype;
};

Description read_description(const NpzArchive& archive, const std::string& path) {
  const NpzEntry* entry = archive.find("metadata");
  if (!entry) fail(path + ": no 'metadata' entry (not an mlp model file)");
  if (entry->name != "metadata.npy") fail(path + ": the entry '" + entry->name + "' is not a .npy array");
  // The limit is on the JSON, as in mlp.model_file (the entry also holds the .npy header).
  const NpyArray array = archive.read(*entry, kMaxMetadataBytes + 12 + kMaxNpyHeader);
  if (array.descr != "|u1" || array.shape.size() != 1)
    fail(path + ": the metadata entry is not a 1-D uint8 array of JSON text");
  if (array.shape[0] > kMaxMetadataBytes)
    fail(path + ": the metadata is " + with_commas(array.shape[0]) + " bytes, over the " +
         with_commas(kMaxMetadataBytes) + "-byte limit");
  const std::string text(array.data.begin(), array.data.end());
  if (!valid_utf8(text)) fail(path + ": metadata is not valid UTF-8 text");
  Description d;
  try {
    d.meta = Json::parse(text);
  } catch (const std::exception& ex) {
    fail(path + ": metadata: " + ex.what());
  }
  const Json& meta = d.meta;
  if (meta.type != Json::OBJECT) fail(path + ": metadata is not a JSON object");
  const Json* format = meta.find("format");
  if (!format || !format->is_string() || format->string != "mlp-model")
    fail(path + ": metadata format is not 'mlp-model' (not an mlp model file)");
  const Json* version = meta.find("format_version");
  if (!version || !integral(*version, 1, 1e18)) fail(path + ": metadata field 'format_version' must be a positive integer");
  if (version->number != 1 && version->number != 2)
    fail(path + ": model format_version " + version->dump() + " is not supported (this program reads versions 1 and 2)");

  d.sizes.push_back(json_int(meta.find("n_features"), path, "n_features", 1));
  const Json* hidden = meta.find("hidden_sizes");
  if (!hidden || hidden->type != Json::ARRAY) fail(path + ": metadata field 'hidden_sizes' is missing or not a list");
  if (hidden->array.size() > kMaxHiddenLayers)
    fail(path + ": metadata lists " + std::to_string(hidden->array.size()) + " hidden layers (at most " +
         std::to_string(kMaxHiddenLayers) + ")");
  for (const Json& h : hidden->array) d.sizes.push_back(json_int(&h, path, "hidden_sizes", 1));
  // The loss first: it says whether the model has classes (as mlp.model_file.check_model_metadata).
  const std::string activation = json_str(meta.find("activation"), path, "activation");
  d.activation = activation == "linear" ? -1 : activation_from_name(activation);  // (a C++-only alias)
  if (d.activation < 0)
    fail(path + ": unknown activation " + Json::of(activation).dump().substr(0, 60) +
         "; known: identity, leaky_relu, relu, sigmoid, tanh");
  d.loss = loss_from_name(json_str(meta.find("loss"), path, "loss"));
  if (d.loss < 0)
    fail(path + ": unknown loss " + meta.find("loss")->dump().substr(0, 60) +
         "; known: binary_cross_entropy, cross_entropy, mse, squared_error");
  const Json* classes = meta.find("classes");
  const Json* n_outputs = meta.find("n_outputs");
  if (!takes_class_indices(d.loss)) {  // regression or multilabel: classes null, n_outputs outputs
    if (classes && classes->type != Json::NUL)
      fail(path + ": a model with loss '" + loss_name(d.loss) + "' has no classes, but metadata field 'classes' is " +
           classes->dump().substr(0, 40));
    d.sizes.push_back(json_int(n_outputs, path, "n_outputs", 1));
  } else {
    if (!classes || classes->type != Json::ARRAY || classes->array.empty())
      fail(path + ": metadata field 'classes' is missing or empty");
    if (classes->array.size() > kMaxLayerWidth) fail(path + ": metadata lists too many classes");
    for (const Json& cl : classes->array) {
      // int64, exactly as Python reads them: an integer literal keeps every digit (2^53 + 1 stays
      // itself); an integral float literal (3.0) counts, as in mlp.model_file.integer_field.
      if (cl.exact) {
        d.classes.push_back(cl.int64);
        continue;
      }
      if (cl.integer || !integral(cl, -9223372036854775808.0, 9223372036854774784.0))  // [-2^63, 2^63)
        fail(path + ": metadata 'classes' must hold integers from -2^63 to 2^63 - 1 (string labels are not "
             "supported by the C++ port)");
      d.classes.push_back(static_cast<int64_t>(cl.number));
    }
    std::vector<int64_t> sorted = d.classes;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      fail(path + ": metadata field 'classes' lists a class twice");
    // n_outputs, when present, must equal the number of classes (as Python's ==: 10.0 and, for one
    // class, true count; null does not).
    const double count = static_cast<double>(d.classes.size());
    if (n_outputs && !((n_outputs->is_number() && n_outputs->number == count) ||
                       (n_outputs->type == Json::BOOL && n_outputs->boolean && count == 1)))
      fail(path + ": metadata field 'n_outputs' is " + n_outputs->dump().substr(0, 40) + " but the model lists " +
           std::to_string(d.classes.size()) + " classes");
    d.sizes.push_back(static_cast<int>(d.classes.size()));
  }
  d.dtype = json_str(meta.find("dtype"), path, "dtype");
  if (d.dtype != "float32" && d.dtype != "float64")
    fail(path + ": metadata field 'dtype' must be 'float32' or 'float64', got " + Json::of(d.dtype).dump().substr(0, 40));
  check_optional_fields(meta, path);

  std::uint64_t parameters = 0;  // each term <= 1e16: no overflow
  for (std::size_t l = 0; l + 1 < d.sizes.size(); ++l)
    parameters += static_cast<std::uint64_t>(d.sizes[l]) * static_cast<std::uint64_t>(d.sizes[l + 1]) + d.sizes[l + 1];
  if (parameters > kMaxParameters)
    fail(path + ": the metadata describes " + std::to_string(parameters) + " parameters, more than the " +
         std::to_string(kMaxParameters) + " this program loads");
  const double bytes = static_cast<double>(parameters) * (d.dtype == "float32" ? 4 : 8);
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (physical > 0 && bytes > 0.5 * physical) {
    char msg[160];
    std::snprintf(msg, sizeof msg, ": the model's weights need %.1f GB but the machine has %.1f GB", bytes / 1e9, physical / 1e9);
    fail(path + msg);
  }
  return d;
}

// The entries W<l> and b<l> for the sizes, each checked to exist and to declare about the size its
// shape needs (in float32 or float64, so that a wrong dtype gets its own message later) before
// anything is allocated or decompressed.
std::vector<std::pair<const NpzEntry*, std::vector<std::size_t>>> parameter_entries(
    const NpzArchive& archive, const std::vector<int>& sizes, const std::string& path) {
  std::vector<std::pair<const NpzEntry*, std::vector<std::size_t>>> out;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    for (int which = 0; which < 2; ++which) {
      const std::string name = (which == 0 ? "W" : "b") + std::to_string(l);
      std::vector<std::size_t> shape = {static_cast<std::size_t>(sizes[l + 1])};
      if (which == 0) shape.insert(shape.begin(), static_cast<std::size_t>(sizes[l]));
      const NpzEntry* e = archive.find(name);
      if (!e) fail(path + ": array " + name + " is missing");
      if (e->name != name + ".npy") fail(path + ": the entry '" + e->name + "' is not a .npy array");
      std::uint64_t count = 1;
      for (std::size_t d : shape) count *= d;
      const std::uint64_t most = 8 * count + 12 + kMaxNpyHeader;
      const std::uint64_t least = 4 * count + 10;  // float32 data after the shortest .npy preamble
      if (e->usize > most || e->usize < least)
        fail(path + ": " + name + " is stored with " + std::to_string(e->usize) + " bytes, but its shape " +
             shape_text(shape) + " from the metadata needs " + std::to_string(least) + " to " + std::to_string(most) +
             " (the file does not match its metadata)");
      if (!e->size_plausible())
        fail(path + ": " + name + " declares " + std::to_string(e->usize) + " bytes in " + std::to_string(e->csize) +
             " stored bytes, which cannot be (a truncated, corrupt or crafted file)");
      out.emplace_back(e, std::move(shape));
    }
  }
  return out;  // other entries are ignored, never inflated (as mlp.model_file does)
}

template <class T>
void fill_model(Model<T>& m, const NpzArchive& archive,
                const std::vector<std::pair<const NpzEntry*, std::vector<std::size_t>>>& entries,
                const std::string& path) {
  const std::string want = sizeof(T) == 4 ? "<f4" : "<f8";
  for (std::size_t k = 0; k < entries.size(); ++k) {
    const NpzEntry& e = *entries[k].first;
    const std::vector<std::size_t>& shape = entries[k].second;
    const NpyArray a = archive.read(e, e.usize);  // its size was bounded by parameter_entries
    if (a.descr != want) fail(path + ": " + a.name + " has dtype " + a.descr + " but the metadata says " + dtype_name<T>());
    if (a.shape != shape)
      fail(path + ": " + a.name + " has shape " + shape_text(a.shape) + ", expected " + shape_text(shape) +
           " from the metadata");
    std::vector<T>& dst = k % 2 == 0 ? m.W[k / 2] : m.b[k / 2];
    std::memcpy(dst.data(), a.data.data(), dst.size() * sizeof(T));
    for (T v : dst)
      if (!std::isfinite(v)) fail(path + ": " + a.name + " holds NaN or infinite values");
  }
}

}  // namespace

AnyModel load_model(const std::string& path) { return load_model(NpzArchive(path)); }

AnyModel load_model(const NpzArchive& archive) {
  const std::string& path = archive.path();
  Description d = read_description(archive, path);
  const auto entries = parameter_entries(archive, d.sizes, path);
  AnyModel any;
  any.dtype = d.dtype;
  auto setup = [&](auto& m) {
    m.sizes = d.sizes;
    m.activation = d.activation;
    m.loss = d.loss;
    m.classes = d.classes;
    m.metadata = d.meta;
    m.allocate();
    fill_model(m, archive, entries, path);
  };
  if (d.dtype == "float32") setup(any.f32);
  else setup(any.f64);
  return any;
}

#define MLP_MODEL_INSTANTIATE(T)                                                                           \
  template struct Model<T>;                                                                               \
  template struct Workspace<T>;                                                                           \
  template class Optimizer<T>;                                                                            \
  template void forward_pass<T>(const Model<T>&, Workspace<T>&, const T*, int);                           \
  template double backward_pass<T>(const Model<T>&, Workspace<T>&, const T*, const int32_t*, int, double,  \
                                   std::vector<std::vector<T>>&, long*);                                   \
  template void clip_gradients<T>(std::vector<std::vector<T>>&, double, double);                          \
  template Model<T> train<T>(const TrainConfig&, const Batch<T>&, int, int,                                \
                             const std::function<void(const EpochStats&)>&);                               \
  template std::pair<double, double> evaluate<T>(const Model<T>&, const T*, const int32_t*, std::size_t); \
  template ValueScores evaluate_values<T>(const Model<T>&, const T*, const T*, std::size_t, std::vector<T>*); \
  template double backward_pass<T>(const Model<T>&, Workspace<T>&, const T*, const T*, int, double,        \
                                   std::vector<std::vector<T>>&);                                           \
  template std::vector<T> scale_pixels<T>(const uint8_t*, std::size_t, double);                                    \
  template std::string save_model<T>(const Model<T>&, const std::string&);

MLP_MODEL_INSTANTIATE(float)
MLP_MODEL_INSTANTIATE(double)

}  // namespace mlp
