// gemm.hpp - cache-blocked, register-tiled matrix multiply (float and double).
//
// Row-major, contiguous operands; the leading dimensions follow from the shapes.
//   C[M x N] = alpha * op(A) @ op(B) + beta * C
//   op(A) is M x K: A is stored M x K, or K x M when trans_a (so op(A) = A^T).
//   op(B) is K x N: B is stored K x N, or N x K when trans_b.
// beta == 0 never reads C (so C may hold garbage or NaN).
// Two implementations: the own one below (the default; uses the thread pool, parallel.hpp, for
// products big enough to pay for the fork and join), and a CBLAS (cblas_sgemm/dgemm) when the build
// links one (MLP_USE_CBLAS). Which one runs is chosen at run time (set_gemm_backend, $MLP_GEMM).
#pragma once

#include <string>

#include "parallel.hpp"

namespace mlp {

enum class GemmBackend { own, blas };

// True when the build links a CBLAS (CMake option MLP_USE_CBLAS).
bool gemm_has_blas();
// The backend gemm() uses: $MLP_GEMM ("own" or "blas") when set and valid, else own.
GemmBackend gemm_backend();
// Throws std::invalid_argument for blas when the build has no CBLAS.
void set_gemm_backend(GemmBackend backend);
// "own" -> own, "blas" -> blas; throws std::invalid_argument (naming the choices) for anything else.
GemmBackend gemm_backend_from_name(const std::string& name);
// "own (avx512 float 12x32 double 12x16)" or "blas (OpenBLAS 0.3.21)".
std::string gemm_backend_description(GemmBackend backend);

template <class T>
void gemm(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b,
          T alpha = T(1), T beta = T(0));

// The own GEMM, whatever the selected backend (for the tests and the benchmark).
template <class T>
void gemm_own(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b,
              T alpha = T(1), T beta = T(0));

// Slow, obviously-correct triple loop (double accumulation); for tests.
template <class T>
void gemm_reference(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b,
                    T alpha = T(1), T beta = T(0));

// With $MLP_PROFILE set (to anything) gemm() adds its wall time to a running total, which
// `mlp-cpp train` reports per epoch (a time breakdown for bench/breakdown.py); unset, nothing is timed.
bool profiling();
// Seconds spent in gemm() so far in this process (0 unless profiling()).
double gemm_seconds();

// Name of the micro-kernel the build selected, e.g. "avx512 float 12x32 double 12x16".
const char* gemm_kernel_name();

}  // namespace mlp
