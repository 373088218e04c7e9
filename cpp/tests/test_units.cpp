// test_units: the pieces of the port, each against a slow reference or finite differences.
//   test_units [DATA_DIR]     (DATA_DIR: cpp/tests/data, for the gzip and NumPy-written fixtures)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "data.hpp"
#include "gemm.hpp"
#include "inflate.hpp"
#include "json.hpp"
#include "mlp.hpp"
#include "model.hpp"
#include "model_file.hpp"
#include "network.hpp"
#include "optimizers.hpp"
#include "training.hpp"
#include "npz.hpp"
#include "parallel.hpp"
#include "train_defaults.hpp"

using namespace mlp;

static int g_failures = 0, g_checks = 0;

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    ++g_checks;                                                           \
    if (!(cond)) {                                                        \
      ++g_failures;                                                       \
      std::printf("  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
      std::printf(__VA_ARGS__);                                           \
      std::printf("\n");                                                  \
    }                                                                     \
  } while (0)

template <class F>
static bool throws(F f, const char* needle = nullptr) {
  try {
    f();
  } catch (const std::exception& e) {
    if (needle && !std::strstr(e.what(), needle)) {
      std::printf("  (message '%s' lacks '%s')\n", e.what(), needle);
      return false;
    }
    return true;
  }
  return false;
}

static std::string g_data_dir = "tests/data";
static std::string g_tmp;

// ---- GEMM ---------------------------------------------------------------------------------------

template <class T>
static void test_gemm_type(const char* name) {
  Rng rng(1);
  const int shapes[][3] = {{1, 1, 1},   {1, 7, 3},   {5, 1, 9},     {13, 17, 5},  {12, 32, 256},
                           {25, 33, 257}, {64, 10, 128}, {100, 3, 600}, {130, 70, 40}, {3, 300, 2}};
  double worst = 0.0;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const auto& s : shapes) {
      const int M = s[0], N = s[1], K = s[2];
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int variant = 0; variant < 2; ++variant) {
            std::vector<T> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(K) * N), C(static_cast<size_t>(M) * N),
                R(static_cast<size_t>(M) * N);
            for (auto& v : A) v = static_cast<T>(rng.normal());
            for (auto& v : B) v = static_cast<T>(rng.normal());
            for (size_t i = 0; i < C.size(); ++i) C[i] = R[i] = static_cast<T>(rng.normal());
            const T alpha = variant ? T(0.5) : T(1), beta = variant ? T(-2) : T(0);
            if (!variant) std::fill(C.begin(), C.end(), std::nan(""));  // beta = 0 must not read C
            gemm<T>(C.data(), A.data(), B.data(), M, N, K, ta, tb, alpha, beta);
            gemm_reference<T>(R.data(), A.data(), B.data(), M, N, K, ta, tb, alpha, beta);
            double err = 0.0;
            for (size_t i = 0; i < C.size(); ++i)
              err = std::max(err, std::fabs(static_cast<double>(C[i]) - R[i]) / (1.0 + std::fabs(static_cast<double>(R[i]))));
            worst = std::max(worst, err);
            const double tol = sizeof(T) == 4 ? 1e-4 * std::sqrt(K) : 1e-12 * std::sqrt(K);
            CHECK(err <= tol, "%s gemm %dx%dx%d ta=%d tb=%d variant=%d threads=%d err %.3g", name, M, N, K, ta, tb,
                  variant, threads, err);
          }
    }
  }
  set_num_threads(0);
  std::printf("gemm<%s>: largest relative difference from the reference %.3g\n", name, worst);
}

static void test_gemm() {
  // Every backend the build has: the own GEMM, and the linked CBLAS (MLP_USE_CBLAS).
  const GemmBackend before = gemm_backend();
  std::vector<GemmBackend> backends = {GemmBackend::own};
  if (gemm_has_blas()) backends.push_back(GemmBackend::blas);
  else CHECK(throws([] { set_gemm_backend(GemmBackend::blas); }, "no CBLAS"), "blas without a CBLAS must throw");
  for (GemmBackend backend : backends) {
    set_gemm_backend(backend);
    std::printf("backend %s\n", gemm_backend_description(backend).c_str());
    test_gemm_type<float>("float");
    test_gemm_type<double>("double");
    // K = 0: C = beta * C
    std::vector<double> C = {1, 2, 3, 4};
    gemm<double>(C.data(), nullptr, nullptr, 2, 2, 0, false, false, 1.0, 0.5);
    CHECK(C[3] == 2.0, "K=0 must scale C by beta");
  }
  set_gemm_backend(before);
  CHECK(gemm_backend_from_name("own") == GemmBackend::own && gemm_backend_from_name("blas") == GemmBackend::blas,
        "backend names");
  CHECK(throws([] { gemm_backend_from_name("mkl"); }, "own or blas"), "unknown backend name must throw");
}

// ---- the thread pool ----------------------------------------------------------------------------

// Many small jobs, nested and concurrent dispatch, changing thread counts and shutdowns, each checked
// for every share having run exactly once. Built with -fsanitize=thread (MLP_SANITIZE=thread) this
// is the data-race test of the pool.
static void test_parallel() {
  // Many tiny jobs: every share runs once, with (thread, nthreads) as promised.
  for (int threads : {2, 3, 4, 1, 8}) {
    set_num_threads(threads);
    bool ok = true;
    for (int job = 0; job < 2000; ++job) {
      std::atomic<int> calls{0}, mask{0};
      const int want = 1 + job % threads;
      parallel_run(want, [&](int t, int nt) {
        calls.fetch_add(1);
        mask.fetch_or(1 << t);
        if (nt != want || t < 0 || t >= nt) mask.fetch_or(1 << 30);
      });
      ok &= calls.load() == want && mask.load() == (1 << want) - 1;
    }
    CHECK(ok, "every share of 2000 jobs ran exactly once (threads=%d)", threads);
  }
  // Nested dispatch runs serially on the calling thread, inside every share.
  set_num_threads(4);
  {
    std::atomic<long> inner{0};
    for (int job = 0; job < 200; ++job)
      parallel_run(4, [&](int, int) {
        parallel_run(4, [&](int, int nt) { inner.fetch_add(nt == 4 ? 1 : 1000); });
        parallel_chunks(1000, 1, [&](std::size_t b, std::size_t e) { inner.fetch_add(static_cast<long>(e - b) * 0); });
      });
    CHECK(inner.load() == 200L * 4 * 4, "nested parallel_run: %ld calls, want %ld", inner.load(), 200L * 4 * 4);
  }
  // parallel_chunks covers [0, size) exactly once, writing disjoint parts of one array.
  {
    std::vector<int> hits(100003, 0);
    for (int rep = 0; rep < 50; ++rep)
      parallel_chunks(hits.size(), 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) ++hits[i];
      });
    bool ok = true;
    for (int h : hits) ok &= h == 50;
    CHECK(ok, "parallel_chunks covers every index once per call");
  }
  // Several user threads dispatching at once (the pool runs one job at a time), with shutdowns and
  // thread-count changes in between; the pool restarts its workers on the next job.
  {
    std::atomic<long> total{0};
    std::atomic<bool> wrong{false};
    std::vector<std::thread> users;
    for (int u = 0; u < 3; ++u)
      users.emplace_back([&, u] {
        for (int job = 0; job < 300; ++job) {
          std::vector<long> part(4, 0);
          parallel_run(4, [&](int t, int nt) {
            if (nt < 1 || t >= nt) wrong = true;
            part[static_cast<std::size_t>(t)] = t + 1;
          });
          long sum = 0;
          for (long v : part) sum += v;
          if (sum == 0) wrong = true;
          total.fetch_add(1);
          if (u == 0 && job % 50 == 49) parallel_shutdown();
          if (u == 1 && job % 70 == 69) set_num_threads(job % 140 == 69 ? 2 : 4);
        }
      });
    for (auto& t : users) t.join();
    CHECK(!wrong.load() && total.load() == 900, "concurrent dispatch from 3 threads: %ld jobs", total.load());
  }
  // A GEMM big enough to be split across threads, right after a shutdown.
  parallel_shutdown();
  {
    const int M = 96, N = 80, K = 64;
    std::vector<float> A(M * K), B(K * N), C(M * N), R(M * N);
    Rng rng(5);
    for (auto& v : A) v = static_cast<float>(rng.normal());
    for (auto& v : B) v = static_cast<float>(rng.normal());
    gemm_own<float>(C.data(), A.data(), B.data(), M, N, K, false, false);
    gemm_reference<float>(R.data(), A.data(), B.data(), M, N, K, false, false);
    double err = 0.0;
    for (int i = 0; i < M * N; ++i) err = std::max(err, std::fabs(static_cast<double>(C[i]) - R[i]));
    CHECK(err < 1e-3, "threaded GEMM after a shutdown: err %.3g", err);
  }
  parallel_shutdown();
  parallel_shutdown();  // twice in a row is harmless
  set_num_threads(0);
}

// ---- gradients vs central differences (double) ----------------------------------------------------

// Class indices y for cross_entropy and mse, the target matrix Y for squared_error, binary_cross_entropy
// and poisson.
static double backward_of(Model<double>& m, Workspace<double>& ws, const std::vector<double>& X,
                          const std::vector<int32_t>& y, const std::vector<double>& Y, int n, double l2,
                          std::vector<std::vector<double>>& g) {
  return takes_class_indices(m.loss) ? backward_pass(m, ws, X.data(), y.data(), n, l2, g)
                                     : backward_pass(m, ws, X.data(), Y.data(), n, l2, g);
}

static double loss_of(Model<double>& m, const std::vector<double>& X, const std::vector<int32_t>& y,
                      const std::vector<double>& Y, int n, double l2) {
  Workspace<double> ws(m.sizes, static_cast<size_t>(n), false);
  forward_pass(m, ws, X.data(), n);
  std::vector<std::vector<double>> g;
  return backward_of(m, ws, X, y, Y, n, l2, g);
}

static void test_gradients() {
  const std::vector<std::vector<int>> archs = {{4, 3}, {5, 6, 3}, {3, 5, 4, 4}};
  double worst_smooth = 0.0, worst_kink = 0.0;
  for (const auto& sizes : archs)
    for (int act = 0; act <= 4; ++act)
      for (int loss = CROSS_ENTROPY; loss <= POISSON; ++loss)
        for (double l2 : {0.0, 0.1}) {
          Rng rng(static_cast<uint64_t>(act * 10 + loss + sizes.size() * 100));
          Model<double> m;
          m.sizes = sizes;
          m.activation = act;
          m.loss = loss;
          m.allocate();
          for (int l = 0; l < m.layers(); ++l) {
            glorot_normal(m.W[l].data(), sizes[l], sizes[l + 1], rng);
            for (auto& v : m.b[l]) v = 0.1 * rng.normal();
          }
          const int n = 7, K = sizes.back();
          std::vector<double> X(static_cast<size_t>(n) * sizes[0]);
          for (auto& v : X) v = rng.normal();
          std::vector<int32_t> y(n);
          for (auto& v : y) v = static_cast<int32_t>(rng.below(static_cast<uint64_t>(K)));
          // real targets, 0/1 for binary cross-entropy, counts 0..3 for poisson
          std::vector<double> Y(static_cast<size_t>(n) * K);
          for (auto& v : Y)
            v = loss == BINARY_CROSS_ENTROPY ? static_cast<double>(rng.below(2))
                : loss == POISSON            ? static_cast<double>(rng.below(4))
                                             : 2.0 * rng.normal();
          Workspace<double> ws(m.sizes, n, false);
          forward_pass(m, ws, X.data(), n);
          // Kink guard: skip ReLU-family cases whose pre-activations come within 1e-3 of 0.
          bool near_kink = false;
          if (act == RELU || act == LEAKY_RELU)
            for (const auto& out : ws.out)
              for (double a : out) near_kink |= a != 0.0 && std::fabs(a) < 1e-3 * (act == LEAKY_RELU ? 0.01 : 1.0);
          std::vector<std::vector<double>> grads;
          backward_of(m, ws, X, y, Y, n, l2, grads);
          const bool kinked = act == RELU || act == LEAKY_RELU;
          const double h = kinked ? 1e-6 : 1e-4;
          double num = 0.0, den = 0.0;
          for (size_t p = 0; p < grads.size(); ++p) {
            std::vector<double>& param = p % 2 == 0 ? m.W[p / 2] : m.b[p / 2];
            for (size_t i = 0; i < param.size(); ++i) {
              const double x0 = param[i];
              auto f = [&](double x) { param[i] = x; return loss_of(m, X, y, Y, n, l2); };
              double numeric;
              if (kinked) numeric = (f(x0 + h) - f(x0 - h)) / (2 * h);
              else numeric = (-f(x0 + 2 * h) + 8 * f(x0 + h) - 8 * f(x0 - h) + f(x0 - 2 * h)) / (12 * h);
              param[i] = x0;
              num += (grads[p][i] - numeric) * (grads[p][i] - numeric);
              den += grads[p][i] * grads[p][i] + numeric * numeric;
            }
          }
          const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-3);
          if (near_kink) continue;
          (kinked ? worst_kink : worst_smooth) = std::max(kinked ? worst_kink : worst_smooth, rel);
          CHECK(rel < (kinked ? 1e-4 : 1e-7), "gradient check %s/%s sizes=%zu l2=%g: relative error %.3g",
                activation_name(act), loss_name(loss), sizes.size(), l2, rel);
        }
  std::printf("gradients vs central differences: worst relative error %.3g smooth, %.3g relu family\n", worst_smooth,
              worst_kink);
}

// ---- batch normalisation ----------------------------------------------------------------------------

// A random model with batch norm: weights, biases, gamma, beta and running statistics away from their
// initial values, so every term of the gradient shows.
static Model<double> batch_norm_model(const std::vector<int>& sizes, int act, int loss, int placement, Rng& rng) {
  Model<double> m;
  m.sizes = sizes;
  m.activation = act;
  m.loss = loss;
  m.batch_norm = placement;
  m.allocate();
  for (int l = 0; l < m.layers(); ++l) {
    glorot_normal(m.W[l].data(), sizes[l], sizes[l + 1], rng);
    for (auto& v : m.b[l]) v = 0.1 * rng.normal();
  }
  for (auto& norm : m.norms)
    for (std::size_t j = 0; j < norm.gamma.size(); ++j) {
      norm.gamma[j] = 1.0 + 0.3 * rng.normal();
      norm.beta[j] = 0.2 * rng.normal();
      norm.mean[j] = 0.3 * rng.normal();
      norm.var[j] = 0.5 + rng.uniform();
    }
  return m;
}

static double training_loss(const Model<double>& m, const std::vector<double>& X, const std::vector<int32_t>& y,
                            int n, std::vector<std::vector<double>>* grads = nullptr) {
  Workspace<double> ws(m.sizes, static_cast<size_t>(n), false, m.batch_norm);
  forward_pass(m, ws, X.data(), n, true);
  std::vector<std::vector<double>> g;
  return backward_pass(m, ws, X.data(), y.data(), n, 0.0, grads ? *grads : g);
}

// Gradients of a batch-normalised network (the batch's statistics, and one row with the running
// ones) against central differences, for every trainable array (W, b, gamma, beta).
static void test_batch_norm_gradients() {
  double worst = 0.0;
  for (int placement : {BATCH_NORM_BEFORE, BATCH_NORM_AFTER})
    for (int act : {IDENTITY, SIGMOID, TANH})
      for (int n : {7, 1}) {
        Rng rng(static_cast<uint64_t>(placement * 100 + act * 10 + n));
        Model<double> m = batch_norm_model({4, 6, 5, 3}, act, CROSS_ENTROPY, placement, rng);
        std::vector<double> X(static_cast<size_t>(n) * 4);
        for (auto& v : X) v = rng.normal();
        std::vector<int32_t> y(static_cast<size_t>(n));
        for (auto& v : y) v = static_cast<int32_t>(rng.below(3));
        std::vector<std::vector<double>> grads;
        training_loss(m, X, y, n, &grads);
        CHECK(grads.size() == m.n_trainable() && grads.size() == 10, "gradients of W, b, gamma, beta: %zu", grads.size());
        double num = 0.0, den = 0.0;
        const double h = 1e-4;
        for (size_t p = 0; p < grads.size(); ++p) {
          std::vector<double>& param = m.trainable(p);
          for (size_t i = 0; i < param.size(); ++i) {
            const double x0 = param[i];
            auto f = [&](double x) { param[i] = x; return training_loss(m, X, y, n); };
            const double numeric = (-f(x0 + 2 * h) + 8 * f(x0 + h) - 8 * f(x0 - h) + f(x0 - 2 * h)) / (12 * h);
            param[i] = x0;
            num += (grads[p][i] - numeric) * (grads[p][i] - numeric);
            den += grads[p][i] * grads[p][i] + numeric * numeric;
          }
        }
        const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-3);
        worst = std::max(worst, rel);
        CHECK(rel < 1e-7, "batch norm %s %s n=%d: relative error %.3g", batch_norm_name(placement),
              activation_name(act), n, rel);
      }
  std::printf("batch norm gradients vs central differences: worst relative error %.3g\n", worst);
}

// The forward pass against BN_SPEC's formulas; running statistics, inference, the optimiser and the
// model file with norms.
static void test_batch_norm() {
  test_batch_norm_gradients();
  Rng rng(5);
  const int n = 5;
  Model<double> m = batch_norm_model({3, 4, 2}, TANH, CROSS_ENTROPY, BATCH_NORM_AFTER, rng);
  std::vector<double> X(static_cast<size_t>(n) * 3);
  for (auto& v : X) v = rng.normal();
  Workspace<double> ws(m.sizes, n, false, m.batch_norm);
  forward_pass(m, ws, X.data(), n, true);
  const Model<double> before = m;
  update_running_statistics(m, ws, n, 0.25);
  double worst = 0.0;
  for (int j = 0; j < 4; ++j) {  // BN(tanh(X W + b)) column j, from the formula
    std::vector<double> H(n);
    double mu = 0.0, var = 0.0;
    for (int i = 0; i < n; ++i) {
      double z = m.b[0][j];
      for (int f = 0; f < 3; ++f) z += X[i * 3 + f] * m.W[0][f * 4 + j];
      mu += (H[i] = std::tanh(z)) / n;
    }
    for (int i = 0; i < n; ++i) var += (H[i] - mu) * (H[i] - mu) / n;
    for (int i = 0; i < n; ++i) {
      const double want = m.norms[0].gamma[j] * (H[i] - mu) / std::sqrt(var + 1e-5) + m.norms[0].beta[j];
      worst = std::max(worst, std::fabs(ws.out[0][i * 4 + j] - want));
    }
    worst = std::max(worst, std::fabs(m.norms[0].mean[j] - (0.75 * before.norms[0].mean[j] + 0.25 * mu)));
    worst = std::max(worst, std::fabs(m.norms[0].var[j] - (0.75 * before.norms[0].var[j] + 0.25 * var * n / (n - 1))));
  }
  CHECK(worst < 1e-12, "batch norm forward and running statistics against the formula: %.3g", worst);
  forward_pass(m, ws, X.data(), n);  // inference: the running statistics
  double inference = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < 4; ++j) {
      const double h = ws.pre[0][i * 4 + j];
      const double want = m.norms[0].gamma[j] * (h - m.norms[0].mean[j]) / std::sqrt(m.norms[0].var[j] + 1e-5) +
                          m.norms[0].beta[j];
      inference = std::max(inference, std::fabs(ws.out[0][i * 4 + j] - want));
    }
  CHECK(inference < 1e-12 && !ws.batch_statistics, "inference with the running statistics: %.3g", inference);
  const Model<double> kept = m;
  update_running_statistics(m, ws, n, 0.25);
  CHECK(m.norms[0].mean == kept.norms[0].mean, "an inference pass leaves the running statistics alone");
  CHECK(m.n_parameters() == 3 * 4 + 4 + 4 * 2 + 2 + 2 * 4, "n_parameters counts gamma and beta: %zu", m.n_parameters());
  // AdamW decays the W's only: with zero gradients gamma and beta stay, W shrinks.
  Optimizer<double> adamw("adamw", m, 0.9, 0.9, 0.9, 0.999, 1e-8, 0.5);
  std::vector<std::vector<double>> zeros;
  for (size_t p = 0; p < m.n_trainable(); ++p) zeros.emplace_back(m.trainable(p).size(), 0.0);
  adamw.step(m, zeros, 0.1, 1);
  CHECK(m.norms[0].gamma == kept.norms[0].gamma && m.norms[0].beta == kept.norms[0].beta && m.b[0] == kept.b[0] &&
            std::fabs(m.W[0][0] - kept.W[0][0] * 0.95) < 1e-15,
        "adamw's decay touches the W's only");
  // The model file keeps the placement, gamma, beta and the running statistics.
  const std::string path = g_tmp + "/model.npz";
  m.classes = {0, 1};
  save_model(m, path);
  const AnyModel any = load_model(path);
  CHECK(any.dtype == "float64" && any.f64.batch_norm == BATCH_NORM_AFTER && any.f64.norms.size() == 1 &&
            any.f64.norms[0].gamma == m.norms[0].gamma && any.f64.norms[0].beta == m.norms[0].beta &&
            any.f64.norms[0].mean == m.norms[0].mean && any.f64.norms[0].var == m.norms[0].var,
        "model file round trip with batch norm");
}

// ---- losses, activations, optimizers against their formulas -----------------------------------------

static void test_losses() {
  // Softmax cross-entropy at extreme logits stays finite.
  std::vector<double> Z = {1000.0, -1000.0, 0.0, 3.0, 1.0, 2.0};
  std::vector<int32_t> y = {1, 0};
  std::vector<double> dZ(6);
  const double loss = softmax_cross_entropy(dZ.data(), Z.data(), y.data(), 2, 3);
  const double row2 = std::log(std::exp(3.0) + std::exp(1.0) + std::exp(2.0)) - 3.0;
  CHECK(std::fabs(loss - (2000.0 + row2) / 2) < 1e-9, "softmax CE loss %.17g", loss);
  CHECK(std::fabs(dZ[0] - 0.5) < 1e-12 && std::fabs(dZ[1] + 0.5) < 1e-12, "softmax CE gradient");
  double sum = 0;
  for (double v : dZ) sum += v;
  CHECK(std::fabs(sum) < 1e-12, "softmax CE gradient rows sum to 0");
  // Sigmoid MSE.
  std::vector<float> Zf = {0.0f, 2.0f};
  std::vector<int32_t> yf = {1};
  std::vector<float> df(2);
  const double l = sigmoid_mse(df.data(), Zf.data(), yf.data(), 1, 2);
  const double a0 = 0.5, a1 = 1 / (1 + std::exp(-2.0));
  CHECK(std::fabs(l - 0.5 * (a0 * a0 + (a1 - 1) * (a1 - 1))) < 1e-6, "sigmoid MSE %.9g", l);
  CHECK(std::fabs(df[1] - (a1 - 1) * a1 * (1 - a1)) < 1e-6, "sigmoid MSE gradient");
  // Squared error (identity outputs): 0.5 sum of squares over the outputs, mean over the rows.
  std::vector<double> Zs = {1.0, 2.0, 0.0, -1.0}, Ys = {0.5, 2.0, 1.0, 1.0}, ds(4);
  const double se = squared_error(ds.data(), Zs.data(), Ys.data(), 2, 2);
  CHECK(std::fabs(se - 0.5 * (0.25 + 0.0 + 1.0 + 4.0) / 2) < 1e-15, "squared error %.17g", se);
  CHECK(ds[0] == 0.25 && ds[1] == 0.0 && ds[2] == -0.5 && ds[3] == -1.0, "squared error gradient (Z - Y) / n");
  // Binary cross-entropy stays finite at extreme logits: -log s(-1000) = 1000 for a target of 1.
  std::vector<double> Zb = {-1000.0, 1000.0, 0.0}, Yb = {1.0, 1.0, 0.0}, db(3);
  const double bce = sigmoid_binary_cross_entropy(db.data(), Zb.data(), Yb.data(), 1, 3);
  CHECK(std::fabs(bce - (1000.0 + 0.0 + std::log(2.0))) < 1e-9, "binary cross-entropy %.17g", bce);
  CHECK(db[0] == -1.0 && db[1] == 0.0 && db[2] == 0.5, "binary cross-entropy gradient sigmoid(Z) - Y");
  // Poisson (exp outputs) stays finite where exp(z) underflows: y (log y - z) - y + exp(z), y log y = 0 at y = 0.
  std::vector<double> Zp = {-1000.0, 0.0, std::log(3.0), 1.0}, Yp = {2.0, 0.0, 3.0, 1.0}, dp(4);
  const double pl = exp_poisson(dp.data(), Zp.data(), Yp.data(), 2, 2);
  const double expected_pl = ((2 * std::log(2.0) - 2 + 2000.0) + 1.0 + 0.0 + (std::exp(1.0) - 2.0)) / 2;
  CHECK(std::fabs(pl - expected_pl) < 1e-9, "poisson %.17g, expected %.17g", pl, expected_pl);
  CHECK(dp[0] == -1.0 && dp[1] == 0.5 && std::fabs(dp[2]) < 1e-15 && std::fabs(dp[3] - (std::exp(1.0) - 1) / 2) < 1e-15,
        "poisson gradient (exp(Z) - Y) / n");
  // Activations at large |z|.
  std::vector<float> z = {-100.0f, 100.0f, 0.0f, -0.5f}, a(4);
  activation_forward(a.data(), z.data(), 4, SIGMOID);
  CHECK(a[0] >= 0.0f && a[0] < 1e-40f + 1e-30f && a[1] == 1.0f && a[2] == 0.5f, "sigmoid at extremes");
  activation_forward(a.data(), z.data(), 4, LEAKY_RELU);
  CHECK(a[3] == -0.005f && a[1] == 100.0f, "leaky relu");
  std::vector<float> dA = {1, 1, 1, 1}, dz(4);
  activation_forward(a.data(), z.data(), 4, RELU);
  activation_backward(dz.data(), dA.data(), a.data(), 4, RELU);
  CHECK(dz[0] == 0 && dz[1] == 1 && dz[2] == 0, "relu'(0) = 0");
}

static void test_optimizers() {
  const double g0 = 0.5, p0 = 1.0, lr = 0.1;
  double p, v, s, m;
  p = p0; sgd_step(&p, &g0, lr, 1);
  CHECK(p == p0 - lr * g0, "sgd");
  p = p0; v = 0.2; momentum_step(&p, &v, &g0, lr, 0.9, false, 1);
  CHECK(std::fabs(v - (0.18 + 0.5)) < 1e-15 && std::fabs(p - (p0 - lr * 0.68)) < 1e-15, "momentum");
  p = p0; v = 0.2; momentum_step(&p, &v, &g0, lr, 0.9, true, 1);
  CHECK(std::fabs(p - (p0 - lr * (0.5 + 0.9 * 0.68))) < 1e-15, "nesterov");
  p = p0; s = 0.04; rmsprop_step(&p, &s, &g0, lr, 0.9, 1e-8, 1);
  CHECK(std::fabs(s - (0.036 + 0.1 * 0.25)) < 1e-15 && std::fabs(p - (p0 - lr * 0.5 / (std::sqrt(s) + 1e-8))) < 1e-15,
        "rmsprop");
  for (double wd : {0.0, 0.01}) {
    p = p0; m = 0.0; v = 0.0;
    adam_step(&p, &m, &v, &g0, lr, 0.9, 0.999, 1e-8, 1, wd, 1);
    const double pd = p0 * (1 - lr * wd);
    const double mhat = 0.05 / 0.1, vhat = 0.00025 / 0.001;
    CHECK(std::fabs(p - (pd - lr * mhat / (std::sqrt(vhat) + 1e-8))) < 1e-12, "adam wd=%g: %.17g", wd, p);
  }
  // Big arrays (threaded path) equal the small-array result element by element.
  std::vector<float> P(200000, 1.0f), M(200000, 0.0f), V(200000, 0.0f), G(200000);
  for (size_t i = 0; i < G.size(); ++i) G[i] = static_cast<float>((static_cast<int>(i % 11) - 5) * 0.01);
  set_num_threads(2);
  adam_step(P.data(), M.data(), V.data(), G.data(), 1e-3, 0.9, 0.999, 1e-8, 3, 0.0, P.size());
  set_num_threads(0);
  bool same = true;
  for (size_t i = 0; i < 22; ++i) {
    float q = 1.0f, mq = 0.0f, vq = 0.0f;
    adam_step(&q, &mq, &vq, &G[i], 1e-3, 0.9, 0.999, 1e-8, 3, 0.0, 1);
    same &= q == P[i] && q == P[i + 110000];
  }
  CHECK(same, "threaded adam differs from the serial one");
  // Clipping: by value then by global norm.
  std::vector<std::vector<double>> grads = {{3.0, -4.0}, {12.0}};
  clip_gradients(grads, 10.0, 0.0);
  CHECK(grads[1][0] == 10.0, "clip by value");
  grads = {{3.0, -4.0}, {12.0}};
  clip_gradients(grads, 0.0, 6.5);
  CHECK(std::fabs(grads[0][0] - 1.5) < 1e-15 && std::fabs(grads[1][0] - 6.0) < 1e-15, "clip by norm");
  grads = {{3.0, -4.0}, {12.0}};
  clip_gradients(grads, 0.0, 100.0);
  CHECK(grads[1][0] == 12.0, "clip by norm leaves small gradients alone");
}

static void test_initializers() {
  Rng rng(42);
  const int fan_in = 300, fan_out = 200;
  std::vector<double> W(static_cast<size_t>(fan_in) * fan_out);
  struct Case { const char* name; double std; };
  const Case cases[] = {{"he_normal", std::sqrt(2.0 / fan_in)},
                        {"he_uniform", std::sqrt(6.0 / fan_in) / std::sqrt(3.0)},
                        {"glorot_normal", std::sqrt(2.0 / (fan_in + fan_out))},
                        {"glorot_uniform", std::sqrt(6.0 / (fan_in + fan_out)) / std::sqrt(3.0)},
                        {"lecun_normal", std::sqrt(1.0 / fan_in)},
                        {"lecun_uniform", std::sqrt(3.0 / fan_in) / std::sqrt(3.0)},
                        {"normal", 0.01}};
  for (const Case& c : cases) {
    CHECK(initialize(W.data(), c.name, fan_in, fan_out, rng), "initialize %s", c.name);
    double mean = 0, sq = 0;
    for (double w : W) { mean += w; sq += w * w; }
    mean /= W.size();
    const double sd = std::sqrt(sq / W.size() - mean * mean);
    CHECK(std::fabs(mean) < 4 * c.std / std::sqrt(W.size()) && std::fabs(sd / c.std - 1) < 0.02,
          "%s: mean %.3g sd %.4g expected %.4g", c.name, mean, sd, c.std);
  }
  CHECK(!is_initializer("bogus"), "unknown initializer");
  // below() stays in range and covers it.
  std::vector<int> hits(7);
  for (int i = 0; i < 7000; ++i) ++hits[rng.below(7)];
  bool ok = true;
  for (int h : hits) ok &= h > 850 && h < 1150;
  CHECK(ok, "below(7) is roughly uniform");
}

// ---- files: gzip, npz, json, data ---------------------------------------------------------------

// A raw DEFLATE stream (one fixed-Huffman block) of `count` zero bytes: a literal 0, then matches of
// length 258 at distance 1 (about 1032:1, the largest DEFLATE ratio), then shorter literals.
static std::vector<uint8_t> deflate_zeros(std::size_t count) {
  std::vector<uint8_t> out;
  uint64_t buf = 0;
  int bits = 0;
  auto put = [&](uint32_t value, int n) {  // LSB first
    buf |= static_cast<uint64_t>(value) << bits;
    bits += n;
    while (bits >= 8) {
      out.push_back(static_cast<uint8_t>(buf));
      buf >>= 8;
      bits -= 8;
    }
  };
  auto put_code = [&](uint32_t code, int n) {  // Huffman codes go MSB first
    uint32_t rev = 0;
    for (int i = 0; i < n; ++i) rev |= ((code >> i) & 1u) << (n - 1 - i);
    put(rev, n);
  };
  put(1, 1);  // final block
  put(1, 2);  // fixed Huffman
  std::size_t left = count;
  auto literal_zero = [&] { put_code(0x30, 8); --left; };  // literal 0: 00110000
  literal_zero();
  while (left >= 258) {
    put_code(0xC5, 8);  // length symbol 285 (258): 11000101
    put_code(0, 5);     // distance symbol 0 (1)
    left -= 258;
  }
  while (left > 0) literal_zero();
  put_code(0, 7);  // end of block (256): 0000000
  if (bits) put(0, 8 - bits);
  return out;
}

static void test_inflate() {
  const std::vector<uint8_t> plain = read_file(g_data_dir + "/plain.bin");
  for (const char* name : {"dynamic.gz", "fixed.gz", "stored.gz", "multi.gz"}) {
    const std::vector<uint8_t> gz = read_file(g_data_dir + "/" + name);
    std::vector<uint8_t> out;
    const bool ok = !throws([&] { out = gunzip(gz.data(), gz.size()); });
    const size_t expected = std::string(name) == "fixed.gz" || std::string(name) == "stored.gz" ? 3000 : plain.size();
    CHECK(ok && out.size() == expected && std::memcmp(out.data(), plain.data(), expected) == 0, "gunzip %s", name);
  }
  const std::vector<uint8_t> truncated = read_file(g_data_dir + "/truncated.gz");
  CHECK(throws([&] { gunzip(truncated.data(), truncated.size()); }), "truncated gzip must throw");
  const std::vector<uint8_t> badcrc = read_file(g_data_dir + "/badcrc.gz");
  CHECK(throws([&] { gunzip(badcrc.data(), badcrc.size()); }, "CRC"), "bad CRC must throw");
  // Garbage after the magic number, and random bytes, never crash.
  Rng rng(7);
  int thrown = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> junk = read_file(g_data_dir + "/dynamic.gz");
    for (int k = 0; k < 4; ++k) junk[10 + rng.below(junk.size() - 10)] ^= static_cast<uint8_t>(1 + rng.below(255));
    thrown += throws([&] { gunzip(junk.data(), junk.size()); });
  }
  CHECK(thrown == 300, "every corrupted gzip must be rejected (%d of 300)", thrown);
  const uint8_t check[] = "123456789";
  CHECK(crc32(check, 9) == 0xCBF43926u, "CRC-32 check value");
  CHECK(crc32(check + 4, 5, crc32(check, 4)) == 0xCBF43926u, "CRC-32 chained");
  std::printf("inflate: %s\n", inflate_backend());

  // Limits: a gzip file's content of exactly the limit passes; one byte less throws, decompressing
  // no further; gunzip_head returns the first n bytes only.
  const std::vector<uint8_t> gz = read_file(g_data_dir + "/dynamic.gz");
  CHECK(!throws([&] { gunzip(gz.data(), gz.size(), plain.size()); }), "gunzip at exactly the limit");
  bool limited = false;
  try {
    gunzip(gz.data(), gz.size(), plain.size() - 1);
  } catch (const InflateLimitError& e) {
    limited = std::strstr(e.what(), std::to_string(plain.size() - 1).c_str()) != nullptr;
  } catch (const std::exception&) {
  }
  CHECK(limited, "gunzip past the limit throws InflateLimitError naming the limit");
  for (std::size_t n : {std::size_t(0), std::size_t(16), std::size_t(4097), plain.size(), plain.size() + 100}) {
    std::vector<uint8_t> head = gunzip_head(gz.data(), gz.size(), n);
    const std::size_t want = std::min(n, plain.size());
    CHECK(head.size() == want && (want == 0 || std::memcmp(head.data(), plain.data(), want) == 0), "gunzip_head %zu bytes", n);
  }
  CHECK(throws([&] { gunzip_head(plain.data(), plain.size(), 16); }, "gzip"), "gunzip_head of non-gzip must throw");

  // A bomb: 64 MiB of zeros in a stored-free DEFLATE stream of a few kB; a 1 MiB limit stops it.
  {
    std::vector<uint8_t> zeros(1 << 26, 0);
    std::vector<uint8_t> deflated = deflate_zeros(zeros.size());
    std::size_t used = 0;
    std::vector<uint8_t> out;
    CHECK(!throws([&] { out = inflate(deflated.data(), deflated.size(), 0, &used); }) && out == zeros &&
              used == deflated.size(),
          "fixed-Huffman run of zeros inflates (%zu bytes from %zu)", out.size(), deflated.size());
    CHECK(throws([&] { inflate(deflated.data(), deflated.size(), 0, nullptr, 1 << 20); }, "exceed"),
          "a bomb stops at the limit");
    CHECK(throws([&] { inflate_builtin(deflated.data(), deflated.size(), 0, nullptr, 1 << 20); }, "exceed"),
          "a bomb stops at the built-in decoder's limit");
  }

  // The built-in decoder and the one in use (zlib when the build has it) agree on every fixture and
  // on corrupted streams: both decode to the same bytes, or both throw. Half the trials flip bits in
  // the first 64 bytes (block headers and code tables: an incomplete Huffman code there was once
  // accepted by the built-in decoder only), some cut the stream short.
  int agree = 0, compared = 0;
  for (const char* name : {"dynamic.gz", "fixed.gz", "stored.gz"}) {
    const std::vector<uint8_t> file = read_file(g_data_dir + "/" + name);
    for (int trial = 0; trial < 1500; ++trial) {
      std::vector<uint8_t> body(file.begin() + 10, file.end() - 8);
      if (trial > 0) {
        const std::size_t span = trial % 2 ? std::min<std::size_t>(64, body.size()) : body.size();
        for (uint64_t flips = 1 + rng.below(3); flips > 0; --flips)
          body[rng.below(span)] ^= static_cast<uint8_t>(1u << rng.below(8));
        if (trial % 7 == 0) body.resize(rng.below(body.size()));
      }
      std::vector<uint8_t> a, b;
      std::size_t used_a = 0, used_b = 0;
      const bool threw_a = throws([&] { a = inflate(body.data(), body.size(), 0, &used_a, 1 << 22); });
      const bool threw_b = throws([&] { b = inflate_builtin(body.data(), body.size(), 0, &used_b, 1 << 22); });
      ++compared;
      agree += threw_a == threw_b && (threw_a || (a == b && used_a == used_b));
    }
  }
  CHECK(agree == compared, "inflate and inflate_builtin agree on %d of %d streams", agree, compared);
}

static void test_npz() {
  // Written by NumPy (np.savez and np.savez_compressed).
  for (const char* name : {"numpy_savez.bin", "numpy_savez_compressed.bin"}) {
    std::vector<NpyArray> arrays;
    const bool ok = !throws([&] { arrays = read_npz(g_data_dir + "/" + name); });
    CHECK(ok && arrays.size() == 4, "read %s", name);
    if (!ok) continue;
    for (const auto& a : arrays) {
      if (a.name == "W") {
        CHECK(a.descr == "<f4" && a.shape == std::vector<size_t>({3, 4}), "W header");
        float w[12];
        std::memcpy(w, a.data.data(), sizeof w);
        CHECK(w[5] == 5.0f / 8 && w[11] == 11.0f / 8, "W values");
      } else if (a.name == "b") {
        double b[4];
        std::memcpy(b, a.data.data(), sizeof b);
        CHECK(a.descr == "<f8" && b[3] == 1e-3, "b");
      } else if (a.name == "F") {
        double f[6];
        std::memcpy(f, a.data.data(), sizeof f);
        CHECK(f[1] == 1.0 && f[3] == 3.0 && f[5] == 5.0, "Fortran-order array transposed to C order");
      } else {
        CHECK(a.name == "metadata" && a.descr == "|u1", "metadata entry");
      }
    }
  }
  // Round trip of our writer, then corruptions.
  const std::string path = g_tmp + "/roundtrip.npz";
  const std::vector<double> values = {1.5, -2.25, 3e-300, 4};
  write_npz(path, {NpyArray::from_doubles("x", values.data(), {2, 2}), NpyArray::from_bytes("metadata", "{}")});
  std::vector<NpyArray> back = read_npz(path);
  CHECK(back.size() == 2 && back[0].name == "x" && back[0].shape == std::vector<size_t>({2, 2}) &&
            std::memcmp(back[0].data.data(), values.data(), 32) == 0,
        "npz round trip");
  std::vector<uint8_t> bytes = read_file(path);
  const std::vector<uint8_t> good = bytes;
  bytes[120] ^= 1;  // inside x's data
  write_file_atomic(path, bytes);
  CHECK(throws([&] { read_npz(path); }, "CRC"), "corrupt npz entry must fail its CRC");
  bytes.assign(good.begin(), good.begin() + static_cast<long>(good.size()) / 2);
  write_file_atomic(path, bytes);
  CHECK(throws([&] { read_npz(path); }), "truncated npz must throw");
  CHECK(throws([&] { read_npz(g_tmp + "/does-not-exist.npz"); }), "missing file must throw");
  // Every single-byte corruption of the archive is rejected or read consistently, never a crash.
  int survived = 0;
  for (size_t i = 0; i < good.size(); i += 3) {
    bytes = good;
    bytes[i] ^= 0x5A;
    write_file_atomic(path, bytes);
    try { read_npz(path); ++survived; } catch (const std::exception&) {}
  }
  std::printf("npz: %d of %zu corrupted archives still parsed (changes in ignored fields)\n", survived, good.size() / 3 + 1);
}

static void test_json() {
  const Json j = Json::parse(R"({"a": [1, 2.5, -3e2], "s": "x\"y\u00e9", "t": true, "n": null, "o": {"k": NaN}})");
  CHECK(j.find("a") && j.find("a")->array.size() == 3 && j.find("a")->array[2].number == -300, "json array");
  CHECK(j.find("s")->string == "x\"y\xc3\xa9", "json string escapes");
  CHECK(j.find("t")->boolean && j.find("n")->type == Json::NUL && std::isnan(j.find("o")->find("k")->number), "json literals");
  CHECK(Json::parse(j.dump()).dump() == j.dump(), "json dump/parse round trip");
  const Json big = Json::parse("[9007199254740993, -9223372036854775808, 9223372036854775808, 3.0]");
  CHECK(big.array[0].exact && big.array[0].int64 == 9007199254740993LL && big.array[1].exact &&
            big.array[1].int64 == INT64_MIN && !big.array[2].exact && big.array[2].integer && !big.array[3].exact,
        "json integers: exact within int64, not past it nor for 3.0");
  CHECK(big.dump() == "[9007199254740993, -9223372036854775808, 9.2233720368547758e+18, 3]" &&
            Json::of_int(INT64_MAX).dump() == "9223372036854775807",
        "json integers written with every digit: %s", big.dump().c_str());
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "{\"a\":1}x", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})
    CHECK(throws([&] { Json::parse(bad); }), "invalid JSON '%s' must throw", bad);
}

static void test_model_file() {
  Model<float> m;
  m.sizes = {6, 5, 3};
  m.activation = TANH;
  m.loss = MSE;
  m.classes = {2, 5, 7};
  m.allocate();
  Rng rng(3);
  for (auto& W : m.W) for (auto& v : W) v = static_cast<float>(rng.normal());
  for (auto& b : m.b) for (auto& v : b) v = static_cast<float>(rng.normal());
  const std::string path = g_tmp + "/model.npz";
  save_model(m, path);
  const AnyModel any = load_model(path);
  CHECK(any.dtype == "float32" && any.f32.sizes == m.sizes && any.f32.activation == TANH && any.f32.loss == MSE &&
            any.f32.classes == m.classes && any.f32.W[1] == m.W[1] && any.f32.b[0] == m.b[0],
        "model file round trip");
  CHECK(throws([&] { load_model(g_data_dir + "/numpy_savez.bin"); }), "an npz without model metadata must be rejected");
  // Class labels past 2^53 (a double's exact integers) keep every digit, as Python's int does.
  m.classes = {INT64_MIN, (int64_t(1) << 53), (int64_t(1) << 53) + 1, INT64_MAX};
  m.sizes.back() = 4;
  m.allocate();
  save_model(m, path);
  CHECK(load_model(path).f32.classes == m.classes, "classes beyond 2^53 must survive a round trip exactly");
  // Only a regular file is ever replaced; a FIFO (or a device) at the path stays what it was.
  const std::string fifo = g_tmp + "/fifo.npz";
  ::unlink(fifo.c_str());
  CHECK(::mkfifo(fifo.c_str(), 0600) == 0, "mkfifo");
  CHECK(throws([&] { save_model(m, fifo); }, "not a regular file"), "a FIFO must not be replaced by a model");
  struct stat st;
  CHECK(::stat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO must still be a FIFO");
  ::unlink(fifo.c_str());
}

static void test_training_smoke() {
  // Two Gaussian blobs per class in 8 dimensions: every optimizer must fit them.
  const int n = 300, d = 8, K = 3;
  Rng rng(11);
  std::vector<double> X(static_cast<size_t>(n) * d);
  std::vector<int32_t> y(n);
  for (int i = 0; i < n; ++i) {
    y[i] = i % K;
    for (int j = 0; j < d; ++j) X[static_cast<size_t>(i) * d + j] = rng.normal() * 0.5 + (j % K == y[i] ? 2.0 : 0.0);
  }
  Batch<double> batch;
  batch.X = X.data();
  batch.y = y.data();
  batch.n = n;
  for (const char* opt : {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"}) {
    TrainConfig c;
    c.hidden = {16};
    c.epochs = 8;
    c.batch_size = 32;
    c.optimizer = opt;
    c.schedule = "constant";
    c.lr = std::string(opt).find("adam") == 0 || std::string(opt) == "rmsprop" ? 0.01 : 0.1;
    c.dropout = std::string(opt) == "momentum" ? 0.2 : 0.0;
    c.clip_norm = std::string(opt) == "sgd" ? 5.0 : 0.0;
    c.batch_norm = std::string(opt) == "nesterov" ? BATCH_NORM_BEFORE : std::string(opt) == "adam" ? BATCH_NORM_AFTER
                                                                                                   : BATCH_NORM_NONE;
    double first = 0, last = 0;
    Model<double> m = train<double>(c, batch, d, K, [&](const EpochStats& s) { (s.epoch == 1 ? first : last) = s.loss; });
    const auto r = evaluate(m, X.data(), y.data(), n);
    CHECK(last < first && r.second > 0.95, "%s: loss %.3f -> %.3f, accuracy %.3f", opt, first, last, r.second);
  }
  // Same seed, same result; full batch works.
  TrainConfig c;
  c.hidden = {4};
  c.epochs = 3;
  c.batch_size = 0;
  Model<double> a = train<double>(c, batch, d, K), b = train<double>(c, batch, d, K);
  CHECK(a.W[0] == b.W[0], "training is deterministic for a seed");
  // The thread count changes nothing: the same tiles, summed in the same order (float32, products
  // large enough to be split).
  std::vector<float> Xf(static_cast<size_t>(2000) * 64);
  std::vector<int32_t> yf(2000);
  for (size_t i = 0; i < Xf.size(); ++i) Xf[i] = static_cast<float>(rng.normal());
  for (size_t i = 0; i < yf.size(); ++i) yf[i] = static_cast<int32_t>(i % 5);
  Batch<float> fb;
  fb.X = Xf.data();
  fb.y = yf.data();
  fb.n = yf.size();
  TrainConfig cf;
  cf.hidden = {96, 40};
  cf.epochs = 2;
  cf.batch_size = 500;
  set_num_threads(1);
  Model<float> one = train<float>(cf, fb, 64, 5);
  set_num_threads(2);
  Model<float> two = train<float>(cf, fb, 64, 5);
  set_num_threads(0);
  CHECK(one.W[0] == two.W[0] && one.W[2] == two.W[2] && one.b[1] == two.b[1], "1 and 2 threads train identically");
}

// The defaults generated from mlp/options.py name things the port knows, and every name in the
// generated tables (optimizers, schedules, activations, losses, initialisers) is implemented here.
static void test_defaults() {
  for (const auto& entry : defaults::kOptimizers) {
    CHECK(is_optimizer(entry.name), "optimizer %s (mlp.optimizers.OPTIMIZERS) is not implemented", entry.name);
    CHECK(default_learning_rate(entry.name) == entry.learning_rate, "default learning rate of %s", entry.name);
  }
  for (const char* name : defaults::kSchedules)
    CHECK(is_schedule(name), "schedule %s (mlp.schedules.SCHEDULES) is not implemented", name);
  for (const char* name : defaults::kActivations)
    CHECK(activation_from_name(name) >= 0 && activation_name(activation_from_name(name)) == std::string(name),
          "activation %s (mlp.activations.ACTIVATIONS) is not implemented", name);
  for (const char* name : defaults::kLosses)
    CHECK(loss_from_name(name) >= 0 && loss_name(loss_from_name(name)) == std::string(name),
          "loss %s (mlp.losses.LOSSES) is not implemented", name);
  for (const char* name : defaults::kInitializers)
    CHECK(is_initializer(name), "initializer %s (mlp.initializers.INITIALIZERS) is not implemented", name);
  CHECK(!is_optimizer("lbfgs") && !is_schedule("linear") && activation_from_name("swish") < 0 && loss_from_name("hinge") < 0,
        "names outside the tables are refused");
  CHECK(is_optimizer(defaults::kOptimizer), "default optimizer %s", defaults::kOptimizer);
  CHECK(is_schedule(defaults::kSchedule), "default schedule %s", defaults::kSchedule);
  CHECK(std::string(defaults::kInit) == "auto" || is_initializer(defaults::kInit), "default init %s", defaults::kInit);
  const TrainConfig c;
  CHECK(c.activation >= 0 && std::string(activation_name(c.activation)) == defaults::kActivation, "default activation");
  CHECK(c.loss >= 0 && std::string(loss_name(c.loss)) == defaults::kLoss, "default loss");
  CHECK(c.epochs == defaults::kEpochs && c.dropout == defaults::kDropout && c.batch_size == defaults::kBatchSize &&
            c.hidden.size() == sizeof(defaults::kHiddenSizes) / sizeof(int) && c.hidden[0] == defaults::kHiddenSizes[0],
        "TrainConfig takes its defaults from train_defaults.hpp");
  CHECK(c.batch_norm == BATCH_NORM_NONE && c.batch_norm_momentum == defaults::kBatchNormMomentum,
        "batch norm off by default, its momentum mlp.options' (%g)", defaults::kBatchNormMomentum);
}

// test_units [DATA_DIR [TEST...]]: all tests, or only the named ones (e.g. `parallel gemm` under TSan).
int main(int argc, char** argv) {
  if (argc > 1) g_data_dir = argv[1];
  std::vector<std::string> only(argv + std::min(argc, 2), argv + argc);
  char tmpl[] = "/tmp/mlp_units_XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::printf("cannot create a temporary folder\n");
    return 1;
  }
  g_tmp = tmpl;
  const std::pair<const char*, void (*)()> tests[] = {
      {"gemm", test_gemm},           {"gradients", test_gradients}, {"losses", test_losses},
      {"optimizers", test_optimizers}, {"initializers", test_initializers}, {"inflate", test_inflate},
      {"npz", test_npz},             {"json", test_json},           {"model_file", test_model_file},
      {"training", test_training_smoke}, {"parallel", test_parallel}, {"defaults", test_defaults},
      {"batch_norm", test_batch_norm}};
  for (const std::string& name : only) {
    bool known = false;
    for (const auto& t : tests) known |= name == t.first;
    if (!known) {
      std::printf("unknown test '%s'\n", name.c_str());
      return 2;
    }
  }
  for (const auto& t : tests) {
    if (!only.empty() && std::find(only.begin(), only.end(), std::string(t.first)) == only.end()) continue;
    const int before = g_failures;
    try {
      t.second();
    } catch (const std::exception& e) {
      ++g_failures;
      std::printf("  FAIL %s threw: %s\n", t.first, e.what());
    }
    std::printf("[%s] %s\n", g_failures == before ? "ok" : "FAILED", t.first);
  }
  std::remove((g_tmp + "/roundtrip.npz").c_str());
  std::remove((g_tmp + "/model.npz").c_str());
  rmdir(g_tmp.c_str());
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
