// Fused training engine for the ViT family (src/models/vit.ts; the `ViT` class of
// peers/pytorch_peer.py), both archs: one call runs a whole training step (forward, backward,
// the gradient sum, L2 and Adam exactly as TF.js 4.22's tf.train.adam).
//
//   patches    4x4 (any `patch`) patches of an NHWC image, row-major, each flattened (dy, dx, c)
//   embed      x0 = [cls; patches We + be] + pos                       (T = patches + 1 tokens)
//   encoder l  z1 = x + MHSA(x);  y1 = LN1(z1);  z2 = y1 + relu(y1 W1 + b1) W2 + b2;  x_l = LN2(z2)
//              MHSA: q, k, v = x Wq + bq, x Wk + bk, x Wv + bv; per head softmax(q k^T / sqrt(dh)) v;
//              heads side by side, then Wo + bo. LayerNorm as TF.js's (biased variance, eps)
//   head       glonet: logits = (sum_l x_l[cls]) Wh + bh;  plain: logits = x_L[cls] Wh + bh
//   loss       mean softmax cross-entropy + l2 * sum(kernel^2) (kernels: We, Wq, Wk, Wv, Wo, W1,
//              W2, Wh; not biases, the class token, the positions or LayerNorm's gamma and beta)
//
// Parameters are one flat float32 vector, the model's layers' getWeights() arrays in order
// (src/engines/vit/fused-vit.ts, vitLayers): patch_embed [K, b], class_token, position_embed,
// then per encoder attn [qK, qb, kK, kb, vK, vb, oK, ob], ln1 [gamma, beta], ffn1 [K, b],
// ffn2 [K, b], ln2 [gamma, beta], then head [K, b]. Kernels are TF.js's Dense layout [in, out].
//
// Kernels: our own (vit_kernels.inc: packed-panel matrix products, LayerNorm, softmax, Adam),
// compiled for AVX-512, AVX2+FMA and portable C++ and picked at run time, rather than oneDNN's
// matmul. Measured on exactly this engine's products of one encoder and chunk (bench/
// vit-kernels.cc, one thread, Xeon with AVX-512; docs/vit-engine.md has the table): oneDNN's
// take 0.85 (28x28) to 0.91 (32x32) of our time in total, faster on the weight gradients and the
// small attention products, slower on the big forward products; the products are about 70% of a
// step, so oneDNN would gain 5-10%. Ours need no library at run time, so the engine ships in the
// prebuilt glonet_fused binary with the MLP engines and trains on every machine (oneDNN would
// leave users without libdnnl on TF.js, ten times slower); they also fuse what the encoder
// needs around a product (bias, residual, ReLU) and keep every sum in a fixed order.
//
// Parallelism and determinism. The batch is cut into chunks of `chunk` images (8 by default); a
// unit of work is a fixed run of consecutive chunks (one chunk, unless the gradient slots below
// would need too much memory), which a thread runs through the whole forward and backward pass
// alone, writing its weight gradient into a slot of its own. The update phase sums the slots in
// unit order, parameter range by parameter range, then adds L2 and runs Adam. Chunks, units and
// ranges depend on the batch and the model only, never on the thread count or on which thread
// ran what, so 1 or 8 threads give bit-identical weights (common/thread_pool.h).
//
// Every entry point that computes holds a glonet_fp::FlushScope; the pool's helpers flush
// subnormal floats from their start (common/float_mode.h).

#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../common/float_mode.h"
#include "../common/thread_pool.h"
#include "vit_engine.h"

namespace {

#define GLONET_MODULE "glonet_vit"
#include "../common/napi_util.h"
#include "vit_simd.h"

// ---------------------------------------------------------------------------------------------
// The kernel table of one instruction set (vit_simd.h).

struct VitKernels {
  const char* name;
  size_t (*packed_size)(int K, int N);
  void (*pack_b)(const float* B, int ldb, bool trans, int K, int N, float* dst);
  void (*gemm_nn)(int M, int N, int K, const float* A, int lda, const float* Bp, float* C, int ldc,
                  const float* bias, const float* cin, int ldcin, bool relu);
  void (*gemm_tn)(int K, int N, int R, const float* A, int lda, const float* D, int ldd, float* W, int ldw,
                  bool accumulate);
  void (*colsum)(const float* src, int R, int N, int ld, float* dst, bool accumulate);
  void (*ln_fwd)(const float* z, int R, int D, const float* gamma, const float* beta, float eps, float* xhat,
                 float* y, float* rstd);
  void (*ln_bwd)(const float* dy, const float* xhat, const float* rstd, const float* gamma, int R, int D,
                 float* dz, float* dgamma, float* dbeta, bool accumulate);
  void (*softmax_fwd)(float* S, int R, int n, int ld, float scale);
  void (*softmax_bwd)(const float* P, float* dP, int R, int n, int ld, float scale);
  void (*relu_mask)(float* dh, const float* h, size_t n);
  void (*fold)(float* dst, const float* src, size_t n, bool first);
  double (*adam)(float* w, float* m, float* v, const float* g, size_t n, bool kernel, const float* hp,
                 float* gradOut);
};

#define GLONET_VIT_TABLE(ns)                                                                              \
  VitKernels {                                                                                            \
    ns::V::kName, ns::packed_size, ns::pack_b,                                                            \
        [](int M, int N, int K, const float* A, int lda, const float* Bp, float* C, int ldc,              \
           const float* bias, const float* cin, int ldcin, bool relu) {                                   \
          ns::NnInit in;                                                                                  \
          in.bias = bias;                                                                                 \
          in.cin = cin;                                                                                   \
          in.ldcin = ldcin;                                                                               \
          ns::gemm_nn(M, N, K, A, lda, Bp, C, ldc, in, relu);                                             \
        },                                                                                                \
        ns::gemm_tn, ns::colsum, ns::ln_fwd, ns::ln_bwd, ns::softmax_fwd, ns::softmax_bwd, ns::relu_mask, \
        ns::fold, ns::adam                                                                                \
  }

const VitKernels kPortableSet = GLONET_VIT_TABLE(vit_portable);
#if defined(GLONET_VIT_X86)
const VitKernels kAvx2Set = GLONET_VIT_TABLE(vit_avx2);
const VitKernels kAvx512Set = GLONET_VIT_TABLE(vit_avx512);
#endif

// The kernel set: the fastest this CPU runs (want 0), at most AVX2 (want 1), or portable (want 2),
// the last two to compare the sets and to test them on an AVX-512 CPU.
const VitKernels& pick_vit_kernels(int want) {
  if (want >= 2) return kPortableSet;
#if defined(GLONET_VIT_X86)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  if (avx512 && want == 0) return kAvx512Set;
  if (avx2) return kAvx2Set;
#endif
  return kPortableSet;
}

// ---------------------------------------------------------------------------------------------
// Shapes and the parameter layout.

struct Shape {
  int H, Wi, C, patch;      // image [H, Wi, C], patch side
  int D, heads, F, depth;   // width, attention heads, feed-forward width, encoders
  int classes;
  bool glonet;
  float lnEps;
  // Derived.
  int NP, T, PD, dh;        // patches, tokens (patches + class token), patch size, head width
};

struct EncoderOffsets {
  size_t qK, qb, kK, kb, vK, vb, oK, ob, g1, be1, f1K, f1b, f2K, f2b, g2, be2;
};

struct Segment {
  size_t off, len;
  bool kernel;
};

struct Layout {
  size_t peK, peB, cls, pos, headK, headB, P;
  std::vector<EncoderOffsets> enc;
  std::vector<Segment> segs;  // every array, in order

  explicit Layout(const Shape& s) {
    size_t off = 0;
    auto add = [&](size_t n, bool kernel) {
      segs.push_back({off, n, kernel});
      off += n;
      return off - n;
    };
    const size_t D = s.D, F = s.F;
    peK = add((size_t)s.PD * D, true);
    peB = add(D, false);
    cls = add(D, false);
    pos = add((size_t)s.T * D, false);
    for (int l = 0; l < s.depth; ++l) {
      EncoderOffsets e;
      e.qK = add(D * D, true);
      e.qb = add(D, false);
      e.kK = add(D * D, true);
      e.kb = add(D, false);
      e.vK = add(D * D, true);
      e.vb = add(D, false);
      e.oK = add(D * D, true);
      e.ob = add(D, false);
      e.g1 = add(D, false);
      e.be1 = add(D, false);
      e.f1K = add(D * F, true);
      e.f1b = add(F, false);
      e.f2K = add(F * D, true);
      e.f2b = add(D, false);
      e.g2 = add(D, false);
      e.be2 = add(D, false);
      enc.push_back(e);
    }
    headK = add(D * (size_t)s.classes, true);
    headB = add((size_t)s.classes, false);
    P = off;
  }
};

// 64-byte aligned float buffers.
struct AlignedFree {
  void operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }
};
using Buf = std::unique_ptr<float[], AlignedFree>;

Buf alloc_floats(size_t n) {
  const size_t bytes = std::max<size_t>(64, ((n * sizeof(float) + 63) / 64) * 64);
  return Buf(static_cast<float*>(::operator new(bytes, std::align_val_t(64))));
}

// A bump allocator over one buffer: sizes rounded to 16 floats (64 bytes).
struct Arena {
  Buf buf;
  size_t size = 0, used = 0;
  static size_t round(size_t n) { return (n + 15) & ~size_t(15); }
  float* take(size_t n) {
    float* p = buf.get() + used;
    used += round(n);
    return p;
  }
};

// ---------------------------------------------------------------------------------------------
// The engine.

// The weights of one step in the layouts the products read (packed panels), shared by all threads.
// The last encoder's queries are packed apart from its keys and values (Encoders, below).
struct Packed {
  float* pe;                                   // We
  std::vector<float*> qkv, o, f1, f2;          // forward: [Wq Wk Wv] (last: [Wk Wv]), Wo, W1, W2
  std::vector<float*> qkvT, oT, f1T, f2T;      // backward: their transposes
  std::vector<float*> bqkv;                    // [bq bk bv]
  float *q, *qT;                               // the last encoder's Wq and Wq^T
  float *head, *headT;
};

// One thread's activations and scratch for a chunk of up to `chunk` images (R = chunk x T rows).
// The last encoder keeps the class-token rows only (see Encoders), `chunk` rows, except its keys
// and values.
struct Workspace {
  Arena arena;
  float* patches;                // chunk * NP x PD
  std::vector<float*> xs;        // x0 (embedding), x_1 .. x_depth (the last: class-token rows)
  // Per encoder, kept for the backward pass.
  std::vector<float*> qkv, probs, merged, xhat1, rstd1, y1, hf, xhat2, rstd2;
  float *s, *logits, *dlogits, *ds;
  float *dA, *dB, *dz, *dy1, *dhf, *dqkv, *dmerged, *dP, *packA, *packB;
};

enum Phase { kPack = 0, kTrain = 1, kUpdate = 2, kPredict = 3 };

struct Engine {
  Shape s;
  Layout lay;
  size_t P;
  float *params, *m, *v;
  const VitKernels& K;
  int chunk;
  ThreadPool pool;
  std::vector<std::unique_ptr<Workspace>> ws;
  Packed pk;
  Buf packBuf, catBuf;
  // Gradient slots (one per unit), their sum, the pieces of the update.
  Buf slots, gsum;
  size_t slotStride = 0, slotCount = 0;
  std::vector<Segment> pieces;
  std::vector<double> unitLoss, pieceSq;
  static constexpr size_t kPiece = 16384;
  static constexpr size_t kSlotBudget = size_t(96) << 20;  // bytes of gradient slots
  static constexpr int kMaxUnits = 64;

  // The current phase (set by the calling thread before the pool runs it).
  Phase phase = kTrain;
  const float* x = nullptr;
  const float* y = nullptr;
  float* out = nullptr;
  int rows = 0, units = 0, runLen = 1, chunks = 0;
  bool withBackward = true;
  const float* hp = nullptr;
  float* gradOut = nullptr;
  std::vector<std::pair<int, int>> packJobs;  // (encoder or -1 embed / -2 head, part)

  Engine(const Shape& shape, float* p, float* mm, float* vv, int threads, int chunkImages, bool adaptive, int kernels)
      : s(shape), lay(shape), P(lay.P), params(p), m(mm), v(vv), K(pick_vit_kernels(kernels)), chunk(chunkImages),
        pool(threads, adaptive) {
    for (const Segment& g : lay.segs)
      for (size_t o = 0; o < g.len; o += kPiece) pieces.push_back({g.off + o, std::min(kPiece, g.len - o), g.kernel});
    pieceSq.assign(pieces.size(), 0.0);
    allocPacked();
    for (int t = 0; t < pool.threads(); ++t) ws.push_back(makeWorkspace());
    for (int l = -2; l < s.depth; ++l) packJobs.push_back({l, 0});
    for (int l = 0; l < s.depth; ++l) packJobs.push_back({l, 1});
  }

  // ----- memory -----

  void allocPacked() {
    const int D = s.D, F = s.F, L = s.depth;
    auto ps = [&](int k, int n) { return Arena::round(K.packed_size(k, n)); };
    size_t need = ps(s.PD, D) + ps(D, s.classes) + ps(s.classes, D) + 2 * ps(D, D);
    need += (size_t)L * (ps(D, 3 * D) + ps(D, D) + ps(D, F) + ps(F, D) + ps(3 * D, D) + ps(D, D) + ps(F, D) + ps(D, F) +
                         Arena::round(3 * (size_t)D));
    packBuf = alloc_floats(need);
    Arena a{std::move(packBuf), need, 0};
    pk.pe = a.take(K.packed_size(s.PD, D));
    pk.head = a.take(K.packed_size(D, s.classes));
    pk.headT = a.take(K.packed_size(s.classes, D));
    pk.q = a.take(K.packed_size(D, D));
    pk.qT = a.take(K.packed_size(D, D));
    for (int l = 0; l < L; ++l) {
      pk.qkv.push_back(a.take(K.packed_size(D, 3 * D)));
      pk.o.push_back(a.take(K.packed_size(D, D)));
      pk.f1.push_back(a.take(K.packed_size(D, F)));
      pk.f2.push_back(a.take(K.packed_size(F, D)));
      pk.qkvT.push_back(a.take(K.packed_size(3 * D, D)));
      pk.oT.push_back(a.take(K.packed_size(D, D)));
      pk.f1T.push_back(a.take(K.packed_size(F, D)));
      pk.f2T.push_back(a.take(K.packed_size(D, F)));
      pk.bqkv.push_back(a.take(3 * (size_t)D));
    }
    packBuf = std::move(a.buf);
    catBuf = alloc_floats((size_t)pool.threads() * 3 * D * D);
  }

  std::unique_ptr<Workspace> makeWorkspace() {
    auto w = std::make_unique<Workspace>();
    const size_t D = s.D, F = s.F, L = s.depth, T = s.T, CI = chunk, R = CI * T;
    // Rows an encoder keeps (query rows): all R, the last encoder's class-token rows only.
    auto rq = [&](size_t l) { return l + 1 == L ? CI : R; };
    auto probs = [&](size_t l) { return rq(l) * s.heads * T; };
    const size_t perHeadPack = std::max(K.packed_size(s.dh, s.T), K.packed_size(s.T, s.dh));
    size_t need = 0;
    auto r = [&](size_t n) { need += Arena::round(n); };
    r(CI * s.NP * s.PD);
    for (size_t l = 0; l <= L; ++l) r((l == L ? CI : R) * D);
    for (size_t l = 0; l < L; ++l) {
      const size_t q = rq(l);
      r(R * 3 * D), r(probs(l)), r(q * D), r(q * D), r(q), r(q * D), r(q * F), r(q * D), r(q);
    }
    r(CI * D), r(CI * s.classes), r(CI * s.classes), r(CI * D);
    r(R * D), r(R * D), r(R * D), r(R * D), r(R * F), r(R * 3 * D), r(R * D), r(T * T), r(perHeadPack), r(perHeadPack);
    w->arena = Arena{alloc_floats(need), need, 0};
    Arena& a = w->arena;
    w->patches = a.take(CI * s.NP * s.PD);
    for (size_t l = 0; l <= L; ++l) w->xs.push_back(a.take((l == L ? CI : R) * D));
    for (size_t l = 0; l < L; ++l) {
      const size_t q = rq(l);
      w->qkv.push_back(a.take(R * 3 * D));
      w->probs.push_back(a.take(probs(l)));
      w->merged.push_back(a.take(q * D));
      w->xhat1.push_back(a.take(q * D));
      w->rstd1.push_back(a.take(q));
      w->y1.push_back(a.take(q * D));
      w->hf.push_back(a.take(q * F));
      w->xhat2.push_back(a.take(q * D));
      w->rstd2.push_back(a.take(q));
    }
    w->s = a.take(CI * D);
    w->logits = a.take(CI * s.classes);
    w->dlogits = a.take(CI * s.classes);
    w->ds = a.take(CI * D);
    w->dA = a.take(R * D);
    w->dB = a.take(R * D);
    w->dz = a.take(R * D);
    w->dy1 = a.take(R * D);
    w->dhf = a.take(R * F);
    w->dqkv = a.take(R * 3 * D);
    w->dmerged = a.take(R * D);
    w->dP = a.take(T * T);
    w->packA = a.take(perHeadPack);
    w->packB = a.take(perHeadPack);
    return w;
  }

  // Units of a batch of `n` images: chunks, grouped into fixed runs when slots would exceed the
  // budget. A function of n and the model only.
  void planUnits(int n) {
    chunks = (n + chunk - 1) / chunk;
    const size_t stride = Arena::round(P);
    const int budget = (int)std::max<size_t>(2, std::min<size_t>(kMaxUnits, kSlotBudget / (stride * sizeof(float))));
    runLen = (chunks + budget - 1) / budget;
    units = (chunks + runLen - 1) / runLen;
    if ((size_t)units > slotCount) {
      slotStride = stride;
      slots = alloc_floats(stride * units);
      slotCount = units;
    }
    if (!gsum) gsum = alloc_floats(stride);
    unitLoss.assign(units, 0.0);
  }

  // ----- phases -----

  static void unitFn(void* ctx, int t, uint32_t u, uint64_t) {
    Engine* e = static_cast<Engine*>(ctx);
    switch (e->phase) {
      case kPack: return e->packUnit((int)u, t);
      case kTrain: return e->trainUnit((int)u, *e->ws[t]);
      case kUpdate: return e->updateUnit((int)u);
      case kPredict: return e->predictUnit((int)u, *e->ws[t]);
    }
  }

  void runPhase(Phase p, uint32_t n) {
    phase = p;
    pool.run(n, n, unitFn, this);
  }

  // Pack job j: the embedding (-2), the head (-1), or encoder l's forward (part 0) or backward
  // (part 1) weights.
  void packUnit(int j, int t) {
    const auto [l, part] = packJobs[j];
    const int D = s.D, F = s.F;
    if (l == -2) return K.pack_b(params + lay.peK, D, false, s.PD, D, pk.pe);
    if (l == -1) {
      K.pack_b(params + lay.headK, s.classes, false, D, s.classes, pk.head);
      if (withBackward) K.pack_b(params + lay.headK, s.classes, true, s.classes, D, pk.headT);
      return;
    }
    const EncoderOffsets& e = lay.enc[l];
    if (part == 0) {
      // [Wq Wk Wv] side by side, D x 3D ([Wk Wv], D x 2D, for the last encoder, whose Wq is apart).
      const bool last = l + 1 == s.depth;
      const int first = last ? 1 : 0, n = 3 - first;
      const size_t kOff[3] = {e.qK, e.kK, e.vK};
      float* cat = catBuf.get() + (size_t)t * 3 * D * D;
      for (int k = 0; k < D; ++k)
        for (int j = first; j < 3; ++j)
          std::memcpy(cat + (size_t)k * n * D + (j - first) * D, params + kOff[j] + (size_t)k * D, D * sizeof(float));
      K.pack_b(cat, n * D, false, D, n * D, pk.qkv[l]);
      if (withBackward) K.pack_b(cat, n * D, true, n * D, D, pk.qkvT[l]);
      if (last) {
        K.pack_b(params + e.qK, D, false, D, D, pk.q);
        if (withBackward) K.pack_b(params + e.qK, D, true, D, D, pk.qT);
      }
      std::memcpy(pk.bqkv[l], params + e.qb, D * sizeof(float));
      std::memcpy(pk.bqkv[l] + D, params + e.kb, D * sizeof(float));
      std::memcpy(pk.bqkv[l] + 2 * D, params + e.vb, D * sizeof(float));
      K.pack_b(params + e.oK, D, false, D, D, pk.o[l]);
      return;
    }
    K.pack_b(params + e.f1K, F, false, D, F, pk.f1[l]);
    K.pack_b(params + e.f2K, D, false, F, D, pk.f2[l]);
    if (withBackward) {
      K.pack_b(params + e.oK, D, true, D, D, pk.oT[l]);
      K.pack_b(params + e.f1K, F, true, F, D, pk.f1T[l]);
      K.pack_b(params + e.f2K, D, true, D, F, pk.f2T[l]);
    }
  }

  // Rows of chunk c: images [c * chunk, min(rows, (c + 1) * chunk)).
  int chunkImages(int c) const { return std::min(rows, (c + 1) * chunk) - c * chunk; }

  void trainUnit(int u, Workspace& w) {
    float* g = slots.get() + (size_t)u * slotStride;
    double loss = 0;
    const int c0 = u * runLen, c1 = std::min(chunks, c0 + runLen);
    for (int c = c0; c < c1; ++c) {
      const int n = chunkImages(c);
      const float* xc = x + (size_t)c * chunk * s.H * s.Wi * s.C;
      forward(w, xc, n);
      loss += backward(w, n, y + (size_t)c * chunk, g, c > c0);
    }
    unitLoss[u] = loss;
  }

  void predictUnit(int c, Workspace& w) {
    const int n = chunkImages(c);
    forward(w, x + (size_t)c * chunk * s.H * s.Wi * s.C, n);
    std::memcpy(out + (size_t)c * chunk * s.classes, w.logits, (size_t)n * s.classes * sizeof(float));
  }

  // Piece i of the parameters: the slots summed in unit order, then L2 and Adam (or the gradient
  // into gradOut).
  void updateUnit(int i) {
    const Segment& p = pieces[i];
    float* gs = gsum.get() + p.off;
    for (int u = 0; u < units; ++u) K.fold(gs, slots.get() + (size_t)u * slotStride + p.off, p.len, u == 0);
    pieceSq[i] = K.adam(params + p.off, m + p.off, v + p.off, gs, p.len, p.kernel, hp,
                        gradOut ? gradOut + p.off : nullptr);
  }

  // ----- the network on one chunk -----

  void forward(Workspace& w, const float* xc, int n) {
    const int D = s.D, T = s.T, R = n * T, p = s.patch, C = s.C, PW = s.Wi / p;
    // Patches: token (py, px) of image i is row i * NP + py * PW + px, values (dy, dx, c).
    for (int i = 0; i < n; ++i) {
      const float* img = xc + (size_t)i * s.H * s.Wi * C;
      for (int t = 0; t < s.NP; ++t) {
        const int py = t / PW, px = t % PW;
        float* dst = w.patches + ((size_t)i * s.NP + t) * s.PD;
        for (int dy = 0; dy < p; ++dy)
          std::memcpy(dst + (size_t)dy * p * C, img + ((size_t)(py * p + dy) * s.Wi + px * p) * C, (size_t)p * C * sizeof(float));
      }
    }
    // x0 = [cls; patches We + be] + pos.
    float* x0 = w.xs[0];
    const float* pos = params + lay.pos;
    for (int i = 0; i < n; ++i) {
      float* xi = x0 + (size_t)i * T * D;
      K.gemm_nn(s.NP, D, s.PD, w.patches + (size_t)i * s.NP * s.PD, s.PD, pk.pe, xi + D, D, params + lay.peB, nullptr, 0, false);
      std::memcpy(xi, params + lay.cls, D * sizeof(float));
      K.fold(xi, pos, (size_t)T * D, false);
    }
    for (int l = 0; l < s.depth; ++l) encoderForward(w, l, n, R);
    // Head input: the sum of the encoders' class-token rows (glonet) or the last one's.
    for (int i = 0; i < n; ++i) {
      float* si = w.s + (size_t)i * D;
      const int first = s.glonet ? 1 : s.depth;
      std::memcpy(si, clsRow(w, first, i), D * sizeof(float));
      for (int l = first + 1; l <= s.depth; ++l) K.fold(si, clsRow(w, l, i), D, false);
    }
    K.gemm_nn(n, s.classes, D, w.s, D, pk.head, w.logits, s.classes, params + lay.headB, nullptr, 0, false);
  }

  // Image i's class-token row of x_l (l = 0..depth; the last encoder keeps only these rows).
  const float* clsRow(const Workspace& w, int l, int i) const {
    return w.xs[l] + (size_t)i * (l == s.depth ? 1 : s.T) * s.D;
  }

  // Encoders. Only the class-token rows of the last encoder's output are ever read (by the head;
  // both archs), so the last encoder computes its queries, attention, output projection,
  // LayerNorms and feed-forward block for those rows only (with the keys and values of every
  // row): the same model and the same numbers, a quarter of that encoder's work. The "query
  // rows" of encoder l are then Rq = n (row i at i * T of x_l, kept compact, row i, after the
  // attention) instead of all R rows; Tq = 1 query per image and head instead of T.

  void encoderForward(Workspace& w, int l, int n, int R) {
    const int D = s.D, T = s.T, dh = s.dh, D3 = 3 * D;
    const bool last = l + 1 == s.depth;
    const int Rq = last ? n : R, Tq = last ? 1 : T, ldq = last ? T * D : D;  // query rows of x_{l-1}: stride ldq
    const EncoderOffsets& e = lay.enc[l];
    const float* xin = w.xs[l];
    float* qkv = w.qkv[l];
    float* merged = w.merged[l];
    const float scale = 1.f / std::sqrt((float)dh);
    if (!last) {
      K.gemm_nn(R, D3, D, xin, D, pk.qkv[l], qkv, D3, pk.bqkv[l], nullptr, 0, false);
    } else {
      K.gemm_nn(R, 2 * D, D, xin, D, pk.qkv[l], qkv + D, D3, pk.bqkv[l] + D, nullptr, 0, false);
      K.gemm_nn(n, D, D, xin, T * D, pk.q, qkv, T * D3, pk.bqkv[l], nullptr, 0, false);
    }
    for (int i = 0; i < n; ++i) {
      for (int h = 0; h < s.heads; ++h) {
        const float* q = qkv + (size_t)i * T * D3 + h * dh;
        float* P = w.probs[l] + ((size_t)i * s.heads + h) * Tq * T;
        K.pack_b(q + D, D3, true, dh, T, w.packA);  // K_h^T
        K.gemm_nn(Tq, T, dh, q, D3, w.packA, P, T, nullptr, nullptr, 0, false);
        K.softmax_fwd(P, Tq, T, T, scale);
        K.pack_b(q + 2 * D, D3, false, T, dh, w.packB);  // V_h
        K.gemm_nn(Tq, dh, T, P, T, w.packB, merged + (size_t)i * Tq * D + h * dh, D, nullptr, nullptr, 0, false);
      }
    }
    // y1 = LN1(x + merged Wo + bo)
    float* y1 = w.y1[l];
    K.gemm_nn(Rq, D, D, merged, D, pk.o[l], y1, D, params + e.ob, xin, ldq, false);
    K.ln_fwd(y1, Rq, D, params + e.g1, params + e.be1, s.lnEps, w.xhat1[l], y1, w.rstd1[l]);
    // x_l = LN2(y1 + relu(y1 W1 + b1) W2 + b2)
    K.gemm_nn(Rq, s.F, D, y1, D, pk.f1[l], w.hf[l], s.F, params + e.f1b, nullptr, 0, true);
    float* xo = w.xs[l + 1];
    K.gemm_nn(Rq, D, s.F, w.hf[l], s.F, pk.f2[l], xo, D, params + e.f2b, y1, D, false);
    K.ln_fwd(xo, Rq, D, params + e.g2, params + e.be2, s.lnEps, w.xhat2[l], xo, w.rstd2[l]);
  }

  // The loss (sum over the chunk's images) and every weight's gradient of it into g (= the first
  // chunk of a unit, += the next ones); the data loss is a mean over the batch's `rows` images.
  double backward(Workspace& w, int n, const float* yc, float* g, bool acc) {
    const int D = s.D, T = s.T, NC = s.classes, R = n * T;
    // Head: dlogits = (softmax - onehot) / rows.
    double loss = 0;
    const float invRows = 1.f / (float)rows;
    for (int i = 0; i < n; ++i) {
      const float* z = w.logits + (size_t)i * NC;
      float* dz = w.dlogits + (size_t)i * NC;
      const int label = (int)yc[i];
      float mx = z[0];
      for (int k = 1; k < NC; ++k) mx = std::max(mx, z[k]);
      float sum = 0;
      for (int k = 0; k < NC; ++k) sum += (dz[k] = std::exp(z[k] - mx));
      loss += (double)mx + std::log((double)sum) - (double)z[label];
      for (int k = 0; k < NC; ++k) dz[k] = (dz[k] / sum - (k == label ? 1.f : 0.f)) * invRows;
    }
    K.gemm_tn(D, NC, n, w.s, D, w.dlogits, NC, g + lay.headK, NC, acc);
    K.colsum(w.dlogits, n, NC, NC, g + lay.headB, acc);
    K.gemm_nn(n, D, NC, w.dlogits, NC, pk.headT, w.ds, D, nullptr, nullptr, 0, false);
    // Gradient at the last encoder's output (its class-token rows, all it keeps): ds.
    float* dOut = w.dA;
    float* dIn = w.dB;
    std::memcpy(dOut, w.ds, (size_t)n * D * sizeof(float));
    for (int l = s.depth - 1; l >= 0; --l) {
      encoderBackward(w, l, n, R, dOut, dIn, g, acc);
      std::swap(dOut, dIn);  // dOut: the gradient at x_l, the output of encoder l (0-based l - 1)
      if (s.glonet && l > 0)
        for (int i = 0; i < n; ++i) K.fold(dOut + (size_t)i * T * D, w.ds + (size_t)i * D, D, false);
    }
    // Embedding: dOut is the gradient at x0.
    K.colsum(dOut, n, D, T * D, g + lay.cls, acc);
    K.colsum(dOut, n, T * D, T * D, g + lay.pos, acc);
    for (int i = 0; i < n; ++i) {
      const float* di = dOut + ((size_t)i * T + 1) * D;
      K.gemm_tn(s.PD, D, s.NP, w.patches + (size_t)i * s.NP * s.PD, s.PD, di, D, g + lay.peK, D, acc || i > 0);
      K.colsum(di, s.NP, D, D, g + lay.peB, acc || i > 0);
    }
    return loss;
  }

  // Encoder l's backward pass: dOut (at its output's query rows) -> dIn (at its input, all rows);
  // weight gradients into g.
  void encoderBackward(Workspace& w, int l, int n, int R, const float* dOut, float* dIn, float* g, bool acc) {
    const int D = s.D, F = s.F, T = s.T, dh = s.dh, D3 = 3 * D;
    const bool last = l + 1 == s.depth;
    const int Rq = last ? n : R, Tq = last ? 1 : T, ldq = last ? T * D : D, ldq3 = last ? T * D3 : D3;
    const EncoderOffsets& e = lay.enc[l];
    const float scale = 1.f / std::sqrt((float)dh);
    float* dz = w.dz;
    // LN2, then the feed-forward block (z2 = y1 + relu(y1 W1 + b1) W2 + b2).
    K.ln_bwd(dOut, w.xhat2[l], w.rstd2[l], params + e.g2, Rq, D, dz, g + e.g2, g + e.be2, acc);
    K.gemm_tn(F, D, Rq, w.hf[l], F, dz, D, g + e.f2K, D, acc);
    K.colsum(dz, Rq, D, D, g + e.f2b, acc);
    K.gemm_nn(Rq, F, D, dz, D, pk.f2T[l], w.dhf, F, nullptr, nullptr, 0, false);
    K.relu_mask(w.dhf, w.hf[l], (size_t)Rq * F);
    K.gemm_tn(D, F, Rq, w.y1[l], D, w.dhf, F, g + e.f1K, F, acc);
    K.colsum(w.dhf, Rq, F, F, g + e.f1b, acc);
    K.gemm_nn(Rq, D, F, w.dhf, F, pk.f1T[l], w.dy1, D, nullptr, dz, D, false);
    // LN1, then the attention block (z1 = x + merged Wo + bo).
    K.ln_bwd(w.dy1, w.xhat1[l], w.rstd1[l], params + e.g1, Rq, D, dz, g + e.g1, g + e.be1, acc);
    K.gemm_tn(D, D, Rq, w.merged[l], D, dz, D, g + e.oK, D, acc);
    K.colsum(dz, Rq, D, D, g + e.ob, acc);
    K.gemm_nn(Rq, D, D, dz, D, pk.oT[l], w.dmerged, D, nullptr, nullptr, 0, false);
    // Attention, image by image and head by head: dQ (the query rows), dK and dV (every row).
    const float* qkv = w.qkv[l];
    for (int i = 0; i < n; ++i) {
      for (int h = 0; h < s.heads; ++h) {
        const size_t rowOff = (size_t)i * T * D3 + h * dh;
        const float* q = qkv + rowOff;
        const float* P = w.probs[l] + ((size_t)i * s.heads + h) * Tq * T;
        const float* dO = w.dmerged + (size_t)i * Tq * D + h * dh;
        float* dq = w.dqkv + rowOff;
        K.pack_b(q + 2 * D, D3, true, dh, T, w.packA);  // V_h^T
        K.gemm_nn(Tq, T, dh, dO, D, w.packA, w.dP, T, nullptr, nullptr, 0, false);
        K.gemm_tn(T, dh, Tq, P, T, dO, D, dq + 2 * D, D3, false);  // dV = P^T dO
        K.softmax_bwd(P, w.dP, Tq, T, T, scale);
        K.pack_b(q + D, D3, false, T, dh, w.packB);  // K_h
        K.gemm_nn(Tq, dh, T, w.dP, T, w.packB, dq, D3, nullptr, nullptr, 0, false);  // dQ = dS K
        K.gemm_tn(T, dh, Tq, w.dP, T, q, D3, dq + D, D3, false);  // dK = dS^T Q
      }
    }
    // The projections' gradients: queries from the query rows, keys and values from every row.
    const float* xin = w.xs[l];
    K.gemm_tn(D, D, Rq, xin, ldq, w.dqkv, ldq3, g + e.qK, D, acc);
    K.colsum(w.dqkv, Rq, D, ldq3, g + e.qb, acc);
    const size_t kOff[2] = {e.kK, e.vK}, bOff[2] = {e.kb, e.vb};
    for (int j = 0; j < 2; ++j) {
      K.gemm_tn(D, D, R, xin, D, w.dqkv + (j + 1) * D, D3, g + kOff[j], D, acc);
      K.colsum(w.dqkv + (j + 1) * D, R, D, D3, g + bOff[j], acc);
    }
    // dIn = dz1 (the residual) + dQKV [Wq Wk Wv]^T.
    if (!last) {
      K.gemm_nn(R, D, D3, w.dqkv, D3, pk.qkvT[l], dIn, D, nullptr, dz, D, false);
      return;
    }
    K.gemm_nn(R, D, 2 * D, w.dqkv + D, D3, pk.qkvT[l], dIn, D, nullptr, nullptr, 0, false);
    K.gemm_nn(n, D, D, w.dqkv, T * D3, pk.qT, dIn, T * D, nullptr, dIn, T * D, false);
    for (int i = 0; i < n; ++i) K.fold(dIn + (size_t)i * T * D, dz + (size_t)i * D, D, false);
  }

  // ----- entry points -----

  void pack(bool backward) {
    withBackward = backward;
    runPhase(kPack, (uint32_t)packJobs.size());
  }

  // A training step (gradOut null) or the gradient (into gradOut, weights unchanged). Returns the
  // mean cross-entropy plus the L2 penalty at the weights before the step.
  double trainStep(const float* xb, const float* yb, int n, const float* hyper, float* gOut) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.tuneBefore();
    x = xb;
    y = yb;
    rows = n;
    hp = hyper;
    gradOut = gOut;
    planUnits(n);
    pack(true);
    runPhase(kTrain, (uint32_t)units);
    runPhase(kUpdate, (uint32_t)pieces.size());
    double data = 0, sq = 0;
    for (double l : unitLoss) data += l;
    for (double q : pieceSq) sq += q;
    pool.tuneAfter(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n);
    return data / n + (double)hyper[0] * sq;
  }

  void predict(const float* xb, int n, float* o) {
    x = xb;
    rows = n;
    out = o;
    chunks = (n + chunk - 1) / chunk;
    pack(false);
    runPhase(kPredict, (uint32_t)chunks);
  }

  std::vector<int> flushStates() { return pool.flushStates(); }
};

// ---------------------------------------------------------------------------------------------
// Node-API

using VitHandle = Handle<Engine, 3>;

bool int_prop(napi_env env, napi_value obj, const char* name, int32_t* out, int32_t lo, int32_t hi) {
  return get_int_prop(env, obj, name, out) && *out >= lo && *out <= hi;
}

// vitCreate(params, m, v, config) -> handle. config: {height, width, channels, patch, dim, heads,
// mlpDim, depth, classes, glonet, threads, chunk, adaptive, kernels (0 best, 1 AVX2 at most,
// 2 portable), lnEpsilon}.
napi_value VitCreate(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return throw_error(env, "vitCreate: expected (params, m, v, config)");
  float *p, *m, *v;
  size_t np, nm, nv;
  if (!get_f32(env, argv[0], &p, &np) || !get_f32(env, argv[1], &m, &nm) || !get_f32(env, argv[2], &v, &nv))
    return throw_error(env, "vitCreate: params, m and v must be Float32Arrays");
  Shape s{};
  int32_t glonet, threads, chunk, adaptive, kernels;
  const napi_value c = argv[3];
  if (!int_prop(env, c, "height", &s.H, 1, 4096) || !int_prop(env, c, "width", &s.Wi, 1, 4096) ||
      !int_prop(env, c, "channels", &s.C, 1, 64) || !int_prop(env, c, "patch", &s.patch, 1, 256) ||
      !int_prop(env, c, "dim", &s.D, 1, 8192) || !int_prop(env, c, "heads", &s.heads, 1, 1024) ||
      !int_prop(env, c, "mlpDim", &s.F, 1, 65536) || !int_prop(env, c, "depth", &s.depth, 1, 1024) ||
      !int_prop(env, c, "classes", &s.classes, 2, 100000) || !int_prop(env, c, "glonet", &glonet, 0, 1) ||
      !int_prop(env, c, "threads", &threads, 1, 64) || !int_prop(env, c, "chunk", &chunk, 1, 4096) ||
      !int_prop(env, c, "adaptive", &adaptive, 0, 1) || !int_prop(env, c, "kernels", &kernels, 0, 2))
    return throw_error(env, "vitCreate: bad config (an integer property is missing or out of range)");
  double eps = 0;
  napi_value ev;
  if (napi_get_named_property(env, c, "lnEpsilon", &ev) != napi_ok || napi_get_value_double(env, ev, &eps) != napi_ok ||
      !(eps > 0))
    return throw_error(env, "vitCreate: config.lnEpsilon must be a number > 0");
  if (s.H % s.patch || s.Wi % s.patch) return throw_error(env, "vitCreate: the image is not divisible into patches");
  if (s.D % s.heads) return throw_error(env, "vitCreate: dim must be divisible by heads");
  s.glonet = glonet == 1;
  s.lnEps = (float)eps;
  s.NP = (s.H / s.patch) * (s.Wi / s.patch);
  s.T = s.NP + 1;
  s.PD = s.patch * s.patch * s.C;
  s.dh = s.D / s.heads;
  const size_t P = Layout(s).P;
  if (np != P || nm != P || nv != P)
    return throw_error(env, "vitCreate: params, m and v must hold " + std::to_string(P) + " values");
  VitHandle* h = new VitHandle();
  try {
    h->engine = new Engine(s, p, m, v, threads, chunk, adaptive == 1, kernels);
  } catch (const std::exception& ex) {
    delete h;
    return throw_error(env, std::string("vitCreate: ") + ex.what());
  }
  return VitHandle::wrap(env, h, argv);
}

// The engine and the batch of a call (handle, x, y?, rows, ...); null with an exception pending.
Engine* batch_args(napi_env env, napi_value* argv, bool needY, const char* what, const float** x,
                   const float** y, int32_t* rows) {
  Engine* e = VitHandle::engine_of(env, argv[0]);
  if (!e) {
    throw_error(env, "engine is disposed");
    return nullptr;
  }
  float *xp, *yp = nullptr;
  size_t nx, ny = 0;
  const size_t inSize = (size_t)e->s.H * e->s.Wi * e->s.C;
  if (!get_f32(env, argv[1], &xp, &nx) || (needY && !get_f32(env, argv[2], &yp, &ny)) ||
      napi_get_value_int32(env, argv[needY ? 3 : 2], rows) != napi_ok || *rows < 1 || nx < (size_t)*rows * inSize ||
      (needY && ny < (size_t)*rows)) {
    throw_error(env, std::string(what) + (needY ? ": bad x/y/rows" : ": bad x/rows"));
    return nullptr;
  }
  if (needY)
    for (int32_t r = 0; r < *rows; ++r)
      if (!(yp[r] >= 0 && yp[r] < e->s.classes && yp[r] == std::floor(yp[r]))) {
        throw_error(env, std::string(what) + ": label at row " + std::to_string(r) + " is not a class index");
        return nullptr;
      }
  *x = xp;
  *y = yp;
  return e;
}

// vitStep(h, x, y, rows, hp) -> loss; vitGradients(h, x, y, rows, hp, out) -> loss. hp: Float64Array
// [l2, b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps, -lr] (src/engines/adam-clock.ts).
napi_value step_or_grad(napi_env env, napi_callback_info info, bool grad) {
  size_t argc = grad ? 6 : 5;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  const char* what = grad ? "vitGradients" : "vitStep";
  if (argc < (grad ? 6u : 5u)) return throw_error(env, std::string(what) + ": missing arguments");
  const float *x, *y;
  int32_t rows;
  Engine* e = batch_args(env, argv, true, what, &x, &y, &rows);
  if (!e) return nullptr;
  void* hpv = nullptr;
  size_t nhp = 0;
  if (!get_typed(env, argv[4], napi_float64_array, &hpv, &nhp) || nhp < 9)
    return throw_error(env, std::string(what) + ": hyper-parameters must be a Float64Array of 9");
  float hp[9];
  for (int i = 0; i < 9; ++i) hp[i] = (float)static_cast<const double*>(hpv)[i];
  float* gradOut = nullptr;
  if (grad) {
    size_t ng = 0;
    if (!get_f32(env, argv[5], &gradOut, &ng) || ng != e->P)
      return throw_error(env, "vitGradients: out must be a Float32Array of the parameter count");
  }
  double loss;
  try {
    glonet_fp::FlushScope flush;
    loss = e->trainStep(x, y, rows, hp, gradOut);
  } catch (const std::exception& ex) {
    return throw_error(env, std::string(what) + ": " + ex.what());
  }
  napi_value result;
  CHECK(napi_create_double(env, loss, &result));
  return result;
}

napi_value VitStep(napi_env env, napi_callback_info info) { return step_or_grad(env, info, false); }
napi_value VitGradients(napi_env env, napi_callback_info info) { return step_or_grad(env, info, true); }

// vitPredict(h, x, rows, out): logits, rows x classes.
napi_value VitPredict(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return throw_error(env, "vitPredict: missing arguments");
  const float *x, *y;
  int32_t rows;
  Engine* e = batch_args(env, argv, false, "vitPredict", &x, &y, &rows);
  if (!e) return nullptr;
  float* out;
  size_t n;
  if (!get_f32(env, argv[3], &out, &n) || n < (size_t)rows * e->s.classes)
    return throw_error(env, "vitPredict: out must be a Float32Array of rows * classes");
  try {
    glonet_fp::FlushScope flush;
    e->predict(x, rows, out);
  } catch (const std::exception& ex) {
    return throw_error(env, std::string("vitPredict: ") + ex.what());
  }
  return nullptr;
}

// vitKernels(h) -> the kernel set an engine runs.
napi_value VitKernels(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Engine* e = argc >= 1 ? VitHandle::engine_of(env, argv[0]) : nullptr;
  if (!e) return throw_error(env, "engine is disposed");
  napi_value name;
  CHECK(napi_create_string_utf8(env, e->K.name, NAPI_AUTO_LENGTH, &name));
  return name;
}

// vitInfo() -> {kernels}: the kernel set this CPU gets by default.
napi_value VitInfo(napi_env env, napi_callback_info) {
  napi_value obj, name;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, pick_vit_kernels(0).name, NAPI_AUTO_LENGTH, &name));
  CHECK(napi_set_named_property(env, obj, "kernels", name));
  return obj;
}

}  // namespace

void glonet_define_vit(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      method("vitCreate", VitCreate),
      method("vitStep", VitStep),
      method("vitGradients", VitGradients),
      method("vitPredict", VitPredict),
      method("vitDestroy", VitHandle::destroy),
      method("vitFlushStates", flush_states<VitHandle>),
      method("vitKernels", VitKernels),
      method("vitInfo", VitInfo),
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
