// gemm.cpp - BLIS-style GEMM: pack a KC-deep slice of op(B) into NR-wide column panels, MR-tall row
// panels of op(A) into an L2-sized block, and run an MR x NR micro-kernel whose accumulators live in
// vector registers. Threads take rectangles of tiles and pack what they need themselves.
//
// The micro-kernel is written with GCC/Clang vector extensions, so one source compiles to AVX-512,
// AVX2/FMA or SSE2 depending on -march; -ffp-contract=fast (set in CMakeLists.txt for this file)
// turns the multiply-adds into FMA instructions. Other compilers get a plain scalar kernel.
#include "gemm.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef MLP_HAVE_CBLAS
#include <cblas.h>
// OpenBLAS runs its own threads; when the library is OpenBLAS, its count follows num_threads().
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
#endif

namespace mlp {

namespace {

#if (defined(__GNUC__) || defined(__clang__)) && !defined(MLP_GEMM_SCALAR)
#define MLP_VECTOR_EXT 1
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr const char* kIsa = "avx512";
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr const char* kIsa = "avx2";
#elif defined(__ARM_NEON)
constexpr int kVecBytes = 16;
constexpr const char* kIsa = "neon";
#else
constexpr int kVecBytes = 16;
constexpr const char* kIsa = "sse2";
#endif
typedef float vfloat __attribute__((vector_size(kVecBytes)));
typedef double vdouble __attribute__((vector_size(kVecBytes)));
#else
constexpr int kVecBytes = sizeof(double);
constexpr const char* kIsa = "scalar";
#endif

// Register tile: MR rows x NV vectors (MR * NV accumulators): 32 vector registers with AVX-512, 16
// with AVX2/SSE2. 12 x 2 was the fastest of 12x2, 14x2, 8x3, 6x4 on the training shapes (Zen 5).
#if defined(MLP_GEMM_MR) && defined(MLP_GEMM_NV)  // tuning override
constexpr int kMR = MLP_GEMM_MR, kNV = MLP_GEMM_NV;
#elif defined(MLP_VECTOR_EXT) && defined(__AVX512F__)
constexpr int kMR = 12, kNV = 2;
#elif defined(MLP_VECTOR_EXT)
constexpr int kMR = 6, kNV = 2;
#else
constexpr int kMR = 4, kNV = 4;
#endif

template <class T>
struct Tile;

#ifdef MLP_VECTOR_EXT
template <>
struct Tile<float> {
  typedef vfloat V;
  static constexpr int L = kVecBytes / 4;
};
template <>
struct Tile<double> {
  typedef vdouble V;
  static constexpr int L = kVecBytes / 8;
};
#else
template <>
struct Tile<float> {
  typedef float V;
  static constexpr int L = 1;
};
template <>
struct Tile<double> {
  typedef double V;
  static constexpr int L = 1;
};
#endif

// Block sizes (elements). An A block (MC x KC) stays in L2, a B micro-panel (KC x NR) in L1.
template <class T>
struct Blocking {
  static constexpr int MR = kMR;
  static constexpr int NV = kNV;
  static constexpr int L = Tile<T>::L;
  static constexpr int NR = NV * L;
#ifdef MLP_GEMM_KC  // tuning override (in float elements)
  static constexpr int KC = MLP_GEMM_KC * 4 / int(sizeof(T));
#else
  static constexpr int KC = sizeof(T) == 4 ? 256 : 192;
#endif
  static constexpr int MC_PANELS = sizeof(T) == 4 ? 16 : 12;  // A block = MC_PANELS * MR rows
  static constexpr int NC = 4096;
};

// C[m x n] (m <= MR, n <= NR) = alpha * (Ap @ Bp) + beta * C, Ap: kc x MR packed, Bp: kc x NR packed.
// Element (i, j) of C is C[i * ldc + j] normally, C[j * ldc + i] when c_transposed.
template <class T>
void micro_kernel(int kc, const T* __restrict Ap, const T* __restrict Bp, T* __restrict C, int ldc,
                  bool c_transposed, int m, int n, T alpha, T beta) {
  typedef Blocking<T> Bk;
  typedef typename Tile<T>::V V;
  constexpr int MR = Bk::MR, NV = Bk::NV, L = Bk::L, NR = Bk::NR;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V{} + T(0);
  const V* __restrict bv = reinterpret_cast<const V*>(Bp);
  for (int k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = bv[j];
    const T* a = Ap + k * MR;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * b[j];
    }
    bv += NV;
  }
  if (m == MR && n == NR && !c_transposed) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        T* c = C + static_cast<std::ptrdiff_t>(i) * ldc + j * L;
        V r = acc[i][j] * alpha;
        if (beta != T(0)) {
          V old;
          std::memcpy(&old, c, sizeof(V));
          r += beta * old;
        }
        std::memcpy(c, &r, sizeof(V));
      }
    }
  } else {
    alignas(64) T tmp[MR][NR];
    std::memcpy(tmp, acc, sizeof(tmp));
    if (c_transposed) {
      for (int j = 0; j < n; ++j) {
        T* c = C + static_cast<std::ptrdiff_t>(j) * ldc;
        for (int i = 0; i < m; ++i) c[i] = beta == T(0) ? alpha * tmp[i][j] : alpha * tmp[i][j] + beta * c[i];
      }
      return;
    }
    for (int i = 0; i < m; ++i) {
      T* c = C + static_cast<std::ptrdiff_t>(i) * ldc;
      if (beta == T(0)) {
        for (int j = 0; j < n; ++j) c[j] = alpha * tmp[i][j];
      } else {
        for (int j = 0; j < n; ++j) c[j] = alpha * tmp[i][j] + beta * c[j];
      }
    }
  }
}

// Pack rows [row0, row0 + npanels*MR) and columns [k0, k0 + kc) of op(A) into MR-row panels,
// zero-padding rows >= M.
template <class T>
void pack_a(T* __restrict dst, const T* __restrict A, int lda, bool trans_a, int M, int row0,
            int npanels, int k0, int kc) {
  constexpr int MR = Blocking<T>::MR;
  for (int p = 0; p < npanels; ++p) {
    const int r0 = row0 + p * MR;
    const int rows = std::min(MR, M - r0);
    T* d = dst + static_cast<std::ptrdiff_t>(p) * kc * MR;
    if (trans_a) {  // op(A)(i, k) = A[k * lda + i]: rows of the panel are contiguous
      if (rows == MR) {
        for (int k = 0; k < kc; ++k)  // fixed-size copies: inlined vector moves, not libc calls
          std::memcpy(d + k * MR, A + static_cast<std::ptrdiff_t>(k0 + k) * lda + r0, MR * sizeof(T));
        continue;
      }
      for (int k = 0; k < kc; ++k) {
        const T* s = A + static_cast<std::ptrdiff_t>(k0 + k) * lda + r0;
        int i = 0;
        for (; i < rows; ++i) d[k * MR + i] = s[i];
        for (; i < MR; ++i) d[k * MR + i] = T(0);
      }
    } else {  // op(A)(i, k) = A[i * lda + k]
      int i = 0;
      for (; i < rows; ++i) {
        const T* s = A + static_cast<std::ptrdiff_t>(r0 + i) * lda + k0;
        for (int k = 0; k < kc; ++k) d[k * MR + i] = s[k];
      }
      for (; i < MR; ++i)
        for (int k = 0; k < kc; ++k) d[k * MR + i] = T(0);
    }
  }
}

// Pack NR-column panel q (columns col0 .. col0+NR) of rows [k0, k0 + kc) of op(B).
template <class T>
void pack_b_panel(T* __restrict d, const T* __restrict B, int ldb, bool trans_b, int N, int col0,
                  int k0, int kc) {
  constexpr int NR = Blocking<T>::NR;
  const int cols = std::min(NR, N - col0);
  if (!trans_b) {  // op(B)(k, j) = B[k * ldb + j]
    if (cols == NR) {
      for (int k = 0; k < kc; ++k)  // fixed-size copies: inlined vector moves, not libc calls
        std::memcpy(d + k * NR, B + static_cast<std::ptrdiff_t>(k0 + k) * ldb + col0, NR * sizeof(T));
      return;
    }
    for (int k = 0; k < kc; ++k) {
      const T* s = B + static_cast<std::ptrdiff_t>(k0 + k) * ldb + col0;
      int j = 0;
      for (; j < cols; ++j) d[k * NR + j] = s[j];
      for (; j < NR; ++j) d[k * NR + j] = T(0);
    }
  } else {  // op(B)(k, j) = B[j * ldb + k]
    int j = 0;
    for (; j < cols; ++j) {
      const T* s = B + static_cast<std::ptrdiff_t>(col0 + j) * ldb + k0;
      for (int k = 0; k < kc; ++k) d[k * NR + j] = s[k];
    }
    for (; j < NR; ++j)
      for (int k = 0; k < kc; ++k) d[k * NR + j] = T(0);
  }
}

template <class T>
using VecBuffer = std::vector<typename Tile<T>::V>;

template <class T>
T* grow(VecBuffer<T>& buf, std::size_t elements) {
  constexpr std::size_t L = Tile<T>::L;
  const std::size_t need = (elements + L - 1) / L;
  if (buf.size() < need) buf.resize(need);
  return reinterpret_cast<T*>(buf.data());
}

void scale_c(float* C, std::size_t count, float beta) {
  if (beta == 0.0f) std::fill(C, C + count, 0.0f);
  else for (std::size_t i = 0; i < count; ++i) C[i] *= beta;
}
void scale_c(double* C, std::size_t count, double beta) {
  if (beta == 0.0) std::fill(C, C + count, 0.0);
  else for (std::size_t i = 0; i < count; ++i) C[i] *= beta;
}

}  // namespace

const char* gemm_kernel_name() {
  static std::string name = std::string(kIsa) + " float " + std::to_string(kMR) + "x" +
                            std::to_string(Blocking<float>::NR) + " double " +
                            std::to_string(kMR) + "x" + std::to_string(Blocking<double>::NR);
  return name.c_str();
}

namespace {

template <class T>
struct GemmJob {
  T* C;
  const T* A;
  const T* B;
  int M, N, K, lda, ldb, ldc;
  bool trans_a, trans_b;
  bool c_transposed;  // computing C^T: element (i, j) of the product goes to C[j * ldc + i]
  T alpha, beta;
};

// C rows of micro-panels [m0, m1) x columns of micro-panels [n0, n1): the share of one thread. Each
// thread packs the parts of A and B it needs, so threads never wait for each other inside a product.
template <class T>
void gemm_block(const GemmJob<T>& j, int m0, int m1, int n0, int n1) {
  typedef Blocking<T> Bk;
  constexpr int MR = Bk::MR, NR = Bk::NR, KC = Bk::KC, MCP = Bk::MC_PANELS, NCP = Bk::NC / Bk::NR;
  if (m0 >= m1 || n0 >= n1) return;
  static thread_local VecBuffer<T> a_buf, b_buf;
  T* Ap = grow<T>(a_buf, static_cast<std::size_t>(MCP) * MR * KC);
  T* Bp = grow<T>(b_buf, static_cast<std::size_t>(std::min(NCP, n1 - n0)) * NR * KC);
  for (int pc = 0; pc < j.K; pc += KC) {
    const int kc = std::min(KC, j.K - pc);
    const T beta = pc == 0 ? j.beta : T(1);
    for (int nb = n0; nb < n1; nb += NCP) {
      const int nq = std::min(NCP, n1 - nb);
      for (int q = 0; q < nq; ++q)
        pack_b_panel(Bp + static_cast<std::ptrdiff_t>(q) * NR * kc, j.B, j.ldb, j.trans_b, j.N, (nb + q) * NR, pc, kc);
      for (int mb = m0; mb < m1; mb += MCP) {
        const int np = std::min(MCP, m1 - mb);
        pack_a(Ap, j.A, j.lda, j.trans_a, j.M, mb * MR, np, pc, kc);
        for (int q = 0; q < nq; ++q) {
          const int col = (nb + q) * NR;
          const int ncols = std::min(NR, j.N - col);
          const T* bq = Bp + static_cast<std::ptrdiff_t>(q) * NR * kc;
          for (int p = 0; p < np; ++p) {
            const int row = (mb + p) * MR;
            T* c = j.c_transposed ? j.C + static_cast<std::ptrdiff_t>(col) * j.ldc + row
                                  : j.C + static_cast<std::ptrdiff_t>(row) * j.ldc + col;
            micro_kernel<T>(kc, Ap + static_cast<std::ptrdiff_t>(p) * MR * kc, bq, c, j.ldc, j.c_transposed,
                            std::min(MR, j.M - row), ncols, j.alpha, beta);
          }
        }
      }
    }
  }
}

}  // namespace

template <class T>
void gemm_own(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b, T alpha, T beta) {
  typedef Blocking<T> Bk;
  constexpr int MR = Bk::MR, NR = Bk::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(C, static_cast<std::size_t>(M) * N, beta);
    return;
  }
  GemmJob<T> job{C, A, B, M, N, K, trans_a ? M : K, trans_b ? K : N, N, trans_a, trans_b, false, alpha, beta};
  // A narrow product (N much smaller than the NR-wide tile, e.g. the 10 outputs of the last layer)
  // wastes most of each tile; computing C^T = op(B)^T op(A)^T puts the narrow side on the MR-tall side.
  auto utilisation = [](int m, int n) {
    return (static_cast<double>(m) / (((m + MR - 1) / MR) * MR)) * (static_cast<double>(n) / (((n + NR - 1) / NR) * NR));
  };
  if (utilisation(N, M) > 1.5 * utilisation(M, N)) {
    // op(B)^T is N x K: B itself when trans_b (stored N x K), else B stored K x N read transposed.
    job = GemmJob<T>{C, B, A, N, M, K, trans_b ? K : N, trans_a ? M : K, N, !trans_b, !trans_a, true, alpha, beta};
  }
  M = job.M;
  N = job.N;
  const int mt = (M + MR - 1) / MR, nt = (N + NR - 1) / NR;  // micro-panels
  // Threads only for products big enough to amortise the fork and join (a few microseconds).
  int threads = static_cast<double>(M) * N * K < 2.0e5 ? 1 : num_threads();
  threads = std::min(threads, mt * nt);
  if (threads <= 1) {
    gemm_block(job, 0, mt, 0, nt);
    return;
  }
  // Split the tile grid tm x tn (tm * tn = threads), minimising the per-thread time estimated in
  // cycles per k: its tiles (MR x NR lanes, 2*kVecBytes/sizeof(T) lanes per cycle) plus packing
  // its rows of A and columns of B (about 4 elements per cycle).
  int tm = 1, tn = threads;
  double best = -1.0;
  for (int a = 1; a <= threads; ++a) {
    if (threads % a) continue;
    const int b = threads / a;
    const double ms = (mt + a - 1) / a, ns = (nt + b - 1) / b;
    const double cost = ms * ns * MR * NR / (2.0 * kVecBytes / sizeof(T)) + (ms * MR + ns * NR) / 4.0;
    if (best < 0 || cost < best) {
      best = cost;
      tm = a;
      tn = b;
    }
  }
  parallel_run(threads, [&](int t, int) {
    const int ti = t / tn, tj = t % tn;
    gemm_block(job, static_cast<int>(static_cast<long>(mt) * ti / tm), static_cast<int>(static_cast<long>(mt) * (ti + 1) / tm),
               static_cast<int>(static_cast<long>(nt) * tj / tn), static_cast<int>(static_cast<long>(nt) * (tj + 1) / tn));
  });
}

namespace {

GemmBackend default_backend() {
  const char* v = std::getenv("MLP_GEMM");
  return v && gemm_has_blas() && std::string(v) == "blas" ? GemmBackend::blas : GemmBackend::own;
}

std::atomic<int>& backend_slot() {
  static std::atomic<int> slot{static_cast<int>(default_backend())};
  return slot;
}

#ifdef MLP_HAVE_CBLAS
void blas_threads() {
  static std::atomic<int> current{0};
  const int n = num_threads();
  if (openblas_set_num_threads && current.exchange(n, std::memory_order_relaxed) != n) openblas_set_num_threads(n);
}
void blas_gemm(float* C, const float* A, const float* B, int M, int N, int K, bool ta, bool tb, float alpha,
               float beta) {
  blas_threads();
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              ta ? M : K, B, tb ? K : N, beta, C, N);
}
void blas_gemm(double* C, const double* A, const double* B, int M, int N, int K, bool ta, bool tb, double alpha,
               double beta) {
  blas_threads();
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              ta ? M : K, B, tb ? K : N, beta, C, N);
}
#endif

}  // namespace

bool gemm_has_blas() {
#ifdef MLP_HAVE_CBLAS
  return true;
#else
  return false;
#endif
}

GemmBackend gemm_backend() { return static_cast<GemmBackend>(backend_slot().load(std::memory_order_relaxed)); }

void set_gemm_backend(GemmBackend backend) {
  if (backend == GemmBackend::blas && !gemm_has_blas())
    throw std::invalid_argument("this build has no CBLAS (configure with -DMLP_USE_CBLAS=ON and a CBLAS such as "
                                "OpenBLAS installed); use the own GEMM");
  backend_slot().store(static_cast<int>(backend), std::memory_order_relaxed);
}

GemmBackend gemm_backend_from_name(const std::string& name) {
  if (name == "own") return GemmBackend::own;
  if (name == "blas") return GemmBackend::blas;
  throw std::invalid_argument("unknown GEMM '" + name + "'; choose own or blas");
}

std::string gemm_backend_description(GemmBackend backend) {
#ifdef MLP_HAVE_CBLAS
  if (backend == GemmBackend::blas) return std::string("blas (") + MLP_CBLAS_NAME + ")";
#endif
  (void)backend;
  return std::string("own (") + gemm_kernel_name() + ")";
}

namespace {
const bool kProfiling = std::getenv("MLP_PROFILE") != nullptr;
double gemm_seconds_total = 0.0;  // only the training thread calls gemm()

template <class T>
void gemm_selected(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b, T alpha,
                   T beta) {
#ifdef MLP_HAVE_CBLAS
  // BLAS requires K >= 1 and positive leading dimensions; the own GEMM handles the degenerate shapes.
  if (gemm_backend() == GemmBackend::blas && M > 0 && N > 0 && K > 0) {
    blas_gemm(C, A, B, M, N, K, trans_a, trans_b, alpha, beta);
    return;
  }
#endif
  gemm_own(C, A, B, M, N, K, trans_a, trans_b, alpha, beta);
}
}  // namespace

bool profiling() { return kProfiling; }
double gemm_seconds() { return gemm_seconds_total; }

template <class T>
void gemm(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b, T alpha, T beta) {
  if (!kProfiling) {
    gemm_selected(C, A, B, M, N, K, trans_a, trans_b, alpha, beta);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  gemm_selected(C, A, B, M, N, K, trans_a, trans_b, alpha, beta);
  gemm_seconds_total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class T>
void gemm_reference(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b,
                    T alpha, T beta) {
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double s = 0.0;
      for (int k = 0; k < K; ++k) {
        const double a = trans_a ? A[static_cast<std::ptrdiff_t>(k) * M + i]
                                 : A[static_cast<std::ptrdiff_t>(i) * K + k];
        const double b = trans_b ? B[static_cast<std::ptrdiff_t>(j) * K + k]
                                 : B[static_cast<std::ptrdiff_t>(k) * N + j];
        s += a * b;
      }
      T& c = C[static_cast<std::ptrdiff_t>(i) * N + j];
      c = beta == T(0) ? static_cast<T>(alpha * s) : static_cast<T>(alpha * s + beta * c);
    }
  }
}

template void gemm<float>(float*, const float*, const float*, int, int, int, bool, bool, float, float);
template void gemm<double>(double*, const double*, const double*, int, int, int, bool, bool, double,
                           double);
template void gemm_own<float>(float*, const float*, const float*, int, int, int, bool, bool, float, float);
template void gemm_own<double>(double*, const double*, const double*, int, int, int, bool, bool, double,
                               double);
template void gemm_reference<float>(float*, const float*, const float*, int, int, int, bool, bool,
                                    float, float);
template void gemm_reference<double>(double*, const double*, const double*, int, int, int, bool,
                                     bool, double, double);

}  // namespace mlp
