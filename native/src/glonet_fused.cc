// Fused training engine for the GloNet MLP (stem Dense -> n x relu(Dense) blocks -> sum of the
// block outputs -> head Dense), with MSE or softmax cross-entropy, L2 on kernels and Adam exactly
// as tf.train.adam in TF.js 4.22. One call runs a whole training step: forward, backward, gradient
// reduction across threads, L2 and the Adam update.
//
// Layout and semantics are those of src/fast/js-engine.ts (the portable twin of this file):
//   params = [stemK (nIn x W), stemB (W), {blockK (W x W), blockB (W)} x depth, headK (W x nOut),
//   headB (nOut)], kernels in TF.js Dense layout (y = x K + b, K row-major [in, out]).
//
// Work is split by rows: the batch is cut into fixed tiles of `tileRows` rows (tile t = rows
// [t*tileRows, (t+1)*tileRows)), which the threads claim one at a time and run through the full
// forward and backward chain, so the activations a thread keeps are depth x tileRows x W floats
// whatever the batch size. The batch gradient is the sum of the tiles' weight-gradient partials
// in a fixed order (tile order within each half of the batch, then the two halves), whichever
// thread computed which partial; then the update phase (split across threads by parameter range)
// adds L2 and runs Adam. Every sum has a fixed order: results are bitwise identical whatever the
// thread count and the scheduling.
//
// SIMD: portable C++ is always compiled; AVX2+FMA kernels are compiled with
// __attribute__((target("avx2,fma"))) and chosen at run time with __builtin_cpu_supports, so the
// binary runs on any x86-64 (and the file builds on other architectures without them).

#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define GLONET_X86 1
#include <immintrin.h>
#else
#define GLONET_X86 0
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// Small utilities

inline void cpu_relax() {
#if GLONET_X86
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

struct AlignedDeleter {
  void operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }
};
using FloatBuf = std::unique_ptr<float[], AlignedDeleter>;

FloatBuf alloc_floats(size_t count, bool zero = true) {
  size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
  if (bytes == 0) bytes = 64;
  void* p = ::operator new(bytes, std::align_val_t(64));  // throws std::bad_alloc
  if (zero) std::memset(p, 0, bytes);
  return FloatBuf(static_cast<float*>(p));
}

struct AdamParams {
  float l2;      // L2 factor on kernels (penalty l2 * sum w^2, gradient l2 * 2w)
  float b1, omb1, b2, omb2;  // beta1, 1 - beta1, beta2, 1 - beta2 (as float32, like TF.js scalars)
  float omab1, omab2;        // 1 - beta1^t, 1 - beta2^t (TF.js accBeta, float32)
  float eps, neglr;          // epsilon, -learningRate
};

// ---------------------------------------------------------------------------------------------
// Kernels. All take row counts R that are multiples of 4 (tiles are padded with zero rows).

struct Kernels {
  const char* name;
  // C[R x N] = A[R x K] (row stride lda) . B[K x N] + bias
  void (*dense)(const float* A, int lda, int R, int K, const float* B, int N, const float* bias,
                float* C);
  // Hout = relu(Hin . Wk + b); S = Hout (first) or S += Hout
  void (*block_fwd)(const float* Hin, float* Hout, float* S, const float* Wk, const float* b, int R,
                    int W, bool first);
  // Gout = G * (H > 0); db += colsum(Gout)   (relu backward, bias gradient)
  void (*relu_bwd)(const float* G, const float* H, float* Gout, float* db, int R, int W);
  // Gout = dS + dZ . WT (dS may be null); then, when H is given, the relu backward of the block
  // below in place: Gout *= (H > 0), db += colsum(Gout)
  void (*block_bwd)(const float* dZ, const float* WT, const float* dS, const float* H, float* Gout,
                    float* db, int R, int W);
  // dK[K x N] (= when init, else +=) A^T . D, A is R x K (row stride lda), D is R x N
  void (*outer_acc)(const float* A, int lda, int R, int K, const float* D, int N, float* dK,
                    bool init);
  // acc = src (first) or acc += src, elementwise
  void (*fold)(float* acc, const float* src, size_t n, bool first);
  // P = A^T . D (as outer_acc with init), then dst = P (first) or dst += P, bit for bit what
  // outer_acc into tmp followed by fold(dst, tmp) gives; tmp may be left unwritten.
  void (*outer_fold)(const float* A, int lda, int R, int K, const float* D, int N, float* tmp,
                     float* dst, bool first);
  // The batch gradient g0 + g1 (g1 may be null), plus the L2 gradient (kernels), then Adam (or
  // write the gradient to gradOut and leave the weights alone). Returns sum of w^2 over the
  // range when kernel.
  double (*adam)(float* w, float* m, float* v, const float* g0, const float* g1, size_t n,
                 bool kernel, const AdamParams& p, float* gradOut);
};

// ----- portable -----

void dense_portable(const float* A, int lda, int R, int K, const float* B, int N, const float* bias,
                    float* C) {
  for (int r = 0; r < R; ++r) {
    float* c = C + (size_t)r * N;
    for (int j = 0; j < N; ++j) c[j] = bias ? bias[j] : 0.f;
    const float* a = A + (size_t)r * lda;
    for (int k = 0; k < K; ++k) {
      const float av = a[k];
      if (av == 0.f) continue;
      const float* b = B + (size_t)k * N;
      for (int j = 0; j < N; ++j) c[j] += av * b[j];
    }
  }
}

void block_fwd_portable(const float* Hin, float* Hout, float* S, const float* Wk, const float* b,
                        int R, int W, bool first) {
  dense_portable(Hin, W, R, W, Wk, W, b, Hout);
  const size_t n = (size_t)R * W;
  for (size_t i = 0; i < n; ++i) Hout[i] = Hout[i] > 0.f ? Hout[i] : 0.f;
  if (first) {
    std::memcpy(S, Hout, n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) S[i] += Hout[i];
  }
}

void relu_bwd_portable(const float* G, const float* H, float* Gout, float* db, int R, int W) {
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < W; ++j) {
      const size_t i = (size_t)r * W + j;
      const float dz = H[i] > 0.f ? G[i] : 0.f;
      Gout[i] = dz;
      db[j] += dz;
    }
  }
}

void block_bwd_portable(const float* dZ, const float* WT, const float* dS, const float* H,
                        float* Gout, float* db, int R, int W) {
  for (int r = 0; r < R; ++r) {
    const float* z = dZ + (size_t)r * W;
    float* o = Gout + (size_t)r * W;
    if (dS) {
      std::memcpy(o, dS + (size_t)r * W, W * sizeof(float));
    } else {
      for (int j = 0; j < W; ++j) o[j] = 0.f;
    }
    for (int c = 0; c < W; ++c) {
      const float d = z[c];
      if (d == 0.f) continue;
      const float* wt = WT + (size_t)c * W;
      for (int j = 0; j < W; ++j) o[j] += d * wt[j];
    }
  }
  if (H) relu_bwd_portable(Gout, H, Gout, db, R, W);
}

void outer_acc_portable(const float* A, int lda, int R, int K, const float* D, int N, float* dK,
                        bool init) {
  if (init) std::memset(dK, 0, (size_t)K * N * sizeof(float));
  for (int r = 0; r < R; ++r) {
    const float* a = A + (size_t)r * lda;
    const float* d = D + (size_t)r * N;
    for (int k = 0; k < K; ++k) {
      const float av = a[k];
      if (av == 0.f) continue;
      float* o = dK + (size_t)k * N;
      for (int j = 0; j < N; ++j) o[j] += av * d[j];
    }
  }
}

inline float adam_one(float& w, float& m, float& v, float g, const AdamParams& p) {
  const float mNew = m * p.b1 + g * p.omb1;
  const float vNew = v * p.b2 + (g * g) * p.omb2;
  const float mh = mNew / p.omab1;
  const float vh = vNew / p.omab2;
  m = mNew;
  v = vNew;
  w = (mh / (std::sqrt(vh) + p.eps)) * p.neglr + w;
  return w;
}

void fold_portable(float* acc, const float* src, size_t n, bool first) {
  if (first) {
    std::memcpy(acc, src, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) acc[i] += src[i];
}

void outer_fold_portable(const float* A, int lda, int R, int K, const float* D, int N, float* tmp,
                         float* dst, bool first) {
  outer_acc_portable(A, lda, R, K, D, N, tmp, true);
  fold_portable(dst, tmp, (size_t)K * N, first);
}

double adam_portable(float* w, float* m, float* v, const float* g0, const float* g1, size_t n,
                     bool kernel, const AdamParams& p, float* gradOut) {
  double sq = 0;
  for (size_t i = 0; i < n; ++i) {
    float g = g1 ? g0[i] + g1[i] : g0[i];
    const float wi = w[i];
    if (kernel) {
      sq += (double)wi * wi;
      g += p.l2 * (wi * 2.f);
    }
    if (gradOut) {
      gradOut[i] = g;
    } else {
      adam_one(w[i], m[i], v[i], g, p);
    }
  }
  return sq;
}

const Kernels kPortable = {"portable", dense_portable, block_fwd_portable, relu_bwd_portable,
                           block_bwd_portable, outer_acc_portable, fold_portable, outer_fold_portable,
                           adam_portable};

// ----- AVX2 + FMA (compiled for that target only inside these functions) -----
#if GLONET_X86
#define GLONET_AVX2 __attribute__((target("avx2,fma")))
// Small loops over register blocks must be fully unrolled, or GCC keeps the accumulator arrays
// in memory and stores them on every iteration.
#define GLONET_UNROLL _Pragma("GCC unroll 32")

// Register blocking: a row of the W-wide output is NV vectors of 8 floats. RB rows (or KB kernel
// rows in outer_acc) are computed at once, RB*NV independent accumulators, enough to hide the FMA
// latency while fitting the 16 ymm registers with the operands.
template <int NV>
struct Shape {
  static constexpr int N = 8 * NV;
  static constexpr int RB = NV >= 4 ? 2 : (NV == 2 ? 6 : 12);
  static constexpr int KB = NV >= 4 ? 2 : (NV == 2 ? 6 : 12);
};

template <int NV, int RB>
GLONET_AVX2 inline void dense_block_rows(const float* A, int lda, int K, const float* B,
                                         const float* bias, __m256 (&acc)[RB][NV]) {
  constexpr int N = 8 * NV;
  GLONET_UNROLL for (int i = 0; i < RB; ++i)
    GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = bias ? _mm256_loadu_ps(bias + 8 * v) : _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    __m256 bv[NV];
    GLONET_UNROLL for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(B + (size_t)k * N + 8 * v);
    GLONET_UNROLL for (int i = 0; i < RB; ++i) {
      const __m256 av = _mm256_broadcast_ss(A + (size_t)i * lda + k);
      GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
}

// relu, store the block output and add it to the running GloNet sum.
template <int NV>
GLONET_AVX2 inline void relu_store_sum(const __m256* acc, float* hout, float* s, bool first) {
  const __m256 zero = _mm256_setzero_ps();
  GLONET_UNROLL for (int v = 0; v < NV; ++v) {
    const __m256 h = _mm256_max_ps(acc[v], zero);
    _mm256_storeu_ps(hout + 8 * v, h);
    _mm256_storeu_ps(s + 8 * v, first ? h : _mm256_add_ps(_mm256_loadu_ps(s + 8 * v), h));
  }
}

// Rows [r, R) in blocks of RB; returns the first row not done.
// kind 0: C = A.B + bias; kind 1: block forward (relu, store, running sum).
template <int NV, int RB, int kind>
GLONET_AVX2 inline int dense_rows(const float* A, int lda, int r, int R, int K, const float* B,
                                  const float* bias, float* C, float* S, bool first) {
  constexpr int N = 8 * NV;
  for (; r + RB <= R; r += RB) {
    __m256 acc[RB][NV];
    dense_block_rows<NV, RB>(A + (size_t)r * lda, lda, K, B, bias, acc);
    GLONET_UNROLL for (int i = 0; i < RB; ++i) {
      float* c = C + (size_t)(r + i) * N;
      if (kind == 1) {
        relu_store_sum<NV>(acc[i], c, S + (size_t)(r + i) * N, first);
      } else {
        GLONET_UNROLL for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + 8 * v, acc[i][v]);
      }
    }
  }
  return r;
}

template <int NV, int kind>
GLONET_AVX2 void dense_all(const float* A, int lda, int R, int K, const float* B, const float* bias,
                           float* C, float* S, bool first) {
  int r = dense_rows<NV, Shape<NV>::RB, kind>(A, lda, 0, R, K, B, bias, C, S, first);
  r = dense_rows<NV, 2, kind>(A, lda, r, R, K, B, bias, C, S, first);
  dense_rows<NV, 1, kind>(A, lda, r, R, K, B, bias, C, S, first);
}

GLONET_AVX2 void dense_avx2(const float* A, int lda, int R, int K, const float* B, int N,
                            const float* bias, float* C) {
  switch (N) {
    case 8: return dense_all<1, 0>(A, lda, R, K, B, bias, C, nullptr, false);
    case 16: return dense_all<2, 0>(A, lda, R, K, B, bias, C, nullptr, false);
    case 32: return dense_all<4, 0>(A, lda, R, K, B, bias, C, nullptr, false);
    default: return dense_portable(A, lda, R, K, B, N, bias, C);
  }
}

GLONET_AVX2 void block_fwd_avx2(const float* Hin, float* Hout, float* S, const float* Wk,
                                const float* b, int R, int W, bool first) {
  switch (W) {
    case 8: return dense_all<1, 1>(Hin, W, R, W, Wk, b, Hout, S, first);
    case 16: return dense_all<2, 1>(Hin, W, R, W, Wk, b, Hout, S, first);
    case 32: return dense_all<4, 1>(Hin, W, R, W, Wk, b, Hout, S, first);
    default: return block_fwd_portable(Hin, Hout, S, Wk, b, R, W, first);
  }
}

// Rows [r, R) of Gout = dS + dZ . WT in blocks of RB, then (H given) Gout *= (H > 0) and
// db += colsum(Gout); returns the first row not done.
template <int NV, int RB>
GLONET_AVX2 inline int back_rows(const float* G, const float* WT, const float* dS, const float* H,
                                 float* Gout, float* db, int r, int R) {
  constexpr int N = 8 * NV;
  const __m256 zero = _mm256_setzero_ps();
  for (; r + RB <= R; r += RB) {
    __m256 acc[RB][NV];
    GLONET_UNROLL for (int i = 0; i < RB; ++i)
      GLONET_UNROLL for (int v = 0; v < NV; ++v)
        acc[i][v] = dS ? _mm256_loadu_ps(dS + (size_t)(r + i) * N + 8 * v) : zero;
    for (int c = 0; c < N; ++c) {
      __m256 wt[NV];
      GLONET_UNROLL for (int v = 0; v < NV; ++v) wt[v] = _mm256_loadu_ps(WT + (size_t)c * N + 8 * v);
      GLONET_UNROLL for (int i = 0; i < RB; ++i) {
        const __m256 a = _mm256_broadcast_ss(G + (size_t)(r + i) * N + c);
        GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(a, wt[v], acc[i][v]);
      }
    }
    if (H) {
      GLONET_UNROLL for (int v = 0; v < NV; ++v) {
        __m256 sum = _mm256_loadu_ps(db + 8 * v);
        GLONET_UNROLL for (int i = 0; i < RB; ++i) {
          const __m256 h = _mm256_loadu_ps(H + (size_t)(r + i) * N + 8 * v);
          acc[i][v] = _mm256_and_ps(acc[i][v], _mm256_cmp_ps(h, zero, _CMP_GT_OQ));
          sum = _mm256_add_ps(sum, acc[i][v]);
        }
        _mm256_storeu_ps(db + 8 * v, sum);
      }
    }
    GLONET_UNROLL for (int i = 0; i < RB; ++i)
      GLONET_UNROLL for (int v = 0; v < NV; ++v) _mm256_storeu_ps(Gout + (size_t)(r + i) * N + 8 * v, acc[i][v]);
  }
  return r;
}

template <int NV>
GLONET_AVX2 void block_bwd_avx2_t(const float* G, const float* WT, const float* dS, const float* H,
                                  float* Gout, float* db, int R) {
  int r = back_rows<NV, Shape<NV>::RB>(G, WT, dS, H, Gout, db, 0, R);
  r = back_rows<NV, 2>(G, WT, dS, H, Gout, db, r, R);
  back_rows<NV, 1>(G, WT, dS, H, Gout, db, r, R);
}

GLONET_AVX2 void block_bwd_avx2(const float* G, const float* WT, const float* dS, const float* H,
                                float* Gout, float* db, int R, int W) {
  switch (W) {
    case 8: return block_bwd_avx2_t<1>(G, WT, dS, H, Gout, db, R);
    case 16: return block_bwd_avx2_t<2>(G, WT, dS, H, Gout, db, R);
    case 32: return block_bwd_avx2_t<4>(G, WT, dS, H, Gout, db, R);
    default: return block_bwd_portable(G, WT, dS, H, Gout, db, R, W);
  }
}

// mode 0: dK += A^T D; 1: dK = A^T D; 2: dK += (A^T D summed from zero), the fold of a partial.
template <int NV, int KB>
GLONET_AVX2 inline void outer_acc_cols(const float* A, int lda, int R, const float* D, float* dK,
                                       int mode) {
  constexpr int N = 8 * NV;
  // Start from zero or accumulate onto dK's values (loaded once, stored once); acc is 1-D and
  // every loop over it fully unrolled so that GCC keeps it in registers.
  __m256 acc[KB * NV];
  if (mode != 0) {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q) acc[q] = _mm256_setzero_ps();
  } else {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q) acc[q] = _mm256_loadu_ps(dK + 8 * q);
  }
  for (int r = 0; r < R; ++r) {
    const float* dr = D + (size_t)r * N;
    const float* ar = A + (size_t)r * lda;
    GLONET_UNROLL for (int kk = 0; kk < KB; ++kk) {
      const __m256 a = _mm256_broadcast_ss(ar + kk);
      GLONET_UNROLL for (int v = 0; v < NV; ++v)
        acc[kk * NV + v] = _mm256_fmadd_ps(a, _mm256_loadu_ps(dr + 8 * v), acc[kk * NV + v]);
    }
  }
  if (mode == 2) {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q)
      _mm256_storeu_ps(dK + 8 * q, _mm256_add_ps(_mm256_loadu_ps(dK + 8 * q), acc[q]));
  } else {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q) _mm256_storeu_ps(dK + 8 * q, acc[q]);
  }
}

template <int NV>
GLONET_AVX2 void outer_acc_avx2_t(const float* A, int lda, int R, int K, const float* D,
                                  float* dK, int mode) {
  constexpr int N = Shape<NV>::N, KB = Shape<NV>::KB;
  int k = 0;
  for (; k + KB <= K; k += KB) outer_acc_cols<NV, KB>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k + 4 <= K && 4 < KB; k += 4) outer_acc_cols<NV, 4>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k + 2 <= K; k += 2) outer_acc_cols<NV, 2>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k < K; ++k) outer_acc_cols<NV, 1>(A + k, lda, R, D, dK + (size_t)k * N, mode);
}

GLONET_AVX2 void outer_acc_avx2(const float* A, int lda, int R, int K, const float* D, int N,
                                float* dK, bool init) {
  switch (N) {
    case 8: return outer_acc_avx2_t<1>(A, lda, R, K, D, dK, init ? 1 : 0);
    case 16: return outer_acc_avx2_t<2>(A, lda, R, K, D, dK, init ? 1 : 0);
    case 32: return outer_acc_avx2_t<4>(A, lda, R, K, D, dK, init ? 1 : 0);
    default: return outer_acc_portable(A, lda, R, K, D, N, dK, init);
  }
}

GLONET_AVX2 void outer_fold_avx2(const float* A, int lda, int R, int K, const float* D, int N,
                                 float* tmp, float* dst, bool first) {
  const int mode = first ? 1 : 2;
  switch (N) {
    case 8: return outer_acc_avx2_t<1>(A, lda, R, K, D, dst, mode);
    case 16: return outer_acc_avx2_t<2>(A, lda, R, K, D, dst, mode);
    case 32: return outer_acc_avx2_t<4>(A, lda, R, K, D, dst, mode);
    default: return outer_fold_portable(A, lda, R, K, D, N, tmp, dst, first);
  }
}

GLONET_AVX2 void fold_avx2(float* acc, const float* src, size_t n, bool first) {
  if (first) {
    std::memcpy(acc, src, n * sizeof(float));
    return;
  }
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    GLONET_UNROLL for (int v = 0; v < 4; ++v)
      _mm256_storeu_ps(acc + i + 8 * v, _mm256_add_ps(_mm256_loadu_ps(acc + i + 8 * v),
                                                      _mm256_loadu_ps(src + i + 8 * v)));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), _mm256_loadu_ps(src + i)));
  for (; i < n; ++i) acc[i] += src[i];
}

// Same float32 operations in the same order as the portable (and TF.js) update; no contraction
// into FMA (the build uses -ffp-contract=off), so both paths give identical weights.
GLONET_AVX2 double adam_avx2(float* w, float* m, float* v, const float* g0, const float* g1,
                             size_t n, bool kernel, const AdamParams& p, float* gradOut) {
  const __m256 b1 = _mm256_set1_ps(p.b1), omb1 = _mm256_set1_ps(p.omb1);
  const __m256 b2 = _mm256_set1_ps(p.b2), omb2 = _mm256_set1_ps(p.omb2);
  const __m256 omab1 = _mm256_set1_ps(p.omab1), omab2 = _mm256_set1_ps(p.omab2);
  const __m256 eps = _mm256_set1_ps(p.eps), neglr = _mm256_set1_ps(p.neglr);
  const __m256 l2 = _mm256_set1_ps(p.l2), two = _mm256_set1_ps(2.f);
  __m256d sq0 = _mm256_setzero_pd(), sq1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_loadu_ps(g0 + i);
    if (g1) g = _mm256_add_ps(g, _mm256_loadu_ps(g1 + i));
    const __m256 wi = _mm256_loadu_ps(w + i);
    if (kernel) {
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(wi));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(wi, 1));
      sq0 = _mm256_add_pd(sq0, _mm256_mul_pd(lo, lo));
      sq1 = _mm256_add_pd(sq1, _mm256_mul_pd(hi, hi));
      g = _mm256_add_ps(g, _mm256_mul_ps(l2, _mm256_mul_ps(wi, two)));
    }
    if (gradOut) {
      _mm256_storeu_ps(gradOut + i, g);
      continue;
    }
    const __m256 mNew = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), b1), _mm256_mul_ps(g, omb1));
    const __m256 vNew = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), b2),
                                      _mm256_mul_ps(_mm256_mul_ps(g, g), omb2));
    const __m256 mh = _mm256_div_ps(mNew, omab1);
    const __m256 vh = _mm256_div_ps(vNew, omab2);
    _mm256_storeu_ps(m + i, mNew);
    _mm256_storeu_ps(v + i, vNew);
    const __m256 upd = _mm256_mul_ps(_mm256_div_ps(mh, _mm256_add_ps(_mm256_sqrt_ps(vh), eps)), neglr);
    _mm256_storeu_ps(w + i, _mm256_add_ps(upd, wi));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(sq0, sq1));
  double sq = parts[0] + parts[1] + parts[2] + parts[3];
  if (i < n)
    sq += adam_portable(w + i, m + i, v + i, g0 + i, g1 ? g1 + i : nullptr, n - i, kernel, p,
                        gradOut ? gradOut + i : nullptr);
  return sq;
}

const Kernels kAvx2 = {"avx2-fma", dense_avx2, block_fwd_avx2, relu_bwd_portable, block_bwd_avx2,
                       outer_acc_avx2, fold_avx2, outer_fold_avx2, adam_avx2};
#endif  // GLONET_X86

bool cpu_has_avx2_fma() {
#if GLONET_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const Kernels& pick_kernels(bool allowSimd) {
#if GLONET_X86
  if (allowSimd && cpu_has_avx2_fma()) return kAvx2;
#endif
  (void)allowSimd;
  return kPortable;
}

// ---------------------------------------------------------------------------------------------
// The engine
//
// Threads. The calling (JavaScript) thread is thread 0 and always works; the others are
// persistent helpers. A phase (the tiles of a batch, or the parameter chunks of the Adam update)
// is a list of units claimed one at a time from an atomic word holding (phase id, next unit);
// a training phase has two such lists, the two halves of the batch: thread t claims from half
// t % 2 first, then from the other, so that with two threads consecutive units mostly run on
// the same thread (see Determinism).
// The caller finishes the phase as soon as every unit is done: it never waits for a helper that
// has not claimed anything, so a helper that the OS has preempted (a busy machine) costs nothing
// but its share of the speed-up. Helpers spin briefly between phases, then sleep.
//
// Determinism. The tiles are fixed by the batch (tile t = rows [t*RT, (t+1)*RT)), whatever the
// thread count. A training unit (a tile, or for very large batches a fixed run of consecutive
// tiles, see maxSlots) computes its weight-gradient partial from zero in a buffer of its thread
// and its loss into unitLoss[unit]. The n units are cut into two fixed halves, units [0, mid)
// and [mid, n) with mid = ceil(n / 2), and each half h sums its partials in unit order into its
// accumulator A_h: A_0 = ((p_0 + p_1) + p_2) + ... + p_(mid-1), A_1 likewise from p_mid,
// parameter by parameter; the batch gradient is A_0 + A_1 (added in the Adam pass). A partial
// is folded group by group (a group = a run of consecutive parameters, e.g. a few blocks) as
// soon as its unit has finished the group, while it is hot, without locks or waiting: each
// (half, group) keeps next, the unit it folds next, written only by the thread folding that
// unit. If next is its unit, a thread folds its partial, then any later partials of the half
// already parked, and publishes the new next; otherwise it parks that group of its partial,
// where it is, and moves on (a buffer with parked groups goes back to the pool when the last of
// them is folded; its thread takes another). The update phase first folds, in unit order,
// whatever is still parked (units next .. end of the half). Two halves, rather than one chain,
// keep consecutive folds of an accumulator on one thread when two threads run (no cache lines
// moving between cores, little parking). The loss and the L2 penalty are summed in unit / chunk
// order. No sum depends on which thread ran what, so 1 thread, T threads, the adaptive switching
// between them and any scheduling give bitwise identical results.

enum LossKind { kMse = 0, kSoftmaxCe = 1 };
enum PhaseKind { kTrain = 0, kPredict = 1, kUpdate = 2, kLoss = 3 };

struct Segment {
  size_t off, len;
  bool kernel;
};

struct alignas(64) Workspace {  // one per thread
  FloatBuf acts;  // (depth + 1) x tileRows x W: H_0 (stem output) .. H_depth
  FloatBuf S, dS, G, G2, out, dOut, xpad;
  FloatBuf WT;    // depth x W x W: this thread's transposed block kernels for the current step
  int buf = -1;   // the gradient buffer (Engine::bufs_) of this thread's units, -1: none yet
  uint64_t wtPhase = 0;    // phase for which WT was transposed
};

struct Engine {
  int nIn, W, L, nOut, lossKind, RT, T;
  size_t P, oStemK, oStemB, oBlocks, blockStride, oHeadK, oHeadB;
  float *params, *m, *v;
  const Kernels* K;
  std::vector<Segment> segs;
  std::vector<std::unique_ptr<Workspace>> ws;

  // Current phase (written by thread 0 before it publishes the phase in `claim_`).
  PhaseKind kind = kTrain;
  const float* x = nullptr;
  const float* y = nullptr;
  float* predOut = nullptr;
  float* gradOut = nullptr;
  int rows = 0;
  std::atomic<uint32_t> units{0};  // read by helpers before they claim, hence atomic
  std::atomic<uint32_t> mid_{0};   // units [0, mid_) are claimed from claim_, the rest from claim1_
  AdamParams ap{};
  std::vector<double> unitLoss;  // per unit (train, loss) or per chunk (update: sum of w^2)
  static constexpr size_t kChunk = 16384;  // parameters per update unit

  // The accumulators A_0, A_1 of the two halves (slotStride apart), folded in unit order.
  FloatBuf gsum_;
  struct FoldGroup {
    size_t off, len;
    int lo = -1, hi = -1;  // blocks [lo, hi) for a run of blocks
  };
  struct alignas(64) FoldNext {
    std::atomic<uint32_t> next{0};  // the unit whose partial this (half, group) folds next
  };
  std::vector<FoldGroup> groups;     // head, block runs (top down), stem: the order they finish
  std::vector<int> groupsByOff;      // group indices by parameter offset
  std::vector<int> blockGroup;       // per block: its group when it is the run's lowest, else -1
  std::vector<int> groupOfBlock;     // per block: its group
  std::unique_ptr<FoldNext[]> fold_;  // [half * groups + group]
  uint32_t foldUnits = 0, foldMid = 0;  // units of the current training phase, its half point
  static constexpr size_t kFoldBytes = 8192;  // target group size (in L1 when folded)

  // Gradient buffers (slotStride floats each, laid out like the parameters): a thread computes
  // its units' partials in its buffer, reused while no group of it is parked. Unit u's partial
  // is in buffer unitBuf_[u]; parked_[u * groups + g] flags its parked groups. bufState_[b]
  // counts the parked, not yet folded groups of buffer b, plus kLeft once its thread has moved
  // to another buffer; the drain that folds the last of them returns b to the pool (freeBufs_,
  // LIFO). Units + threads buffers always suffice: a buffer is held by a thread or by parked
  // groups of at least one distinct unit. Allocated on the first training step (pages touched
  // only as used), grown for larger batches. At most maxSlots units (64, and about kSlotBudget
  // bytes of buffers but at least 8): a batch with more tiles groups them in fixed runs of
  // consecutive tiles per unit.
  FloatBuf bufs_;
  std::unique_ptr<std::atomic<uint32_t>[]> bufState_;
  std::unique_ptr<std::atomic<uint8_t>[]> parked_;
  std::vector<int> unitBuf_, freeBufs_;
  std::mutex freeMu_;
  size_t slotStride = 0;
  uint32_t slotCap = 0, maxSlots = 64, nBufs = 0;
  static constexpr size_t kSlotBudget = size_t(64) << 20;
  static constexpr uint32_t kLeft = 1u << 31;

  std::atomic<uint64_t> claim_{0};   // (phase << 32) | next unit of [0, mid_)
  std::atomic<uint64_t> claim1_{0};  // (phase << 32) | next unit of [mid_, units)
  std::atomic<uint32_t> done_{0};
  uint64_t phase_ = 0;

  // Adaptive thread use (when the caller did not fix the thread count): on a machine whose
  // other cores are busy, helpers only add overhead. Every kPeriod steps the other choice
  // (all threads / the calling thread alone) is timed for kProbe steps, per row, and kept if
  // it is faster. Both choices give the same bits (see Determinism above).
  bool adaptive = false;
  bool single_ = false;  // this step runs on the calling thread only
  bool preferSingle_ = false;
  int sinceProbe_ = 0, probeLeft_ = 0;
  std::vector<double> recent_, probe_;
  static constexpr int kPeriod = 64, kProbe = 4, kFirstProbe = 6;

  // Helpers.
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, doneCv_;
  bool waiting_ = false;  // thread 0 sleeps on doneCv_ (guarded by mu_)
  std::atomic<uint64_t> wake_{0};
  bool stop_ = false;

  Engine(int nIn_, int W_, int L_, int nOut_, int loss_, int threads, int tileRows, bool simd,
         bool adaptive_, float* p, float* m_, float* v_)
      : nIn(nIn_), W(W_), L(L_), nOut(nOut_), lossKind(loss_), params(p), m(m_), v(v_) {
    RT = std::max(4, (tileRows + 3) / 4 * 4);
    T = std::max(1, threads);
    oStemK = 0;
    oStemB = (size_t)nIn * W;
    oBlocks = oStemB + W;
    blockStride = (size_t)W * W + W;
    oHeadK = oBlocks + blockStride * L;
    oHeadB = oHeadK + (size_t)W * nOut;
    P = oHeadB + nOut;
    segs.push_back({oStemK, (size_t)nIn * W, true});
    segs.push_back({oStemB, (size_t)W, false});
    for (int l = 0; l < L; ++l) {
      segs.push_back({oBlocks + blockStride * l, (size_t)W * W, true});
      segs.push_back({oBlocks + blockStride * l + (size_t)W * W, (size_t)W, false});
    }
    segs.push_back({oHeadK, (size_t)W * nOut, true});
    segs.push_back({oHeadB, (size_t)nOut, false});
    K = &pick_kernels(simd);
    slotStride = (P + 15) / 16 * 16;
    maxSlots = (uint32_t)std::min<size_t>(64, std::max<size_t>(8, kSlotBudget / (slotStride * sizeof(float))));
    gsum_ = alloc_floats(2 * slotStride);
    groups.push_back({oHeadK, P - oHeadK});
    blockGroup.assign(L, -1);
    groupOfBlock.assign(L, -1);
    const int per = (int)std::max<size_t>(1, kFoldBytes / (blockStride * sizeof(float)));
    for (int hi = L; hi > 0; hi -= per) {
      const int lo = std::max(0, hi - per);
      blockGroup[lo] = (int)groups.size();
      for (int l = lo; l < hi; ++l) groupOfBlock[l] = (int)groups.size();
      groups.push_back({oBlocks + blockStride * lo, blockStride * (hi - lo), lo, hi});
    }
    groups.push_back({0, oBlocks});
    fold_.reset(new FoldNext[2 * groups.size()]);
    for (size_t g = 0; g < groups.size(); ++g) groupsByOff.push_back((int)g);
    std::sort(groupsByOff.begin(), groupsByOff.end(),
              [this](int a, int b) { return groups[a].off < groups[b].off; });
    for (int t = 0; t < T; ++t) {
      auto w = std::make_unique<Workspace>();
      w->acts = alloc_floats((size_t)(L + 1) * RT * W);
      w->S = alloc_floats((size_t)RT * W);
      w->dS = alloc_floats((size_t)RT * W);
      w->G = alloc_floats((size_t)RT * W);
      w->G2 = alloc_floats((size_t)RT * W);
      w->out = alloc_floats((size_t)RT * nOut);
      w->dOut = alloc_floats((size_t)RT * nOut);
      w->xpad = alloc_floats((size_t)RT * nIn);
      w->WT = alloc_floats((size_t)L * W * W);
      ws.push_back(std::move(w));
    }
    adaptive = adaptive_ && T > 1;
    sinceProbe_ = kPeriod - kFirstProbe;
    for (int t = 1; t < T; ++t) threads_.emplace_back([this, t] { helperLoop(t); });
  }

  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
  }

  // Before a step: which choice runs it.
  void tuneBefore() {
    if (!adaptive) return;
    if (probeLeft_ == 0 && sinceProbe_ >= kPeriod) {
      probeLeft_ = kProbe;
      probe_.clear();
    }
    single_ = probeLeft_ > 0 ? !preferSingle_ : preferSingle_;
  }

  // After a step: record its time per row; at the end of a probe, keep the faster choice.
  void tuneAfter(double msPerRow) {
    if (!adaptive) return;
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

  ~Engine() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      wake_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& th : threads_) th.join();
  }

  // ----- phases -----

  // Runs the current phase, n units ([0, mid) and [mid, n) claimed separately), to completion
  // on this thread plus whichever helpers join.
  void runPhase(uint32_t n, uint32_t mid) {
    units.store(n, std::memory_order_relaxed);
    mid_.store(mid, std::memory_order_relaxed);
    // Phase ids are 32-bit (they share claim_ with the unit index) and never 0, the "no phase"
    // value of Workspace::wtPhase.
    phase_ = (phase_ + 1) & 0xffffffffu;
    if (phase_ == 0) phase_ = 1;
    done_.store(0, std::memory_order_relaxed);
    claim1_.store((phase_ << 32) | mid, std::memory_order_relaxed);
    claim_.store(phase_ << 32, std::memory_order_release);
    if (T > 1 && !single_ && units.load(std::memory_order_relaxed) > 1) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        wake_.fetch_add(1, std::memory_order_release);
      }
      cv_.notify_all();
    }
    work(0);
    // Wait for tiles still running on helpers: spin briefly, then sleep, so that on a busy
    // machine a preempted helper can have this core back to finish its tile.
    if (done_.load(std::memory_order_acquire) == n) return;
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

  // Row tiles of a batch: tile t = rows [t*RT, (t+1)*RT) (the last one may be short), the same
  // whatever the thread count. A unit (what a thread claims) is `tilesPerUnit` consecutive
  // tiles: 1, except for training batches of more than maxSlots tiles.
  uint32_t nTiles = 0, tilesPerUnit = 1;

  uint32_t planUnits() {
    nTiles = (uint32_t)((rows + RT - 1) / RT);
    tilesPerUnit = kind == kTrain ? (nTiles + maxSlots - 1) / maxSlots : 1;
    return (nTiles + tilesPerUnit - 1) / tilesPerUnit;
  }

  void ensureSlots(uint32_t n) {
    if (n <= slotCap) return;
    // Allocate first (std::bad_alloc reaches JS as an error), then commit.
    const uint32_t nb = n + (uint32_t)T;
    FloatBuf bufs = alloc_floats((size_t)nb * slotStride, false);
    std::unique_ptr<std::atomic<uint32_t>[]> state(new std::atomic<uint32_t>[nb]);
    std::unique_ptr<std::atomic<uint8_t>[]> parked(new std::atomic<uint8_t>[(size_t)n * groups.size()]);
    unitBuf_.resize(n, -1);
    freeBufs_.reserve(nb);
    bufs_ = std::move(bufs);
    bufState_ = std::move(state);
    parked_ = std::move(parked);
    nBufs = nb;
    for (auto& w : ws) w->buf = -1;
    slotCap = n;
  }

  float* buffer(int b) { return bufs_.get() + (size_t)b * slotStride; }

  // Before a training phase: nothing parked, every buffer not held by a thread in the pool.
  void resetBuffers(uint32_t n) {
    for (size_t i = 0; i < (size_t)n * groups.size(); ++i) parked_[i].store(0, std::memory_order_relaxed);
    std::vector<uint8_t> held(nBufs, 0);
    for (auto& w : ws)
      if (w->buf >= 0) held[w->buf] = 1;
    freeBufs_.clear();
    for (int b = (int)nBufs - 1; b >= 0; --b) {
      bufState_[b].store(0, std::memory_order_relaxed);
      if (!held[b]) freeBufs_.push_back(b);
    }
  }

  // A thread starts unit `unit`: its buffer (a pooled one if it left its own).
  float* unitStart(Workspace& w, uint32_t unit) {
    if (w.buf < 0) {
      std::lock_guard<std::mutex> lk(freeMu_);
      w.buf = freeBufs_.back();  // never empty, see bufs_
      freeBufs_.pop_back();
    }
    unitBuf_[unit] = w.buf;
    return buffer(w.buf);
  }

  // A thread ends a unit: it keeps its buffer unless groups of it are still parked.
  void unitEnd(Workspace& w) {
    std::atomic<uint32_t>& st = bufState_[w.buf];
    if (st.load(std::memory_order_acquire) == 0) return;
    if ((st.fetch_or(kLeft, std::memory_order_acq_rel) & ~kLeft) == 0) {
      st.store(0, std::memory_order_relaxed);  // folded meanwhile: keep it
    } else {
      w.buf = -1;  // the last drain returns it to the pool
    }
  }

  // A parked group of buffer b is folded.
  void releaseParked(int b) {
    if (bufState_[b].fetch_sub(1, std::memory_order_acq_rel) == kLeft + 1) {
      bufState_[b].store(0, std::memory_order_relaxed);  // (published by the pool's mutex)
      std::lock_guard<std::mutex> lk(freeMu_);
      freeBufs_.push_back(b);
    }
  }

  int halfOf(uint32_t unit) const { return unit >= foldMid ? 1 : 0; }
  uint32_t halfStart(int h) const { return h ? foldMid : 0; }
  uint32_t halfEnd(int h) const { return h ? foldUnits : foldMid; }
  float* acc(int h) { return gsum_.get() + (size_t)h * slotStride; }
  std::atomic<uint32_t>& foldNext(int h, int gi) { return fold_[(size_t)h * groups.size() + gi].next; }

  // Unit `unit` has finished group gi of its partial (src, in buffer b).
  void foldGroup(uint32_t unit, int gi, const float* src, int b) {
    const FoldGroup& G = groups[gi];
    const int h = halfOf(unit);
    std::atomic<uint32_t>& next = foldNext(h, gi);
    // next == unit: every earlier unit is folded, and no other thread writes next until this
    // one publishes unit + 1 or later.
    if (next.load(std::memory_order_acquire) != unit) {
      bufState_[b].fetch_add(1, std::memory_order_relaxed);
      parked_[(size_t)unit * groups.size() + gi].store(1, std::memory_order_release);
      return;
    }
    K->fold(acc(h) + G.off, src + G.off, G.len, unit == halfStart(h));
    foldParkedAndPublish(unit, gi);
  }

  // After unit `unit` folded group gi (its half's next == unit), fold the half's later units'
  // parked partials in order, then publish next.
  void foldParkedAndPublish(uint32_t unit, int gi) {
    const FoldGroup& G = groups[gi];
    const size_t nG = groups.size();
    const int h = halfOf(unit);
    const uint32_t end = halfEnd(h);
    // Later units that found next != theirs parked. One that parks after this check stays
    // parked, and so do the units after it: the update phase folds them.
    uint32_t j = unit + 1;
    for (; j < end && parked_[(size_t)j * nG + gi].load(std::memory_order_acquire); ++j) {
      K->fold(acc(h) + G.off, buffer(unitBuf_[j]) + G.off, G.len, false);
      releaseParked(unitBuf_[j]);
    }
    foldNext(h, gi).store(j, std::memory_order_release);
  }

  // Claims the next unit of half h ([0, mid_) or [mid_, units)).
  bool claimUnit(uint64_t phase, int h, uint32_t* idx) {
    std::atomic<uint64_t>& word = h ? claim1_ : claim_;
    uint64_t c = word.load(std::memory_order_acquire);
    for (;;) {
      if ((c >> 32) != phase) return false;
      const uint32_t i = (uint32_t)c;
      // (a stale `units` / `mid_` read here only makes the CAS below fail)
      if (i >= (h ? units : mid_).load(std::memory_order_relaxed)) return false;
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
      // A successful claim means thread 0 is still in `phase`: its parameters are stable.
      if (kind == kUpdate) {
        updateChunk(idx);
      } else {
        // The unit's tiles in order; its loss summed in that order.
        const uint32_t t0 = idx * tilesPerUnit, t1 = std::min(nTiles, t0 + tilesPerUnit);
        float* g = kind == kTrain ? unitStart(*ws[t], idx) : nullptr;
        double loss = 0;
        for (uint32_t k = t0; k < t1; ++k) {
          const int r0 = (int)k * RT;
          loss += tile(t, phase, r0, std::min(RT, rows - r0), idx, g, k == t0, k + 1 == t1);
        }
        if (kind == kTrain) unitEnd(*ws[t]);
        if (kind != kPredict) unitLoss[idx] = loss;
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == units.load(std::memory_order_relaxed) &&
          t != 0) {
        std::lock_guard<std::mutex> lk(mu_);
        if (waiting_) doneCv_.notify_one();
      }
    }
  }

  void helperLoop(int t) {
    uint64_t seen = 0;
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
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_) return;
      }
      work(t);
    }
  }

  // ----- one tile: forward, and when training, loss and backward -----

  // Returns the tile's loss sum (train, loss). When training, writes (init: the unit's first
  // tile) or adds its weight gradient to the unit's partial g, and on the unit's last tile
  // (last) folds each group of the partial as soon as it is complete.
  double tile(int tid, uint64_t phase, int r0, int n, uint32_t unit, float* g, bool init,
              bool last) {
    Workspace& w = *ws[tid];
    const bool train = kind == kTrain;
    const int Rp = (n + 3) / 4 * 4;
    const float* X = x + (size_t)r0 * nIn;
    if (Rp != n) {
      std::memcpy(w.xpad.get(), X, (size_t)n * nIn * sizeof(float));
      std::memset(w.xpad.get() + (size_t)n * nIn, 0, (size_t)(Rp - n) * nIn * sizeof(float));
      X = w.xpad.get();
    }
    const size_t act = (size_t)RT * W;
    float* acts = w.acts.get();
    float* S = w.S.get();
    K->dense(X, nIn, Rp, nIn, params + oStemK, W, params + oStemB, acts);
    for (int l = 0; l < L; ++l) {
      const float* blk = params + oBlocks + blockStride * l;
      K->block_fwd(acts + act * l, acts + act * (l + 1), S, blk, blk + (size_t)W * W, Rp, W, l == 0);
    }
    float* out = w.out.get();
    K->dense(S, W, Rp, W, params + oHeadK, nOut, params + oHeadB, out);
    if (kind == kPredict) {
      std::memcpy(predOut + (size_t)r0 * nOut, out, (size_t)n * nOut * sizeof(float));
      return 0;
    }

    // Loss and its gradient with respect to the head output (zero for pad rows).
    float* dOut = w.dOut.get();
    double loss = 0;
    if (lossKind == kMse) {
      const float scale = 2.f / (float)((double)rows * nOut);
      const float* yt = y + (size_t)r0 * nOut;
      for (int i = 0; i < n * nOut; ++i) {
        const float d = out[i] - yt[i];
        loss += (double)d * d;
        dOut[i] = d * scale;
      }
    } else {
      const double inv = 1.0 / rows;
      for (int r = 0; r < n; ++r) {
        const float* o = out + (size_t)r * nOut;
        float* d = dOut + (size_t)r * nOut;
        const float yl = y[r0 + r];
        const int label = (yl >= 0.f && yl < (float)nOut) ? (int)yl : -1;
        if (label < 0) {  // the JS side validates labels; never read out of bounds
          loss = std::nan("");
          for (int j = 0; j < nOut; ++j) d[j] = 0.f;
          continue;
        }
        double mx = o[0];
        for (int j = 1; j < nOut; ++j) mx = std::max(mx, (double)o[j]);
        double sum = 0;
        for (int j = 0; j < nOut; ++j) sum += std::exp((double)o[j] - mx);
        const double lse = mx + std::log(sum);
        loss += lse - o[label];
        for (int j = 0; j < nOut; ++j) {
          const double pj = std::exp((double)o[j] - lse);
          d[j] = (float)((pj - (j == label ? 1.0 : 0.0)) * inv);
        }
      }
    }
    for (int i = n * nOut; i < Rp * nOut; ++i) dOut[i] = 0.f;
    if (!train) return loss;  // loss only

    // The unit's partial g: its first tile writes the kernel gradients (outer_acc with init) and
    // zeroes each bias gradient (accumulated with +=) just before it; later tiles of the unit add.
    const int gb = w.buf;
    auto zeroIfInit = [init](float* b, int len) {
      if (init)
        for (int j = 0; j < len; ++j) b[j] = 0.f;
    };
    // First tile of this phase on this thread: transpose the block kernels.
    const bool transpose = w.wtPhase != phase;
    w.wtPhase = phase;

    // Head: dK += S^T dOut, db += colsum(dOut), dS = dOut . headK^T
    K->outer_acc(S, W, Rp, W, dOut, nOut, g + oHeadK, init);
    zeroIfInit(g + oHeadB, nOut);
    for (int r = 0; r < Rp; ++r)
      for (int j = 0; j < nOut; ++j) g[oHeadB + j] += dOut[(size_t)r * nOut + j];
    if (last) foldGroup(unit, 0, g, gb);
    float* dS = w.dS.get();
    const float* hk = params + oHeadK;
    for (int r = 0; r < Rp; ++r) {
      const float* d = dOut + (size_t)r * nOut;
      float* s = dS + (size_t)r * W;
      for (int j = 0; j < W; ++j) {
        float a = 0.f;
        for (int o = 0; o < nOut; ++o) a += d[o] * hk[(size_t)j * nOut + o];
        s[j] = a;
      }
    }
    float* G = w.G.get();
    float* G2 = w.G2.get();
    // dZ of the last block; each block_bwd then yields the next block's dZ (the stem's input
    // gradient for the first block, which has no relu).
    zeroIfInit(g + oBlocks + blockStride * (L - 1) + (size_t)W * W, W);
    K->relu_bwd(dS, acts + act * L, G, g + oBlocks + blockStride * (L - 1) + (size_t)W * W, Rp, W);
    // A single-tile unit that is next in line for a run of blocks when it starts the run folds
    // the run's kernel gradients straight from registers (outer_fold), its biases at the end.
    bool direct = false;
    const int half = halfOf(unit);
    const bool firstOfHalf = unit == halfStart(half);
    for (int l = L - 1; l >= 0; --l) {
      float* gk = g + oBlocks + blockStride * l;
      const int gi = groupOfBlock[l];
      if (l == groups[gi].hi - 1)
        direct = init && last && foldNext(half, gi).load(std::memory_order_acquire) == unit;
      float* wt = w.WT.get() + (size_t)l * W * W;
      if (transpose) {
        const float* k = params + oBlocks + blockStride * l;
        for (int i = 0; i < W; ++i)
          for (int j = 0; j < W; ++j) wt[(size_t)j * W + i] = k[(size_t)i * W + j];
      }
      if (l > 0) {
        zeroIfInit(gk - blockStride + (size_t)W * W, W);
        K->block_bwd(G, wt, dS, acts + act * l, G2, gk - blockStride + (size_t)W * W, Rp, W);
      } else {
        K->block_bwd(G, wt, nullptr, nullptr, G2, nullptr, Rp, W);
      }
      if (direct) {
        K->outer_fold(acts + act * l, W, Rp, W, G, W, gk, acc(half) + (gk - g), firstOfHalf);
      } else {
        K->outer_acc(acts + act * l, W, Rp, W, G, W, gk, init);
      }
      // Blocks l.. of the run are complete (block l's bias came from the block above).
      if (last && blockGroup[l] >= 0) {
        if (direct) {
          for (int b = l; b < groups[gi].hi; ++b) {
            const size_t ob = oBlocks + blockStride * b + (size_t)W * W;
            K->fold(acc(half) + ob, g + ob, W, firstOfHalf);
          }
          foldParkedAndPublish(unit, gi);
        } else {
          foldGroup(unit, gi, g, gb);
        }
      }
      std::swap(G, G2);
    }
    // G is now the gradient with respect to the stem output.
    K->outer_acc(X, nIn, Rp, nIn, G, W, g + oStemK, init);
    zeroIfInit(g + oStemB, W);
    for (int r = 0; r < Rp; ++r)
      for (int j = 0; j < W; ++j) g[oStemB + j] += G[(size_t)r * W + j];
    if (last) foldGroup(unit, (int)groups.size() - 1, g, gb);
    return loss;
  }

  // ----- one chunk of the update: the parked partials, L2, Adam (or write the gradient) -----

  void updateChunk(uint32_t idx) {
    const size_t lo = (size_t)idx * kChunk, hi = std::min(P, lo + kChunk);
    {
      // Fold what the training phase left parked: units next[g] .. end of each group, in order.
      auto gi = std::upper_bound(groupsByOff.begin(), groupsByOff.end(), lo, [this](size_t x, int g) {
        return x < groups[g].off + groups[g].len;
      });
      for (; gi != groupsByOff.end() && groups[*gi].off < hi; ++gi) {
        const FoldGroup& G = groups[*gi];
        const size_t a = std::max(lo, G.off), b = std::min(hi, G.off + G.len);
        for (int h = 0; h < 2; ++h)
          for (uint32_t u = foldNext(h, *gi).load(std::memory_order_relaxed); u < halfEnd(h); ++u)
            K->fold(acc(h) + a, buffer(unitBuf_[u]) + a, b - a, u == halfStart(h));
      }
    }
    // First segment that ends after lo (segs are sorted and contiguous).
    auto it = std::upper_bound(segs.begin(), segs.end(), lo,
                               [](size_t x, const Segment& s) { return x < s.off + s.len; });
    const bool two = foldUnits > foldMid;  // (a one-unit batch has no second half)
    double sq = 0;
    for (; it != segs.end() && it->off < hi; ++it) {
      const size_t a = std::max(lo, it->off), b = std::min(hi, it->off + it->len);
      sq += K->adam(params + a, m + a, v + a, acc(0) + a, two ? acc(1) + a : nullptr, b - a,
                    it->kernel, ap, gradOut ? gradOut + a : nullptr);
    }
    unitLoss[idx] = sq;
  }

  // ----- entry points (thread 0 = the caller) -----

  // Training step (gradOut_ == null) or gradient computation. Returns the loss with L2 penalty.
  double trainStep(const float* x_, const float* y_, int rows_, const AdamParams& ap_, float* gradOut_) {
    tuneBefore();
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = trainStepOnce(x_, y_, rows_, ap_, gradOut_);
    tuneAfter(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
              rows_);
    return loss;
  }

  double trainStepOnce(const float* x_, const float* y_, int rows_, const AdamParams& ap_,
                       float* gradOut_) {
    kind = kTrain;
    x = x_;
    y = y_;
    rows = rows_;
    const uint32_t n = planUnits();
    ensureSlots(n);
    if (unitLoss.size() < n) unitLoss.resize(n);
    foldUnits = n;
    foldMid = (n + 1) / 2;
    for (size_t g = 0; g < groups.size(); ++g) {
      foldNext(0, (int)g).store(0, std::memory_order_relaxed);
      foldNext(1, (int)g).store(foldMid, std::memory_order_relaxed);
    }
    resetBuffers(n);
    runPhase(n, foldMid);
    double loss = 0;
    for (uint32_t i = 0; i < n; ++i) loss += unitLoss[i];
    const double dataLoss = lossKind == kMse ? loss / ((double)rows * nOut) : loss / rows;

    kind = kUpdate;
    ap = ap_;
    gradOut = gradOut_;
    const uint32_t chunks = (uint32_t)((P + kChunk - 1) / kChunk);
    if (unitLoss.size() < chunks) unitLoss.resize(chunks);
    runPhase(chunks, chunks);
    double sq = 0;
    for (uint32_t i = 0; i < chunks; ++i) sq += unitLoss[i];
    return dataLoss + (double)ap.l2 * sq;
  }

  // Data loss (no L2) at the current weights: forward only.
  double lossOnly(const float* x_, const float* y_, int rows_) {
    kind = kLoss;
    x = x_;
    y = y_;
    rows = rows_;
    const uint32_t n = planUnits();
    if (unitLoss.size() < n) unitLoss.resize(n);
    runPhase(n, n);
    double loss = 0;
    for (uint32_t i = 0; i < n; ++i) loss += unitLoss[i];
    return lossKind == kMse ? loss / ((double)rows * nOut) : loss / rows;
  }

  void predict(const float* x_, int rows_, float* out) {
    kind = kPredict;
    x = x_;
    y = nullptr;
    rows = rows_;
    predOut = out;
    const uint32_t n = planUnits();
    runPhase(n, n);
  }
};

#ifndef GLONET_KERNELS_ONLY  // (defined by kernel micro-benchmarks that link no Node-API)
// ---------------------------------------------------------------------------------------------
// Node-API glue

#define GLONET_MODULE "glonet_fused"
#include "napi_util.h"

using EngineHandle = Handle<Engine, 3>;  // params, m and v stay referenced while the engine lives

Engine* get_engine(napi_env env, napi_value v) { return EngineHandle::engine_of(env, v); }

// create(params, m, v, {nIn, width, depth, nOut, loss, threads, tileRows, simd})
napi_value Create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return throw_error(env, "create: expected (params, m, v, config)");
  float *p, *m, *v;
  size_t np, nm, nv;
  if (!get_f32(env, argv[0], &p, &np) || !get_f32(env, argv[1], &m, &nm) ||
      !get_f32(env, argv[2], &v, &nv))
    return throw_error(env, "create: params, m and v must be Float32Arrays");
  int32_t nIn, width, depth, nOut, loss, threads, tileRows, simd, adaptive = 0;
  if (!get_int_prop(env, argv[3], "nIn", &nIn) || !get_int_prop(env, argv[3], "width", &width) ||
      !get_int_prop(env, argv[3], "depth", &depth) || !get_int_prop(env, argv[3], "nOut", &nOut) ||
      !get_int_prop(env, argv[3], "loss", &loss) ||
      !get_int_prop(env, argv[3], "threads", &threads) ||
      !get_int_prop(env, argv[3], "tileRows", &tileRows) ||
      !get_int_prop(env, argv[3], "simd", &simd))
    return throw_error(env, "create: bad config");
  get_int_prop(env, argv[3], "adaptive", &adaptive);  // optional
  if (nIn < 1 || width < 1 || depth < 1 || nOut < 1 || threads < 1 || threads > 64 ||
      (loss != kMse && loss != kSoftmaxCe))
    return throw_error(env, "create: bad dimensions");
  const size_t P = (size_t)nIn * width + width + ((size_t)width * width + width) * depth +
                   (size_t)width * nOut + nOut;
  if (np != P || nm != P || nv != P) return throw_error(env, "create: params/m/v length mismatch");
  EngineHandle* h = new EngineHandle();
  try {
    h->engine = new Engine(nIn, width, depth, nOut, loss, threads, tileRows, simd != 0,
                           adaptive != 0, p, m, v);
  } catch (const std::exception& e) {
    delete h;
    return throw_error(env, std::string("create: ") + e.what());
  }
  return EngineHandle::wrap(env, h, argv);
}

bool read_xy(napi_env env, Engine* e, napi_value* argv, bool needY, const float** x,
             const float** y, int32_t* rows) {
  float *xp, *yp = nullptr;
  size_t nx, ny = 0;
  if (!get_f32(env, argv[1], &xp, &nx)) return false;
  if (needY && !get_f32(env, argv[2], &yp, &ny)) return false;
  if (napi_get_value_int32(env, argv[3], rows) != napi_ok) return false;
  if (*rows < 1 || nx < (size_t)*rows * e->nIn) return false;
  if (needY && ny < (size_t)*rows * (e->lossKind == kMse ? e->nOut : 1)) return false;
  *x = xp;
  *y = yp;
  return true;
}

// step(handle, x, y, rows, hp: Float64Array [l2, b1, omb1, b2, omb2, omab1, omab2, eps, neglr])
// gradients(handle, x, y, rows, hp, gradOut)
napi_value StepOrGrad(napi_env env, napi_callback_info info, bool grad) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < (grad ? 6u : 5u)) return throw_error(env, "step/gradients: missing arguments");
  Engine* e = get_engine(env, argv[0]);
  if (!e) return throw_error(env, "engine is disposed");
  const float *x, *y;
  int32_t rows;
  if (!read_xy(env, e, argv, true, &x, &y, &rows))
    return throw_error(env, "step: bad x/y/rows (Float32Arrays of rows*nIn and rows*targets)");
  size_t nhp = 0;
  void* hpv = nullptr;
  if (!get_typed(env, argv[4], napi_float64_array, &hpv, &nhp) || nhp < 9)
    return throw_error(env, "step: hyper-parameters must be a Float64Array of 9");
  const double* hp = static_cast<const double*>(hpv);
  AdamParams ap{(float)hp[0], (float)hp[1], (float)hp[2], (float)hp[3], (float)hp[4],
                (float)hp[5], (float)hp[6], (float)hp[7], (float)hp[8]};
  float* gradOut = nullptr;
  if (grad) {
    size_t ng;
    if (!get_f32(env, argv[5], &gradOut, &ng) || ng != e->P)
      return throw_error(env, "gradients: out must be a Float32Array of the parameter count");
  }
  double loss;
  try {
    loss = e->trainStep(x, y, rows, ap, gradOut);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  napi_value result;
  CHECK(napi_create_double(env, loss, &result));
  return result;
}

napi_value Step(napi_env env, napi_callback_info info) { return StepOrGrad(env, info, false); }
napi_value Gradients(napi_env env, napi_callback_info info) { return StepOrGrad(env, info, true); }

// predict(handle, x, _, rows, out)
napi_value Predict(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 5) return throw_error(env, "predict: missing arguments");
  Engine* e = get_engine(env, argv[0]);
  if (!e) return throw_error(env, "engine is disposed");
  const float *x, *y;
  int32_t rows;
  if (!read_xy(env, e, argv, false, &x, &y, &rows)) return throw_error(env, "predict: bad x/rows");
  float* out;
  size_t n;
  if (!get_f32(env, argv[4], &out, &n) || n < (size_t)rows * e->nOut)
    return throw_error(env, "predict: out must be a Float32Array of rows*nOut");
  e->predict(x, rows, out);
  return nullptr;
}

// evaluate(handle, x, y, rows) -> data loss without the L2 penalty
napi_value Evaluate(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return throw_error(env, "evaluate: missing arguments");
  Engine* e = get_engine(env, argv[0]);
  if (!e) return throw_error(env, "engine is disposed");
  const float *x, *y;
  int32_t rows;
  if (!read_xy(env, e, argv, true, &x, &y, &rows)) return throw_error(env, "evaluate: bad x/y/rows");
  napi_value result;
  CHECK(napi_create_double(env, e->lossOnly(x, y, rows), &result));
  return result;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, simd, hw;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, pick_kernels(true).name, NAPI_AUTO_LENGTH, &simd));
  CHECK(napi_create_uint32(env, std::max(1u, std::thread::hardware_concurrency()), &hw));
  CHECK(napi_set_named_property(env, obj, "simd", simd));
  CHECK(napi_set_named_property(env, obj, "hardwareThreads", hw));
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      method("create", Create),   method("step", Step),         method("gradients", Gradients),
      method("predict", Predict), method("evaluate", Evaluate), method("destroy", EngineHandle::destroy),
      method("info", Info),
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
#else
}  // namespace
#endif  // GLONET_KERNELS_ONLY
