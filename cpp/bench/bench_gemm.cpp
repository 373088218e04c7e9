// bench_gemm: GFLOP/s of the GEMM on the shapes of one MLP training step (B1, B2 at batch 128): the
// own GEMM, and the linked CBLAS beside it when the build has one (MLP_USE_CBLAS).
//
//   bench_gemm [threads]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gemm.hpp"

using mlp::GemmBackend;

template <class T>
static double run(GemmBackend backend, int M, int N, int K, bool ta, bool tb, int reps) {
  mlp::set_gemm_backend(backend);
  std::vector<T> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(K) * N), C(static_cast<size_t>(M) * N);
  for (size_t i = 0; i < A.size(); ++i) A[i] = T((i * 7 % 13) - 6) / T(7);
  for (size_t i = 0; i < B.size(); ++i) B[i] = T((i * 5 % 11) - 5) / T(5);
  mlp::gemm<T>(C.data(), A.data(), B.data(), M, N, K, ta, tb);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) mlp::gemm<T>(C.data(), A.data(), B.data(), M, N, K, ta, tb);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    if (s < best) best = s;
  }
  return best;
}

int main(int argc, char** argv) {
  if (argc > 1) mlp::set_num_threads(std::atoi(argv[1]));
  const bool blas = mlp::gemm_has_blas();
  std::printf("threads %d; %s%s%s\n", mlp::num_threads(), mlp::gemm_backend_description(GemmBackend::own).c_str(),
              blas ? " vs " : "", blas ? mlp::gemm_backend_description(GemmBackend::blas).c_str() : "");
  std::printf("GFLOP/s (best of 5)                    float own%s   double own%s\n", blas ? "   blas" : "",
              blas ? "   blas" : "");
  struct Shape { int M, N, K; bool ta, tb; const char* what; };
  const Shape shapes[] = {
      {128, 128, 784, false, false, "B1 fwd1   X@W1"},  {784, 128, 128, true, false, "B1 dW1  X^T@dZ"},
      {128, 64, 128, false, false, "B1 fwd2"},         {128, 128, 64, false, true, "B1 dA1 dZ@W2^T"},
      {128, 64, 128, true, false, "B1 dW2"},           {128, 10, 64, false, false, "B1 fwd3"},
      {128, 1024, 784, false, false, "B2 fwd1"},       {784, 1024, 128, true, false, "B2 dW1"},
      {128, 1024, 1024, false, false, "B2 fwd2"},      {1024, 1024, 128, true, false, "B2 dW2"},
      {128, 1024, 1024, false, true, "B2 dA1"},        {128, 10, 1024, false, false, "B2 fwd3"},
      {512, 512, 512, false, false, "square 512"},
  };
  double seconds[4] = {0, 0, 0, 0};  // per-step sums over the B1 shapes: own f32, blas f32 (B2 below)
  double b2[2] = {0, 0};
  for (const Shape& s : shapes) {
    const double fl = 2.0 * s.M * s.N * s.K;
    const double tf = run<float>(GemmBackend::own, s.M, s.N, s.K, s.ta, s.tb, 50);
    const double td = run<double>(GemmBackend::own, s.M, s.N, s.K, s.ta, s.tb, 20);
    const double bf = blas ? run<float>(GemmBackend::blas, s.M, s.N, s.K, s.ta, s.tb, 50) : 0.0;
    const double bd = blas ? run<double>(GemmBackend::blas, s.M, s.N, s.K, s.ta, s.tb, 20) : 0.0;
    std::printf("%-16s %5d %5d %5d  %7.1f", s.what, s.M, s.N, s.K, fl / tf * 1e-9);
    if (blas) std::printf(" %7.1f", fl / bf * 1e-9);
    std::printf("   %7.1f", fl / td * 1e-9);
    if (blas) std::printf(" %7.1f", fl / bd * 1e-9);
    std::printf("\n");
    if (s.what[0] == 'B' && s.what[1] == '1') { seconds[0] += tf; seconds[1] += bf; }
    if (s.what[0] == 'B' && s.what[1] == '2') { b2[0] += tf; b2[1] += bf; }
  }
  std::printf("float32 microseconds over the listed shapes: B1 own %.1f", seconds[0] * 1e6);
  if (blas) std::printf(", blas %.1f", seconds[1] * 1e6);
  std::printf("; B2 own %.1f", b2[0] * 1e6);
  if (blas) std::printf(", blas %.1f", b2[1] * 1e6);
  std::printf("\n");
  mlp::set_gemm_backend(GemmBackend::own);
}
