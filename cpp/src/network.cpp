// network.cpp - forward and backward passes, and evaluation (mlp/layers.py, mlp/losses.py,
// mlp.loop.evaluate, MLP.score).
#include "network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "gemm.hpp"

namespace mlp {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }
constexpr double kBatchNormEps = defaults::kBatchNormEps;  // mlp.layers.BATCH_NORM_EPS
}  // namespace

template <class T>
Workspace<T>::Workspace(const std::vector<int>& sizes, std::size_t rows_, bool dropout_, int batch_norm_)
    : rows(rows_), dropout(dropout_), batch_norm(batch_norm_) {
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
    if (batch_norm != BATCH_NORM_NONE) {
      hat.emplace_back(rows * w);
      if (batch_norm == BATCH_NORM_AFTER) pre.emplace_back(rows * w);
      for (auto* column : {&mean, &var, &inv}) column->emplace_back(w);
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

namespace {

// BN(H) of hidden layer l into Y (which may be H): with the batch's statistics (into ws.mean,
// ws.var, ws.inv) or the running ones (ws.inv from the running variance).
template <class T>
void normalize(const Model<T>& m, Workspace<T>& ws, int l, T* Y, const T* H, int n, bool batch_statistics) {
  const int k = m.sizes[l + 1];
  const Norm<T>& norm = m.norms[l];
  T* inv = ws.inv[l].data();
  const T* mean = norm.mean.data();
  if (batch_statistics) {
    batch_norm_statistics(ws.mean[l].data(), ws.var[l].data(), inv, H, n, k, kBatchNormEps);
    mean = ws.mean[l].data();
  } else {
    batch_norm_inverse_std(inv, norm.var.data(), k, kBatchNormEps);
  }
  batch_norm_normalize(Y, ws.hat[l].data(), H, mean, inv, norm.gamma.data(), norm.beta.data(), n, k);
}

// Hidden layer l on `input` into ws.out[l]: dense, then the activation and batch norm in the
// model's order ("before": act(BN(Z)); "after": BN(act(Z)); else act(Z)).
template <class T>
void hidden_forward(const Model<T>& m, Workspace<T>& ws, int l, const T* input, int n, bool batch_statistics) {
  const int k = m.sizes[l + 1];
  T* out = ws.out[l].data();
  switch (m.batch_norm) {
    case BATCH_NORM_BEFORE:
      gemm<T>(out, input, m.W[l].data(), n, k, m.sizes[l], false, false);
      bias_activation_forward(out, out, m.b[l].data(), n, k, IDENTITY);
      normalize(m, ws, l, out, out, n, batch_statistics);
      activation_forward(out, out, static_cast<std::size_t>(n) * k, m.activation);
      break;
    case BATCH_NORM_AFTER: {
      T* H = ws.pre[l].data();
      gemm<T>(H, input, m.W[l].data(), n, k, m.sizes[l], false, false);
      bias_activation_forward(H, H, m.b[l].data(), n, k, m.activation);
      normalize(m, ws, l, out, H, n, batch_statistics);
      break;
    }
    default:
      gemm<T>(out, input, m.W[l].data(), n, k, m.sizes[l], false, false);
      bias_activation_forward(out, out, m.b[l].data(), n, k, m.activation);
  }
}

}  // namespace

template <class T>
void forward_pass(const Model<T>& m, Workspace<T>& ws, const T* X, int n, bool training) {
  const int L = m.layers();
  const std::size_t norms = m.batch_norm != BATCH_NORM_NONE ? static_cast<std::size_t>(L - 1) : 0;
  if (ws.batch_norm != m.batch_norm || m.norms.size() != norms)
    fail("forward_pass: the workspace or the model's norms do not match the model's batch_norm");
  ws.batch_statistics = norms > 0 && training && n >= 2;
  const T* input = X;
  for (int l = 0; l + 1 < L; ++l) {
    hidden_forward(m, ws, l, input, n, ws.batch_statistics);
    T* out = ws.out[l].data();
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

template <class T>
void update_running_statistics(Model<T>& m, const Workspace<T>& ws, int n, double momentum) {
  if (!ws.batch_statistics) return;
  for (std::size_t l = 0; l < m.norms.size(); ++l)
    batch_norm_update_running(m.norms[l].mean.data(), m.norms[l].var.data(), ws.mean[l].data(), ws.var[l].data(), n,
                              m.sizes[l + 1], momentum);
}

namespace {

// dA of hidden layer h (its output, after dropout's mask) -> dZ of its dense layer, in place; with
// batch norm also dgamma, dbeta of the layer (in grads after the dense ones).
template <class T>
void hidden_backward(const Model<T>& m, Workspace<T>& ws, int h, T* dA, int n,
                     std::vector<std::vector<T>>& grads) {
  const int k = m.sizes[h + 1];
  const std::size_t count = static_cast<std::size_t>(n) * k;
  if (ws.dropout) {
    const T* mask = ws.mask[h].data();
    for (std::size_t i = 0; i < count; ++i) dA[i] *= mask[i];
  }
  const std::size_t norm_grads = 2 * m.W.size() + 2 * static_cast<std::size_t>(h);
  T* dgamma = m.batch_norm ? grads[norm_grads].data() : nullptr;
  T* dbeta = m.batch_norm ? grads[norm_grads + 1].data() : nullptr;
  if (m.batch_norm == BATCH_NORM_AFTER)  // A = BN(H), H = act(Z): dH first, then act'(H)
    batch_norm_backward(dA, dgamma, dbeta, dA, ws.hat[h].data(), ws.inv[h].data(), m.norms[h].gamma.data(), n, k,
                        ws.batch_statistics);
  const T* A = m.batch_norm == BATCH_NORM_AFTER ? ws.pre[h].data() : ws.out[h].data();
  activation_backward(dA, dA, A, count, m.activation);
  if (m.batch_norm == BATCH_NORM_BEFORE)  // A = act(BN(Z)): dY from act'(A), then dZ
    batch_norm_backward(dA, dgamma, dbeta, dA, ws.hat[h].data(), ws.inv[h].data(), m.norms[h].gamma.data(), n, k,
                        ws.batch_statistics);
}

// Either y (class indices, for cross_entropy and mse) or Y (a target matrix, for the value losses).
template <class T>
double backward_impl(const Model<T>& m, Workspace<T>& ws, const T* X, const int32_t* y, const T* Y, int n,
                     double l2, std::vector<std::vector<T>>& grads, long* correct) {
  const int L = m.layers();
  const int K = m.sizes[L];
  if (grads.size() != m.n_trainable()) {
    grads.assign(m.n_trainable(), std::vector<T>());
    for (std::size_t p = 0; p < grads.size(); ++p) grads[p].resize(m.trainable(p).size());
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
    case POISSON: value = exp_poisson(dZ, dZ, Y, n, K); break;
    default: value = sigmoid_binary_cross_entropy(dZ, dZ, Y, n, K);
  }
  int pingpong = 0;
  for (int l = L - 1; l >= 0; --l) {
    const T* input = l == 0 ? X : ws.input(l);
    T* dA = l > 0 ? ws.grad[pingpong].data() : nullptr;
    dense_backward(grads[2 * l].data(), grads[2 * l + 1].data(), dA, dZ, input, m.W[l].data(), n, m.sizes[l],
                   m.sizes[l + 1]);
    if (l > 0) {
      hidden_backward(m, ws, l - 1, dA, n, grads);
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
std::pair<double, double> evaluate(const Model<T>& m, const T* X, const int32_t* y, std::size_t n) {
  if (!takes_class_indices(m.loss))
    fail(std::string("evaluate: the model's loss ") + loss_name(m.loss) + " takes a target matrix (evaluate_values)");
  const std::size_t chunk = std::min<std::size_t>(n, 8192);
  if (n == 0) return {0.0, 0.0};
  Workspace<T> ws(m.sizes, chunk, false, m.batch_norm);
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
  Workspace<T> ws(m.sizes, chunk, false, m.batch_norm);
  const std::size_t features = static_cast<std::size_t>(m.sizes[0]);
  std::vector<double> sum(K, 0.0), sum_sq(K, 0.0), residual(K, 0.0);
  long rows_right = 0;
  for (std::size_t start = 0; start < n; start += chunk) {
    const int nb = static_cast<int>(std::min(chunk, n - start));
    forward_pass(m, ws, X + start * features, nb);
    T* Z = ws.logits.data();
    const T* Yc = Y + start * K;
    const int k = static_cast<int>(K);
    const double value = m.loss == SQUARED_ERROR ? squared_error<T>(nullptr, Z, Yc, nb, k)
                         : m.loss == POISSON     ? exp_poisson<T>(nullptr, Z, Yc, nb, k)
                                                 : sigmoid_binary_cross_entropy<T>(nullptr, Z, Yc, nb, k);
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

#define MLP_NETWORK_INSTANTIATE(T)                                                                         \
  template struct Workspace<T>;                                                                           \
  template void forward_pass<T>(const Model<T>&, Workspace<T>&, const T*, int, bool);                     \
  template void update_running_statistics<T>(Model<T>&, const Workspace<T>&, int, double);                \
  template double backward_pass<T>(const Model<T>&, Workspace<T>&, const T*, const int32_t*, int, double,  \
                                   std::vector<std::vector<T>>&, long*);                                   \
  template double backward_pass<T>(const Model<T>&, Workspace<T>&, const T*, const T*, int, double,        \
                                   std::vector<std::vector<T>>&);                                           \
  template std::pair<double, double> evaluate<T>(const Model<T>&, const T*, const int32_t*, std::size_t); \
  template ValueScores evaluate_values<T>(const Model<T>&, const T*, const T*, std::size_t, std::vector<T>*);

MLP_NETWORK_INSTANTIATE(float)
MLP_NETWORK_INSTANTIATE(double)

}  // namespace mlp
