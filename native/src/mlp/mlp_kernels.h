// SIMD kernels and the Adam update shared by the fused MLP engines (fused_mlp.cc, the GloNet
// MLP; block_mlp.cc, the two-layer-block baselines): dense layers, their backward passes, partial
// gradient folds and TF.js's Adam, each in portable C++ and, on x86-64, in AVX2+FMA and AVX-512F
// compiled with __attribute__((target(...))) and chosen at run time with __builtin_cpu_supports,
// so the binary runs on any x86-64 (and the file builds on other architectures without them).
//
// Every kernel takes any row count R. The portable and SIMD sets agree to rounding, not bitwise
// (FMA); the AVX-512 kernels do each output's operations in the AVX2 kernels' order, so those two
// agree bitwise; each set is deterministic.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define GLONET_X86 1
#include <immintrin.h>
#else
#define GLONET_X86 0
#endif

namespace {

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
// Kernels (any row count R).

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

// ----- AVX-512F (one zmm register = a 16-wide row) -----
// CPUs with 512-bit FMA units (on this project's EPYC: 258 GFLOP/s a core against 123 with
// 256-bit FMAs, measured) run the width-16 and width-32 kernels twice as wide. Every output
// element sees the same FMAs/additions in the same order as in the AVX2 kernels above (k in
// order for a dense row, rows in order for outer_acc and the bias sums), so the two sets give
// bit-identical results: only the register blocking differs. Other widths, and the kernels that
// are not matrix products, are the AVX2 ones.
#define GLONET_AVX512 __attribute__((target("avx512f,avx2,fma")))

// Rows [r, R) of C = A.B + bias (kind 0) or the block forward (kind 1: relu, store, running sum
// S), RB rows at a time, NV zmm per row; returns the first row not done.
template <int NV, int RB, int kind>
GLONET_AVX512 inline int dense_rows512(const float* A, int lda, int r, int R, int K, const float* B,
                                       const float* bias, float* C, float* S, bool first) {
  constexpr int N = 16 * NV;
  const __m512 zero = _mm512_setzero_ps();
  for (; r + RB <= R; r += RB) {
    const float* a = A + (size_t)r * lda;
    __m512 acc[RB * NV];
    GLONET_UNROLL for (int i = 0; i < RB; ++i)
      GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[i * NV + v] = bias ? _mm512_loadu_ps(bias + 16 * v) : zero;
    for (int k = 0; k < K; ++k) {
      __m512 bv[NV];
      GLONET_UNROLL for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(B + (size_t)k * N + 16 * v);
      GLONET_UNROLL for (int i = 0; i < RB; ++i) {
        const __m512 av = _mm512_set1_ps(a[(size_t)i * lda + k]);
        GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[i * NV + v] = _mm512_fmadd_ps(av, bv[v], acc[i * NV + v]);
      }
    }
    GLONET_UNROLL for (int i = 0; i < RB; ++i) {
      float* c = C + (size_t)(r + i) * N;
      GLONET_UNROLL for (int v = 0; v < NV; ++v) {
        if (kind == 1) {
          const __m512 h = _mm512_max_ps(acc[i * NV + v], zero);
          float* s = S + (size_t)(r + i) * N + 16 * v;
          _mm512_storeu_ps(c + 16 * v, h);
          _mm512_storeu_ps(s, first ? h : _mm512_add_ps(_mm512_loadu_ps(s), h));
        } else {
          _mm512_storeu_ps(c + 16 * v, acc[i * NV + v]);
        }
      }
    }
  }
  return r;
}

template <int NV, int kind>
GLONET_AVX512 void dense_all512(const float* A, int lda, int R, int K, const float* B, const float* bias,
                                float* C, float* S, bool first) {
  // 16 (NV 1) or 8 (NV 2) rows: 16 accumulators, enough to cover the FMA latency of two units.
  constexpr int RB = NV == 1 ? 16 : 8;
  int r = dense_rows512<NV, RB, kind>(A, lda, 0, R, K, B, bias, C, S, first);
  r = dense_rows512<NV, 4, kind>(A, lda, r, R, K, B, bias, C, S, first);
  dense_rows512<NV, 1, kind>(A, lda, r, R, K, B, bias, C, S, first);
}

GLONET_AVX512 void dense_avx512(const float* A, int lda, int R, int K, const float* B, int N,
                                const float* bias, float* C) {
  switch (N) {
    case 16: return dense_all512<1, 0>(A, lda, R, K, B, bias, C, nullptr, false);
    case 32: return dense_all512<2, 0>(A, lda, R, K, B, bias, C, nullptr, false);
    default: return dense_avx2(A, lda, R, K, B, N, bias, C);
  }
}

GLONET_AVX512 void block_fwd_avx512(const float* Hin, float* Hout, float* S, const float* Wk,
                                    const float* b, int R, int W, bool first) {
  switch (W) {
    case 16: return dense_all512<1, 1>(Hin, W, R, W, Wk, b, Hout, S, first);
    case 32: return dense_all512<2, 1>(Hin, W, R, W, Wk, b, Hout, S, first);
    default: return block_fwd_avx2(Hin, Hout, S, Wk, b, R, W, first);
  }
}

// Rows [r, R) of Gout = dS + G . WT, then (H given) Gout *= (H > 0) and db += colsum(Gout), the
// column sums row by row in order as in back_rows.
template <int NV, int RB>
GLONET_AVX512 inline int back_rows512(const float* G, const float* WT, const float* dS, const float* H,
                                      float* Gout, float* db, int r, int R) {
  constexpr int N = 16 * NV;
  const __m512 zero = _mm512_setzero_ps();
  for (; r + RB <= R; r += RB) {
    __m512 acc[RB * NV];
    GLONET_UNROLL for (int i = 0; i < RB; ++i)
      GLONET_UNROLL for (int v = 0; v < NV; ++v)
        acc[i * NV + v] = dS ? _mm512_loadu_ps(dS + (size_t)(r + i) * N + 16 * v) : zero;
    for (int c = 0; c < N; ++c) {
      __m512 wt[NV];
      GLONET_UNROLL for (int v = 0; v < NV; ++v) wt[v] = _mm512_loadu_ps(WT + (size_t)c * N + 16 * v);
      GLONET_UNROLL for (int i = 0; i < RB; ++i) {
        const __m512 a = _mm512_set1_ps(G[(size_t)(r + i) * N + c]);
        GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[i * NV + v] = _mm512_fmadd_ps(a, wt[v], acc[i * NV + v]);
      }
    }
    if (H) {
      GLONET_UNROLL for (int v = 0; v < NV; ++v) {
        __m512 sum = _mm512_loadu_ps(db + 16 * v);
        GLONET_UNROLL for (int i = 0; i < RB; ++i) {
          const __m512 h = _mm512_loadu_ps(H + (size_t)(r + i) * N + 16 * v);
          acc[i * NV + v] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(h, zero, _CMP_GT_OQ), acc[i * NV + v]);
          sum = _mm512_add_ps(sum, acc[i * NV + v]);
        }
        _mm512_storeu_ps(db + 16 * v, sum);
      }
    }
    GLONET_UNROLL for (int i = 0; i < RB; ++i)
      GLONET_UNROLL for (int v = 0; v < NV; ++v) _mm512_storeu_ps(Gout + (size_t)(r + i) * N + 16 * v, acc[i * NV + v]);
  }
  return r;
}

template <int NV>
GLONET_AVX512 void block_bwd_avx512_t(const float* G, const float* WT, const float* dS, const float* H,
                                      float* Gout, float* db, int R) {
  constexpr int RB = NV == 1 ? 16 : 8;
  int r = back_rows512<NV, RB>(G, WT, dS, H, Gout, db, 0, R);
  r = back_rows512<NV, 4>(G, WT, dS, H, Gout, db, r, R);
  back_rows512<NV, 1>(G, WT, dS, H, Gout, db, r, R);
}

GLONET_AVX512 void block_bwd_avx512(const float* G, const float* WT, const float* dS, const float* H,
                                    float* Gout, float* db, int R, int W) {
  switch (W) {
    case 16: return block_bwd_avx512_t<1>(G, WT, dS, H, Gout, db, R);
    case 32: return block_bwd_avx512_t<2>(G, WT, dS, H, Gout, db, R);
    default: return block_bwd_avx2(G, WT, dS, H, Gout, db, R, W);
  }
}

// KB kernel rows of dK = A^T D over all R rows (mode as in outer_acc_cols).
template <int NV, int KB>
GLONET_AVX512 inline void outer_acc_cols512(const float* A, int lda, int R, const float* D, float* dK,
                                            int mode) {
  constexpr int N = 16 * NV;
  __m512 acc[KB * NV];
  if (mode != 0) {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q) acc[q] = _mm512_setzero_ps();
  } else {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q) acc[q] = _mm512_loadu_ps(dK + 16 * q);
  }
  for (int r = 0; r < R; ++r) {
    const float* dr = D + (size_t)r * N;
    const float* ar = A + (size_t)r * lda;
    __m512 d[NV];
    GLONET_UNROLL for (int v = 0; v < NV; ++v) d[v] = _mm512_loadu_ps(dr + 16 * v);
    GLONET_UNROLL for (int kk = 0; kk < KB; ++kk) {
      const __m512 a = _mm512_set1_ps(ar[kk]);
      GLONET_UNROLL for (int v = 0; v < NV; ++v) acc[kk * NV + v] = _mm512_fmadd_ps(a, d[v], acc[kk * NV + v]);
    }
  }
  if (mode == 2) {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q)
      _mm512_storeu_ps(dK + 16 * q, _mm512_add_ps(_mm512_loadu_ps(dK + 16 * q), acc[q]));
  } else {
    GLONET_UNROLL for (int q = 0; q < KB * NV; ++q) _mm512_storeu_ps(dK + 16 * q, acc[q]);
  }
}

template <int NV>
GLONET_AVX512 void outer_acc_avx512_t(const float* A, int lda, int R, int K, const float* D,
                                      float* dK, int mode) {
  constexpr int N = 16 * NV, KB = NV == 1 ? 16 : 8;
  int k = 0;
  for (; k + KB <= K; k += KB) outer_acc_cols512<NV, KB>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k + 8 <= K && 8 < KB; k += 8) outer_acc_cols512<NV, 8>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k + 4 <= K; k += 4) outer_acc_cols512<NV, 4>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k + 2 <= K; k += 2) outer_acc_cols512<NV, 2>(A + k, lda, R, D, dK + (size_t)k * N, mode);
  for (; k < K; ++k) outer_acc_cols512<NV, 1>(A + k, lda, R, D, dK + (size_t)k * N, mode);
}

GLONET_AVX512 void outer_acc_avx512(const float* A, int lda, int R, int K, const float* D, int N,
                                    float* dK, bool init) {
  switch (N) {
    case 16: return outer_acc_avx512_t<1>(A, lda, R, K, D, dK, init ? 1 : 0);
    case 32: return outer_acc_avx512_t<2>(A, lda, R, K, D, dK, init ? 1 : 0);
    default: return outer_acc_avx2(A, lda, R, K, D, N, dK, init);
  }
}

GLONET_AVX512 void outer_fold_avx512(const float* A, int lda, int R, int K, const float* D, int N,
                                     float* tmp, float* dst, bool first) {
  const int mode = first ? 1 : 2;
  switch (N) {
    case 16: return outer_acc_avx512_t<1>(A, lda, R, K, D, dst, mode);
    case 32: return outer_acc_avx512_t<2>(A, lda, R, K, D, dst, mode);
    default: return outer_fold_avx2(A, lda, R, K, D, N, tmp, dst, first);
  }
}

const Kernels kAvx512 = {"avx512", dense_avx512, block_fwd_avx512, relu_bwd_portable, block_bwd_avx512,
                         outer_acc_avx512, fold_avx2, outer_fold_avx512, adam_avx2};
#endif  // GLONET_X86

bool cpu_has_avx2_fma() {
#if GLONET_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512f() {
#if GLONET_X86
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

const Kernels& pick_kernels(bool allowSimd) {
#if GLONET_X86
  // GLONET_MLP_KERNELS=avx2 keeps the AVX2 set on an AVX-512 CPU (to compare the two).
  const char* want = std::getenv("GLONET_MLP_KERNELS");
  const bool avx2Only = want != nullptr && std::strcmp(want, "avx2") == 0;
  if (allowSimd && !avx2Only && cpu_has_avx512f()) return kAvx512;
  if (allowSimd && cpu_has_avx2_fma()) return kAvx2;
#endif
  (void)allowSimd;
  return kPortable;
}

}  // namespace
