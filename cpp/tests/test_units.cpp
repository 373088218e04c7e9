// test_units: the pieces of the port, each against a slow reference or finite differences.
//   test_units [DATA_DIR]     (DATA_DIR: cpp/tests/data, for the gzip and NumPy-written fixtures)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "data.hpp"
#include "gemm.hpp"
#include "inflate.hpp"
#include "json.hpp"
#include "mlp.hpp"
#include "model.hpp"
#include "npz.hpp"
#include "parallel.hpp"

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
  test_gemm_type<float>("float");
  test_gemm_type<double>("double");
  // K = 0: C = beta * C
  std::vector<double> C = {1, 2, 3, 4};
  gemm<double>(C.data(), nullptr, nullptr, 2, 2, 0, false, false, 1.0, 0.5);
  CHECK(C[3] == 2.0, "K=0 must scale C by beta");
}

// ---- gradients vs central differences (double) ----------------------------------------------------

static double loss_of(Model<double>& m, const std::vector<double>& X, const std::vector<int32_t>& y, int n, double l2) {
  Workspace<double> ws(m.sizes, static_cast<size_t>(n), false);
  forward_pass(m, ws, X.data(), n);
  std::vector<std::vector<double>> g;
  return backward_pass(m, ws, X.data(), y.data(), n, l2, g);
}

static void test_gradients() {
  const std::vector<std::vector<int>> archs = {{4, 3}, {5, 6, 3}, {3, 5, 4, 4}};
  double worst_smooth = 0.0, worst_kink = 0.0;
  for (const auto& sizes : archs)
    for (int act = 0; act <= 4; ++act)
      for (int loss = 0; loss <= 1; ++loss)
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
          Workspace<double> ws(m.sizes, n, false);
          forward_pass(m, ws, X.data(), n);
          // Kink guard: skip ReLU-family cases whose pre-activations come within 1e-3 of 0.
          bool near_kink = false;
          if (act == RELU || act == LEAKY_RELU)
            for (const auto& out : ws.out)
              for (double a : out) near_kink |= a != 0.0 && std::fabs(a) < 1e-3 * (act == LEAKY_RELU ? 0.01 : 1.0);
          std::vector<std::vector<double>> grads;
          backward_pass(m, ws, X.data(), y.data(), n, l2, grads);
          const bool kinked = act == RELU || act == LEAKY_RELU;
          const double h = kinked ? 1e-6 : 1e-4;
          double num = 0.0, den = 0.0;
          for (size_t p = 0; p < grads.size(); ++p) {
            std::vector<double>& param = p % 2 == 0 ? m.W[p / 2] : m.b[p / 2];
            for (size_t i = 0; i < param.size(); ++i) {
              const double x0 = param[i];
              auto f = [&](double x) { param[i] = x; return loss_of(m, X, y, n, l2); };
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

int main(int argc, char** argv) {
  if (argc > 1) g_data_dir = argv[1];
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
      {"training", test_training_smoke}};
  for (const auto& t : tests) {
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
