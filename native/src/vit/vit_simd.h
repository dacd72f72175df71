// Vector types of the fused ViT engine's kernels (vit_kernels.inc), one per instruction set:
//
//   vit_avx512   16 floats (zmm), masked loads and stores; compiled with target avx512f/dq,avx2,fma
//   vit_avx2      8 floats (ymm), FMA; compiled with target avx2,fma
//   vit_portable  8 floats as a plain array (the compiler vectorizes what it can), no FMA
//
// Each namespace defines `struct V` (the lanes L, how many vectors a GEMM panel is wide, the rows
// a GEMM micro-kernel takes per panel width, and the operations the kernels use) and then
// includes vit_kernels.inc, so the same kernel source is compiled three times, each time for its
// own instruction set (a `#pragma GCC target` region, or clang's `#pragma clang attribute`), and
// the engine picks one table of kernels at run time (__builtin_cpu_supports). The binary thus
// runs on any x86-64; other architectures get the portable set only.
//
// Included by vit_engine.cc inside its anonymous namespace, after <cmath>, <cstdint>, <cstring>,
// <algorithm> and (x86) <immintrin.h>.
#pragma once

#ifndef GLONET_UNROLL
#define GLONET_UNROLL _Pragma("GCC unroll 32")
#endif

// ---------------------------------------------------------------------------------------------
namespace vit_portable {

struct V {
  static constexpr int L = 8;
  static constexpr const char* kName = "portable";
  // GEMM register blocking: at most 2 vectors per panel row; rows per micro-kernel call.
  static constexpr int kPanelVectors = 2;
  static constexpr int rows_for(int nv) { return nv >= 2 ? 4 : 8; }
  static constexpr int kTnRows = 4;  // dW rows per TN micro-kernel
  struct R {
    float v[8];
  };
  static inline R zero() {
    R r;
    for (int i = 0; i < 8; ++i) r.v[i] = 0.f;
    return r;
  }
  static inline R set1(float x) {
    R r;
    for (int i = 0; i < 8; ++i) r.v[i] = x;
    return r;
  }
  static inline R load(const float* p) {
    R r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static inline R loadn(const float* p, int n) {
    R r = zero();
    for (int i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  static inline void store(float* p, const R& r) { std::memcpy(p, r.v, sizeof r.v); }
  static inline void storen(float* p, const R& r, int n) {
    for (int i = 0; i < n; ++i) p[i] = r.v[i];
  }
  static inline R bcast(const float* p) { return set1(*p); }
  static inline R fma(const R& a, const R& b, const R& c) {
    R r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
    return r;
  }
#define GLONET_PORTABLE_OP(name, expr)        \
  static inline R name(const R& a, const R& b) { \
    R r;                                      \
    for (int i = 0; i < 8; ++i) r.v[i] = expr;  \
    return r;                                 \
  }
  GLONET_PORTABLE_OP(add, a.v[i] + b.v[i])
  GLONET_PORTABLE_OP(sub, a.v[i] - b.v[i])
  GLONET_PORTABLE_OP(mul, a.v[i] * b.v[i])
  GLONET_PORTABLE_OP(div, a.v[i] / b.v[i])
  GLONET_PORTABLE_OP(max, a.v[i] > b.v[i] ? a.v[i] : b.v[i])
  // b where a > 0, else 0 (ReLU masks).
  GLONET_PORTABLE_OP(where_pos, a.v[i] > 0.f ? b.v[i] : 0.f)
#undef GLONET_PORTABLE_OP
  // Sum of the lanes in a fixed order (pairwise, as the SIMD sets do).
  static inline float hsum(const R& r) {
    const float a = (r.v[0] + r.v[4]) + (r.v[2] + r.v[6]);
    const float b = (r.v[1] + r.v[5]) + (r.v[3] + r.v[7]);
    return a + b;
  }
  static inline float hmax(const R& r) {
    float m = r.v[0];
    for (int i = 1; i < 8; ++i) m = r.v[i] > m ? r.v[i] : m;
    return m;
  }
  static inline R sqrt(const R& a) {
    R r;
    for (int i = 0; i < 8; ++i) r.v[i] = std::sqrt(a.v[i]);
    return r;
  }
  static inline R exp(const R& x) {
    R r;
    for (int i = 0; i < 8; ++i) r.v[i] = std::exp(x.v[i]);
    return r;
  }
};

#include "vit_kernels.inc"

}  // namespace vit_portable

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define GLONET_VIT_X86 1

// exp(x) for float lanes, shared by both SIMD sets (Cephes' expf: x = n ln2 + r, |r| <= ln2/2,
// a degree-6 polynomial for e^r, 2^n through the exponent bits; ~1 ulp). Inputs below -87.3
// (softmax's x - max of far-off scores) give 0, as float32 exp underflows there.
#define GLONET_VIT_EXP_BODY                                                                \
  const R lo = set1(-87.33654f), hi = set1(88.37626f);                                     \
  R xx = max(lo, x);                                                                       \
  xx = min(hi, xx);                                                                        \
  R n = round(mul(xx, set1(1.44269504088896341f)));                                        \
  R r = sub(xx, mul(n, set1(0.693359375f)));                                               \
  r = sub(r, mul(n, set1(-2.12194440e-4f)));                                               \
  R p = set1(1.9875691500E-4f);                                                            \
  p = fma(p, r, set1(1.3981999507E-3f));                                                   \
  p = fma(p, r, set1(8.3334519073E-3f));                                                   \
  p = fma(p, r, set1(4.1665795894E-2f));                                                   \
  p = fma(p, r, set1(1.6666665459E-1f));                                                   \
  p = fma(p, r, set1(5.0000001201E-1f));                                                   \
  p = fma(mul(p, r), r, add(r, set1(1.f)));                                                \
  R e = mul(p, pow2(n));                                                                   \
  return where_ge(x, lo, e);

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace vit_avx2 {

struct V {
  static constexpr int L = 8;
  static constexpr const char* kName = "avx2";
  static constexpr int kPanelVectors = 2;
  static constexpr int rows_for(int nv) { return nv >= 2 ? 6 : 12; }  // 12 accumulators of 16 ymm
  static constexpr int kTnRows = 6;
  using R = __m256;
  static inline __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline R zero() { return _mm256_setzero_ps(); }
  static inline R set1(float x) { return _mm256_set1_ps(x); }
  static inline R load(const float* p) { return _mm256_loadu_ps(p); }
  static inline R loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline void store(float* p, R r) { _mm256_storeu_ps(p, r); }
  static inline void storen(float* p, R r, int n) { _mm256_maskstore_ps(p, mask(n), r); }
  static inline R bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static inline R add(R a, R b) { return _mm256_add_ps(a, b); }
  static inline R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static inline R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static inline R div(R a, R b) { return _mm256_div_ps(a, b); }
  static inline R sqrt(R a) { return _mm256_sqrt_ps(a); }
  static inline R max(R a, R b) { return _mm256_max_ps(a, b); }
  static inline R min(R a, R b) { return _mm256_min_ps(a, b); }
  static inline R where_pos(R a, R b) { return _mm256_and_ps(_mm256_cmp_ps(a, zero(), _CMP_GT_OQ), b); }
  static inline R where_ge(R a, R b, R v) { return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_GE_OQ), v); }
  static inline R round(R x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static inline R pow2(R n) {
    const __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(i, 23));
  }
  static inline float hsum(R r) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));  // (0+4)(1+5)..
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));                                  // (0+4)+(2+6), ..
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
  }
  static inline float hmax(R r) {
    const __m128 s = _mm_max_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
  }
  static inline R exp(R x) { GLONET_VIT_EXP_BODY }
};

#include "vit_kernels.inc"

}  // namespace vit_avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#endif
namespace vit_avx512 {

struct V {
  static constexpr int L = 16;
  static constexpr const char* kName = "avx512";
  // Panels of up to 4 zmm (64 floats); 24 accumulators of 32 zmm at every panel width.
  static constexpr int kPanelVectors = 4;
  static constexpr int rows_for(int nv) { return nv >= 4 ? 6 : (nv == 3 ? 8 : (nv == 2 ? 12 : 16)); }
  static constexpr int kTnRows = 6;
  using R = __m512;
  static inline __mmask16 mask(int n) { return (__mmask16)((1u << n) - 1u); }
  static inline R zero() { return _mm512_setzero_ps(); }
  static inline R set1(float x) { return _mm512_set1_ps(x); }
  static inline R load(const float* p) { return _mm512_loadu_ps(p); }
  static inline R loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void store(float* p, R r) { _mm512_storeu_ps(p, r); }
  static inline void storen(float* p, R r, int n) { _mm512_mask_storeu_ps(p, mask(n), r); }
  static inline R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static inline R add(R a, R b) { return _mm512_add_ps(a, b); }
  static inline R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static inline R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static inline R div(R a, R b) { return _mm512_div_ps(a, b); }
  static inline R sqrt(R a) { return _mm512_sqrt_ps(a); }
  static inline R max(R a, R b) { return _mm512_max_ps(a, b); }
  static inline R min(R a, R b) { return _mm512_min_ps(a, b); }
  static inline R where_pos(R a, R b) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, zero(), _CMP_GT_OQ), b); }
  static inline R where_ge(R a, R b, R v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_GE_OQ), v); }
  static inline R round(R x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static inline R pow2(R n) {
    const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(i, 23));
  }
  static inline float hsum(R r) {
    const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(r), _mm512_extractf32x8_ps(r, 1));
    const __m128 u = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    const __m128 t = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
  }
  static inline float hmax(R r) { return _mm512_reduce_max_ps(r); }
  static inline R exp(R x) { GLONET_VIT_EXP_BODY }
};

#include "vit_kernels.inc"

}  // namespace vit_avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#undef GLONET_VIT_EXP_BODY
#endif  // x86-64
