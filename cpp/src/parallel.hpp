// parallel.hpp - a small fork-join thread pool (std::thread), used by the GEMM and the large
// element-wise loops.
//
// Why not OpenMP: libgomp's default wait policy spins for milliseconds at every barrier. When the
// machine is busy with other processes (a shared CI runner, tests running in parallel), a descheduled
// worker then stalls every parallel region for a scheduler time slice: on a 2-core machine under load,
// one small training run took 4.0 s with 2 OpenMP threads against 0.012 s with one. This pool spins
// only briefly, then yields, then sleeps, so a busy machine costs at most the single-threaded time.
#pragma once

#include <cstddef>

namespace mlp {

// Threads used by parallel_run (1 = everything on the calling thread). The default is
// $MLP_NUM_THREADS, else $OMP_NUM_THREADS, else the number of hardware threads.
int num_threads();
// n >= 1 sets the count; n <= 0 restores the default.
void set_num_threads(int n);

// Calls body(context, thread, nthreads) for thread = 0 .. nthreads-1, thread 0 on the caller, and
// returns when all have finished. nthreads is clamped to [1, num_threads()]. Nested calls (from inside a
// body) run serially on the calling thread. The body must not throw.
void parallel_run(int nthreads, void (*body)(void* context, int thread, int nthreads), void* context);

// Stops and joins the pool's worker threads (waiting for a job in flight); the next parallel_run starts
// them again. Not to be called from inside a body. The pool also stops by itself at exit.
void parallel_shutdown();

// Convenience for lambdas: f(thread, nthreads).
template <class F>
void parallel_run(int nthreads, const F& f) {
  parallel_run(
      nthreads,
      [](void* context, int thread, int n) { (*static_cast<const F*>(context))(thread, n); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// Splits [0, size) into nthreads contiguous chunks and runs f(begin, end) on each; serial below
// min_parallel elements.
template <class F>
void parallel_chunks(std::size_t size, std::size_t min_parallel, const F& f) {
  const int threads = size >= min_parallel ? num_threads() : 1;
  if (threads <= 1) {
    f(std::size_t(0), size);
    return;
  }
  parallel_run(threads, [&](int t, int nt) {
    const std::size_t chunk = (size + static_cast<std::size_t>(nt) - 1) / static_cast<std::size_t>(nt);
    const std::size_t begin = std::size_t(t) * chunk < size ? std::size_t(t) * chunk : size;
    const std::size_t end = begin + chunk < size ? begin + chunk : size;
    f(begin, end);
  });
}

}  // namespace mlp
