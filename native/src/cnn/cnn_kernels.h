// Element-wise kernels of the fused CNN engine (cnn_engine.cc): global average pooling, ReLU
// masks, batch normalization (statistics, normalize + ReLU, and the two backward passes), over
// activations of C channels stored in blocks of B channels:
//
//   element (image i, channel block cb, pixel p, channel j) is at ((i * C/B + cb) * hw + p) * B + j
//
// B = C is NHWC; B = 16 is oneDNN's nChw16c. Channels are 16, 32 or 64 in this network, so B is
// 16, 32 or 64 and the loops over j are whole SIMD vectors. Each kernel is written once as plain
// C++ (a struct with `template <int B> static void run(...)`); the compiler vectorizes it three
// times, for AVX-512, AVX2 and the x86-64 baseline (SSE2), and the best the CPU has is picked at
// run time, so the addon is built for no particular machine.
//
// Sums that feed batch statistics accumulate 16 pixels in float, then in double.
//
// Included by cnn_engine.cc inside its anonymous namespace.

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define GLONET_EW_X86 1
#if defined(__clang__)
#define GLONET_EW_AVX512 __attribute__((target("avx512f")))
#else
#define GLONET_EW_AVX512 __attribute__((target("avx512f,prefer-vector-width=512")))
#endif
#define GLONET_EW_AVX2 __attribute__((target("avx2")))
#else
#define GLONET_EW_X86 0
#endif
#if defined(__GNUC__) || defined(__clang__)
#define GLONET_INLINE inline __attribute__((always_inline))
#define GLONET_LAMBDA_INLINE __attribute__((always_inline))
#else
#define GLONET_INLINE inline
#define GLONET_LAMBDA_INLINE
#endif

namespace ew {

constexpr int kSumBlock = 16;  // pixels summed in float before a double add

// S[i][c] += scale * sum_p A[i][p][c]   (S rows are 64 wide)
struct PoolAdd {
  template <int B>
  static GLONET_INLINE void run(const float* A, int m, int hw, int C, float scale, float* S) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const float* a = A + ((size_t)i * nb + cb) * hw * B;
        float acc[B];
        for (int j = 0; j < B; ++j) acc[j] = 0.f;
        for (int p = 0; p < hw; ++p) {
          for (int j = 0; j < B; ++j) acc[j] += a[(size_t)p * B + j];
        }
        float* s = S + (size_t)i * 64 + cb * B;
        for (int j = 0; j < B; ++j) s[j] += acc[j] * scale;
      }
    }
  }
};

// The gradient at a ReLU's input, in place: G = (A > 0) * ((accumulate ? G : 0) + scale * dS)
// where dS (rows 64 wide, broadcast over the pixels) is the gradient of a global average pool
// reading A, or absent (dS null: G = (A > 0) * G).
struct MaskPoolBwd {
  template <int B>
  static GLONET_INLINE void run(float* G, const float* A, const float* dS, bool accumulate, int m, int hw,
                                int C, float scale) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const size_t base = ((size_t)i * nb + cb) * hw * B;
        float* g = G + base;
        const float* a = A + base;
        if (dS == nullptr) {
          for (size_t o = 0; o < (size_t)hw * B; ++o) g[o] = a[o] > 0.f ? g[o] : 0.f;
          continue;
        }
        float d[B];
        for (int j = 0; j < B; ++j) d[j] = dS[(size_t)i * 64 + cb * B + j] * scale;
        if (accumulate) {
          for (int p = 0; p < hw; ++p) {
            for (int j = 0; j < B; ++j) {
              const size_t o = (size_t)p * B + j;
              const float v = g[o] + d[j];
              g[o] = a[o] > 0.f ? v : 0.f;
            }
          }
        } else {
          for (int p = 0; p < hw; ++p) {
            for (int j = 0; j < B; ++j) {
              const size_t o = (size_t)p * B + j;
              g[o] = a[o] > 0.f ? d[j] : 0.f;
            }
          }
        }
      }
    }
  }
};

// The gradient of a global average pool: G = (accumulate ? G : 0) + scale * dS (broadcast).
struct PoolBwd {
  template <int B>
  static GLONET_INLINE void run(float* G, const float* dS, bool accumulate, int m, int hw, int C, float scale) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        float* g = G + ((size_t)i * nb + cb) * hw * B;
        float d[B];
        for (int j = 0; j < B; ++j) d[j] = dS[(size_t)i * 64 + cb * B + j] * scale;
        for (int p = 0; p < hw; ++p) {
          for (int j = 0; j < B; ++j) g[(size_t)p * B + j] = (accumulate ? g[(size_t)p * B + j] : 0.f) + d[j];
        }
      }
    }
  }
};

// Batch statistics, first pass: sum[c] += sum of X over the images and pixels.
struct ChannelSum {
  template <int B>
  static GLONET_INLINE void run(const float* X, int m, int hw, int C, double* sum) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const float* x = X + ((size_t)i * nb + cb) * hw * B;
        double* s = sum + cb * B;
        for (int p0 = 0; p0 < hw; p0 += kSumBlock) {
          const int p1 = std::min(hw, p0 + kSumBlock);
          float acc[B];
          for (int j = 0; j < B; ++j) acc[j] = 0.f;
          for (int p = p0; p < p1; ++p) {
            for (int j = 0; j < B; ++j) acc[j] += x[(size_t)p * B + j];
          }
          for (int j = 0; j < B; ++j) s[j] += acc[j];
        }
      }
    }
  }
};

// Per-channel sums s1[j] += sum_p x1(p, j), s2[j] += sum_p x2(p, j) over hw pixels, summed
// kSumBlock pixels at a time in float, then in double. `terms(p, a1, a2)` adds pixel p's values
// to a1[0..B) and a2[0..B).
template <int B, class Terms>
GLONET_INLINE void sum_two(int hw, Terms terms, double* s1, double* s2) {
  for (int p0 = 0; p0 < hw; p0 += kSumBlock) {
    const int p1 = std::min(hw, p0 + kSumBlock);
    float a1[B], a2[B];
    for (int j = 0; j < B; ++j) a1[j] = a2[j] = 0.f;
    for (int p = p0; p < p1; ++p) terms(p, a1, a2);
    for (int j = 0; j < B; ++j) {
      s1[j] += a1[j];
      s2[j] += a2[j];
    }
  }
}

// Batch statistics, second pass around a per-channel center mu: s1[c] += sum (X - mu),
// s2[c] += sum (X - mu)^2.
struct ChannelDeviation {
  template <int B>
  static GLONET_INLINE void run(const float* X, int m, int hw, int C, const float* mu, double* s1, double* s2) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const float* x = X + ((size_t)i * nb + cb) * hw * B;
        const float* c = mu + cb * B;
        sum_two<B>(hw, [&](int p, float* a1, float* a2) GLONET_LAMBDA_INLINE {
          for (int j = 0; j < B; ++j) {
            const float d = x[(size_t)p * B + j] - c[j];
            a1[j] += d;
            a2[j] += d * d;
          }
        }, s1 + cb * B, s2 + cb * B);
      }
    }
  }
};

// Batch normalization and ReLU: Y = max(0, (X - mean) * k + beta), k = gamma / sqrt(var + eps).
struct BnRelu {
  template <int B>
  static GLONET_INLINE void run(const float* X, float* Y, int m, int hw, int C, const float* mean,
                                const float* k, const float* beta) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const size_t base = ((size_t)i * nb + cb) * hw * B;
        const float* x = X + base;
        float* y = Y + base;
        const float* mu = mean + cb * B;
        const float* kk = k + cb * B;
        const float* be = beta + cb * B;
        for (int p = 0; p < hw; ++p) {
          for (int j = 0; j < B; ++j) {
            const float v = (x[(size_t)p * B + j] - mu[j]) * kk[j] + be[j];
            y[(size_t)p * B + j] = v > 0.f ? v : 0.f;
          }
        }
      }
    }
  }
};

// Batch normalization backward, first pass. G holds the gradient at the ReLU's output Y; in
// place it becomes dZ = (Y > 0) * G, the gradient at the normalization's output, and
// sdz[c] += sum dZ, sdzx[c] += sum dZ * xhat with xhat = (X - mean) * rstd.
struct BnBwdSums {
  template <int B>
  static GLONET_INLINE void run(float* G, const float* Y, const float* X, int m, int hw, int C,
                                const float* mean, const float* rstd, double* sdz, double* sdzx) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const size_t base = ((size_t)i * nb + cb) * hw * B;
        float* g = G + base;
        const float* y = Y + base;
        const float* x = X + base;
        const float* mu = mean + cb * B;
        const float* rs = rstd + cb * B;
        sum_two<B>(hw, [&](int p, float* a1, float* a2) GLONET_LAMBDA_INLINE {
          for (int j = 0; j < B; ++j) {
            const size_t o = (size_t)p * B + j;
            const float dz = y[o] > 0.f ? g[o] : 0.f;
            g[o] = dz;
            a1[j] += dz;
            a2[j] += dz * ((x[o] - mu[j]) * rs[j]);
          }
        }, sdz + cb * B, sdzx + cb * B);
      }
    }
  }
};

// Batch normalization backward, second pass (after the batch sums):
// Out = (accumulate ? Out : 0) + a * dZ + c1 * (X - mean) + c0, per channel
// (a = gamma * rstd, c1 = -a * rstd * mean(dZ * xhat), c0 = -a * mean(dZ)).
struct BnBwdDx {
  template <int B>
  static GLONET_INLINE void run(const float* G, const float* X, float* Out, bool accumulate, int m, int hw,
                                int C, const float* a, const float* c1, const float* mean, const float* c0) {
    const int nb = C / B;
    for (int i = 0; i < m; ++i) {
      for (int cb = 0; cb < nb; ++cb) {
        const size_t base = ((size_t)i * nb + cb) * hw * B;
        const float* g = G + base;
        const float* x = X + base;
        float* out = Out + base;
        const float* aa = a + cb * B;
        const float* cc = c1 + cb * B;
        const float* mu = mean + cb * B;
        const float* c0c = c0 + cb * B;
        if (accumulate) {
          for (int p = 0; p < hw; ++p) {
            for (int j = 0; j < B; ++j) {
              const size_t o = (size_t)p * B + j;
              out[o] += (aa[j] * g[o] + cc[j] * (x[o] - mu[j])) + c0c[j];
            }
          }
        } else {
          for (int p = 0; p < hw; ++p) {
            for (int j = 0; j < B; ++j) {
              const size_t o = (size_t)p * B + j;
              out[o] = (aa[j] * g[o] + cc[j] * (x[o] - mu[j])) + c0c[j];
            }
          }
        }
      }
    }
  }
};

// ----- layout-free kernels over n floats -----

// Y = max(X, 0)
struct Relu {
  static GLONET_INLINE void run(const float* X, float* Y, size_t n) {
    for (size_t i = 0; i < n; ++i) Y[i] = X[i] > 0.f ? X[i] : 0.f;
  }
};

// Out = (accumulate ? Out : 0) + (A > 0) * G
struct ReluBwd {
  static GLONET_INLINE void run(const float* G, const float* A, float* Out, bool accumulate, size_t n) {
    if (accumulate) {
      for (size_t i = 0; i < n; ++i) Out[i] += A[i] > 0.f ? G[i] : 0.f;
    } else {
      for (size_t i = 0; i < n; ++i) Out[i] = A[i] > 0.f ? G[i] : 0.f;
    }
  }
};

// Out += G
struct Add {
  static GLONET_INLINE void run(const float* G, float* Out, size_t n) {
    for (size_t i = 0; i < n; ++i) Out[i] += G[i];
  }
};

// ----- dispatch: instruction set (once per process) and block size -----

// 2 = AVX-512, 1 = AVX2, 0 = the baseline.
inline int simd_level() {
#if GLONET_EW_X86
  static const int level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
  return level;
#else
  return 0;
#endif
}

template <class K, class... A>
GLONET_INLINE void by_block(int B, A... a) {
  if (B == 16) return K::template run<16>(a...);
  if (B == 32) return K::template run<32>(a...);
  return K::template run<64>(a...);
}

#if GLONET_EW_X86
template <class K, class... A>
GLONET_EW_AVX512 void blocked_avx512(int B, A... a) { by_block<K>(B, a...); }
template <class K, class... A>
GLONET_EW_AVX2 void blocked_avx2(int B, A... a) { by_block<K>(B, a...); }
template <class K, class... A>
GLONET_EW_AVX512 void flat_avx512(A... a) { K::run(a...); }
template <class K, class... A>
GLONET_EW_AVX2 void flat_avx2(A... a) { K::run(a...); }
#endif
template <class K, class... A>
void blocked_base(int B, A... a) { by_block<K>(B, a...); }
template <class K, class... A>
void flat_base(A... a) { K::run(a...); }

// Runs kernel K on blocks of B channels (16, 32 or 64) with the CPU's best instruction set.
template <class K, class... A>
void blocked(int B, A... a) {
#if GLONET_EW_X86
  const int level = simd_level();
  if (level == 2) return blocked_avx512<K>(B, a...);
  if (level == 1) return blocked_avx2<K>(B, a...);
#endif
  blocked_base<K>(B, a...);
}

// Runs a layout-free kernel K with the CPU's best instruction set.
template <class K, class... A>
void flat(A... a) {
#if GLONET_EW_X86
  const int level = simd_level();
  if (level == 2) return flat_avx512<K>(a...);
  if (level == 1) return flat_avx2<K>(a...);
#endif
  flat_base<K>(a...);
}

}  // namespace ew
