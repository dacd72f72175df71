// Subnormal floats in every native engine: flushed to zero.
//
// A float below 1.2e-38 in magnitude (a subnormal) costs an Intel core about a hundred cycles per
// operation that reads or writes one; AMD cores, little. Networks without batch normalization
// (GloNet first of all) make them within a few epochs, in activations, gradients and Adam's
// moments, and a step then runs 4-11x slower for the rest of the run (measured on a Xeon: a
// 100-block GloNet went from 0.25 to 3.5 s an epoch at epoch 9). So every thread of an engine
// computes with the CPU's flush modes on:
//   x86      MXCSR.FTZ (bit 15: results that would be subnormal become 0) and MXCSR.DAZ (bit 6:
//            subnormal inputs read as 0)
//   arm64    FPCR.FZ (bit 24: both)
// The engines' helper threads turn them on when they start (thread_pool.h); the thread that calls
// in from JavaScript turns them on for the call with a FlushScope and restores its own state
// before it returns, so JavaScript's numbers keep IEEE semantics. Only values below 1.2e-38 change,
// and they become zero.
//
// Elsewhere (other architectures) nothing is set and `kFlushSupported` is false.
#pragma once

#include <cstdint>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <xmmintrin.h>
#define GLONET_FLUSH_X86 1
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#define GLONET_FLUSH_ARM64 1
#endif

namespace glonet_fp {

#if defined(GLONET_FLUSH_X86)
constexpr bool kFlushSupported = true;
constexpr uint64_t kFlushBits = 0x8040;  // FTZ | DAZ
inline uint64_t get_mode() { return _mm_getcsr(); }
inline void set_mode(uint64_t m) { _mm_setcsr(static_cast<unsigned int>(m)); }
#elif defined(GLONET_FLUSH_ARM64)
constexpr bool kFlushSupported = true;
constexpr uint64_t kFlushBits = uint64_t(1) << 24;  // FZ
inline uint64_t get_mode() {
  uint64_t v;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
  return v;
}
inline void set_mode(uint64_t m) { __asm__ __volatile__("msr fpcr, %0" : : "r"(m)); }
#else
constexpr bool kFlushSupported = false;
constexpr uint64_t kFlushBits = 0;
inline uint64_t get_mode() { return 0; }
inline void set_mode(uint64_t) {}
#endif

// Whether this thread computes with subnormals flushed (false where that cannot be set).
inline bool flushing() { return kFlushSupported && (get_mode() & kFlushBits) == kFlushBits; }

// For a thread that computes only for an engine (a pool's helper): flush from now on.
inline void flush_subnormals() {
  if (kFlushSupported) set_mode(get_mode() | kFlushBits);
}

// For the calling (JavaScript) thread: flush during one call into an engine, then restore.
class FlushScope {
 public:
  FlushScope() : saved_(get_mode()) {
    if (kFlushSupported && (saved_ & kFlushBits) != kFlushBits) set_mode(saved_ | kFlushBits);
  }
  ~FlushScope() {
    if (kFlushSupported) set_mode(saved_);  // also drops the exception flags the call raised
  }
  FlushScope(const FlushScope&) = delete;
  FlushScope& operator=(const FlushScope&) = delete;

 private:
  const uint64_t saved_;
};

}  // namespace glonet_fp
