// Batch-normalization and element-wise kernels of the two-layer-block MLP engine (block_mlp.cc),
// on row-major tiles of R rows by W features: portable C++ for any W and, on x86-64, AVX2
// versions for W = 8, 16 and 32 (one, two or four vectors per row, per-feature constants kept in
// registers), picked together with the dense kernels of mlp_kernels.h. Neither uses FMA
// contraction (-ffp-contract=off); sums over rows are taken in a fixed order in each set (the
// AVX2 set sums even and odd rows apart, then adds the two), so each set is deterministic and
// the two agree to rounding.
#pragma once

#include <cstddef>
#include <cstring>

#include "mlp_kernels.h"

namespace {

struct BnKernels {
  // A = relu(xhat * gamma + beta) with xhat = (in - mu) * rstd, per feature; xhat is stored too
  // when not null
  void (*bn_relu)(const float* in, float* A, float* xhat, int R, int W, const float* mu,
                  const float* rstd, const float* gamma, const float* beta);
  // Per feature over the R rows of x: mean (sum / R) and the sum of squared deviations from it
  void (*moments)(const float* x, int R, int W, float* mean, float* m2);
  // out (= when init, else +=) per-feature sums over rows of dy * xhat   (dL/dgamma)
  void (*dgamma)(const float* dy, const float* xhat, int R, int W, float* out, bool init);
  // BN backward to its input: dx = c1 * ((dy - c2) - (x - mu) * c4), with c1 = gamma * rstd,
  // c2 = mean(dy), c4 = rstd * mean(dy * xhat); out = dx, or out += dx when acc; then
  // db (= when init, else +=) column sums of out
  void (*bn_back)(const float* dy, const float* x, int R, int W, const float* mu, const float* c1,
                  const float* c2, const float* c4, float* out, bool acc, float* db, bool init);
  // out (= when init, else +=) column sums of d (R x W)
  void (*colsum)(const float* d, int R, int W, float* out, bool init);
  // A = relu(in), n values
  void (*relu)(const float* in, float* A, size_t n);
  // dst += src, n values
  void (*add)(float* dst, const float* src, size_t n);
};

// ----- portable -----

void bn_relu_portable(const float* in, float* A, float* xhat, int R, int W, const float* mu,
                      const float* rstd, const float* gamma, const float* beta) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < W; ++j) {
      const size_t i = (size_t)r * W + j;
      const float h = (in[i] - mu[j]) * rstd[j];
      const float y = h * gamma[j] + beta[j];
      A[i] = y > 0.f ? y : 0.f;
      if (xhat) xhat[i] = h;
    }
}

void moments_portable(const float* x, int R, int W, float* mean, float* m2) {
  for (int j = 0; j < W; ++j) mean[j] = 0.f;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < W; ++j) mean[j] += x[(size_t)r * W + j];
  const float inv = 1.f / (float)R;
  for (int j = 0; j < W; ++j) {
    mean[j] *= inv;
    m2[j] = 0.f;
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < W; ++j) {
      const float d = x[(size_t)r * W + j] - mean[j];
      m2[j] += d * d;
    }
}

void colsum_portable(const float* d, int R, int W, float* out, bool init) {
  if (init)
    for (int j = 0; j < W; ++j) out[j] = 0.f;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < W; ++j) out[j] += d[(size_t)r * W + j];
}

void dgamma_portable(const float* dy, const float* xhat, int R, int W, float* out, bool init) {
  if (init)
    for (int j = 0; j < W; ++j) out[j] = 0.f;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < W; ++j) out[j] += dy[(size_t)r * W + j] * xhat[(size_t)r * W + j];
}

void bn_back_portable(const float* dy, const float* x, int R, int W, const float* mu,
                      const float* c1, const float* c2, const float* c4, float* out, bool acc,
                      float* db, bool init) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < W; ++j) {
      const size_t i = (size_t)r * W + j;
      const float dx = c1[j] * ((dy[i] - c2[j]) - (x[i] - mu[j]) * c4[j]);
      out[i] = acc ? out[i] + dx : dx;
    }
  colsum_portable(out, R, W, db, init);
}

void relu_portable(const float* in, float* A, size_t n) {
  for (size_t i = 0; i < n; ++i) A[i] = in[i] > 0.f ? in[i] : 0.f;
}

void add_portable(float* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

const BnKernels kBnPortable = {bn_relu_portable, moments_portable, dgamma_portable, bn_back_portable,
                               colsum_portable,  relu_portable,    add_portable};

// ----- AVX2 (W = 8 * NV) -----
#if GLONET_X86
// A lambda inside an AVX2 function: compiled for AVX2 too, and inlined.
#define GLONET_AVX2_LAMBDA __attribute__((target("avx2,fma"), always_inline))

template <int NV>
GLONET_AVX2 inline void load_row(__m256 (&v)[NV], const float* p) {
  GLONET_UNROLL for (int k = 0; k < NV; ++k) v[k] = _mm256_loadu_ps(p + 8 * k);
}

template <int NV>
GLONET_AVX2 void bn_relu_v(const float* in, float* A, float* xhat, int R, const float* mu,
                           const float* rstd, const float* gamma, const float* beta) {
  constexpr int W = 8 * NV;
  __m256 m[NV], s[NV], g[NV], b[NV];
  load_row<NV>(m, mu);
  load_row<NV>(s, rstd);
  load_row<NV>(g, gamma);
  load_row<NV>(b, beta);
  const __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < R; ++r) {
    GLONET_UNROLL for (int k = 0; k < NV; ++k) {
      const size_t i = (size_t)r * W + 8 * k;
      const __m256 h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(in + i), m[k]), s[k]);
      _mm256_storeu_ps(A + i, _mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(h, g[k]), b[k]), zero));
      if (xhat) _mm256_storeu_ps(xhat + i, h);
    }
  }
}

// Per-feature sums over rows of f(row r, vector k), even and odd rows apart, then added.
template <int NV, class F>
GLONET_AVX2 inline void row_sums(int R, __m256 (&sum)[NV], F f) {
  __m256 a0[NV], a1[NV];
  GLONET_UNROLL for (int k = 0; k < NV; ++k) a0[k] = a1[k] = _mm256_setzero_ps();
  int r = 0;
  for (; r + 2 <= R; r += 2) {
    GLONET_UNROLL for (int k = 0; k < NV; ++k) {
      a0[k] = _mm256_add_ps(a0[k], f(r, k));
      a1[k] = _mm256_add_ps(a1[k], f(r + 1, k));
    }
  }
  if (r < R) {
    GLONET_UNROLL for (int k = 0; k < NV; ++k) a0[k] = _mm256_add_ps(a0[k], f(r, k));
  }
  GLONET_UNROLL for (int k = 0; k < NV; ++k) sum[k] = _mm256_add_ps(a0[k], a1[k]);
}

template <int NV>
GLONET_AVX2 inline void store_sums(float* out, const __m256 (&sum)[NV], bool init) {
  GLONET_UNROLL for (int k = 0; k < NV; ++k)
    _mm256_storeu_ps(out + 8 * k, init ? sum[k] : _mm256_add_ps(_mm256_loadu_ps(out + 8 * k), sum[k]));
}

template <int NV>
GLONET_AVX2 void moments_v(const float* x, int R, float* mean, float* m2) {
  constexpr int W = 8 * NV;
  __m256 sum[NV], mu[NV], sq[NV];
  row_sums<NV>(R, sum, [&](int r, int k) GLONET_AVX2_LAMBDA { return _mm256_loadu_ps(x + (size_t)r * W + 8 * k); });
  const __m256 inv = _mm256_set1_ps(1.f / (float)R);
  GLONET_UNROLL for (int k = 0; k < NV; ++k) mu[k] = _mm256_mul_ps(sum[k], inv);
  row_sums<NV>(R, sq, [&](int r, int k) GLONET_AVX2_LAMBDA {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + (size_t)r * W + 8 * k), mu[k]);
    return _mm256_mul_ps(d, d);
  });
  GLONET_UNROLL for (int k = 0; k < NV; ++k) {
    _mm256_storeu_ps(mean + 8 * k, mu[k]);
    _mm256_storeu_ps(m2 + 8 * k, sq[k]);
  }
}

template <int NV>
GLONET_AVX2 void colsum_v(const float* d, int R, float* out, bool init) {
  constexpr int W = 8 * NV;
  __m256 sum[NV];
  row_sums<NV>(R, sum, [&](int r, int k) GLONET_AVX2_LAMBDA { return _mm256_loadu_ps(d + (size_t)r * W + 8 * k); });
  store_sums<NV>(out, sum, init);
}

template <int NV>
GLONET_AVX2 void dgamma_v(const float* dy, const float* xhat, int R, float* out, bool init) {
  constexpr int W = 8 * NV;
  __m256 sum[NV];
  row_sums<NV>(R, sum, [&](int r, int k) GLONET_AVX2_LAMBDA {
    const size_t i = (size_t)r * W + 8 * k;
    return _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(xhat + i));
  });
  store_sums<NV>(out, sum, init);
}

template <int NV>
GLONET_AVX2 void bn_back_v(const float* dy, const float* x, int R, const float* mu, const float* c1,
                           const float* c2, const float* c4, float* out, bool acc, float* db, bool init) {
  constexpr int W = 8 * NV;
  __m256 m[NV], a[NV], b[NV], c[NV], sum[NV];
  load_row<NV>(m, mu);
  load_row<NV>(a, c1);
  load_row<NV>(b, c2);
  load_row<NV>(c, c4);
  row_sums<NV>(R, sum, [&](int r, int k) GLONET_AVX2_LAMBDA {
    const size_t i = (size_t)r * W + 8 * k;
    const __m256 t = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(dy + i), b[k]),
                                   _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m[k]), c[k]));
    __m256 dx = _mm256_mul_ps(a[k], t);
    if (acc) dx = _mm256_add_ps(_mm256_loadu_ps(out + i), dx);
    _mm256_storeu_ps(out + i, dx);
    return dx;
  });
  store_sums<NV>(db, sum, init);
}

GLONET_AVX2 void bn_relu_avx2(const float* in, float* A, float* xhat, int R, int W, const float* mu,
                              const float* rstd, const float* gamma, const float* beta) {
  switch (W) {
    case 8: return bn_relu_v<1>(in, A, xhat, R, mu, rstd, gamma, beta);
    case 16: return bn_relu_v<2>(in, A, xhat, R, mu, rstd, gamma, beta);
    case 32: return bn_relu_v<4>(in, A, xhat, R, mu, rstd, gamma, beta);
    default: return bn_relu_portable(in, A, xhat, R, W, mu, rstd, gamma, beta);
  }
}

GLONET_AVX2 void moments_avx2(const float* x, int R, int W, float* mean, float* m2) {
  switch (W) {
    case 8: return moments_v<1>(x, R, mean, m2);
    case 16: return moments_v<2>(x, R, mean, m2);
    case 32: return moments_v<4>(x, R, mean, m2);
    default: return moments_portable(x, R, W, mean, m2);
  }
}

GLONET_AVX2 void dgamma_avx2(const float* dy, const float* xhat, int R, int W, float* out, bool init) {
  switch (W) {
    case 8: return dgamma_v<1>(dy, xhat, R, out, init);
    case 16: return dgamma_v<2>(dy, xhat, R, out, init);
    case 32: return dgamma_v<4>(dy, xhat, R, out, init);
    default: return dgamma_portable(dy, xhat, R, W, out, init);
  }
}

GLONET_AVX2 void bn_back_avx2(const float* dy, const float* x, int R, int W, const float* mu,
                              const float* c1, const float* c2, const float* c4, float* out, bool acc,
                              float* db, bool init) {
  switch (W) {
    case 8: return bn_back_v<1>(dy, x, R, mu, c1, c2, c4, out, acc, db, init);
    case 16: return bn_back_v<2>(dy, x, R, mu, c1, c2, c4, out, acc, db, init);
    case 32: return bn_back_v<4>(dy, x, R, mu, c1, c2, c4, out, acc, db, init);
    default: return bn_back_portable(dy, x, R, W, mu, c1, c2, c4, out, acc, db, init);
  }
}

GLONET_AVX2 void colsum_avx2(const float* d, int R, int W, float* out, bool init) {
  switch (W) {
    case 8: return colsum_v<1>(d, R, out, init);
    case 16: return colsum_v<2>(d, R, out, init);
    case 32: return colsum_v<4>(d, R, out, init);
    default: return colsum_portable(d, R, W, out, init);
  }
}

GLONET_AVX2 void relu_avx2(const float* in, float* A, size_t n) {
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(A + i, _mm256_max_ps(_mm256_loadu_ps(in + i), zero));
  relu_portable(in + i, A + i, n - i);
}

GLONET_AVX2 void add_avx2(float* dst, const float* src, size_t n) { fold_avx2(dst, src, n, false); }

const BnKernels kBnAvx2 = {bn_relu_avx2, moments_avx2, dgamma_avx2, bn_back_avx2,
                           colsum_avx2,  relu_avx2,    add_avx2};
#endif  // GLONET_X86

// The BN kernels that go with the dense kernels `K` (mlp_kernels.h's pick_kernels).
const BnKernels& bn_kernels_for(const Kernels& K) {
#if GLONET_X86
  // Every x86 SIMD set (AVX2, AVX-512; each needs at least AVX2) goes with the AVX2 BN kernels, so
  // a new set cannot silently fall back to the portable ones (which sum in another order).
  if (&K != &kPortable) return kBnAvx2;
#endif
  (void)K;
  return kBnPortable;
}

}  // namespace
