// mlp.cpp - layers, activations, losses, gradient processing, optimizers and initialisers.
#include "mlp.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

#include "gemm.hpp"
#include "parallel.hpp"
#include "train_defaults.hpp"


namespace mlp {

namespace {

// Element-wise loops use the threads only when the array is large enough to pay for the fork.
constexpr std::size_t kParallelMin = std::size_t(1) << 16;

template <class T>
inline T sigmoid(T z) {  // exp of a non-positive number only: no overflow for large |z|
  const T e = std::exp(-std::fabs(z));
  return z >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <class T>
inline T activate(T z, int activation) {
  switch (activation) {
    case RELU: return z > T(0) ? z : T(0);
    case LEAKY_RELU: return z > T(0) ? z : T(kLeakySlope) * z;
    case SIGMOID: return sigmoid(z);
    case TANH: return std::tanh(z);
    default: return z;
  }
}

}  // namespace

// The codes index the generated name tables (mlp.activations.ACTIVATIONS, mlp.losses.LOSSES): a
// name the tables add is refused here until a code implements it.
namespace {
constexpr bool same_text(const char* a, const char* b) { return *a == *b && (*a == '\0' || same_text(a + 1, b + 1)); }
}  // namespace
static_assert(same_text(defaults::kActivations[IDENTITY], "identity") && same_text(defaults::kActivations[RELU], "relu") &&
                  same_text(defaults::kActivations[LEAKY_RELU], "leaky_relu") &&
                  same_text(defaults::kActivations[SIGMOID], "sigmoid") && same_text(defaults::kActivations[TANH], "tanh"),
              "the Activation codes follow mlp.activations.ACTIVATIONS (train_defaults.hpp)");
static_assert(same_text(defaults::kLosses[CROSS_ENTROPY], "cross_entropy") && same_text(defaults::kLosses[MSE], "mse") &&
                  same_text(defaults::kLosses[SQUARED_ERROR], "squared_error") &&
                  same_text(defaults::kLosses[BINARY_CROSS_ENTROPY], "binary_cross_entropy") &&
                  same_text(defaults::kLosses[POISSON], "poisson"),
              "the LossKind codes follow mlp.losses.LOSSES (train_defaults.hpp)");
constexpr int kActivationCount = TANH + 1, kLossCount = POISSON + 1;

int activation_from_name(const std::string& name) {
  if (name == "linear") return IDENTITY;
  for (int a = 0; a < kActivationCount; ++a)
    if (name == defaults::kActivations[a]) return a;
  return -1;
}

const char* activation_name(int activation) {
  return activation >= 0 && activation < kActivationCount ? defaults::kActivations[activation] : "?";
}

std::string activation_names() {
  std::string s;
  for (int a = 0; a < kActivationCount; ++a) s += (a ? ", " : "") + std::string(defaults::kActivations[a]);
  return s;
}

int loss_from_name(const std::string& name) {
  for (int l = 0; l < kLossCount; ++l)
    if (name == defaults::kLosses[l]) return l;
  return -1;
}

int batch_norm_from_name(const std::string& name) {
  if (name.empty() || name == "none") return BATCH_NORM_NONE;
  if (name == "before") return BATCH_NORM_BEFORE;
  if (name == "after") return BATCH_NORM_AFTER;
  return -1;
}

const char* batch_norm_name(int batch_norm) {
  return batch_norm == BATCH_NORM_BEFORE ? "before" : batch_norm == BATCH_NORM_AFTER ? "after" : "none";
}

std::string loss_names() {
  std::string s;
  for (int l = 0; l < kLossCount; ++l) s += (l ? ", " : "") + std::string(defaults::kLosses[l]);
  return s;
}

const char* loss_name(int loss) {
  return loss >= 0 && loss < kLossCount ? defaults::kLosses[loss] : defaults::kLosses[CROSS_ENTROPY];
}

bool takes_class_indices(int loss) { return loss == CROSS_ENTROPY || loss == MSE; }

const char* output_activation_name(int loss) {
  return loss == CROSS_ENTROPY ? "softmax" : loss == SQUARED_ERROR ? "identity" : loss == POISSON ? "exp" : "sigmoid";
}

// ---- layers ---------------------------------------------------------------------------------

template <class T>
void dense_forward(T* Z, const T* A_prev, const T* W, const T* b, int n, int fan_in, int fan_out) {
  gemm<T>(Z, A_prev, W, n, fan_out, fan_in, false, false);
  for (int i = 0; i < n; ++i) {
    T* z = Z + static_cast<std::size_t>(i) * fan_out;
    for (int j = 0; j < fan_out; ++j) z[j] += b[j];
  }
}

template <class T>
void dense_backward(T* dW, T* db, T* dA_prev, const T* dZ, const T* A_prev, const T* W, int n,
                    int fan_in, int fan_out) {
  gemm<T>(dW, A_prev, dZ, fan_in, fan_out, n, true, false);
  std::fill(db, db + fan_out, T(0));
  for (int i = 0; i < n; ++i) {
    const T* dz = dZ + static_cast<std::size_t>(i) * fan_out;
    for (int j = 0; j < fan_out; ++j) db[j] += dz[j];
  }
  if (dA_prev) gemm<T>(dA_prev, dZ, W, n, fan_in, fan_out, false, true);
}

template <class T>
void bias_activation_forward(T* A, const T* Z, const T* b, int n, int m, int activation) {
  const std::size_t size = static_cast<std::size_t>(n) * m;
  const std::size_t min_rows = std::max<std::size_t>(1, kParallelMin / std::max(m, 1));
  parallel_chunks(static_cast<std::size_t>(n), min_rows, [&](std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) {
    const T* z = Z + static_cast<std::size_t>(i) * m;
    T* a = A + static_cast<std::size_t>(i) * m;
    switch (activation) {  // the switch sits outside the inner loops so they vectorise
      case RELU:
        for (int j = 0; j < m; ++j) { const T v = z[j] + b[j]; a[j] = v > T(0) ? v : T(0); }
        break;
      case LEAKY_RELU:
        for (int j = 0; j < m; ++j) {
          const T v = z[j] + b[j];
          a[j] = v > T(0) ? v : T(kLeakySlope) * v;
        }
        break;
      case IDENTITY:
        for (int j = 0; j < m; ++j) a[j] = z[j] + b[j];
        break;
      default:
        for (int j = 0; j < m; ++j) a[j] = activate(z[j] + b[j], activation);
    }
  }
  });
  (void)size;
}

template <class T>
void activation_forward(T* A, const T* Z, std::size_t size, int activation) {
  for (std::size_t i = 0; i < size; ++i) A[i] = activate(Z[i], activation);
}

template <class T>
void activation_backward(T* dZ, const T* dA, const T* A, std::size_t size, int activation) {
  const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(size);
  switch (activation) {
    case RELU:
      for (std::ptrdiff_t i = 0; i < count; ++i) dZ[i] = A[i] > T(0) ? dA[i] : T(0);
      break;
    case LEAKY_RELU:
      for (std::ptrdiff_t i = 0; i < count; ++i)
        dZ[i] = A[i] > T(0) ? dA[i] : dA[i] * T(kLeakySlope);
      break;
    case SIGMOID:
      for (std::ptrdiff_t i = 0; i < count; ++i) dZ[i] = dA[i] * (A[i] * (T(1) - A[i]));
      break;
    case TANH:
      for (std::ptrdiff_t i = 0; i < count; ++i) dZ[i] = dA[i] * (T(1) - A[i] * A[i]);
      break;
    default:
      if (dZ != dA) std::memcpy(dZ, dA, size * sizeof(T));
  }
}

// ---- batch normalisation ----------------------------------------------------------------------

template <class T>
void batch_norm_statistics(T* mean, T* var, T* inv, const T* H, int n, int k, double eps) {
  std::vector<double> sum(static_cast<std::size_t>(k), 0.0), squares(static_cast<std::size_t>(k), 0.0);
  for (int i = 0; i < n; ++i) {
    const T* h = H + static_cast<std::size_t>(i) * k;
    for (int j = 0; j < k; ++j) sum[j] += static_cast<double>(h[j]);
  }
  for (int j = 0; j < k; ++j) mean[j] = static_cast<T>(sum[j] / n);
  for (int i = 0; i < n; ++i) {  // the second pass, about the mean in T (as the Python side subtracts it)
    const T* h = H + static_cast<std::size_t>(i) * k;
    for (int j = 0; j < k; ++j) {
      const double d = static_cast<double>(h[j] - mean[j]);
      squares[j] += d * d;
    }
  }
  for (int j = 0; j < k; ++j) {
    var[j] = static_cast<T>(squares[j] / n);
    inv[j] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var[j]) + eps));
  }
}

template <class T>
void batch_norm_inverse_std(T* inv, const T* var, int k, double eps) {
  for (int j = 0; j < k; ++j) inv[j] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var[j]) + eps));
}

template <class T>
void batch_norm_normalize(T* Y, T* Hhat, const T* H, const T* mean, const T* inv, const T* gamma, const T* beta,
                          int n, int k) {
  for (int i = 0; i < n; ++i) {
    const std::size_t row = static_cast<std::size_t>(i) * k;
    for (int j = 0; j < k; ++j) {
      const T hat = (H[row + j] - mean[j]) * inv[j];
      if (Hhat) Hhat[row + j] = hat;
      Y[row + j] = gamma[j] * hat + beta[j];
    }
  }
}

template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var, int n, int k,
                               double momentum) {
  const double unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
  for (int j = 0; j < k; ++j) {
    running_mean[j] = static_cast<T>((1.0 - momentum) * running_mean[j] + momentum * mean[j]);
    running_var[j] = static_cast<T>((1.0 - momentum) * running_var[j] + momentum * (var[j] * unbiased));
  }
}

template <class T>
void batch_norm_backward(T* dH, T* dgamma, T* dbeta, const T* dY, const T* Hhat, const T* inv, const T* gamma,
                         int n, int k, bool batch_statistics) {
  std::vector<double> s1(static_cast<std::size_t>(k), 0.0), s2(static_cast<std::size_t>(k), 0.0);
  for (int i = 0; i < n; ++i) {
    const std::size_t row = static_cast<std::size_t>(i) * k;
    for (int j = 0; j < k; ++j) {
      s1[j] += static_cast<double>(dY[row + j]);
      s2[j] += static_cast<double>(dY[row + j]) * static_cast<double>(Hhat[row + j]);
    }
  }
  for (int j = 0; j < k; ++j) {
    dbeta[j] = static_cast<T>(s1[j]);
    dgamma[j] = static_cast<T>(s2[j]);
  }
  for (int i = 0; i < n; ++i) {
    const std::size_t row = static_cast<std::size_t>(i) * k;
    for (int j = 0; j < k; ++j) {
      const T factor = gamma[j] * inv[j];
      dH[row + j] = batch_statistics
                        ? factor * (dY[row + j] - dbeta[j] / static_cast<T>(n) - Hhat[row + j] * dgamma[j] / static_cast<T>(n))
                        : factor * dY[row + j];
    }
  }
}

// ---- losses ---------------------------------------------------------------------------------

// The operations mirror mlp/losses.py (log-softmax, then exp of it) so float32 results agree closely.
template <class T>
double softmax_cross_entropy(T* dZ, const T* Z, const int32_t* y, int n, int k) {
  double total = 0.0;
  const T tn = static_cast<T>(n);
  for (int i = 0; i < n; ++i) {
    const T* z = Z + static_cast<std::size_t>(i) * k;
    T zmax = z[0];
    for (int j = 1; j < k; ++j) zmax = std::max(zmax, z[j]);
    T sum = T(0);
    for (int j = 0; j < k; ++j) sum += std::exp(z[j] - zmax);
    const T log_sum = std::log(sum);
    total -= static_cast<double>((z[y[i]] - zmax) - log_sum);
    if (dZ) {
      T* d = dZ + static_cast<std::size_t>(i) * k;
      for (int j = 0; j < k; ++j) {
        const T logp = (z[j] - zmax) - log_sum;
        d[j] = (std::exp(logp) - (j == y[i] ? T(1) : T(0))) / tn;
      }
    }
  }
  return total / n;
}

template <class T>
double sigmoid_mse(T* dZ, const T* Z, const int32_t* y, int n, int k) {
  double total = 0.0;
  const T tn = static_cast<T>(n);
  for (int i = 0; i < n; ++i) {
    const T* z = Z + static_cast<std::size_t>(i) * k;
    T* d = dZ ? dZ + static_cast<std::size_t>(i) * k : nullptr;
    double row = 0.0;
    for (int j = 0; j < k; ++j) {
      const T a = sigmoid(z[j]);
      const T diff = a - (j == y[i] ? T(1) : T(0));
      row += static_cast<double>(diff * diff);
      if (d) d[j] = diff * a * (T(1) - a) / tn;
    }
    total += 0.5 * row;
  }
  return total / n;
}

template <class T>
double squared_error(T* dZ, const T* Z, const T* Y, int n, int k) {
  double total = 0.0;
  const T tn = static_cast<T>(n);
  const std::size_t size = static_cast<std::size_t>(n) * k;
  for (std::size_t i = 0; i < size; ++i) {
    const T diff = Z[i] - Y[i];
    total += static_cast<double>(diff) * static_cast<double>(diff);
    if (dZ) dZ[i] = diff / tn;
  }
  return 0.5 * total / n;
}

// As mlp.losses.sigmoid_binary_cross_entropy: log s(z) = min(z, 0) - log1p(exp(-|z|)) and
// log(1 - s(z)) = log s(z) - z.
template <class T>
double sigmoid_binary_cross_entropy(T* dZ, const T* Z, const T* Y, int n, int k) {
  double total = 0.0;
  const T tn = static_cast<T>(n);
  const std::size_t size = static_cast<std::size_t>(n) * k;
  for (std::size_t i = 0; i < size; ++i) {
    const T z = Z[i], y = Y[i];
    const T log_s = std::min(z, T(0)) - std::log1p(std::exp(-std::fabs(z)));
    total -= static_cast<double>(y * log_s + (T(1) - y) * (log_s - z));
    if (dZ) dZ[i] = (sigmoid(z) - y) / tn;
  }
  return total / n;
}

// As mlp.losses.exp_poisson: y log(y / mu) - y + mu with log mu = z, and y log y = 0 at y = 0.
template <class T>
double exp_poisson(T* dZ, const T* Z, const T* Y, int n, int k) {
  double total = 0.0;
  const T tn = static_cast<T>(n);
  const std::size_t size = static_cast<std::size_t>(n) * k;
  for (std::size_t i = 0; i < size; ++i) {
    const T z = Z[i], y = Y[i];
    const T mu = std::exp(z);
    const double yd = static_cast<double>(y), zd = static_cast<double>(z);
    total += (yd > 0.0 ? yd * std::log(yd) : 0.0) - yd - yd * zd + std::exp(zd);
    if (dZ) dZ[i] = (mu - y) / tn;
  }
  return total / n;
}

template <class T>
void output_values(T* Z, int n, int k, int loss) {
  if (loss == SQUARED_ERROR) return;
  if (loss == POISSON) {
    const std::size_t size = static_cast<std::size_t>(n) * k;
    for (std::size_t i = 0; i < size; ++i) Z[i] = std::exp(Z[i]);
    return;
  }
  for (int i = 0; i < n; ++i) {
    T* z = Z + static_cast<std::size_t>(i) * k;
    if (loss == CROSS_ENTROPY) {
      T zmax = z[0];
      for (int j = 1; j < k; ++j) zmax = std::max(zmax, z[j]);
      T sum = T(0);
      for (int j = 0; j < k; ++j) sum += (z[j] = std::exp(z[j] - zmax));
      for (int j = 0; j < k; ++j) z[j] /= sum;
      continue;
    }
    T sum = T(0);
    for (int j = 0; j < k; ++j) sum += (z[j] = sigmoid(z[j]));
    if (loss == MSE)
      for (int j = 0; j < k; ++j) z[j] /= sum;
  }
}

template <class T>
void predict_classes(int32_t* pred, const T* Z, int n, int k) {
  for (int i = 0; i < n; ++i) {
    const T* z = Z + static_cast<std::size_t>(i) * k;
    int best = 0;
    for (int j = 1; j < k; ++j)
      if (z[j] > z[best]) best = j;
    pred[i] = best;
  }
}

template <class T>
long count_correct(const T* Z, const int32_t* y, int n, int k) {
  long correct = 0;
  for (int i = 0; i < n; ++i) {
    const T* z = Z + static_cast<std::size_t>(i) * k;
    int best = 0;
    for (int j = 1; j < k; ++j)
      if (z[j] > z[best]) best = j;
    correct += best == y[i];
  }
  return correct;
}

// ---- gradient processing ----------------------------------------------------------------------

template <class T>
double sum_squares(const T* W, std::size_t size) {
  double s = 0.0;
  for (std::size_t i = 0; i < size; ++i) s += static_cast<double>(W[i]) * W[i];
  return s;
}

template <class T>
void add_l2_gradient(T* g, const T* W, double l2, std::size_t size) {
  const T c = static_cast<T>(l2);
  for (std::size_t i = 0; i < size; ++i) g[i] += c * W[i];
}

template <class T>
void clip_by_value(T* g, double c, std::size_t size) {
  const T hi = static_cast<T>(c), lo = -hi;
  for (std::size_t i = 0; i < size; ++i) g[i] = std::min(std::max(g[i], lo), hi);
}

template <class T>
double grad_sq_norm(const T* g, std::size_t size) {
  return sum_squares(g, size);
}

template <class T>
void scale(T* g, double factor, std::size_t size) {
  const T f = static_cast<T>(factor);
  for (std::size_t i = 0; i < size; ++i) g[i] *= f;
}

// ---- optimizers -----------------------------------------------------------------------------

template <class T>
void sgd_step(T* p, const T* g, double lr, std::size_t size) {
  const T a = static_cast<T>(lr);
  for (std::size_t i = 0; i < size; ++i) p[i] -= a * g[i];
}

template <class T>
void momentum_step(T* p, T* v, const T* g, double lr, double mu, bool nesterov, std::size_t size) {
  const T a = static_cast<T>(lr), m = static_cast<T>(mu);
  if (nesterov) {
    for (std::size_t i = 0; i < size; ++i) {
      v[i] = m * v[i] + g[i];
      p[i] -= a * (g[i] + m * v[i]);
    }
  } else {
    for (std::size_t i = 0; i < size; ++i) {
      v[i] = m * v[i] + g[i];
      p[i] -= a * v[i];
    }
  }
}

template <class T>
void rmsprop_step(T* p, T* s, const T* g, double lr, double rho, double eps, std::size_t size) {
  const T a = static_cast<T>(lr), r = static_cast<T>(rho), r1 = static_cast<T>(1.0 - rho),
          e = static_cast<T>(eps);
  for (std::size_t i = 0; i < size; ++i) {
    s[i] = r * s[i] + r1 * (g[i] * g[i]);
    p[i] -= a * g[i] / (std::sqrt(s[i]) + e);
  }
}

namespace {
template <class T>
void adam_kernel(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, std::size_t size,
                 T b1, T b2, T c1, T c2, T step_size, T sqrt_correction, T eps) {
  for (std::size_t i = 0; i < size; ++i) {
    const T gi = g[i];
    const T mi = b1 * m[i] + c1 * gi;
    const T vi = b2 * v[i] + c2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (std::sqrt(vi) / sqrt_correction + eps);
  }
}
}  // namespace

// As mlp/optimizers.py (the PyTorch arrangement):
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
void adam_step(T* p, T* m, T* v, const T* g, double lr, double beta1, double beta2, double eps,
               long t, double weight_decay, std::size_t size) {
  const double td = static_cast<double>(t);
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2),
          c1 = static_cast<T>(1.0 - beta1), c2 = static_cast<T>(1.0 - beta2),
          step_size = static_cast<T>(lr / (1.0 - std::pow(beta1, td))),
          sqrt_correction = static_cast<T>(std::sqrt(1.0 - std::pow(beta2, td))),
          e = static_cast<T>(eps), keep = static_cast<T>(1.0 - lr * weight_decay);
  const bool decoupled = weight_decay != 0.0;
  parallel_chunks(size, kParallelMin, [&](std::size_t begin, std::size_t end) {
    if (decoupled)
      for (std::size_t i = begin; i < end; ++i) p[i] *= keep;
    adam_kernel(p + begin, m + begin, v + begin, g + begin, end - begin, b1, b2, c1, c2, step_size,
                sqrt_correction, e);
  });
}

// ---- random numbers and initialisers -------------------------------------------------------

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

uint64_t Rng::below(uint64_t bound) {
  // Lemire's nearly-divisionless method.
  unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next_u64()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

namespace {
template <class T>
void fill_normal(T* W, std::size_t size, double std, Rng& rng) {
  for (std::size_t i = 0; i < size; ++i) W[i] = static_cast<T>(std * rng.normal());
}
template <class T>
void fill_uniform(T* W, std::size_t size, double limit, Rng& rng) {
  for (std::size_t i = 0; i < size; ++i) W[i] = static_cast<T>(limit * (2.0 * rng.uniform() - 1.0));
}
inline std::size_t count(int fan_in, int fan_out) {
  return static_cast<std::size_t>(fan_in) * fan_out;
}
}  // namespace

template <class T> void he_normal(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_normal(W, count(fan_in, fan_out), std::sqrt(2.0 / fan_in), rng);
}
template <class T> void he_uniform(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_uniform(W, count(fan_in, fan_out), std::sqrt(6.0 / fan_in), rng);
}
template <class T> void glorot_normal(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_normal(W, count(fan_in, fan_out), std::sqrt(2.0 / (fan_in + fan_out)), rng);
}
template <class T> void glorot_uniform(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_uniform(W, count(fan_in, fan_out), std::sqrt(6.0 / (fan_in + fan_out)), rng);
}
template <class T> void lecun_normal(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_normal(W, count(fan_in, fan_out), std::sqrt(1.0 / fan_in), rng);
}
template <class T> void lecun_uniform(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_uniform(W, count(fan_in, fan_out), std::sqrt(3.0 / fan_in), rng);
}
template <class T> void normal(T* W, int fan_in, int fan_out, Rng& rng) {
  fill_normal(W, count(fan_in, fan_out), 0.01, rng);
}

namespace {
// The initialisers implemented by initialize() below (mlp.initializers.INITIALIZERS, generated, may
// list more: those are refused by name).
const char* const kInitNames[] = {"he_normal",      "he_uniform",   "glorot_normal", "glorot_uniform", "xavier_normal",
                                  "xavier_uniform", "lecun_normal", "lecun_uniform", "normal"};
}  // namespace

bool is_initializer(const std::string& name) {
  const bool listed = std::find(std::begin(defaults::kInitializers), std::end(defaults::kInitializers), name) !=
                      std::end(defaults::kInitializers);
  return listed && std::find(std::begin(kInitNames), std::end(kInitNames), name) != std::end(kInitNames);
}

std::string initializer_names() {
  std::string s;
  for (const char* n : defaults::kInitializers)
    if (is_initializer(n)) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

template <class T>
bool initialize(T* W, const std::string& name, int fan_in, int fan_out, Rng& rng) {
  if (name == "he_normal") he_normal(W, fan_in, fan_out, rng);
  else if (name == "he_uniform") he_uniform(W, fan_in, fan_out, rng);
  else if (name == "glorot_normal" || name == "xavier_normal") glorot_normal(W, fan_in, fan_out, rng);
  else if (name == "glorot_uniform" || name == "xavier_uniform") glorot_uniform(W, fan_in, fan_out, rng);
  else if (name == "lecun_normal") lecun_normal(W, fan_in, fan_out, rng);
  else if (name == "lecun_uniform") lecun_uniform(W, fan_in, fan_out, rng);
  else if (name == "normal") normal(W, fan_in, fan_out, rng);
  else return false;
  return true;
}

// ---- explicit instantiations ------------------------------------------------------------------
#define MLP_INSTANTIATE(T)                                                                         \
  template void dense_forward<T>(T*, const T*, const T*, const T*, int, int, int);                \
  template void dense_backward<T>(T*, T*, T*, const T*, const T*, const T*, int, int, int);       \
  template void bias_activation_forward<T>(T*, const T*, const T*, int, int, int);                \
  template void activation_forward<T>(T*, const T*, std::size_t, int);                            \
  template void activation_backward<T>(T*, const T*, const T*, std::size_t, int);                 \
  template void batch_norm_statistics<T>(T*, T*, T*, const T*, int, int, double);                 \
  template void batch_norm_inverse_std<T>(T*, const T*, int, double);                             \
  template void batch_norm_normalize<T>(T*, T*, const T*, const T*, const T*, const T*, const T*, int, int); \
  template void batch_norm_update_running<T>(T*, T*, const T*, const T*, int, int, double);       \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, int, int, bool); \
  template double softmax_cross_entropy<T>(T*, const T*, const int32_t*, int, int);               \
  template double sigmoid_mse<T>(T*, const T*, const int32_t*, int, int);                         \
  template double squared_error<T>(T*, const T*, const T*, int, int);                              \
  template double sigmoid_binary_cross_entropy<T>(T*, const T*, const T*, int, int);               \
  template double exp_poisson<T>(T*, const T*, const T*, int, int);                                \
  template void output_values<T>(T*, int, int, int);                                               \
  template long count_correct<T>(const T*, const int32_t*, int, int);                             \
  template void predict_classes<T>(int32_t*, const T*, int, int);                                 \
  template double sum_squares<T>(const T*, std::size_t);                                          \
  template void add_l2_gradient<T>(T*, const T*, double, std::size_t);                            \
  template void clip_by_value<T>(T*, double, std::size_t);                                        \
  template double grad_sq_norm<T>(const T*, std::size_t);                                         \
  template void scale<T>(T*, double, std::size_t);                                                \
  template void sgd_step<T>(T*, const T*, double, std::size_t);                                   \
  template void momentum_step<T>(T*, T*, const T*, double, double, bool, std::size_t);            \
  template void rmsprop_step<T>(T*, T*, const T*, double, double, double, std::size_t);           \
  template void adam_step<T>(T*, T*, T*, const T*, double, double, double, double, long, double,  \
                             std::size_t);                                                         \
  template void he_normal<T>(T*, int, int, Rng&);                                                  \
  template void he_uniform<T>(T*, int, int, Rng&);                                                 \
  template void glorot_normal<T>(T*, int, int, Rng&);                                              \
  template void glorot_uniform<T>(T*, int, int, Rng&);                                             \
  template void lecun_normal<T>(T*, int, int, Rng&);                                               \
  template void lecun_uniform<T>(T*, int, int, Rng&);                                              \
  template void normal<T>(T*, int, int, Rng&);                                                     \
  template bool initialize<T>(T*, const std::string&, int, int, Rng&);

MLP_INSTANTIATE(float)
MLP_INSTANTIATE(double)

}  // namespace mlp
