// gemm.hpp - cache-blocked, register-tiled matrix multiply (float and double).
//
// Row-major, contiguous operands; the leading dimensions follow from the shapes.
//   C[M x N] = alpha * op(A) @ op(B) + beta * C
//   op(A) is M x K: A is stored M x K, or K x M when trans_a (so op(A) = A^T).
//   op(B) is K x N: B is stored K x N, or N x K when trans_b.
// beta == 0 never reads C (so C may hold garbage or NaN).
// Uses the thread pool (parallel.hpp) for products big enough to pay for the fork and join.
#pragma once

#include "parallel.hpp"

namespace mlp {

template <class T>
void gemm(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b,
          T alpha = T(1), T beta = T(0));

// Slow, obviously-correct triple loop (double accumulation); for tests.
template <class T>
void gemm_reference(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b,
                    T alpha = T(1), T beta = T(0));

// Name of the micro-kernel the build selected, e.g. "avx512 float 12x32 double 12x16".
const char* gemm_kernel_name();

}  // namespace mlp
