// bench_gemm: GFLOP/s of mlp::gemm on the shapes of one MLP training step (B1, B2 at batch 128).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gemm.hpp"

template <class T>
static double run(int M, int N, int K, bool ta, bool tb, int reps) {
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
  std::printf("kernel %s, threads %d\n", mlp::gemm_kernel_name(), mlp::num_threads());
  struct Shape { int M, N, K; bool ta, tb; const char* what; };
  const Shape shapes[] = {
      {128, 128, 784, false, false, "B1 fwd1   X@W1"},  {784, 128, 128, true, false, "B1 dW1  X^T@dZ"},
      {128, 64, 128, false, false, "B1 fwd2"},         {128, 128, 64, false, true, "B1 dA1 dZ@W2^T"},
      {128, 64, 128, true, false, "B1 dW2"},           {128, 1024, 784, false, false, "B2 fwd1"},
      {784, 1024, 128, true, false, "B2 dW1"},         {128, 1024, 1024, false, false, "B2 fwd2"},
      {1024, 1024, 128, true, false, "B2 dW2"},        {128, 1024, 1024, false, true, "B2 dA1"},
      {128, 10, 1024, false, false, "B2 fwd3"},        {512, 512, 512, false, false, "square 512"},
  };
  for (const Shape& s : shapes) {
    double tf = run<float>(s.M, s.N, s.K, s.ta, s.tb, 50);
    double td = run<double>(s.M, s.N, s.K, s.ta, s.tb, 20);
    double fl = 2.0 * s.M * s.N * s.K;
    std::printf("%-16s %5d %5d %5d  float %7.1f GFLOP/s (%7.1f us)  double %6.1f GFLOP/s\n", s.what, s.M,
                s.N, s.K, fl / tf * 1e-9, tf * 1e6, fl / td * 1e-9);
  }
}
