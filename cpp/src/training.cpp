// training.cpp - train_step and the training loop (mlp/engines/generic.py's Trainer.train_step,
// mlp.fit and mlp/loop.py): the configuration checked, the network built and initialised, then the
// epochs of shuffled mini-batches; the metadata a model file records about the run.
#include "training.hpp"

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

namespace mlp {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

double process_cpu_seconds() {
  timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// out[i] = pixels[i] / 255 in T (vectorised; the same correctly rounded division as NumPy's).
template <class T>
void scale_row(T* __restrict out, const uint8_t* __restrict pixels, std::size_t count, T divisor = T(255)) {
  for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<T>(pixels[i]) / divisor;
}

// What train() settles before the first step: the options resolved as mlp.fit resolves them.
struct Plan {
  std::string init;          // "auto" resolved
  double lr = 0.0;           // the base learning rate
  double weight_decay = 0.0, l2 = 0.0;  // adamw: decoupled decay, l2 0; else l2 = weight_decay
  std::size_t rows = 0;      // rows of a full mini-batch
  int steps = 0;             // steps per epoch
  bool shuffle = false;
};

template <class T>
Plan plan_training(const TrainConfig& c, const Batch<T>& data) {
  if (data.n == 0) fail("no training data");
  if (!data.X == !data.pixels) fail("train(): give exactly one of X and pixels");
  const bool by_class = takes_class_indices(c.loss);
  if (by_class ? !data.y : !data.Y)
    fail(std::string("train(): loss ") + loss_name(c.loss) + " needs " +
         (by_class ? "class indices (Batch::y)" : "a target matrix (Batch::Y)"));
  if (data.n > 0x7FFFFFFF) fail("too many training examples for one batch index (max 2^31-1)");
  if (!is_optimizer(c.optimizer)) fail("unknown optimizer '" + c.optimizer + "'; choose " + optimizer_names());
  if (!is_schedule(c.schedule)) fail("unknown schedule '" + c.schedule + "'; choose " + schedule_names());
  if (c.batch_norm != BATCH_NORM_NONE && c.batch_norm != BATCH_NORM_BEFORE && c.batch_norm != BATCH_NORM_AFTER)
    fail("train(): batch_norm must be BATCH_NORM_NONE, BATCH_NORM_BEFORE or BATCH_NORM_AFTER");
  if (!(c.batch_norm_momentum > 0.0 && c.batch_norm_momentum <= 1.0))
    fail("train(): batch_norm_momentum must be in (0, 1]");
  Plan p;
  const bool relu_family = c.activation == RELU || c.activation == LEAKY_RELU;
  p.init = c.init == "auto" ? (relu_family ? "he_normal" : "glorot_uniform") : c.init;
  if (!is_initializer(p.init)) fail("unknown init '" + c.init + "'; choose auto, " + initializer_names());
  p.lr = c.lr > 0 ? c.lr : default_learning_rate(c.optimizer);
  const bool decoupled = c.optimizer == "adamw";
  p.weight_decay = c.weight_decay >= 0 ? c.weight_decay : (decoupled ? defaults::kWeightDecayAdamw : 0.0);
  p.l2 = decoupled ? 0.0 : p.weight_decay;
  p.rows = c.batch_size == 0 ? data.n : std::min<std::size_t>(static_cast<std::size_t>(c.batch_size), data.n);
  p.steps = static_cast<int>((data.n + p.rows - 1) / p.rows);
  p.shuffle = c.shuffle && p.steps > 1;
  return p;
}

// Refuses, with a message, a network and batch size that cannot fit in memory (rather than being killed).
template <class T>
void check_memory(const Model<T>& m, bool dropout, std::size_t batch_rows) {
  const int L = m.layers();
  double elements = 4.0 * static_cast<double>(m.n_parameters());  // parameters, gradients, 2 states
  double widest = 1;
  // per row of a hidden layer: its output, with dropout a mask and the masked copy, with batch norm
  // the normalised values (and "after" the activation's output)
  const int per_row = 1 + (dropout ? 2 : 0) + (m.batch_norm == BATCH_NORM_NONE ? 0 : m.batch_norm == BATCH_NORM_AFTER ? 2 : 1);
  for (int l = 1; l < L; ++l) {
    elements += static_cast<double>(batch_rows) * m.sizes[l] * per_row;
    widest = std::max(widest, static_cast<double>(m.sizes[l]));
  }
  elements += static_cast<double>(batch_rows) * (m.sizes[L] + 2 * widest + static_cast<double>(m.sizes[0]));
  const double bytes = elements * sizeof(T);
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (physical > 0 && bytes > 0.9 * physical) {
    char msg[200];
    std::snprintf(msg, sizeof msg, "this network and batch size need about %.1f GB but the machine has %.1f GB; "
                  "use smaller layers or a smaller --batch-size", bytes / 1e9, physical / 1e9);
    fail(msg);
  }
}

// The optimizer as mlp.model_file records it in config: its name and its own settings.
Json optimizer_metadata(const TrainConfig& c, double weight_decay) {
  Json opt = Json::make_object();
  opt.set("name", Json::of(c.optimizer));
  if (c.optimizer == "momentum" || c.optimizer == "nesterov") opt.set("momentum", Json::of(c.momentum));
  if (c.optimizer == "rmsprop") {
    opt.set("rho", Json::of(c.rho));
    opt.set("eps", Json::of(c.eps));
  }
  if (c.optimizer == "adam" || c.optimizer == "adamw") {
    opt.set("beta1", Json::of(c.beta1));
    opt.set("beta2", Json::of(c.beta2));
    opt.set("eps", Json::of(c.eps));
  }
  if (c.optimizer == "adamw") opt.set("weight_decay", Json::of(weight_decay));
  return opt;
}

// config, as mlp.fit records its options in a model file (mlp.fit's names; null for "off").
template <class T>
Json config_metadata(const TrainConfig& c, const Plan& p) {
  auto number_or_null = [](double v) { return v > 0 ? Json::of(v) : Json(); };
  Json hidden = Json::make_array();
  for (int h : c.hidden) hidden.array.push_back(Json::of(h));
  Json config = Json::make_object();
  config.set("hidden_sizes", hidden);
  config.set("activation", Json::of(std::string(activation_name(c.activation))));
  config.set("loss", Json::of(std::string(loss_name(c.loss))));
  config.set("init", Json::of(p.init));
  config.set("epochs", Json::of(c.epochs));
  config.set("batch_size", c.batch_size > 0 ? Json::of(c.batch_size) : Json());
  config.set("optimizer", optimizer_metadata(c, p.weight_decay));
  config.set("learning_rate", Json::of(p.lr));
  config.set("weight_decay", Json::of(p.weight_decay));
  config.set("dropout", Json::of(c.dropout));
  config.set("clip_value", number_or_null(c.clip_value));
  config.set("clip_norm", number_or_null(c.clip_norm));
  config.set("batch_norm", c.batch_norm == BATCH_NORM_NONE ? Json() : Json::of(std::string(batch_norm_name(c.batch_norm))));
  config.set("batch_norm_momentum", Json::of(c.batch_norm_momentum));
  config.set("schedule", Json::of(c.schedule));
  config.set("dtype", Json::of(std::string(dtype_name<T>())));
  config.set("seed", Json::of_int(static_cast<long long>(c.seed)));
  return config;
}

// A new network of the configured shape, its weights drawn by the initialiser, biases zero.
template <class T>
Model<T> initial_model(const TrainConfig& c, const Plan& p, int n_features, int n_outputs, Rng& rng) {
  Model<T> m;
  m.sizes.push_back(n_features);
  for (int h : c.hidden) m.sizes.push_back(h);
  m.sizes.push_back(n_outputs);
  m.activation = c.activation;
  m.loss = c.loss;
  m.batch_norm = c.batch_norm;
  check_memory(m, c.dropout > 0.0, p.rows);
  m.allocate();
  for (int l = 0; l < m.layers(); ++l) initialize(m.W[l].data(), p.init, m.sizes[l], m.sizes[l + 1], rng);
  return m;
}

// The rows of each mini-batch: in file order (views into the data; pixels scaled once), or gathered
// in a shuffled order into buffers of one batch, prefetching rows ahead.
template <class T>
class Batches {
 public:
  Batches(const Batch<T>& data, std::size_t features, std::size_t outputs, const Plan& p)
      : data_(data), features_(features), outputs_(outputs), rows_(p.rows), shuffle_(p.shuffle) {
    const bool by_class = data.y != nullptr;
    X_ = data.X;
    if (!X_ && !shuffle_) {
      scaled_ = scale_pixels<T>(data.pixels, data.n * features);
      X_ = scaled_.data();
    }
    xb_.resize(shuffle_ ? rows_ * features : 0);
    yb_.resize(shuffle_ && by_class ? rows_ : 0);
    Yb_.resize(shuffle_ && !by_class ? rows_ * outputs : 0);
    order_.resize(shuffle_ ? data.n : 0);
  }
  // A new order for the next epoch (when shuffling).
  void shuffle(Rng& rng) {
    if (!shuffle_) return;
    std::iota(order_.begin(), order_.end(), 0u);
    for (std::size_t i = data_.n - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
  }
  // Rows [start, start + n) of the epoch's order: X and y or Y (the other left null).
  void get(std::size_t start, int n, const T*& X, const int32_t*& y, const T*& Y) {
    y = nullptr;
    Y = nullptr;
    if (!shuffle_) {
      X = X_ + start * features_;
      if (data_.y) y = data_.y + start;
      else Y = data_.Y + start * outputs_;
      return;
    }
    gather(start, n);
    X = xb_.data();
    if (data_.y) y = yb_.data();
    else Y = Yb_.data();
  }

 private:
  void gather(std::size_t start, int n) {
    // Rows come from random places in a data set larger than the caches: fetch a few ahead.
    const std::size_t row_bytes = features_ * (data_.pixels ? 1 : sizeof(T));
    const char* base = data_.pixels ? reinterpret_cast<const char*>(data_.pixels) : reinterpret_cast<const char*>(data_.X);
    auto prefetch_row = [&](int i) {
      if (i >= n) return;
      const char* p = base + order_[start + static_cast<std::size_t>(i)] * row_bytes;
      for (std::size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off);
    };
    constexpr int kAhead = 4;
    for (int i = 0; i < kAhead; ++i) prefetch_row(i);
    for (int i = 0; i < n; ++i) {
      prefetch_row(i + kAhead);
      const std::size_t src = order_[start + static_cast<std::size_t>(i)];
      T* row = &xb_[static_cast<std::size_t>(i) * features_];
      if (data_.pixels) scale_row(row, data_.pixels + src * features_, features_);
      else std::memcpy(row, data_.X + src * features_, features_ * sizeof(T));
      if (data_.y) yb_[static_cast<std::size_t>(i)] = data_.y[src];
      else std::memcpy(&Yb_[static_cast<std::size_t>(i) * outputs_], data_.Y + src * outputs_, outputs_ * sizeof(T));
    }
  }

  const Batch<T>& data_;
  std::size_t features_, outputs_, rows_;
  bool shuffle_;
  const T* X_ = nullptr;
  std::vector<T> scaled_, xb_, Yb_;
  std::vector<int32_t> yb_;
  std::vector<uint32_t> order_;
};

// Fresh dropout masks for the first n rows: 1/keep with probability keep, else 0.
template <class T>
void draw_dropout_masks(Workspace<T>& ws, int n, double dropout, Rng& rng) {
  const double keep = 1.0 - dropout;
  for (auto& mask : ws.mask) {
    const std::size_t count = mask.size() / ws.rows * static_cast<std::size_t>(n);
    for (std::size_t i = 0; i < count; ++i) mask[i] = rng.uniform() < keep ? static_cast<T>(1.0 / keep) : T(0);
  }
}

// The loss is summed in double, but a mean loss the training dtype cannot hold has diverged as
// surely as an infinite one (Python computes it in that dtype and stops there: targets near 1e38 in
// float32 are a loss of inf, not 5e75).
template <class T>
void check_finite_loss(double value, int epoch, int step, int steps, double lr) {
  if (std::isfinite(static_cast<T>(value))) return;
  char msg[320];
  std::snprintf(msg, sizeof msg,
                "the loss became %g at epoch %d, step %d of %d (learning rate %g); lower the learning rate, "
                "clip the gradients (--clip-norm 1) or check that the inputs and targets are scaled",
                static_cast<double>(static_cast<T>(value)), epoch + 1, step + 1, steps, lr);
  fail(msg);
}

// history, as mlp.fit records it: epoch, loss, accuracy (with classes), lr, seconds.
Json empty_history(bool by_class) {
  Json history = Json::make_object();
  for (const char* key : {"epoch", "loss", "accuracy", "lr", "seconds"})
    if (by_class || std::string(key) != "accuracy") history.set(key, Json::make_array());
  return history;
}

void record_epoch(Json& history, const EpochStats& s, bool by_class) {
  const double row[] = {static_cast<double>(s.epoch), s.loss, s.accuracy, s.lr, s.seconds};
  for (std::size_t k = 0, slot = 0; k < 5; ++k)  // (no accuracy column for the value losses)
    if (by_class || k != 2) history.object[slot++].second.array.push_back(Json::of(row[k]));
}

// One pass over the data (as mlp.loop.run_epochs' body): the steps, then the epoch's numbers.
template <class T>
EpochStats run_epoch(Trainer<T>& trainer, Batches<T>& batches, Schedule& schedule, const TrainConfig& c,
                     const Plan& p, std::size_t n, int epoch, Rng& rng) {
  const auto started = std::chrono::steady_clock::now();
  const double cpu_started = process_cpu_seconds();
  const double gemm_started = gemm_seconds(), update_started = trainer.update_seconds;
  batches.shuffle(rng);
  const double order = profiling() ? seconds_since(started) : 0.0;
  double gather = 0.0, steps = 0.0;  // wall seconds, with $MLP_PROFILE
  double loss_sum = 0.0, lr = p.lr;
  long correct = 0;
  for (int step = 0; step < p.steps; ++step) {
    const std::size_t start = static_cast<std::size_t>(step) * p.rows;
    const int nb = static_cast<int>(std::min(p.rows, n - start));
    const T *X, *Y;
    const int32_t* y;
    const auto step_started = profiling() ? std::chrono::steady_clock::now() : started;
    batches.get(start, nb, X, y, Y);
    if (profiling()) gather += seconds_since(step_started);
    if (c.dropout > 0.0) draw_dropout_masks(trainer.workspace(), nb, c.dropout, rng);
    lr = schedule.lr(epoch, step);
    long step_correct = 0;
    const auto train_started = profiling() ? std::chrono::steady_clock::now() : started;
    const double value = trainer.train_step(X, y, Y, nb, lr, &step_correct);
    if (profiling()) steps += seconds_since(train_started);
    check_finite_loss<T>(value, epoch, step, p.steps, lr);
    loss_sum += value * nb;
    correct += step_correct;
  }
  EpochStats s;
  s.epoch = epoch + 1;
  s.epochs = c.epochs;
  s.loss = loss_sum / static_cast<double>(n);
  s.accuracy = takes_class_indices(c.loss) ? static_cast<double>(correct) / static_cast<double>(n) : std::nan("");
  s.lr = lr;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  s.cpu_seconds = process_cpu_seconds() - cpu_started;
  s.order_seconds = order;
  s.gather_seconds = gather;
  s.gemm_seconds = gemm_seconds() - gemm_started;
  s.update_seconds = trainer.update_seconds - update_started;
  s.elementwise_seconds = steps - s.gemm_seconds - s.update_seconds;
  schedule.epoch_end(s.loss);
  return s;
}

}  // namespace

template <class T>
Trainer<T>::Trainer(Model<T>& model, const TrainConfig& c, double l2, double weight_decay, std::size_t rows)
    : model_(model),
      optimizer_(c.optimizer, model, c.momentum, c.rho, c.beta1, c.beta2, c.eps, weight_decay),
      ws_(model.sizes, rows, c.dropout > 0.0, model.batch_norm),
      l2_(l2),
      batch_norm_momentum_(c.batch_norm_momentum),
      clip_value_(c.clip_value),
      clip_norm_(c.clip_norm) {}

template <class T>
double Trainer<T>::train_step(const T* X, const int32_t* y, const T* Y, int n, double lr, long* correct) {
  forward_pass(model_, ws_, X, n, true);
  update_running_statistics(model_, ws_, n, batch_norm_momentum_);
  const double value = y ? backward_pass(model_, ws_, X, y, n, l2_, grads_, correct)
                         : backward_pass(model_, ws_, X, Y, n, l2_, grads_);
  if (!std::isfinite(static_cast<T>(value))) return value;  // diverged: the caller stops, nothing to update
  const auto started = profiling() ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  clip_gradients(grads_, clip_value_, clip_norm_);
  optimizer_.step(model_, grads_, lr, ++t_);
  if (profiling()) update_seconds += seconds_since(started);
  return value;
}

template <class T>
Model<T> train(const TrainConfig& c, const Batch<T>& data, int n_features, int n_outputs,
               const std::function<void(const EpochStats&)>& on_epoch) {
  const Plan p = plan_training(c, data);
  Rng rng(c.seed);
  Model<T> m = initial_model<T>(c, p, n_features, n_outputs, rng);
  if (c.epochs == 0) return m;
  const bool by_class = takes_class_indices(c.loss);
  Trainer<T> trainer(m, c, p.l2, c.optimizer == "adamw" ? p.weight_decay : 0.0, p.rows);
  Batches<T> batches(data, static_cast<std::size_t>(n_features), static_cast<std::size_t>(n_outputs), p);
  Schedule schedule(c.schedule, p.lr, c.epochs, p.steps);
  // Metadata as mlp.fit records it in a model file: l2, config (the fit options), history.
  m.metadata = Json::make_object();
  m.metadata.set("l2", Json::of(p.l2));
  m.metadata.set("config", config_metadata<T>(c, p));
  Json history = empty_history(by_class);
  for (int epoch = 0; epoch < c.epochs; ++epoch) {
    const EpochStats stats = run_epoch(trainer, batches, schedule, c, p, data.n, epoch, rng);
    record_epoch(history, stats, by_class);
    if (on_epoch) on_epoch(stats);
  }
  m.metadata.set("history", std::move(history));  // once: a copy per epoch costs epochs^2
  return m;
}

template <class T>
std::vector<T> scale_pixels(const uint8_t* pixels, std::size_t count, double divisor) {
  std::vector<T> X(count);
  scale_row(X.data(), pixels, count, static_cast<T>(divisor));
  return X;
}

#define MLP_TRAINING_INSTANTIATE(T)                                                       \
  template class Trainer<T>;                                                             \
  template Model<T> train<T>(const TrainConfig&, const Batch<T>&, int, int,               \
                             const std::function<void(const EpochStats&)>&);              \
  template std::vector<T> scale_pixels<T>(const uint8_t*, std::size_t, double);

MLP_TRAINING_INSTANTIATE(float)
MLP_TRAINING_INSTANTIATE(double)

}  // namespace mlp
