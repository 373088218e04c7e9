// parallel.cpp - the fork-join pool: persistent workers that spin briefly, then yield, then sleep on a
// condition variable; a job is published by bumping a generation counter.
#include "parallel.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLP_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define MLP_PAUSE() asm volatile("yield")
#else
#define MLP_PAUSE() ((void)0)
#endif

namespace mlp {

namespace {

int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n >= 1 && n <= 1024) ? static_cast<int>(n) : 0;
}

int default_threads() {
  int n = env_threads("MLP_NUM_THREADS");
  if (!n) n = env_threads("OMP_NUM_THREADS");
  if (!n) n = static_cast<int>(std::thread::hardware_concurrency());
  return n >= 1 ? n : 1;
}

std::atomic<int> g_threads{0};  // 0: default

// How long an idle thread busy-waits before yielding, and before sleeping.
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr auto kYield = std::chrono::microseconds(2000);
// Late workers. Running a job's shares serially costs about nthreads x the caller's own share; the
// pool keeps decaying sums (weight 1/64 per job) of the caller's own time and of its wait at the join.
// When the waits outweigh the time the other threads saved (wait > (nthreads - 1) x own: workers
// descheduled by other processes on an oversubscribed machine), jobs run serially for a back-off
// period that starts at kBackoffMin and doubles while it keeps happening (up to kBackoffMax); kCalm
// quick joins in a row reset it. Results do not change: the same shares run, one after the other.
constexpr int kCalm = 256;
constexpr auto kBackoffMin = std::chrono::milliseconds(20);
constexpr auto kBackoffMax = std::chrono::milliseconds(1280);

class Pool {
 public:
  ~Pool() { shutdown(); }

  // Joins every worker; the next run() starts new ones.
  void shutdown() {
    std::lock_guard<std::mutex> serial(run_mutex_);
    if (workers_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
  }

  void run(int nthreads, void (*body)(void*, int, int), void* context) {
    std::lock_guard<std::mutex> serial(run_mutex_);  // one job at a time
    ensure_workers(nthreads - 1);
    body_ = body;
    context_ = context;
    active_ = nthreads;
    done_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes body_, context_, active_
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      wake_.notify_all();
    }
    in_job_ = true;
    const auto start = std::chrono::steady_clock::now();
    body(context, 0, nthreads);
    const auto own_done = std::chrono::steady_clock::now();
    in_job_ = false;
    // Join: workers with an index >= nthreads - 1 skip the job but still count as done.
    const int expected = static_cast<int>(workers_.size());
    wait_until([&] { return done_.load(std::memory_order_acquire) == expected; });
    const auto joined = std::chrono::steady_clock::now();
    const double own = std::chrono::duration<double>(own_done - start).count();
    const double wait = std::chrono::duration<double>(joined - own_done).count();
    own_sum_ = own_sum_ * (63.0 / 64.0) + own * (nthreads - 1);
    wait_sum_ = wait_sum_ * (63.0 / 64.0) + wait;
    // Judge only after a few dozen jobs: the first join after a pause pays for waking sleeping workers.
    if (++jobs_ >= 32 && wait_sum_ > own_sum_ + 100e-6) {
      serial_until_.store((joined + backoff_).time_since_epoch().count(), std::memory_order_relaxed);
      backoff_ = std::min(2 * backoff_, std::chrono::duration_cast<std::chrono::steady_clock::duration>(kBackoffMax));
      own_sum_ = wait_sum_ = 0.0;
      calm_ = jobs_ = 0;
    } else if (wait < 0.5 * own && ++calm_ >= kCalm) {
      backoff_ = kBackoffMin;
    }
  }

  // True while the pool is backing off after late workers.
  bool backing_off() const {
    const auto until = serial_until_.load(std::memory_order_relaxed);
    return until != 0 && std::chrono::steady_clock::now().time_since_epoch().count() < until;
  }

  static thread_local bool in_job_;

 private:
  template <class Pred>
  static void wait_until(const Pred& ready) {
    const auto start = std::chrono::steady_clock::now();
    for (unsigned spins = 0; !ready(); ++spins) {
      if ((spins & 63) == 63 && std::chrono::steady_clock::now() - start > kSpin) std::this_thread::yield();
      else MLP_PAUSE();
    }
  }

  void ensure_workers(int needed) {
    while (static_cast<int>(workers_.size()) < needed) {
      // A new worker must not take a job published before it existed: it starts from the current generation.
      const int index = static_cast<int>(workers_.size());
      const uint64_t seen = generation_.load();
      workers_.emplace_back([this, index, seen] { worker(index + 1, seen); });
    }
  }

  void worker(int thread, uint64_t seen) {
    in_job_ = true;  // nested parallel_run calls from a body run serially
    for (;;) {
      // Wait for a new generation: spin, then yield, then sleep.
      const auto start = std::chrono::steady_clock::now();
      uint64_t g;
      for (unsigned spins = 0;; ++spins) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen) break;
        if ((spins & 63) != 63) {
          MLP_PAUSE();
          continue;
        }
        const auto waited = std::chrono::steady_clock::now() - start;
        if (waited < kSpin) continue;
        if (waited < kYield) {
          std::this_thread::yield();
          continue;
        }
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
        }
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = g;
      if (stop_) return;
      if (thread < active_) body_(context_, thread, active_);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> done_{0}, sleepers_{0};
  void (*body_)(void*, int, int) = nullptr;
  void* context_ = nullptr;
  int active_ = 1;
  bool stop_ = false;
  int calm_ = 0, jobs_ = 0;
  double own_sum_ = 0.0, wait_sum_ = 0.0;
  std::chrono::steady_clock::duration backoff_ = kBackoffMin;
  std::atomic<std::chrono::steady_clock::rep> serial_until_{0};
};

thread_local bool Pool::in_job_ = false;

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  static const int fallback = default_threads();
  return fallback;
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

void parallel_shutdown() {
  if (!Pool::in_job_) pool().shutdown();
}

void parallel_run(int nthreads, void (*body)(void*, int, int), void* context) {
  const int limit = num_threads();
  if (nthreads > limit) nthreads = limit;
  if (nthreads <= 1 || Pool::in_job_ || pool().backing_off()) {
    for (int t = 0; t < (nthreads < 1 ? 1 : nthreads); ++t) body(context, t, nthreads < 1 ? 1 : nthreads);
    return;
  }
  try {
    pool().run(nthreads, body, context);
  } catch (const std::system_error&) {  // no more threads could be started: carry on serially
    set_num_threads(1);
    for (int t = 0; t < nthreads; ++t) body(context, t, nthreads);
  }
}

}  // namespace mlp
