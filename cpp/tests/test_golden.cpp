// test_golden: the C++ port against golden vectors computed by the Python implementation.
//
//   test_golden [GOLDEN_DIR]      (default: tests/golden; reads golden_float32.bin, golden_float64.bin)
//
// For every case (class labels, or a target matrix for squared_error, binary_cross_entropy and poisson):
// forward (hidden activations, logits), loss, dL/dlogits, every gradient, the clipped
// gradients, then N optimizer steps (the loss before each and the final parameters; with batch norm
// also the normalised values, the norms' gradients, the final norms and the logits of inference
// with the running statistics). Dropout cases carry
// their masks (0 or 1/keep per hidden unit, per step), which replace the port's own random draws. Each tensor is
// compared with a tolerance from its dtype; the largest difference of each is printed. Exit status 1
// on any mismatch, on a malformed file, or on an unknown format version (with how to regenerate).
// The format is described in tests/golden/README.md.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "mlp.hpp"
#include "model.hpp"
#include "network.hpp"
#include "optimizers.hpp"
#include "npz.hpp"

using namespace mlp;

namespace {

constexpr uint32_t kVersion = 3;
const char* const kRegenerate =
    "regenerate with `python tests/golden/generate.py` (from the repository root) and rebuild";
const char* const kOptimizers[] = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"};

struct Tensor {
  std::string tag;
  uint32_t kind = 0;  // 0: float of the file's dtype, 1: int32
  std::vector<std::size_t> shape;
  std::vector<double> values;  // floats widened to double (exactly)
  std::vector<int32_t> ints;
  std::size_t count() const {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
};

// Checked little-endian reads: every read names what it wanted when the file runs out.
class Reader {
 public:
  Reader(std::vector<uint8_t> bytes, std::string path) : b_(std::move(bytes)), path_(std::move(path)) {}
  void need(std::size_t n, const char* what) {
    if (pos_ + n > b_.size() || pos_ + n < pos_)
      throw std::runtime_error(path_ + ": truncated while reading " + what + " at byte " + std::to_string(pos_) +
                               " (" + kRegenerate + ")");
  }
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t v = static_cast<uint32_t>(b_[pos_]) | static_cast<uint32_t>(b_[pos_ + 1]) << 8 |
                 static_cast<uint32_t>(b_[pos_ + 2]) << 16 | static_cast<uint32_t>(b_[pos_ + 3]) << 24;
    pos_ += 4;
    return v;
  }
  double f64(const char* what) {
    need(8, what);
    double v;
    std::memcpy(&v, &b_[pos_], 8);
    pos_ += 8;
    return v;
  }
  float f32(const char* what) {
    need(4, what);
    float v;
    std::memcpy(&v, &b_[pos_], 4);
    pos_ += 4;
    return v;
  }
  std::string str(const char* what) {
    const uint32_t n = u32(what);
    if (n > 256) throw std::runtime_error(path_ + ": implausible " + what + " length " + std::to_string(n));
    need(n, what);
    std::string s(reinterpret_cast<const char*>(&b_[pos_]), n);
    pos_ += n;
    return s;
  }
  bool at_end() const { return pos_ == b_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::vector<uint8_t> b_;
  std::string path_;
  std::size_t pos_ = 0;
};

struct Case {
  std::string name;
  int n = 0;
  std::vector<int> sizes;
  int activation = 0, loss = 0, optimizer = 0, steps = 0, batch_norm = BATCH_NORM_NONE;
  double lr = 0, l2 = 0, weight_decay = 0, clip_value = 0, clip_norm = 0, momentum = 0, rho = 0, beta1 = 0,
         beta2 = 0, eps = 0, dropout = 0, batch_norm_momentum = 0;
  std::vector<Tensor> tensors;
  std::map<std::string, std::size_t> index;
  const Tensor& get(const std::string& tag) const {
    auto it = index.find(tag);
    if (it == index.end()) throw std::runtime_error("case " + name + ": tensor '" + tag + "' missing (" + kRegenerate + ")");
    return tensors[it->second];
  }
};

Case read_case(Reader& r, std::size_t float_size) {
  Case c;
  c.name = r.str("case name");
  c.n = static_cast<int>(r.u32("batch rows"));
  const uint32_t layers = r.u32("layer count");
  if (layers < 1 || layers > 64 || c.n < 1) throw std::runtime_error(r.path() + ": case " + c.name + ": bad sizes");
  for (uint32_t l = 0; l <= layers; ++l) c.sizes.push_back(static_cast<int>(r.u32("layer sizes")));
  c.activation = static_cast<int>(r.u32("activation"));
  c.loss = static_cast<int>(r.u32("loss"));
  c.optimizer = static_cast<int>(r.u32("optimizer"));
  c.steps = static_cast<int>(r.u32("steps"));
  c.batch_norm = static_cast<int>(r.u32("batch_norm"));
  if (c.activation > 4 || c.loss > POISSON || c.optimizer > 5 || c.steps < 1 || c.steps > 1000 ||
      c.batch_norm > BATCH_NORM_AFTER)
    throw std::runtime_error(r.path() + ": case " + c.name +
                             ": unknown activation, loss, optimizer or batch_norm code, or bad step count");
  double* fields[] = {&c.lr,       &c.l2,  &c.weight_decay, &c.clip_value, &c.clip_norm, &c.momentum,
                      &c.rho,      &c.beta1, &c.beta2,      &c.eps,        &c.dropout,   &c.batch_norm_momentum};
  for (double* f : fields) *f = r.f64("hyper-parameters");
  const uint32_t count = r.u32("tensor count");
  for (uint32_t i = 0; i < count; ++i) {
    Tensor t;
    t.tag = r.str("tensor tag");
    t.kind = r.u32("tensor kind");
    const uint32_t ndim = r.u32("tensor rank");
    if (t.kind > 1 || ndim > 4) throw std::runtime_error(r.path() + ": tensor " + t.tag + ": bad kind or rank");
    for (uint32_t d = 0; d < ndim; ++d) t.shape.push_back(r.u32("tensor shape"));
    const std::size_t n = t.count();
    if (n > (1u << 24)) throw std::runtime_error(r.path() + ": tensor " + t.tag + " implausibly large");
    if (t.kind == 1) {
      for (std::size_t k = 0; k < n; ++k) t.ints.push_back(static_cast<int32_t>(r.u32("int32 data")));
    } else {
      for (std::size_t k = 0; k < n; ++k)
        t.values.push_back(float_size == 4 ? static_cast<double>(r.f32("float data")) : r.f64("float data"));
    }
    c.index[t.tag] = c.tensors.size();
    c.tensors.push_back(std::move(t));
  }
  return c;
}

// Compares one tensor; returns false (and prints) on mismatch. |got - want| <= atol + rtol |want|.
struct Tolerance {
  double rtol, atol;
};

int g_compared = 0, g_failed = 0;

template <class T>
bool compare(const std::string& where, const std::string& tag, const T* got, std::size_t n, const Tensor& want,
             Tolerance tol) {
  ++g_compared;
  if (want.values.size() != n) {
    std::printf("  MISMATCH %-34s %-14s size %zu, golden %zu\n", where.c_str(), tag.c_str(), n, want.values.size());
    ++g_failed;
    return false;
  }
  double max_abs = 0.0, worst_ratio = 0.0;
  std::size_t worst_i = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(got[i]), w = want.values[i];
    const double d = std::fabs(g - w);
    const double ratio = d / (tol.atol + tol.rtol * std::fabs(w));
    if (!(d <= max_abs)) max_abs = d;  // also catches NaN
    if (!(ratio <= worst_ratio)) { worst_ratio = ratio; worst_i = i; }
  }
  const bool ok = worst_ratio <= 1.0;
  std::printf("  %s %-34s %-14s max |diff| %.3e%s\n", ok ? "ok      " : "MISMATCH", where.c_str(), tag.c_str(), max_abs,
              ok ? "" : "  <-- over tolerance");
  if (!ok) {
    std::printf("           first worst element %zu: got %.10g, golden %.10g\n", worst_i,
                static_cast<double>(got[worst_i]), want.values[worst_i]);
    ++g_failed;
  }
  return ok;
}

// Parameters after the steps: the errors of the gradients pass through lr, so the parameter
// tolerance is the same; Adam's normalised first step is the most sensitive (see README). With
// batch norm also the norms (the running statistics after the steps' updates) and the logits of
// inference with them.
template <class T>
void compare_final(const Case& c, const Model<T>& m, const std::vector<T>& X, Tolerance tol) {
  const std::string& w = c.name;
  for (int l = 0; l < m.layers(); ++l) {
    compare(w, "final_W" + std::to_string(l), m.W[l].data(), m.W[l].size(), c.get("final_W" + std::to_string(l)), tol);
    compare(w, "final_b" + std::to_string(l), m.b[l].data(), m.b[l].size(), c.get("final_b" + std::to_string(l)), tol);
  }
  for (std::size_t h = 0; h < m.norms.size(); ++h) {
    const Norm<T>& norm = m.norms[h];
    const std::string index = std::to_string(h);
    compare(w, "final_gamma" + index, norm.gamma.data(), norm.gamma.size(), c.get("final_gamma" + index), tol);
    compare(w, "final_beta" + index, norm.beta.data(), norm.beta.size(), c.get("final_beta" + index), tol);
    compare(w, "final_mean" + index, norm.mean.data(), norm.mean.size(), c.get("final_mean" + index), tol);
    compare(w, "final_var" + index, norm.var.data(), norm.var.size(), c.get("final_var" + index), tol);
  }
  if (m.batch_norm == BATCH_NORM_NONE) return;
  Workspace<T> inference(m.sizes, static_cast<std::size_t>(c.n), false, m.batch_norm);
  forward_pass(m, inference, X.data(), c.n);
  compare(w, "inference_logits", inference.logits.data(), inference.logits.size(), c.get("inference_logits"), tol);
}

template <class T>
void load(const Case& c, std::vector<T>& dst, const std::string& tag) {
  const Tensor& t = c.get(tag);
  if (t.values.size() != dst.size()) throw std::runtime_error("case " + c.name + ": " + tag + " has the wrong size");
  for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = static_cast<T>(t.values[i]);
}

// The case's network with its initial parameters (and, with batch norm, its initial norms).
template <class T>
Model<T> initial_model(const Case& c) {
  Model<T> m;
  m.sizes = c.sizes;
  m.activation = c.activation;
  m.loss = c.loss;
  m.batch_norm = c.batch_norm;
  m.allocate();
  for (int l = 0; l < m.layers(); ++l) {
    load(c, m.W[l], "W" + std::to_string(l));
    load(c, m.b[l], "b" + std::to_string(l));
  }
  for (std::size_t h = 0; h < m.norms.size(); ++h) {
    const std::string index = std::to_string(h);
    load(c, m.norms[h].gamma, "gamma" + index);
    load(c, m.norms[h].beta, "beta" + index);
    load(c, m.norms[h].mean, "mean" + index);
    load(c, m.norms[h].var, "var" + index);
  }
  return m;
}

// The gradients in the optimiser's order, tagged PREFIX W/b per layer, then PREFIX gamma/beta per
// hidden layer with batch norm ("d": as computed, "g": as applied after clipping).
template <class T>
void compare_grads(const Case& c, const std::vector<std::vector<T>>& grads, const std::string& prefix, Tolerance tol) {
  const std::size_t L = c.sizes.size() - 1;
  for (std::size_t p = 0; p < grads.size(); ++p) {
    const bool dense = p < 2 * L;
    const std::size_t index = dense ? p / 2 : (p - 2 * L) / 2;
    const char* name = dense ? (p % 2 == 0 ? "W" : "b") : (p % 2 == 0 ? "gamma" : "beta");
    const std::string tag = prefix + name + std::to_string(index);
    compare(c.name, tag, grads[p].data(), grads[p].size(), c.get(tag), tol);
  }
}

template <class T>
void run_case(const Case& c, Tolerance tol) {
  const int L = static_cast<int>(c.sizes.size()) - 1;
  const int n = c.n, K = c.sizes[L];
  Model<T> m = initial_model<T>(c);
  std::vector<T> X(static_cast<std::size_t>(n) * c.sizes[0]);
  load(c, X, "X");
  // y: class indices (n,) int32 for cross_entropy and mse; a target matrix (n, K) in the file's
  // dtype for squared_error, binary_cross_entropy and poisson.
  const bool by_class = takes_class_indices(c.loss);
  const Tensor& yt = c.get("y");
  const std::vector<int32_t>& y = yt.ints;
  std::vector<T> Y;
  if (by_class) {
    if (yt.kind != 1 || yt.ints.size() != static_cast<std::size_t>(n))
      throw std::runtime_error("case " + c.name + ": y is not " + std::to_string(n) + " int32 labels");
    for (int32_t v : y)
      if (v < 0 || v >= K) throw std::runtime_error("case " + c.name + ": label out of range");
  } else {
    if (yt.kind != 0) throw std::runtime_error("case " + c.name + ": y is not a float target matrix");
    Y.resize(static_cast<std::size_t>(n) * K);
    load(c, Y, "y");
  }
  const std::string& w = c.name;

  // Dropout: the masks of step t (0-based) for hidden layer l are mask{l}[t], (n, width).
  const bool dropout = c.dropout > 0.0;
  if (!(c.dropout >= 0.0 && c.dropout < 1.0)) throw std::runtime_error("case " + c.name + ": bad dropout rate");
  Workspace<T> ws(m.sizes, static_cast<std::size_t>(n), dropout, m.batch_norm);
  auto backward = [&](std::vector<std::vector<T>>& grads) {
    return by_class ? backward_pass(m, ws, X.data(), y.data(), n, c.l2, grads)
                    : backward_pass(m, ws, X.data(), Y.data(), n, c.l2, grads);
  };
  auto set_masks = [&](int step) {
    if (!dropout) return;
    for (int l = 1; l < L; ++l) {
      const Tensor& t = c.get("mask" + std::to_string(l));
      const std::size_t count = static_cast<std::size_t>(n) * c.sizes[l];
      if (t.values.size() != count * static_cast<std::size_t>(c.steps))
        throw std::runtime_error("case " + c.name + ": mask" + std::to_string(l) + " has the wrong size");
      const double keep_inverse = 1.0 / (1.0 - c.dropout);
      for (std::size_t i = 0; i < count; ++i) {
        const double v = t.values[static_cast<std::size_t>(step) * count + i];
        if (v != 0.0 && std::fabs(v - keep_inverse) > 1e-6 * keep_inverse)
          throw std::runtime_error("case " + c.name + ": mask" + std::to_string(l) + " holds " + std::to_string(v) +
                                   ", neither 0 nor 1/keep");
        ws.mask[l - 1][i] = static_cast<T>(v);
      }
    }
  };

  // Forward (with the first step's masks; a training pass: batch norm with the batch's statistics).
  // A{l} is the activation's output: with batch norm "after", the values it normalises.
  set_masks(0);
  forward_pass(m, ws, X.data(), n, true);
  for (int l = 1; l < L; ++l) {
    const std::vector<T>& A = m.batch_norm == BATCH_NORM_AFTER ? ws.pre[l - 1] : ws.out[l - 1];
    compare(w, "A" + std::to_string(l), A.data(), static_cast<std::size_t>(n) * c.sizes[l],
            c.get("A" + std::to_string(l)), tol);
  }
  for (std::size_t h = 0; h < m.norms.size(); ++h)
    compare(w, "hat" + std::to_string(h), ws.hat[h].data(), static_cast<std::size_t>(n) * c.sizes[h + 1],
            c.get("hat" + std::to_string(h)), tol);
  compare(w, "logits", ws.logits.data(), static_cast<std::size_t>(n) * K, c.get("logits"), tol);
  // Loss (L2 included), dL/dlogits, gradients.
  std::vector<std::vector<T>> grads;
  const T loss = static_cast<T>(backward(grads));
  compare(w, "loss", &loss, 1, c.get("loss"), tol);
  compare(w, "dlogits", ws.logits.data(), static_cast<std::size_t>(n) * K, c.get("dlogits"), tol);
  compare_grads(c, grads, "d", tol);
  clip_gradients(grads, c.clip_value, c.clip_norm);
  compare_grads(c, grads, "g", tol);
  // Optimizer steps on the same batch, as the training loop does them (Trainer::train_step's order).
  Optimizer<T> opt(kOptimizers[c.optimizer], m, c.momentum, c.rho, c.beta1, c.beta2, c.eps, c.weight_decay);
  std::vector<T> losses;
  for (int t = 1; t <= c.steps; ++t) {
    set_masks(t - 1);
    forward_pass(m, ws, X.data(), n, true);
    update_running_statistics(m, ws, n, c.batch_norm_momentum);
    losses.push_back(static_cast<T>(backward(grads)));
    clip_gradients(grads, c.clip_value, c.clip_norm);
    opt.step(m, grads, c.lr, t);
  }
  compare(w, "step_losses", losses.data(), losses.size(), c.get("step_losses"), tol);
  compare_final(c, m, X, tol);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tests/golden";
  std::printf("gemm: %s\n", gemm_backend_description(gemm_backend()).c_str());
  int status = 0;
  for (const char* dtype : {"float32", "float64"}) {
    const std::string path = dir + "/golden_" + dtype + ".bin";
    std::vector<uint8_t> bytes;
    try {
      bytes = read_file(path);
    } catch (const std::exception& e) {
      std::printf("FAIL %s\n     %s\n", e.what(), kRegenerate);
      status = 1;
      continue;
    }
    try {
      if (bytes.size() < 20 || std::memcmp(bytes.data(), "MLPGOLD\0", 8) != 0)
        throw std::runtime_error(path + ": not a golden-vector file (bad magic number)");
      Reader r(std::vector<uint8_t>(bytes.begin() + 8, bytes.end()), path);
      const uint32_t version = r.u32("version");
      if (version != kVersion)
        throw std::runtime_error(path + ": format version " + std::to_string(version) + ", but this test reads version " +
                                 std::to_string(kVersion) + "; " + kRegenerate);
      const uint32_t float_size = r.u32("dtype size");
      if (float_size != (std::string(dtype) == "float32" ? 4u : 8u))
        throw std::runtime_error(path + ": dtype size " + std::to_string(float_size) + " does not match the file name");
      const uint32_t cases = r.u32("case count");
      // Tolerances from the dtype's epsilon: rtol = atol = 256 eps (3e-5 in float32, 6e-14 in
      // float64). Sums in a different order (our GEMM vs BLAS, FMA or not) differ by a few eps; the
      // largest differences seen are about 6 eps (float32) and 3 eps (float64).
      const double eps = float_size == 4 ? 1.1920928955078125e-07 : 2.220446049250313e-16;
      const Tolerance tol{256 * eps, 256 * eps};
      std::printf("%s: version %u, %u cases, tolerance rtol = atol = %.1e\n", path.c_str(), version, cases, tol.rtol);
      const int failed_before = g_failed;
      for (uint32_t k = 0; k < cases; ++k) {
        const Case c = read_case(r, float_size);
        if (float_size == 4) run_case<float>(c, tol);
        else run_case<double>(c, tol);
      }
      if (!r.at_end()) throw std::runtime_error(path + ": trailing bytes after the last case; " + kRegenerate);
      if (g_failed > failed_before) status = 1;
    } catch (const std::exception& e) {
      std::printf("FAIL %s\n", e.what());
      status = 1;
    }
  }
  std::printf("%d tensors compared, %d over tolerance: %s\n", g_compared, g_failed, status ? "FAILED" : "all ok");
  return status;
}
