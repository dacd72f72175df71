// The fused CNN engine's thread pool (glonet_cnn.cc). Work comes in phases of numbered units;
// the calling thread works too. Units are claimed from an atomic word holding
// (phase << 32 | next unit), so a helper that wakes late can never claim a unit of a newer phase
// with stale parameters, and the caller never waits for a helper that has not claimed anything:
// a thread the OS preempts (a busy machine) only delays the unit it holds.
//
// Included by glonet_cnn.cc inside its anonymous namespace; each helper thread first runs
// `onStart` (the engine makes oneDNN single-threaded there).

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define GLONET_PAUSE() _mm_pause()
#else
#define GLONET_PAUSE() std::this_thread::yield()
#endif

class Pool {
 public:
  using Fn = std::function<void(int, uint32_t)>;

  Pool(int threads, void (*onStart)()) : T_(std::max(1, threads)), onStart_(onStart) {
    for (int t = 1; t < T_; ++t) threads_.emplace_back([this, t] { helper(t); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true, std::memory_order_release);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& th : threads_) th.join();
  }

  int threads() const { return T_; }

  // Runs fn(thread, unit) for unit = 0..units-1; rethrows the first error.
  void run(uint32_t units, const Fn& fn) {
    if (units == 0) return;
    phase_ = (phase_ + 1) & 0xffffffffu;
    if (phase_ == 0) phase_ = 1;
    // Close the previous phase before its parameters change: a helper still in it holds a stale
    // claim word, whose compare-and-swap now fails; and no unit of the new phase can be claimed
    // (index ~0) until it is opened below, with fn_, units_ and done_ in place.
    claim_.store(phase_ << 32 | 0xffffffffu, std::memory_order_seq_cst);
    fn_ = &fn;
    units_.store(units, std::memory_order_relaxed);  // published by claim_'s release below
    error_.clear();
    done_.store(0, std::memory_order_relaxed);
    claim_.store(phase_ << 32, std::memory_order_release);
    if (T_ > 1 && units > 1) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        gen_.fetch_add(1, std::memory_order_release);
      }
      cv_.notify_all();
    }
    work(0);
    if (done_.load(std::memory_order_acquire) != units) {
      // Spin briefly, then sleep, so a preempted helper can have this core to finish its unit.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
      for (unsigned i = 0; done_.load(std::memory_order_acquire) != units; ++i) {
        GLONET_PAUSE();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lk(mu_);
          waiting_ = true;
          doneCv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == units; });
          waiting_ = false;
          break;
        }
      }
    }
    fn_ = nullptr;
    if (!error_.empty()) throw std::runtime_error(error_);
  }

 private:
  bool claim(uint64_t phase, uint32_t* idx) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((c >> 32) != phase) return false;
      const uint32_t i = (uint32_t)c;
      // A helper still in the previous phase may read units_ while run() writes it (atomic, so no
      // data race); its compare-and-swap then fails, since claim_ was closed first.
      if (i >= units_.load(std::memory_order_relaxed)) return false;
      if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        *idx = i;
        return true;
      }
    }
  }

  void work(int t) {
    const uint64_t phase = claim_.load(std::memory_order_acquire) >> 32;
    uint32_t idx;
    while (claim(phase, &idx)) {
      // A successful claim means the caller is still in `phase`: fn_ and units_ are current.
      try {
        (*fn_)(t, idx);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(errMu_);
        if (error_.empty()) error_ = e.what();
      } catch (...) {
        std::lock_guard<std::mutex> lk(errMu_);
        if (error_.empty()) error_ = "unknown error";
      }
      const uint32_t n = units_.load(std::memory_order_relaxed);
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n && t != 0) {
        std::lock_guard<std::mutex> lk(mu_);
        if (waiting_) doneCv_.notify_one();
      }
    }
  }

  void helper(int t) {
    if (onStart_) onStart_();
    uint64_t seen = 0;
    for (;;) {
      // Spin a little for the next phase (the update follows the chunks at once), then sleep.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      unsigned i = 0;
      while (gen_.load(std::memory_order_acquire) == seen) {
        GLONET_PAUSE();
        if ((++i & 63) == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
          break;
        }
      }
      seen = gen_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_acquire)) return;  // no lock per phase: set once, at destruction
      work(t);
    }
  }

  const int T_;
  void (*const onStart_)();
  std::vector<std::thread> threads_;
  std::mutex mu_, errMu_;
  std::condition_variable cv_, doneCv_;
  std::atomic<bool> stop_{false};
  bool waiting_ = false;
  std::atomic<uint64_t> gen_{0};
  std::atomic<uint64_t> claim_{0};
  std::atomic<uint32_t> done_{0};
  uint64_t phase_ = 0;
  const Fn* fn_ = nullptr;
  std::atomic<uint32_t> units_{0};
  std::string error_;
};
