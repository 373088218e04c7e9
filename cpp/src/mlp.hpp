// mlp.hpp - the math of the MLP as flat functions: outputs first, then inputs, shapes last.
//
// Names and formulas follow the README's "The math, precisely" and the Python package (mlp/layers.py, mlp/activations.py,
// mlp/losses.py, mlp/optimizers.py, mlp/initializers.py). Every matrix is row-major and contiguous:
// activations are (n, features), W is (fan_in, fan_out), b is (fan_out,). Each function is defined
// for float and double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mlp {

// Activation codes shared with the Numba kernels.
enum Activation : int { IDENTITY = 0, RELU = 1, LEAKY_RELU = 2, SIGMOID = 3, TANH = 4 };
// Losses as mlp/losses.py names them. CROSS_ENTROPY and MSE train on class indices; SQUARED_ERROR
// (identity outputs: regression), BINARY_CROSS_ENTROPY (sigmoid outputs: multilabel) and POISSON (exp
// outputs: counts) on a target matrix (n, k) of real values in the model's dtype
// (mlp.losses.VALUE_LOSSES).
enum LossKind : int { CROSS_ENTROPY = 0, MSE = 1, SQUARED_ERROR = 2, BINARY_CROSS_ENTROPY = 3, POISSON = 4 };

constexpr double kLeakySlope = 0.01;

// Where a hidden layer is batch-normalised (mlp.options' batch_norm: None, "before", "after"): not
// at all, its pre-activation (before the activation), or its activation output (before dropout).
enum BatchNorm : int { BATCH_NORM_NONE = 0, BATCH_NORM_BEFORE = 1, BATCH_NORM_AFTER = 2 };
// "before" -> BATCH_NORM_BEFORE, "after" -> BATCH_NORM_AFTER, "" and "none" -> BATCH_NORM_NONE; -1 else.
int batch_norm_from_name(const std::string& name);
const char* batch_norm_name(int batch_norm);  // "none", "before", "after"

// "relu" -> RELU etc.; returns -1 for an unknown name.
int activation_from_name(const std::string& name);
const char* activation_name(int activation);
std::string activation_names();  // "identity, relu, ...": the implemented ones, for messages
int loss_from_name(const std::string& name);
const char* loss_name(int loss);
std::string loss_names();  // "cross_entropy, mse, ...", for messages
// Whether `loss` trains on class indices (and reports an accuracy), not on a target matrix
// (mlp.losses.takes_class_indices).
bool takes_class_indices(int loss);
// The output layer's non-linearity: "softmax", "sigmoid", "identity" or "exp" (mlp.losses.OUTPUT_ACTIVATIONS).
const char* output_activation_name(int loss);

// ---- layers ---------------------------------------------------------------------------------
// Z = A_prev @ W + b.   Z: (n, fan_out), A_prev: (n, fan_in), W: (fan_in, fan_out), b: (fan_out,)
template <class T>
void dense_forward(T* Z, const T* A_prev, const T* W, const T* b, int n, int fan_in, int fan_out);

// dW = A_prev^T @ dZ;  db = column sums of dZ;  dA_prev = dZ @ W^T (skipped when dA_prev is null,
// as for the first layer). dZ: (n, fan_out).
template <class T>
void dense_backward(T* dW, T* db, T* dA_prev, const T* dZ, const T* A_prev, const T* W, int n,
                    int fan_in, int fan_out);

// A = act(Z + b) row by row (A may alias Z).  A, Z: (n, m), b: (m,)
template <class T>
void bias_activation_forward(T* A, const T* Z, const T* b, int n, int m, int activation);

// A = act(Z), element-wise over size elements (A may alias Z).
template <class T>
void activation_forward(T* A, const T* Z, std::size_t size, int activation);

// dZ = dA * act'(A), with the derivative written from the output A (dZ may alias dA).
template <class T>
void activation_backward(T* dZ, const T* dA, const T* A, std::size_t size, int activation);

// ---- batch normalisation (BN_SPEC: H, Y, Hhat are (n, k); the per-column vectors are (k,)) ------
// Batch statistics of H, summed in double in two passes: mean = sum_rows(H) / n,
// var = sum_rows((H - mean)^2) / n (biased), inv = 1 / sqrt(var + eps).
template <class T>
void batch_norm_statistics(T* mean, T* var, T* inv, const T* H, int n, int k, double eps);

// inv = 1 / sqrt(var + eps), for the running variance (inference, and a training batch of one row).
template <class T>
void batch_norm_inverse_std(T* inv, const T* var, int k, double eps);

// Hhat = (H - mean) * inv;  Y = gamma * Hhat + beta. Y may alias H; Hhat may be null (inference).
// (batch_norm_statistics, batch_norm_normalize and batch_norm_update_running together are
// mlp.layers.batch_norm_forward.)
template <class T>
void batch_norm_normalize(T* Y, T* Hhat, const T* H, const T* mean, const T* inv, const T* gamma, const T* beta,
                          int n, int k);

// running_mean = (1 - m) running_mean + m mean;  running_var = (1 - m) running_var + m var n / (n - 1)
// (the unbiased variance, as PyTorch). n >= 2.
template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var, int n, int k,
                               double momentum);

// dbeta = sum_rows(dY), dgamma = sum_rows(dY * Hhat) and dH: with batch statistics
// gamma * inv * (dY - dbeta / n - Hhat * dgamma / n), with running statistics gamma * inv * dY.
// dH may alias dY.
template <class T>
void batch_norm_backward(T* dH, T* dgamma, T* dbeta, const T* dY, const T* Hhat, const T* inv, const T* gamma,
                         int n, int k, bool batch_statistics);

// ---- losses (labels y are class indices 0..k-1; the caller checks the range) ------------------
// Returns (1/n) sum_i [logsumexp(Z_i) - Z_i[y_i]]; dZ = (softmax(Z) - onehot(y)) / n when dZ is
// not null (dZ may alias Z). Z: (n, k).
template <class T>
double softmax_cross_entropy(T* dZ, const T* Z, const int32_t* y, int n, int k);

// A = sigmoid(Z); returns (1/n) sum_i 0.5 sum_k (A_ik - onehot_ik)^2;
// dZ = (A - onehot) * A * (1 - A) / n when dZ is not null (dZ may alias Z).
template <class T>
double sigmoid_mse(T* dZ, const T* Z, const int32_t* y, int n, int k);

// ---- losses on a target matrix Y (n, k) of real values -----------------------------------------
// Identity outputs: returns (1/n) sum_i 0.5 ||Z_i - Y_i||^2 (summed over the k outputs, averaged over
// the rows, as mlp.losses.squared_error); dZ = (Z - Y) / n when dZ is not null (dZ may alias Z).
template <class T>
double squared_error(T* dZ, const T* Z, const T* Y, int n, int k);

// Sigmoid outputs, one binary cross-entropy per column (multilabel): returns
// (1/n) sum_i -sum_k [Y log s(Z) + (1 - Y) log(1 - s(Z))], written with log-sigmoids so it is finite
// for any Z; dZ = (sigmoid(Z) - Y) / n when dZ is not null (dZ may alias Z).
template <class T>
double sigmoid_binary_cross_entropy(T* dZ, const T* Z, const T* Y, int n, int k);

// Exp outputs (mu = exp(Z)), half Poisson deviance per column (counts Y >= 0; scikit-learn's poisson
// loss): returns (1/n) sum_i sum_k [xlogy(Y, Y) - Y - Y Z + exp(Z)], written with log mu = Z so it is
// finite where exp(Z) underflows; dZ = (exp(Z) - Y) / n when dZ is not null (dZ may alias Z).
template <class T>
double exp_poisson(T* dZ, const T* Z, const T* Y, int n, int k);

// What the network outputs for logits Z (n, k), in place: Z itself for squared_error, exp(Z) for
// poisson, sigmoid(Z) for
// binary_cross_entropy and (normalised) mse, softmax(Z) for cross_entropy (mlp.losses.output_values).
template <class T>
void output_values(T* Z, int n, int k, int loss);

// Number of rows whose arg-max (first maximum) equals the label.
template <class T>
long count_correct(const T* Z, const int32_t* y, int n, int k);

// Row arg-max (first maximum) of Z (n, k) into pred.
template <class T>
void predict_classes(int32_t* pred, const T* Z, int n, int k);

// ---- gradient processing (in this order: + l2 * W, clip by value, clip by global norm) ------------
// sum(W * W) in double.
template <class T>
double sum_squares(const T* W, std::size_t size);
// g += l2 * W
template <class T>
void add_l2_gradient(T* g, const T* W, double l2, std::size_t size);
// g = clip(g, -c, c)
template <class T>
void clip_by_value(T* g, double c, std::size_t size);
// sum(g * g) in double; the global norm is sqrt of the sum over all parameters.
template <class T>
double grad_sq_norm(const T* g, std::size_t size);
// g *= factor
template <class T>
void scale(T* g, double factor, std::size_t size);

// ---- optimizers (one parameter array each; t counts steps from 1) ------------------------------
// p -= lr * g
template <class T>
void sgd_step(T* p, const T* g, double lr, std::size_t size);
// v = mu v + g;  p -= lr * v  (nesterov: p -= lr * (g + mu v))
template <class T>
void momentum_step(T* p, T* v, const T* g, double lr, double mu, bool nesterov, std::size_t size);
// s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + eps)
template <class T>
void rmsprop_step(T* p, T* s, const T* g, double lr, double rho, double eps, std::size_t size);
// Adam with bias correction; weight_decay > 0 first does p *= 1 - lr * weight_decay (AdamW,
// decoupled; pass 0 for biases and for plain Adam).
template <class T>
void adam_step(T* p, T* m, T* v, const T* g, double lr, double beta1, double beta2, double eps,
               long t, double weight_decay, std::size_t size);

// ---- random numbers and initialisers -------------------------------------------------------
// xoshiro256** seeded through splitmix64. Not NumPy's PCG64: the same seed gives different numbers
// from the Python package (the golden tests take initial weights from the Python side).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next_u64();
  double uniform();                  // [0, 1)
  double normal();                   // N(0, 1), Marsaglia polar method
  uint64_t below(uint64_t bound);    // uniform integer in [0, bound), unbiased (Lemire)
 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// Fills W (fan_in, fan_out); the draws are made in double, then cast.
template <class T> void he_normal(T* W, int fan_in, int fan_out, Rng& rng);
template <class T> void he_uniform(T* W, int fan_in, int fan_out, Rng& rng);
template <class T> void glorot_normal(T* W, int fan_in, int fan_out, Rng& rng);
template <class T> void glorot_uniform(T* W, int fan_in, int fan_out, Rng& rng);
template <class T> void lecun_normal(T* W, int fan_in, int fan_out, Rng& rng);
template <class T> void lecun_uniform(T* W, int fan_in, int fan_out, Rng& rng);
template <class T> void normal(T* W, int fan_in, int fan_out, Rng& rng);  // N(0, 0.01)

// Dispatch by name ("he_normal", ...); returns false for an unknown name.
bool is_initializer(const std::string& name);
template <class T>
bool initialize(T* W, const std::string& name, int fan_in, int fan_out, Rng& rng);

// The names accepted on the command line, for messages: "he_normal, he_uniform, ...".
std::string initializer_names();

}  // namespace mlp
