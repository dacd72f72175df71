// Fused training engine for the GloNet-ResNet20 family (src/models/resnet20.ts, arch 'glonet';
// the `CNN` class of peers/pytorch_peer.py): one call runs a whole SGD-with-momentum step.
//
//   stem     conv3x3 c -> 16, no bias, linear                           A_0
//   block k  conv3x3 + bias + ReLU, k = 1..6n; 16/32/64 channels; stride 2 (1 pixel of zero
//            padding on every side, PyTorch padding=1) entering stages 2 and 3     A_k
//   GloNet   S = sum_k pad64(mean_hw(A_k))                              (batch x 64)
//   head     logits = S Wh + bh;  loss = mean softmax cross-entropy + l2 * sum(kernel^2)
//   update   TF.js tf.train.momentum: acc = momentum * acc + g;  w = (-lr) * acc + w
//
// Convolutions (forward with fused bias + ReLU, backward data, backward weights with the bias
// gradient) are oneDNN primitives: its JIT kernels pick the CPU's ISA at run time (AVX-512, AVX2,
// SSE4.1), so nothing here is compiled for a particular machine. The input batch is read in place
// (NHWC, the layout of TF.js). Activations are NHWC too, except on AVX-512 CPUs, where they are
// oneDNN's native nChw16c (16-channel blocks; for 16 channels the same bytes as NHWC). Kernels
// stay in the TF.js layout [kh, kw, in, out] (oneDNN's hwio) and are reordered into each
// primitive's preferred layout once per call (a few hundred thousand floats).
//
// Forward convolutions are always direct: the ReLU masks (A > 0) then come from exact zeros, as
// in TF.js. With algorithm 0 (the default) the backward passes of the stride-1 block convs use
// oneDNN's Winograd F(4x4, 3x3) kernels where it has them (AVX-512): about 1.5x faster there,
// linear in the gradient (no masks), rounding ~1e-6 relative. A Winograd forward is not used: it
// turns exact zeros (MNIST's background, zero biases) into +-1e-9 and so flips ReLU masks.
//
// Everything else (pooling, the GloNet sum, the head, the softmax, the ReLU and pooling backward,
// the update) is plain C++ below, with AVX-512 / SSE2 versions of the element-wise loops.
//
// Parallelism is over the batch, not inside a convolution: the batch is cut into chunks of
// `chunk` rows (16 by default), and each worker thread runs the full forward and backward pass of
// the chunks it claims with single-threaded primitives, writing the chunk's weight gradient to a
// slot of its own. The update then sums the slots in chunk order (split across the threads by
// parameter range). Hence:
//   - no barrier inside the step: a thread the OS preempts (a busy machine) only delays the chunk
//     it holds, and the others take the remaining chunks;
//   - results do not depend on the thread count: 1 or 8 threads give bit-identical weights.
// oneDNN built with the OpenMP runtime (Debian's libdnnl) is told to use one thread
// (omp_set_num_threads(1)) on every thread that creates or runs primitives, so no OpenMP team is
// ever started (libgomp's functions are found with dlsym: no OpenMP flags at build time).

#include <node_api.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(DNNL_CPU_RUNTIME) && defined(DNNL_RUNTIME_OMP) && DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
#define GLONET_OMP 1
#include <dlfcn.h>
#else
#define GLONET_OMP 0
#endif

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define GLONET_PAUSE() _mm_pause()
#else
#define GLONET_PAUSE() std::this_thread::yield()
#endif

namespace {

namespace dn = dnnl;
using tag = dn::memory::format_tag;
using dt = dn::memory::data_type;

// ---------------------------------------------------------------------------------------------
// Utilities

struct AlignedDeleter {
  void operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }
};
using FloatBuf = std::unique_ptr<float[], AlignedDeleter>;

FloatBuf alloc_floats(size_t count) {
  size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
  if (bytes == 0) bytes = 64;
  void* p = ::operator new(bytes, std::align_val_t(64));  // throws std::bad_alloc
  std::memset(p, 0, bytes);
  return FloatBuf(static_cast<float*>(p));
}

// A growable aligned buffer (grown only between phases, by the calling thread).
struct Buffer {
  FloatBuf p;
  size_t floats = 0;
  void reserveBytes(size_t bytes) {
    const size_t n = (bytes + sizeof(float) - 1) / sizeof(float);
    if (n > floats) {
      p = alloc_floats(n);
      floats = n;
    }
  }
  float* get() const { return p.get(); }
};

// oneDNN with the OpenMP runtime runs a primitive on omp_get_max_threads() threads of the calling
// thread; one is what every thread of this engine wants. The OpenMP functions are looked up in
// the process (libdnnl has loaded the OpenMP library), so this addon needs no OpenMP link flags.
#if GLONET_OMP
struct OmpApi {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
  OmpApi() {
    set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
    if (!set || !get) set = nullptr, get = nullptr;
  }
};
const OmpApi& omp_api() {
  static const OmpApi api;
  return api;
}
#endif

void single_threaded_onednn() {
#if GLONET_OMP
  if (omp_api().set) omp_api().set(1);
#endif
}

struct OneThreadScope {  // on the calling (JavaScript) thread: restore the setting afterwards
#if GLONET_OMP
  int prev = 0;
  OneThreadScope() {
    if (omp_api().get) {
      prev = omp_api().get();
      omp_api().set(1);
    }
  }
  ~OneThreadScope() {
    if (omp_api().set && prev > 0) omp_api().set(prev);
  }
#endif
};

// ----- oneDNN 2.x / 3.x primitive descriptors -----

dn::primitive_attr make_attr(bool relu) {
  dn::primitive_attr a;
  a.set_scratchpad_mode(dn::scratchpad_mode::user);
  if (relu) {
    dn::post_ops po;
#if DNNL_VERSION_MAJOR >= 3
    po.append_eltwise(dn::algorithm::eltwise_relu, 0.f, 0.f);
#else
    po.append_eltwise(1.f, dn::algorithm::eltwise_relu, 0.f, 0.f);
#endif
    a.set_post_ops(po);
  }
  return a;
}

struct Geometry {
  dn::memory::dims strides, padL, padR;
};

dn::convolution_forward::primitive_desc fwd_pd(const dn::engine& eng, dn::algorithm al,
                                               const dn::memory::desc& src, const dn::memory::desc& w,
                                               const dn::memory::desc* b, const dn::memory::desc& dst,
                                               const Geometry& g, bool relu) {
  const auto attr = make_attr(relu);
  const auto pk = dn::prop_kind::forward_training;
#if DNNL_VERSION_MAJOR >= 3
  if (b) return {eng, pk, al, src, w, *b, dst, g.strides, g.padL, g.padR, attr};
  return {eng, pk, al, src, w, dst, g.strides, g.padL, g.padR, attr};
#else
  if (b) return {dn::convolution_forward::desc(pk, al, src, w, *b, dst, g.strides, g.padL, g.padR), attr, eng};
  return {dn::convolution_forward::desc(pk, al, src, w, dst, g.strides, g.padL, g.padR), attr, eng};
#endif
}

dn::convolution_backward_data::primitive_desc bwd_data_pd(
    const dn::engine& eng, dn::algorithm al, const dn::memory::desc& diffSrc,
    const dn::memory::desc& w, const dn::memory::desc& diffDst, const Geometry& g,
    const dn::convolution_forward::primitive_desc& hint) {
  const auto attr = make_attr(false);
#if DNNL_VERSION_MAJOR >= 3
  return {eng, al, diffSrc, w, diffDst, g.strides, g.padL, g.padR, hint, attr};
#else
  return {dn::convolution_backward_data::desc(al, diffSrc, w, diffDst, g.strides, g.padL, g.padR), attr, eng, hint};
#endif
}

dn::convolution_backward_weights::primitive_desc bwd_weights_pd(
    const dn::engine& eng, dn::algorithm al, const dn::memory::desc& src,
    const dn::memory::desc& diffW, const dn::memory::desc* diffB, const dn::memory::desc& diffDst,
    const Geometry& g, const dn::convolution_forward::primitive_desc& hint) {
  const auto attr = make_attr(false);
#if DNNL_VERSION_MAJOR >= 3
  if (diffB) return {eng, al, src, diffW, *diffB, diffDst, g.strides, g.padL, g.padR, hint, attr};
  return {eng, al, src, diffW, diffDst, g.strides, g.padL, g.padR, hint, attr};
#else
  if (diffB) {
    return {dn::convolution_backward_weights::desc(al, src, diffW, *diffB, diffDst, g.strides, g.padL, g.padR), attr, eng, hint};
  }
  return {dn::convolution_backward_weights::desc(al, src, diffW, diffDst, g.strides, g.padL, g.padR), attr, eng, hint};
#endif
}

dn::reorder::primitive_desc reorder_pd(const dn::engine& eng, const dn::memory::desc& from,
                                       const dn::memory::desc& to) {
  dn::primitive_attr attr;
  attr.set_scratchpad_mode(dn::scratchpad_mode::user);
  return dn::reorder::primitive_desc(eng, from, eng, to, attr);
}

// AVX-512 machines get 16-channel blocked activations (nChw16c, oneDNN's native layout there,
// which its Winograd kernels require); others keep NHWC, which oneDNN's AVX2 kernels read.
bool isa_is_avx512() {
  switch (static_cast<int>(dn::get_effective_cpu_isa())) {
    case dnnl_cpu_isa_avx512_core:
    case dnnl_cpu_isa_avx512_core_vnni:
    case dnnl_cpu_isa_avx512_core_bf16:
    case dnnl_cpu_isa_avx512_core_amx:
      return true;
    default:
      return false;
  }
}

const char* isa_name() {
  switch (static_cast<int>(dn::get_effective_cpu_isa())) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels over activations of C channels stored in blocks of B channels:
// element (image i, block cb, pixel p, channel j) is at ((i * C/B + cb) * hw + p) * B + j.
// B = C is NHWC; B = 16 is oneDNN's nChw16c. B is 16, 32 or 64 in this network, so the SIMD
// versions work on whole vectors. AVX-512 versions are compiled for that target only inside
// their functions and chosen at run time; SSE2 is the x86-64 baseline.

// S[i][c] += scale * sum_p A[i][p][c]   (S rows are 64 wide)
void pool_add_portable(const float* A, int m, int hw, int C, int B, float scale, float* S) {
  float acc[64];
  for (int i = 0; i < m; ++i) {
    for (int cb = 0; cb < C / B; ++cb) {
      const float* a = A + ((size_t)i * C + (size_t)cb * B) * hw;
      for (int j = 0; j < B; ++j) acc[j] = 0.f;
      for (int p = 0; p < hw; ++p) {
        for (int j = 0; j < B; ++j) acc[j] += a[(size_t)p * B + j];
      }
      float* s = S + (size_t)i * 64 + cb * B;
      for (int j = 0; j < B; ++j) s[j] += acc[j] * scale;
    }
  }
}

// Gradient at a block's pre-activation, in place: G = (A > 0) * (G + scale * dS broadcast over
// the pixels); without `accumulate` G's old contents are ignored (the last block, whose output
// feeds only the pooling).
void relu_pool_bwd_portable(float* G, bool accumulate, const float* A, const float* dS, int m,
                            int hw, int C, int B, float scale) {
  float d[64];
  for (int i = 0; i < m; ++i) {
    for (int cb = 0; cb < C / B; ++cb) {
      for (int j = 0; j < B; ++j) d[j] = dS[(size_t)i * 64 + cb * B + j] * scale;
      const size_t base = ((size_t)i * C + (size_t)cb * B) * hw;
      float* g = G + base;
      const float* a = A + base;
      for (int p = 0; p < hw; ++p) {
        for (int j = 0; j < B; ++j) {
          const size_t o = (size_t)p * B + j;
          const float v = (accumulate ? g[o] : 0.f) + d[j];
          g[o] = a[o] > 0.f ? v : 0.f;
        }
      }
    }
  }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define GLONET_SIMD 1

// NV vectors of 4 (SSE) or 16 (AVX-512) floats per block row, unrolled by the template.
template <int NV>
void pool_add_sse_t(const float* A, int m, int hw, int C, float scale, float* S) {
  constexpr int B = NV * 4;
  const __m128 sc = _mm_set1_ps(scale);
  for (int i = 0; i < m; ++i) {
    for (int cb = 0; cb < C / B; ++cb) {
      const float* a = A + ((size_t)i * C + (size_t)cb * B) * hw;
      __m128 acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = _mm_setzero_ps();
      for (int p = 0; p < hw; ++p) {
        for (int v = 0; v < NV; ++v) acc[v] = _mm_add_ps(acc[v], _mm_loadu_ps(a + (size_t)p * B + 4 * v));
      }
      float* s = S + (size_t)i * 64 + cb * B;
      for (int v = 0; v < NV; ++v) _mm_storeu_ps(s + 4 * v, _mm_add_ps(_mm_loadu_ps(s + 4 * v), _mm_mul_ps(acc[v], sc)));
    }
  }
}

template <int NV>
void relu_pool_bwd_sse_t(float* G, bool accumulate, const float* A, const float* dS, int m, int hw,
                         int C, float scale) {
  constexpr int B = NV * 4;
  const __m128 zero = _mm_setzero_ps();
  for (int i = 0; i < m; ++i) {
    for (int cb = 0; cb < C / B; ++cb) {
      __m128 d[NV];
      for (int v = 0; v < NV; ++v) d[v] = _mm_mul_ps(_mm_loadu_ps(dS + (size_t)i * 64 + cb * B + 4 * v), _mm_set1_ps(scale));
      const size_t base = ((size_t)i * C + (size_t)cb * B) * hw;
      float* g = G + base;
      const float* a = A + base;
      for (int p = 0; p < hw; ++p) {
        for (int v = 0; v < NV; ++v) {
          const size_t o = (size_t)p * B + 4 * v;
          const __m128 val = accumulate ? _mm_add_ps(_mm_loadu_ps(g + o), d[v]) : d[v];
          _mm_storeu_ps(g + o, _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(a + o), zero), val));
        }
      }
    }
  }
}

template <int NV>
__attribute__((target("avx512f"))) void pool_add_avx512_t(const float* A, int m, int hw, int C,
                                                          float scale, float* S) {
  constexpr int B = NV * 16;
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < m; ++i) {
    for (int cb = 0; cb < C / B; ++cb) {
      const float* a = A + ((size_t)i * C + (size_t)cb * B) * hw;
      __m512 acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
      for (int p = 0; p < hw; ++p) {
        for (int v = 0; v < NV; ++v) acc[v] = _mm512_add_ps(acc[v], _mm512_loadu_ps(a + (size_t)p * B + 16 * v));
      }
      float* s = S + (size_t)i * 64 + cb * B;
      for (int v = 0; v < NV; ++v) {
        _mm512_storeu_ps(s + 16 * v, _mm512_add_ps(_mm512_loadu_ps(s + 16 * v), _mm512_mul_ps(acc[v], sc)));
      }
    }
  }
}

template <int NV>
__attribute__((target("avx512f"))) void relu_pool_bwd_avx512_t(float* G, bool accumulate, const float* A,
                                                               const float* dS, int m, int hw, int C,
                                                               float scale) {
  constexpr int B = NV * 16;
  const __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < m; ++i) {
    for (int cb = 0; cb < C / B; ++cb) {
      __m512 d[NV];
      for (int v = 0; v < NV; ++v) {
        d[v] = _mm512_mul_ps(_mm512_loadu_ps(dS + (size_t)i * 64 + cb * B + 16 * v), _mm512_set1_ps(scale));
      }
      const size_t base = ((size_t)i * C + (size_t)cb * B) * hw;
      float* g = G + base;
      const float* a = A + base;
      for (int p = 0; p < hw; ++p) {
        for (int v = 0; v < NV; ++v) {
          const size_t o = (size_t)p * B + 16 * v;
          const __m512 val = accumulate ? _mm512_add_ps(_mm512_loadu_ps(g + o), d[v]) : d[v];
          const __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(a + o), zero, _CMP_GT_OQ);
          _mm512_storeu_ps(g + o, _mm512_maskz_mov_ps(pos, val));
        }
      }
    }
  }
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#else
#define GLONET_SIMD 0
#endif

void pool_add(const float* A, int m, int hw, int C, int B, float scale, float* S) {
#if GLONET_SIMD
  if (has_avx512()) {
    if (B == 16) return pool_add_avx512_t<1>(A, m, hw, C, scale, S);
    if (B == 32) return pool_add_avx512_t<2>(A, m, hw, C, scale, S);
    if (B == 64) return pool_add_avx512_t<4>(A, m, hw, C, scale, S);
  }
  if (B == 16) return pool_add_sse_t<4>(A, m, hw, C, scale, S);
  if (B == 32) return pool_add_sse_t<8>(A, m, hw, C, scale, S);
  if (B == 64) return pool_add_sse_t<16>(A, m, hw, C, scale, S);
#endif
  pool_add_portable(A, m, hw, C, B, scale, S);
}

void relu_pool_bwd(float* G, bool accumulate, const float* A, const float* dS, int m, int hw, int C,
                   int B, float scale) {
#if GLONET_SIMD
  if (has_avx512()) {
    if (B == 16) return relu_pool_bwd_avx512_t<1>(G, accumulate, A, dS, m, hw, C, scale);
    if (B == 32) return relu_pool_bwd_avx512_t<2>(G, accumulate, A, dS, m, hw, C, scale);
    if (B == 64) return relu_pool_bwd_avx512_t<4>(G, accumulate, A, dS, m, hw, C, scale);
  }
  if (B == 16) return relu_pool_bwd_sse_t<4>(G, accumulate, A, dS, m, hw, C, scale);
  if (B == 32) return relu_pool_bwd_sse_t<8>(G, accumulate, A, dS, m, hw, C, scale);
  if (B == 64) return relu_pool_bwd_sse_t<16>(G, accumulate, A, dS, m, hw, C, scale);
#endif
  relu_pool_bwd_portable(G, accumulate, A, dS, m, hw, C, B, scale);
}

// ---------------------------------------------------------------------------------------------
// Thread pool: the calling thread works too; units are claimed from an atomic word holding
// (phase << 32 | next unit), so a helper that wakes late can never claim a unit of a newer phase
// with stale parameters. The caller never waits for a helper that has not claimed anything.

class Pool {
 public:
  using Fn = std::function<void(int, uint32_t)>;

  explicit Pool(int threads) : T_(std::max(1, threads)) {
    for (int t = 1; t < T_; ++t) threads_.emplace_back([this, t] { helper(t); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& th : threads_) th.join();
  }

  int threads() const { return T_; }

  // Runs fn(thread, unit) for unit = 0..units-1; rethrows the first error.
  void run(uint32_t units, const Fn& fn) {
    if (units == 0) return;
    fn_ = &fn;
    units_ = units;
    error_.clear();
    done_.store(0, std::memory_order_relaxed);
    phase_ = (phase_ + 1) & 0xffffffffu;
    if (phase_ == 0) phase_ = 1;
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
      if (i >= units_) return false;
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
      const uint32_t n = units_;
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n && t != 0) {
        std::lock_guard<std::mutex> lk(mu_);
        if (waiting_) doneCv_.notify_one();
      }
    }
  }

  void helper(int t) {
    single_threaded_onednn();
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
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_) return;
      }
      work(t);
    }
  }

  const int T_;
  std::vector<std::thread> threads_;
  std::mutex mu_, errMu_;
  std::condition_variable cv_, doneCv_;
  bool stop_ = false, waiting_ = false;
  std::atomic<uint64_t> gen_{0};
  std::atomic<uint64_t> claim_{0};
  std::atomic<uint32_t> done_{0};
  uint64_t phase_ = 0;
  const Fn* fn_ = nullptr;
  uint32_t units_ = 0;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// The engine

struct Conv {
  int cin, cout, hin, win, hout, wout, stride;
  bool bias;  // and ReLU: every conv but the stem
  size_t kOff, kLen, bOff;
  Geometry geo;
  size_t outPerImage() const { return (size_t)hout * wout * cout; }
};

// oneDNN memory descriptors and primitives of one conv at one chunk size.
struct ConvPrims {
  dn::memory::desc src, dst;    // forward
  dn::memory::desc bsrc, bdst;  // backward (same bytes, maybe described in another layout)
  dn::memory::desc bias, plainW, fwdW, bdW, diffW;
  dn::convolution_forward fwd;
  dn::convolution_backward_data bwdData;  // not for the stem
  dn::convolution_backward_weights bwdWeights;
  dn::reorder toFwdW, toBdW, fromDiffW;
  dn::memory::desc fwdScratch, bdScratch, bwScratch, toFwdScratch, toBdScratch, fromDiffScratch;
  bool fwdPlain = true, bdPlain = true, diffPlain = true;
  FloatBuf fwdWBuf, bdWBuf;  // the kernel reordered for fwd / bwdData (shared by all workers)
};

struct PrimSet {
  int mb = 0;
  std::vector<ConvPrims> conv;
  size_t scratchBytes = 0, diffTmpBytes = 0;
  std::string kernel;  // oneDNN's implementation of a block convolution (for info)
};

struct alignas(64) Workspace {
  dn::stream stream;
  std::vector<FloatBuf> acts;  // per conv: chunk x hout x wout x cout
  FloatBuf g0, g1;             // gradient ping-pong, the largest activation
  FloatBuf S, dS, logits;      // chunk x 64, chunk x 64, chunk x classes
  FloatBuf sum;                // update: kUnit floats
  Buffer scratch, diffTmp;
};

struct UpdateUnit {
  size_t off, len;
  bool kernel;
};

struct StepParams {
  float l2, momentum, negLr;
};

class Engine {
 public:
  // algorithm: 0 = Winograd backward passes where oneDNN implements them (AVX-512), direct
  // elsewhere; 1 = direct only.
  Engine(int H, int W, int C, int classes, int n, int threads, int chunk, int algorithm, float* params,
         float* accum)
      : H_(H), W_(W), C_(C), classes_(classes), n_(n), CH_(std::max(1, chunk)), params_(params),
        accum_(accum), eng_(dn::engine::kind::cpu, 0), pool_(threads) {
    OneThreadScope one;
    blocked_ = isa_is_avx512();
    winograd_ = blocked_ && algorithm == 0;
    // Layers and the flat parameter layout (TF.js weight order).
    size_t off = 0;
    auto addConv = [&](int cin, int cout, int hin, int win, int stride, bool bias) {
      Conv c{};
      c.cin = cin;
      c.cout = cout;
      c.hin = hin;
      c.win = win;
      c.stride = stride;
      c.hout = (hin + 2 - 3) / stride + 1;
      c.wout = (win + 2 - 3) / stride + 1;
      c.bias = bias;
      c.kOff = off;
      c.kLen = (size_t)9 * cin * cout;
      off += c.kLen;
      segs_.push_back({c.kOff, c.kLen, true});
      if (bias) {
        c.bOff = off;
        off += cout;
        segs_.push_back({c.bOff, (size_t)cout, false});
      }
      // oneDNN: pad 1 before; after, whatever makes (hin + padL + padR - 3) / stride + 1 = hout.
      const int64_t prH = (int64_t)(c.hout - 1) * stride + 3 - hin - 1;
      const int64_t prW = (int64_t)(c.wout - 1) * stride + 3 - win - 1;
      c.geo = Geometry{{stride, stride}, {1, 1}, {prH, prW}};
      conv_.push_back(c);
      return c;
    };
    Conv prev = addConv(C, 16, H, W, 1, false);
    const int channels[3] = {16, 32, 64};
    for (int stage = 0; stage < 3; ++stage) {
      for (int i = 0; i < 2 * n; ++i) {
        const int stride = stage > 0 && i == 0 ? 2 : 1;
        prev = addConv(prev.cout, channels[stage], prev.hout, prev.wout, stride, true);
      }
    }
    L_ = (int)conv_.size();
    headK_ = off;
    off += (size_t)64 * classes;
    segs_.push_back({headK_, (size_t)64 * classes, true});
    headB_ = off;
    off += classes;
    segs_.push_back({headB_, (size_t)classes, false});
    P_ = off;
    for (const auto& s : segs_) {
      for (size_t o = 0; o < s.len; o += kUnit) units_.push_back({s.off + o, std::min(kUnit, s.len - o), s.kernel});
    }
    size_t maxAct = 0;
    for (const auto& c : conv_) maxAct = std::max(maxAct, c.outPerImage());
    for (int t = 0; t < pool_.threads(); ++t) {
      auto w = std::make_unique<Workspace>();
      w->stream = dn::stream(eng_);
      for (const auto& c : conv_) w->acts.push_back(alloc_floats(c.outPerImage() * CH_));
      w->g0 = alloc_floats(maxAct * CH_);
      w->g1 = alloc_floats(maxAct * CH_);
      w->S = alloc_floats((size_t)64 * CH_);
      w->dS = alloc_floats((size_t)64 * CH_);
      w->logits = alloc_floats((size_t)classes * CH_);
      w->sum = alloc_floats(kUnit);
      ws_.push_back(std::move(w));
    }
    setFor(CH_);  // build the primitives of a full chunk now: errors surface at creation
  }

  size_t paramCount() const { return P_; }
  size_t inSize() const { return (size_t)H_ * W_ * C_; }
  int threads() const { return pool_.threads(); }
  int classes() const { return classes_; }
  const std::string& kernelInfo() { return setFor(CH_).kernel; }

  // One training step (gradOut null) or the gradient only (gradOut = P floats). Returns the
  // data loss plus the L2 penalty at the weights before the update.
  double train(const float* x, const float* y, int rows, const StepParams& sp, float* gradOut) {
    OneThreadScope one;
    checkLabels(y, rows);
    const uint32_t chunks = (uint32_t)((rows + CH_ - 1) / CH_);
    prepare(rows);
    while (slots_.size() < chunks) slots_.push_back(alloc_floats(P_));
    x_ = x;
    y_ = y;
    rows_ = rows;
    chunkLoss_.assign(chunks, 0.0);
    pool_.run(chunks, chunkFn_);
    nChunks_ = chunks;
    sp_ = sp;
    gradOut_ = gradOut;
    unitSq_.assign(units_.size(), 0.0);
    pool_.run((uint32_t)units_.size(), updateFn_);
    gradOut_ = nullptr;
    double data = 0, sq = 0;
    for (double l : chunkLoss_) data += l;
    for (double s : unitSq_) sq += s;
    return data / rows + (double)sp.l2 * sq;
  }

  void predict(const float* x, int rows, float* out) {
    OneThreadScope one;
    const uint32_t chunks = (uint32_t)((rows + CH_ - 1) / CH_);
    prepare(rows);
    x_ = x;
    y_ = nullptr;
    rows_ = rows;
    predOut_ = out;
    pool_.run(chunks, chunkFn_);
    predOut_ = nullptr;
  }

 private:
  static constexpr size_t kUnit = 16384;

  // Channels per block of the activation layout (see the element-wise kernels).
  int blockOf(int C) const { return blocked_ ? 16 : C; }

  void checkLabels(const float* y, int rows) const {
    for (int r = 0; r < rows; ++r) {
      const float c = y[r];
      if (!(c >= 0.f && c < (float)classes_ && c == std::floor(c))) {
        throw std::runtime_error("label at row " + std::to_string(r) + " is not a class index");
      }
    }
  }

  // ----- primitives -----

  PrimSet& setFor(int mb) {
    auto it = sets_.find(mb);
    if (it != sets_.end()) return *it->second;
    if (sets_.size() >= 6) {
      // Ragged sizes come and go (the last batch of an epoch, predictions): keep the full chunk.
      for (auto i = sets_.begin(); i != sets_.end(); ++i) {
        if (i->first != CH_) {
          sets_.erase(i);
          break;
        }
      }
    }
    auto set = std::make_unique<PrimSet>();
    set->mb = mb;
    const int64_t N = mb;
    std::vector<std::string> kernels;
    for (size_t l = 0; l < conv_.size(); ++l) {
      const Conv& c = conv_[l];
      ConvPrims p;
      // Backward layouts: the stem reads the NHWC input and writes 16 channels, which are NHWC
      // and nChw16c alike; the blocks use `act`. The forward of a 16 -> 16 conv reads and writes
      // the same bytes described as NHWC, where oneDNN has a faster forward kernel (brgconv).
      const tag act = l == 0 || !blocked_ ? tag::nhwc : tag::nChw16c;
      const tag fwdAct = c.cin == 16 && c.cout == 16 ? tag::nhwc : act;
      p.bsrc = dn::memory::desc({N, c.cin, c.hin, c.win}, dt::f32, l == 0 ? tag::nhwc : act);
      p.bdst = dn::memory::desc({N, c.cout, c.hout, c.wout}, dt::f32, act);
      p.src = dn::memory::desc({N, c.cin, c.hin, c.win}, dt::f32, l == 0 ? tag::nhwc : fwdAct);
      p.dst = dn::memory::desc({N, c.cout, c.hout, c.wout}, dt::f32, fwdAct);
      p.bias = dn::memory::desc({c.cout}, dt::f32, tag::x);
      p.plainW = dn::memory::desc({c.cout, c.cin, 3, 3}, dt::f32, tag::hwio);
      const dn::memory::desc anyW({c.cout, c.cin, 3, 3}, dt::f32, tag::any);
      const dn::memory::desc* bias = c.bias ? &p.bias : nullptr;
      // The forward is always a direct convolution: ReLU masks come from its exact zeros (a
      // Winograd forward turns many exact zeros, e.g. MNIST's background, into +-1e-9, and so
      // flips the masks). The backward of the stride-1 block convs uses Winograd F(4x4, 3x3)
      // where oneDNN has it (AVX-512) and it is allowed: linear, no masks, ~1e-6 rounding.
      auto fpd = fwd_pd(eng_, dn::algorithm::convolution_direct, p.src, anyW, bias, p.dst, c.geo, c.bias);
      const bool tryWino = winograd_ && l > 0 && c.stride == 1;
      dn::convolution_backward_data::primitive_desc bpd;
      dn::convolution_backward_weights::primitive_desc wpd;
      for (int attempt = tryWino ? 0 : 1; attempt < 2; ++attempt) {
        const auto al = attempt == 0 ? dn::algorithm::convolution_winograd : dn::algorithm::convolution_direct;
        try {
          const bool sameAsFwd = attempt == 1 && p.bsrc == p.src && p.bdst == p.dst;
          const auto hint = sameAsFwd ? fpd : fwd_pd(eng_, al, p.bsrc, anyW, bias, p.bdst, c.geo, c.bias);
          if (l > 0) bpd = bwd_data_pd(eng_, al, p.bsrc, anyW, p.bdst, c.geo, hint);
          wpd = bwd_weights_pd(eng_, al, p.bsrc, anyW, bias, p.bdst, c.geo, hint);
          break;
        } catch (const dn::error&) {
          if (attempt == 1) throw;
        }
      }
      p.fwd = dn::convolution_forward(fpd);
      p.fwdW = fpd.weights_desc();
      p.fwdScratch = fpd.scratchpad_desc();
      size_t scratch = p.fwdScratch.get_size();
      if (l > 0) {
        for (const std::string& k : {std::string("fwd ") + fpd.impl_info_str(), std::string("bwd ") + bpd.impl_info_str()}) {
          if (std::find(kernels.begin(), kernels.end(), k) == kernels.end()) kernels.push_back(k);
        }
      }
      p.fwdPlain = p.fwdW == p.plainW;
      if (!p.fwdPlain) {
        auto r = reorder_pd(eng_, p.plainW, p.fwdW);
        p.toFwdW = dn::reorder(r);
        p.toFwdScratch = r.scratchpad_desc();
        scratch = std::max(scratch, p.toFwdScratch.get_size());
        p.fwdWBuf = alloc_floats(p.fwdW.get_size() / sizeof(float) + 1);
      }
      if (l > 0) {
        p.bwdData = dn::convolution_backward_data(bpd);
        p.bdW = bpd.weights_desc();
        p.bdScratch = bpd.scratchpad_desc();
        scratch = std::max(scratch, p.bdScratch.get_size());
        p.bdPlain = p.bdW == p.plainW;
        if (!p.bdPlain) {
          auto r = reorder_pd(eng_, p.plainW, p.bdW);
          p.toBdW = dn::reorder(r);
          p.toBdScratch = r.scratchpad_desc();
          scratch = std::max(scratch, p.toBdScratch.get_size());
          p.bdWBuf = alloc_floats(p.bdW.get_size() / sizeof(float) + 1);
        }
      }
      p.bwdWeights = dn::convolution_backward_weights(wpd);
      p.diffW = wpd.diff_weights_desc();
      p.bwScratch = wpd.scratchpad_desc();
      scratch = std::max(scratch, p.bwScratch.get_size());
      p.diffPlain = p.diffW == p.plainW;
      if (!p.diffPlain) {
        auto r = reorder_pd(eng_, p.diffW, p.plainW);
        p.fromDiffW = dn::reorder(r);
        p.fromDiffScratch = r.scratchpad_desc();
        scratch = std::max(scratch, p.fromDiffScratch.get_size());
        set->diffTmpBytes = std::max(set->diffTmpBytes, p.diffW.get_size());
      }
      set->scratchBytes = std::max(set->scratchBytes, scratch);
      set->conv.push_back(std::move(p));
    }
    for (const auto& k : kernels) set->kernel += (set->kernel.empty() ? "" : ", ") + k;
    PrimSet& ref = *set;
    sets_[mb] = std::move(set);
    return ref;
  }

  dn::memory mem(const dn::memory::desc& d, const void* p) const {
    return dn::memory(d, eng_, const_cast<void*>(p));
  }

  // Before a phase (helpers idle): the primitive sets of this batch's chunk sizes, workspace
  // sizes, and the kernels reordered into the primitives' layouts.
  void prepare(int rows) {
    const int full = std::min(rows, CH_);
    const int rest = rows % CH_;
    setFull_ = &setFor(full);
    setRest_ = rest > 0 && rest != full ? &setFor(rest) : setFull_;
    for (PrimSet* s : {setFull_, setRest_}) {
      for (auto& w : ws_) {
        w->scratch.reserveBytes(s->scratchBytes);
        w->diffTmp.reserveBytes(s->diffTmpBytes);
      }
    }
    Workspace& w0 = *ws_[0];
    std::vector<PrimSet*> distinct{setFull_};
    if (setRest_ != setFull_) distinct.push_back(setRest_);
    for (PrimSet* s : distinct) {
      for (size_t l = 0; l < conv_.size(); ++l) {
        ConvPrims& p = s->conv[l];
        const float* k = params_ + conv_[l].kOff;
        if (!p.fwdPlain) {
          p.toFwdW.execute(w0.stream, {{DNNL_ARG_FROM, mem(p.plainW, k)},
                                       {DNNL_ARG_TO, mem(p.fwdW, p.fwdWBuf.get())},
                                       {DNNL_ARG_SCRATCHPAD, mem(p.toFwdScratch, w0.scratch.get())}});
        }
        if (l > 0 && !p.bdPlain) {
          p.toBdW.execute(w0.stream, {{DNNL_ARG_FROM, mem(p.plainW, k)},
                                      {DNNL_ARG_TO, mem(p.bdW, p.bdWBuf.get())},
                                      {DNNL_ARG_SCRATCHPAD, mem(p.toBdScratch, w0.scratch.get())}});
        }
      }
    }
    w0.stream.wait();
  }

  // ----- one chunk: forward, and (training) loss, backward and the chunk's weight gradient -----

  void chunk(int t, uint32_t idx) {
    Workspace& w = *ws_[t];
    const int r0 = (int)idx * CH_;
    const int m = std::min(CH_, rows_ - r0);
    PrimSet& ps = m == setFull_->mb ? *setFull_ : *setRest_;
    dn::stream& st = w.stream;
    void* scratch = w.scratch.get();
    const float* x = x_ + (size_t)r0 * H_ * W_ * C_;

    // Forward.
    float* S = w.S.get();
    std::memset(S, 0, sizeof(float) * 64 * m);
    for (int l = 0; l < L_; ++l) {
      const Conv& c = conv_[l];
      ConvPrims& p = ps.conv[l];
      const void* k = p.fwdPlain ? (const void*)(params_ + c.kOff) : (const void*)p.fwdWBuf.get();
      std::unordered_map<int, dn::memory> args{
          {DNNL_ARG_SRC, mem(p.src, l == 0 ? x : w.acts[l - 1].get())},
          {DNNL_ARG_WEIGHTS, mem(p.fwdW, k)},
          {DNNL_ARG_DST, mem(p.dst, w.acts[l].get())},
          {DNNL_ARG_SCRATCHPAD, mem(p.fwdScratch, scratch)}};
      if (c.bias) args.insert({DNNL_ARG_BIAS, mem(p.bias, params_ + c.bOff)});
      p.fwd.execute(st, args);
      st.wait();
      if (l > 0) {
        const int hw = c.hout * c.wout;
        pool_add(w.acts[l].get(), m, hw, c.cout, blockOf(c.cout), 1.f / (float)hw, S);
      }
    }
    // Head.
    const float* Wh = params_ + headK_;
    const float* bh = params_ + headB_;
    float* logits = w.logits.get();
    for (int i = 0; i < m; ++i) {
      float* z = logits + (size_t)i * classes_;
      for (int k = 0; k < classes_; ++k) z[k] = 0.f;
      const float* s = S + (size_t)i * 64;
      for (int j = 0; j < 64; ++j) {
        const float sj = s[j];
        const float* wr = Wh + (size_t)j * classes_;
        for (int k = 0; k < classes_; ++k) z[k] += sj * wr[k];
      }
      for (int k = 0; k < classes_; ++k) z[k] += bh[k];
    }
    if (predOut_) {
      std::memcpy(predOut_ + (size_t)r0 * classes_, logits, sizeof(float) * m * classes_);
      return;
    }

    // Softmax cross-entropy; logits become dLoss/dlogits (mean over the batch).
    double lossSum = 0;
    const float invRows = 1.f / (float)rows_;
    for (int i = 0; i < m; ++i) {
      float* z = logits + (size_t)i * classes_;
      const int label = (int)y_[r0 + i];
      float mx = z[0];
      for (int k = 1; k < classes_; ++k) mx = std::max(mx, z[k]);
      double se = 0;
      for (int k = 0; k < classes_; ++k) se += std::exp((double)z[k] - mx);
      const double lse = std::log(se) + mx;
      lossSum += lse - z[label];
      for (int k = 0; k < classes_; ++k) {
        const float pk = (float)std::exp((double)z[k] - lse);
        z[k] = (pk - (k == label ? 1.f : 0.f)) * invRows;
      }
    }
    chunkLoss_[idx] = lossSum;

    float* grad = slots_[idx].get();
    // Head gradients and dS = dlogits Wh^T.
    float* dWh = grad + headK_;
    float* dbh = grad + headB_;
    std::memset(dWh, 0, sizeof(float) * 64 * classes_);
    std::memset(dbh, 0, sizeof(float) * classes_);
    float* dS = w.dS.get();
    for (int i = 0; i < m; ++i) {
      const float* g = logits + (size_t)i * classes_;
      const float* s = S + (size_t)i * 64;
      float* ds = dS + (size_t)i * 64;
      for (int j = 0; j < 64; ++j) {
        const float sj = s[j];
        float* dw = dWh + (size_t)j * classes_;
        const float* wr = Wh + (size_t)j * classes_;
        float acc = 0.f;
        for (int k = 0; k < classes_; ++k) {
          dw[k] += sj * g[k];
          acc += g[k] * wr[k];
        }
        ds[j] = acc;
      }
      for (int k = 0; k < classes_; ++k) dbh[k] += g[k];
    }

    // Backward through the blocks, last to first; then the stem's kernel gradient.
    float* gcur = w.g0.get();
    float* gnext = w.g1.get();
    for (int l = L_ - 1; l >= 0; --l) {
      const Conv& c = conv_[l];
      ConvPrims& p = ps.conv[l];
      if (l > 0) {
        const int hw = c.hout * c.wout;
        relu_pool_bwd(gcur, l != L_ - 1, w.acts[l].get(), dS, m, hw, c.cout, blockOf(c.cout), 1.f / (float)hw);
      }
      void* dW = p.diffPlain ? (void*)(grad + c.kOff) : (void*)w.diffTmp.get();
      std::unordered_map<int, dn::memory> args{
          {DNNL_ARG_SRC, mem(p.bsrc, l == 0 ? x : w.acts[l - 1].get())},
          {DNNL_ARG_DIFF_DST, mem(p.bdst, gcur)},
          {DNNL_ARG_DIFF_WEIGHTS, mem(p.diffW, dW)},
          {DNNL_ARG_SCRATCHPAD, mem(p.bwScratch, scratch)}};
      if (c.bias) args.insert({DNNL_ARG_DIFF_BIAS, mem(p.bias, grad + c.bOff)});
      p.bwdWeights.execute(st, args);
      if (!p.diffPlain) {
        p.fromDiffW.execute(st, {{DNNL_ARG_FROM, mem(p.diffW, dW)},
                                 {DNNL_ARG_TO, mem(p.plainW, grad + c.kOff)},
                                 {DNNL_ARG_SCRATCHPAD, mem(p.fromDiffScratch, scratch)}});
      }
      if (l > 0) {
        const void* k = p.bdPlain ? (const void*)(params_ + c.kOff) : (const void*)p.bdWBuf.get();
        p.bwdData.execute(st, {{DNNL_ARG_DIFF_DST, mem(p.bdst, gcur)},
                               {DNNL_ARG_WEIGHTS, mem(p.bdW, k)},
                               {DNNL_ARG_DIFF_SRC, mem(p.bsrc, gnext)},
                               {DNNL_ARG_SCRATCHPAD, mem(p.bdScratch, scratch)}});
        std::swap(gcur, gnext);
      }
      st.wait();
    }
  }

  // ----- update: sum the chunk gradients in chunk order, L2, momentum SGD -----

  void update(int t, uint32_t u) {
    const UpdateUnit& U = units_[u];
    float* g = ws_[t]->sum.get();
    std::memcpy(g, slots_[0].get() + U.off, sizeof(float) * U.len);
    for (uint32_t c = 1; c < nChunks_; ++c) {
      const float* s = slots_[c].get() + U.off;
      for (size_t i = 0; i < U.len; ++i) g[i] += s[i];
    }
    float* w = params_ + U.off;
    float* a = accum_ + U.off;
    const float l2 = sp_.l2, mom = sp_.momentum, negLr = sp_.negLr;
    double sq = 0;
    if (U.kernel) {
      for (size_t i = 0; i < U.len; ++i) {
        sq += (double)w[i] * w[i];
        g[i] += l2 * (w[i] * 2.f);
      }
    }
    unitSq_[u] = sq;
    if (gradOut_) {
      std::memcpy(gradOut_ + U.off, g, sizeof(float) * U.len);
      return;
    }
    for (size_t i = 0; i < U.len; ++i) {
      const float acc = mom * a[i] + g[i];
      a[i] = acc;
      w[i] = negLr * acc + w[i];
    }
  }

  const int H_, W_, C_, classes_, n_, CH_;
  bool blocked_ = false, winograd_ = false;
  int L_ = 0;
  std::vector<Conv> conv_;
  std::vector<UpdateUnit> segs_, units_;
  size_t headK_ = 0, headB_ = 0, P_ = 0;
  float* params_;
  float* accum_;
  dn::engine eng_;
  std::map<int, std::unique_ptr<PrimSet>> sets_;
  std::vector<std::unique_ptr<Workspace>> ws_;
  std::vector<FloatBuf> slots_;
  Pool pool_;

  // The current call (written by the calling thread before a phase starts).
  PrimSet* setFull_ = nullptr;
  PrimSet* setRest_ = nullptr;
  const float* x_ = nullptr;
  const float* y_ = nullptr;
  int rows_ = 0;
  float* predOut_ = nullptr;
  float* gradOut_ = nullptr;
  uint32_t nChunks_ = 0;
  StepParams sp_{};
  std::vector<double> chunkLoss_, unitSq_;
  const Pool::Fn chunkFn_ = [this](int t, uint32_t i) { chunk(t, i); };
  const Pool::Fn updateFn_ = [this](int t, uint32_t u) { update(t, u); };
};

// ---------------------------------------------------------------------------------------------
// Node-API glue

#define GLONET_MODULE "glonet_cnn"
#include "napi_util.h"

using EngineHandle = Handle<Engine, 2>;  // params and accum stay referenced while the engine lives

Engine* get_engine(napi_env env, napi_value v) { return EngineHandle::engine_of(env, v); }

size_t param_count(int C, int classes, int n) {
  size_t p = (size_t)9 * C * 16;
  int cin = 16;
  const int channels[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 2 * n; ++i) {
      p += (size_t)9 * cin * channels[s] + channels[s];
      cin = channels[s];
    }
  }
  return p + (size_t)64 * classes + classes;
}

// create(params, accum, {height, width, channels, classes, blocksPerStage, threads, chunk, algorithm})
napi_value Create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) return throw_error(env, "create: expected (params, accum, config)");
  float *p, *a;
  size_t np, na;
  if (!get_f32(env, argv[0], &p, &np) || !get_f32(env, argv[1], &a, &na))
    return throw_error(env, "create: params and accum must be Float32Arrays");
  int32_t h, w, c, classes, n, threads, chunk, algorithm = 0;
  if (!get_int_prop(env, argv[2], "height", &h) || !get_int_prop(env, argv[2], "width", &w) ||
      !get_int_prop(env, argv[2], "channels", &c) || !get_int_prop(env, argv[2], "classes", &classes) ||
      !get_int_prop(env, argv[2], "blocksPerStage", &n) || !get_int_prop(env, argv[2], "threads", &threads) ||
      !get_int_prop(env, argv[2], "chunk", &chunk))
    return throw_error(env, "create: bad config");
  get_int_prop(env, argv[2], "algorithm", &algorithm);  // optional
  if (h < 1 || w < 1 || c < 1 || classes < 2 || n < 1 || threads < 1 || threads > 64 || chunk < 1 ||
      chunk > 4096 || (int64_t)h * w * c > (1 << 24))
    return throw_error(env, "create: bad dimensions");
  const size_t P = param_count(c, classes, n);
  if (np != P || na != P) return throw_error(env, "create: params/accum length mismatch");
  EngineHandle* hd = new EngineHandle();
  try {
    hd->engine = new Engine(h, w, c, classes, n, threads, chunk, algorithm, p, a);
  } catch (const std::exception& e) {
    delete hd;
    return throw_error(env, std::string("create: ") + e.what());
  }
  return EngineHandle::wrap(env, hd, argv);
}

// step(handle, x, y, rows, hp: Float64Array [l2, momentum, -lr])
// gradients(handle, x, y, rows, hp, gradOut)
napi_value StepOrGrad(napi_env env, napi_callback_info info, bool grad) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < (grad ? 6u : 5u)) return throw_error(env, "step/gradients: missing arguments");
  Engine* e = get_engine(env, argv[0]);
  if (!e) return throw_error(env, "engine is disposed");
  float *x, *y;
  size_t nx, ny;
  int32_t rows;
  if (!get_f32(env, argv[1], &x, &nx) || !get_f32(env, argv[2], &y, &ny) ||
      napi_get_value_int32(env, argv[3], &rows) != napi_ok || rows < 1 || ny < (size_t)rows ||
      nx < (size_t)rows * e->inSize())
    return throw_error(env, "step: bad x/y/rows (Float32Arrays of rows*h*w*c values and rows labels)");
  void* hpv = nullptr;
  size_t nhp = 0;
  if (!get_typed(env, argv[4], napi_float64_array, &hpv, &nhp) || nhp < 3)
    return throw_error(env, "step: hyper-parameters must be a Float64Array [l2, momentum, -lr]");
  const double* hp = static_cast<const double*>(hpv);
  float* gradOut = nullptr;
  if (grad) {
    size_t ng;
    if (!get_f32(env, argv[5], &gradOut, &ng) || ng != e->paramCount())
      return throw_error(env, "gradients: out must be a Float32Array of the parameter count");
  }
  double loss;
  try {
    loss = e->train(x, y, rows, StepParams{(float)hp[0], (float)hp[1], (float)hp[2]}, gradOut);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  napi_value result;
  CHECK(napi_create_double(env, loss, &result));
  return result;
}

napi_value Step(napi_env env, napi_callback_info info) { return StepOrGrad(env, info, false); }
napi_value Gradients(napi_env env, napi_callback_info info) { return StepOrGrad(env, info, true); }

// predict(handle, x, rows, out)
napi_value Predict(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return throw_error(env, "predict: missing arguments");
  Engine* e = get_engine(env, argv[0]);
  if (!e) return throw_error(env, "engine is disposed");
  float *x, *out;
  size_t nx, no;
  int32_t rows;
  if (!get_f32(env, argv[1], &x, &nx) || napi_get_value_int32(env, argv[2], &rows) != napi_ok ||
      !get_f32(env, argv[3], &out, &no) || rows < 1 || nx < (size_t)rows * e->inSize() ||
      no < (size_t)rows * e->classes())
    return throw_error(env, "predict: bad x/rows/out");
  try {
    e->predict(x, rows, out);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  return nullptr;
}

// kernel(handle) -> oneDNN's implementation of a block convolution, e.g. "brgconv:avx512_core"
napi_value Kernel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Engine* e = argc >= 1 ? get_engine(env, argv[0]) : nullptr;
  if (!e) return throw_error(env, "engine is disposed");
  napi_value s;
  CHECK(napi_create_string_utf8(env, e->kernelInfo().c_str(), NAPI_AUTO_LENGTH, &s));
  return s;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, isa, ver, rt, hw;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, isa_name(), NAPI_AUTO_LENGTH, &isa));
  const dnnl_version_t* v = dnnl_version();
  const std::string vs = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  CHECK(napi_create_string_utf8(env, vs.c_str(), NAPI_AUTO_LENGTH, &ver));
  CHECK(napi_create_string_utf8(env, GLONET_OMP ? "omp" : "other", NAPI_AUTO_LENGTH, &rt));
  CHECK(napi_create_uint32(env, std::max(1u, std::thread::hardware_concurrency()), &hw));
  CHECK(napi_set_named_property(env, obj, "isa", isa));
  CHECK(napi_set_named_property(env, obj, "onednn", ver));
  CHECK(napi_set_named_property(env, obj, "runtime", rt));
  CHECK(napi_set_named_property(env, obj, "hardwareThreads", hw));
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      method("create", Create),   method("step", Step),     method("gradients", Gradients),
      method("predict", Predict), method("kernel", Kernel), method("destroy", EngineHandle::destroy),
      method("info", Info),
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
