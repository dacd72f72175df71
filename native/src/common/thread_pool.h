// The threads of every native engine (mlp/fused_mlp.cc, mlp/block_mlp.cc, cnn/cnn_engine.cc):
// the calling (JavaScript) thread plus persistent helpers, running phases of work units.
//
// A phase (e.g. the row tiles of a batch, the image chunks of a network segment, or the parameter
// chunks of an update) is a list of units claimed one at a time from an atomic word holding
// (phase id, next unit). It has two such lists, units [0, mid) and [mid, n): thread t claims from
// list t % 2 first, then from the other, so that with two threads consecutive units mostly run on
// the same thread (mid = n gives one list, claimed in order by everyone).
// The caller (thread 0) always works and finishes the phase as soon as every unit is done: it
// never waits for a helper that has not claimed anything, so a helper that the OS has preempted
// (a busy machine) costs nothing but its share of the speed-up. Helpers spin briefly between
// phases, then sleep. A unit that throws stops nothing else; run() rethrows the first error once
// the phase is over.
//
// Which thread runs which unit is left to chance: an engine that wants results independent of
// the thread count makes every unit's work and every sum over units a function of the unit
// index alone.
//
// Subnormal floats (float_mode.h): every helper computes with them flushed from its start; the
// engine's entry points hold a glonet_fp::FlushScope for the calling thread. flushStates() reports
// what each thread computes with, for the tests.
//
// Adaptive thread use (when the engine's caller did not fix the thread count): on a machine whose
// other cores are busy, helpers only add overhead. Every kPeriod steps the other choice (all
// threads / the calling thread alone) is timed for kProbe steps, per row, and kept if it is
// faster (tuneBefore / tuneAfter around each step).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "float_mode.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

namespace {

inline void cpu_relax() {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class ThreadPool {
 public:
  // One unit of the current phase, on thread `thread` (0 = the caller). `phase` is the phase's
  // id: never 0, different from the previous phase's (for caches a thread keeps per phase).
  using UnitFn = void (*)(void* ctx, int thread, uint32_t unit, uint64_t phase);

  // `onStart`, when given, runs first on every helper thread (the CNN engine makes oneDNN
  // single-threaded there).
  ThreadPool(int threads, bool adaptive, void (*onStart)() = nullptr)
      : T_(std::max(1, threads)), onStart_(onStart), helperFlushing_(new std::atomic<int>[T_]) {
    adaptive_ = adaptive && T_ > 1;
    sinceProbe_ = kPeriod - kFirstProbe;
    for (int t = 0; t < T_; ++t) helperFlushing_[t].store(-1, std::memory_order_relaxed);
    for (int t = 1; t < T_; ++t) threads_.emplace_back([this, t] { helperLoop(t); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true, std::memory_order_relaxed);
      wake_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& th : threads_) th.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return T_; }

  // Runs f(thread, unit) for units [0, n), claimed in order.
  template <class F>
  void runEach(uint32_t n, const F& f) {
    run(n, n, [](void* ctx, int t, uint32_t u, uint64_t) { (*static_cast<const F*>(ctx))(t, u); },
        const_cast<F*>(&f));
  }

  // Runs units [0, n) ([0, mid) and [mid, n) claimed separately) of fn to completion on this
  // thread plus whichever helpers join; rethrows the first error a unit threw.
  void run(uint32_t n, uint32_t mid, UnitFn fn, void* ctx) {
    if (n == 0) return;
    callerFlushing_ = glonet_fp::flushing() ? 1 : 0;
    // Close the previous phase's lists before anything of the new phase is written: a helper
    // that read a claim word of the previous phase and then this phase's larger units_ / mid_
    // could otherwise claim a unit past the previous phase's end (its CAS on the old word
    // succeeding), run it with this phase's state and count it in done_, which then never
    // equals n (the likely cause of a hang seen once, GloNet/ResNetv2 MLPs at depth 1000). A closed
    // word's index is past every bound, and a helper that sees the new bounds (acquire) sees
    // the closed words, so its CAS fails.
    const uint64_t closed = (phase_ << 32) | 0xffffffffu;
    claim_.store(closed, std::memory_order_seq_cst);
    claim1_.store(closed, std::memory_order_seq_cst);
    fn_ = fn;
    ctx_ = ctx;
    units_.store(n, std::memory_order_release);
    mid_.store(mid, std::memory_order_release);
    // Phase ids are 32-bit (they share claim_ with the unit index) and never 0.
    phase_ = (phase_ + 1) & 0xffffffffu;
    if (phase_ == 0) phase_ = 1;
    done_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    claim1_.store((phase_ << 32) | mid, std::memory_order_relaxed);
    claim_.store(phase_ << 32, std::memory_order_release);
    if (T_ > 1 && !single_ && n > 1) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        wake_.fetch_add(1, std::memory_order_release);
      }
      cv_.notify_all();
    }
    work(0);
    // Wait for units still running on helpers: spin briefly, then sleep, so that on a busy
    // machine a preempted helper can have this core back to finish its unit.
    if (done_.load(std::memory_order_acquire) != n) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      for (unsigned i = 0; done_.load(std::memory_order_acquire) != n; ++i) {
        cpu_relax();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lk(mu_);
          waiting_ = true;
          doneCv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == n; });
          waiting_ = false;
          break;
        }
      }
    }
    if (failed_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lk(errMu_);
      throw std::runtime_error(error_);
    }
  }

  // Whether each thread computes with subnormals flushed (float_mode.h): 1 yes, 0 no, -1 not known.
  // [0] is the calling thread during the last phase it ran; [t] is helper t, asked now (each
  // helper answers when it next wakes; one that does not answer within two seconds stays -1).
  std::vector<int> flushStates() {
    std::vector<int> out(T_, -1);
    out[0] = callerFlushing_;
    if (T_ > 1) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        for (int t = 1; t < T_; ++t) helperFlushing_[t].store(-1, std::memory_order_relaxed);
        reportAsk_.fetch_add(1, std::memory_order_release);
        wake_.fetch_add(1, std::memory_order_release);
      }
      cv_.notify_all();
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      for (int t = 1; t < T_; ++t) {
        while (helperFlushing_[t].load(std::memory_order_acquire) < 0 && std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        out[t] = helperFlushing_[t].load(std::memory_order_acquire);
      }
    }
    return out;
  }

  // Before a step: which choice (all threads, or the caller alone) runs it.
  void tuneBefore() {
    if (!adaptive_) return;
    if (probeLeft_ == 0 && sinceProbe_ >= kPeriod) {
      probeLeft_ = kProbe;
      probe_.clear();
    }
    single_ = probeLeft_ > 0 ? !preferSingle_ : preferSingle_;
  }

  // After a step: record its time per row; at the end of a probe, keep the faster choice.
  void tuneAfter(double msPerRow) {
    if (!adaptive_) return;
    if (probeLeft_ > 0) {
      if (probeLeft_ < kProbe) probe_.push_back(msPerRow);  // the first probe step warms up
      if (--probeLeft_ == 0) {
        sinceProbe_ = 0;
        if (!recent_.empty() && median(probe_) < 0.97 * median(recent_)) {
          preferSingle_ = !preferSingle_;
          recent_ = probe_;
        }
      }
      return;
    }
    ++sinceProbe_;
    recent_.push_back(msPerRow);
    if (recent_.size() > 8) recent_.erase(recent_.begin());
  }

 private:
  const int T_;
  void (*const onStart_)();
  // The current phase (written by thread 0 before it publishes the phase in claim_).
  UnitFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint32_t> units_{0};  // read by helpers before they claim, hence atomic
  std::atomic<uint32_t> mid_{0};    // units [0, mid_) are claimed from claim_, the rest from claim1_
  std::atomic<uint64_t> claim_{0};   // (phase << 32) | next unit of [0, mid_)
  std::atomic<uint64_t> claim1_{0};  // (phase << 32) | next unit of [mid_, units_)
  std::atomic<uint32_t> done_{0};
  uint64_t phase_ = 0;
  std::atomic<bool> failed_{false};  // a unit of the current phase threw; error_ says what
  std::mutex errMu_;
  std::string error_;

  // Float modes (flushStates): the caller's in its last phase; each helper's when asked.
  int callerFlushing_ = -1;
  std::unique_ptr<std::atomic<int>[]> helperFlushing_;
  std::atomic<uint64_t> reportAsk_{0};

  bool adaptive_ = false;
  bool single_ = false;  // this step runs on the calling thread only
  bool preferSingle_ = false;
  int sinceProbe_ = 0, probeLeft_ = 0;
  std::vector<double> recent_, probe_;
  static constexpr int kPeriod = 64, kProbe = 4, kFirstProbe = 6;

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, doneCv_;
  bool waiting_ = false;  // thread 0 sleeps on doneCv_ (guarded by mu_)
  std::atomic<uint64_t> wake_{0};
  // Read by a helper right after it sees wake_ move (published by that release), without the
  // mutex: the caller often still holds it then, and a helper blocking on it for every phase
  // costs a futex round trip per phase.
  std::atomic<bool> stop_{false};

  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
  }

  // Claims the next unit of list h ([0, mid_) or [mid_, units_)).
  bool claimUnit(uint64_t phase, int h, uint32_t* idx) {
    std::atomic<uint64_t>& word = h ? claim1_ : claim_;
    uint64_t c = word.load(std::memory_order_acquire);
    for (;;) {
      if ((c >> 32) != phase) return false;
      const uint32_t i = (uint32_t)c;
      // A bound of the next phase (acquire) implies the closed words are visible (see run):
      // then the CAS below fails, and the reloaded word is closed or of another phase.
      if (i >= (h ? units_ : mid_).load(std::memory_order_acquire)) return false;
      if (word.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        *idx = i;
        return true;
      }
    }
  }

  void work(int t) {
    const uint64_t phase = claim_.load(std::memory_order_acquire) >> 32;
    const int home = t & 1;
    uint32_t idx;
    while (claimUnit(phase, home, &idx) || claimUnit(phase, home ^ 1, &idx)) {
      // A successful claim means thread 0 is still in `phase`: fn_, ctx_ and whatever the
      // engine set up for the phase are stable.
      try {
        fn_(ctx_, t, idx, phase);
      } catch (const std::exception& e) {
        fail(e.what());
      } catch (...) {
        fail("unknown error");
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == units_.load(std::memory_order_relaxed) &&
          t != 0) {
        std::lock_guard<std::mutex> lk(mu_);
        if (waiting_) doneCv_.notify_one();
      }
    }
  }

  void fail(const char* what) {
    std::lock_guard<std::mutex> lk(errMu_);
    if (!failed_.load(std::memory_order_relaxed)) error_ = what;
    failed_.store(true, std::memory_order_release);
  }

  void helperLoop(int t) {
    glonet_fp::flush_subnormals();
    if (onStart_) onStart_();
    uint64_t seen = 0, asked = 0;
    for (;;) {
      uint64_t g = wake_.load(std::memory_order_acquire);
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(250);
      for (unsigned i = 0; g == seen; ++i) {
        cpu_relax();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] { return wake_.load(std::memory_order_acquire) != seen; });
        }
        g = wake_.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) return;
      const uint64_t ask = reportAsk_.load(std::memory_order_acquire);
      if (ask != asked) {
        asked = ask;
        helperFlushing_[t].store(glonet_fp::flushing() ? 1 : 0, std::memory_order_release);
      }
      work(t);
    }
  }
};

}  // namespace
