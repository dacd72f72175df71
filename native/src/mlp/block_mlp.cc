// Fused training engine for the paper's two-layer-block MLP baselines (src/models/mlp.ts):
//
//   stem      X_0 = x Ks + bs                                   (linear)
//   block b   Z_b = relu(BN1(X_b)) K1 + b1;  H_b = relu(BN2(Z_b)) K2 + b2
//             X_(b+1) = X_b + H_b (resnetv2, resnetv2-nobn)  or  H_b (vanilla, vanilla-nobn)
//   head      out = X_nb Kh + bh                                (linear, on the last output)
//
// without the BNs for the -nobn archs; and for glonet-bn (`sum`), a chain of nb one-layer blocks
// read by the head through their sum:
//
//   block k   A_k = relu(BN_k(A_(k-1) K_k + b_k)), A_0 = X_0;   head  out = (sum_k A_k) Kh + bh
//
// In the dense-layer terms below, glonet-bn is D = nb dense layers where dense 0 reads IN_0 = X_0
// as it is (no BN, no relu), dense d >= 1 reads relu(BN_d(IN_d)), and a last BN_D normalizes
// IN_D for the sum only; the sum S = sum_(d=1..D) relu(BN_d(IN_d)) is kept for the whole batch and
// its gradient dS (the head's input gradient) joins each relu(BN_d) output's gradient. MSE or softmax cross-entropy, L2 on kernels, Adam exactly
// as tf.train.adam in TF.js 4.22 (mlp_kernels.h). Batch normalization is TF.js 4.22's
// BatchNormalization layer: in training, the batch's mean and biased variance (tf.moments:
// mean((x - mean)^2)), y = (x - mean) * gamma / sqrt(var + eps) + beta, gradients through the
// mean and variance too; after each training step's forward pass the moving statistics move as
// the layer moves them, in float32: moving -= (moving - batch) * (1 - momentum). Inference
// (predict, evaluate) normalizes with the moving statistics. gamma and beta are trained by Adam
// without L2.
//
// Dense layer d = 0 .. 2nb-1 (block d / 2, first or second of the block); its input IN_d is X_b
// (d even) or Z_b (d odd), normalized by BN_d (when there are BNs) and passed through relu.
// Parameters: one flat vector in the order of the layers (stem, per block BN1 [gamma, beta],
// dense1 [kernel, bias], BN2, dense2, head), kernels in TF.js Dense layout (y = x K + b, K
// row-major [in, out]); the moving statistics in a second vector, per BN [mean, variance].
//
// Work. The batch is cut into fixed tiles of tileRows rows and the tiles into fixed units (one
// tile, or for large batches a run of consecutive tiles), which the threads claim (common/thread_pool.h).
//   - With BN, every BN needs statistics over the whole batch, so a training step goes layer by
//     layer: a phase per dense layer forward (each tile: normalize + relu its input, the dense
//     layer, the residual add, the tile's mean and sum of squared deviations of the output), a
//     phase per dense layer backward (each tile: the pending BN backward of the layer above, the
//     weight gradient, the input gradient through relu, the tile's sums of dy and dy * xhat); the
//     calling thread combines the tiles' sums between phases. Activations are kept for the whole
//     batch: X_b and Z_b, (2 nb + 1) x rows x W floats.
//   - Without BN nothing crosses rows: one phase in which each tile runs the whole forward and
//     backward chain on activations of its own ((2 nb + 1) x tileRows x W floats per thread).
// Each unit writes its weight-gradient partial (including the BN gamma and beta sums) to a buffer
// of its own; the partials are summed in unit order (with BN by the calling thread after each
// layer's phase, while they are in cache; without, in the update phase), then the update phase,
// split by parameter range, adds L2 and runs Adam. Batch statistics are combined in tile order (float32 per tile, then
// float64 across tiles with Chan's formula), gradient partials and losses in unit order: no sum
// depends on which thread ran what, so the results are bitwise the same for any thread count.

#include "block_mlp.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "bn_kernels.h"
#include "mlp_kernels.h"
#include "mlp_loss.h"
#include "../common/thread_pool.h"

namespace {

// ---------------------------------------------------------------------------------------------
// The engine

enum PhaseKind { kFwdStem, kFwd, kHeadSum, kBwd, kBwdStem, kChain, kInfer, kUpdate };

struct Segment {
  size_t off, len;
  bool kernel;
};

struct alignas(64) Workspace {  // one per thread
  FloatBuf A, H, G, out, dOut, scratch;  // H: xhat of the layer being differentiated
  FloatBuf KT;                    // per dense layer: this thread's transposed kernel (W x W)
  std::vector<uint64_t> ktStep;   // the step for which KT[d] was transposed
  FloatBuf chain;                 // no BN: (2 nb + 1) x tileRows x W activations, then DX, DY
  FloatBuf fold;                  // update: one chunk of the summed gradient
};

struct BlockEngine {
  int nIn, W, nb, D, nOut, lossKind, T, RT;
  bool bn, skip, sum;
  float eps, decay;  // BN epsilon and 1 - momentum (float32, as TF.js uses them)
  size_t P, oStemK, oStemB, oHeadK, oHeadB;
  std::vector<size_t> oDense, oBn;  // per dense layer d: its kernel (bias after W x W), BN_d's gamma (beta after W)
  float *params, *m, *v, *moving;   // moving: per BN, in order [mean (W), variance (W)]
  const Kernels* K;
  const BnKernels* E;
  std::vector<Segment> segs;
  std::vector<std::unique_ptr<Workspace>> ws;

  // Batch normalization of the current pass, per dense layer d (D x W each): the batch mean,
  // 1/sqrt(var + eps) and gamma * rstd (training), 1/sqrt(moving var + eps) (inference); the
  // backward constants mean(dy) and rstd * mean(dy * xhat).
  std::vector<float> mu, rstd, scale, infRstd, c2, c4;
  std::vector<double> combine_;  // 2 x W: sums of combineMoments

  // Current phase (written by thread 0 before it starts the phase).
  PhaseKind kind = kFwd;
  int cur = 0;  // the dense layer of a kFwd / kBwd phase
  const float* x = nullptr;
  const float* y = nullptr;
  float* predOut = nullptr;
  float* gradOut = nullptr;
  int rows = 0;
  uint64_t stepId = 0;
  AdamParams ap{};
  uint32_t nTiles = 0, tilesPerUnit = 1, nUnits = 0;
  std::vector<double> unitLoss;  // per unit (train, loss) or per chunk (update: sum of w^2)
  static constexpr size_t kChunk = 16384;  // parameters per update unit

  // With BN: the whole batch's activations (IN_0 .. IN_D, rowsCap rows each), the gradients DX
  // (with respect to the current block output) and DY (the BN output gradient of the layer last
  // done), and the tiles' moments (mean, sum of squared deviations) of the layer last done.
  FloatBuf acts_, dx_, dy_, tileMoments_, sum_;
  int rowsCap = 0;
  uint32_t tileCap = 0;

  // The units' gradient partials, slotStride floats each (laid out like the parameters), at
  // most maxUnits of them (64, and about kPartialBudget bytes, but at least 8), and (with BN)
  // their sum.
  FloatBuf parts_, gsum_;
  size_t slotStride = 0;
  uint32_t unitCap = 0, maxUnits = 64;
  static constexpr size_t kPartialBudget = size_t(64) << 20;

  ThreadPool pool;  // last: its threads stop before anything they use goes

  std::vector<int> flushStates() { return pool.flushStates(); }

  BlockEngine(int nIn_, int W_, int nb_, int nOut_, int loss_, bool bn_, bool skip_, bool sum_, float eps_,
              float decay_, int threads, int tileRows, bool simd, bool adaptive, float* p,
              float* m_, float* v_, float* moving_)
      : nIn(nIn_), W(W_), nb(nb_), D(sum_ ? nb_ : 2 * nb_), nOut(nOut_), lossKind(loss_), T(std::max(1, threads)),
        RT(std::max(1, tileRows)), bn(bn_), skip(skip_), sum(sum_), eps(eps_), decay(decay_), params(p), m(m_),
        v(v_), moving(moving_), pool(threads, adaptive) {
    size_t o = 0;
    auto take = [&](size_t n, bool kernel) {
      segs.push_back({o, n, kernel});
      o += n;
      return o - n;
    };
    oStemK = take((size_t)nIn * W, true);
    oStemB = take(W, false);
    oBn.assign(D + 1, 0);
    for (int d = 0; d <= D; ++d) {
      if (hasBn(d)) {
        oBn[d] = take(W, false);
        take(W, false);
      }
      if (d == D) break;
      oDense.push_back(take((size_t)W * W, true));
      take(W, false);
    }
    oHeadK = take((size_t)W * nOut, true);
    oHeadB = take(nOut, false);
    P = o;
    K = &pick_kernels(simd);
    E = &bn_kernels_for(*K);
    slotStride = (P + 15) / 16 * 16;
    maxUnits = (uint32_t)std::min<size_t>(64, std::max<size_t>(8, kPartialBudget / (slotStride * sizeof(float))));
    for (auto* a : {&mu, &rstd, &scale, &infRstd, &c2, &c4}) a->assign((size_t)(D + 1) * W, 0.f);
    if (bn) gsum_ = alloc_floats(P);
    combine_.assign(2 * (size_t)W, 0.0);
    for (int t = 0; t < T; ++t) {
      auto w = std::make_unique<Workspace>();
      w->A = alloc_floats((size_t)RT * W);
      w->H = alloc_floats((size_t)RT * W);
      w->G = alloc_floats((size_t)RT * W);
      w->out = alloc_floats((size_t)RT * nOut);
      w->dOut = alloc_floats((size_t)RT * nOut);
      w->scratch = alloc_floats(std::max((size_t)3 * RT * W, (size_t)W));
      w->KT = alloc_floats((size_t)D * W * W);
      w->ktStep.assign(D, 0);
      if (!bn) w->chain = alloc_floats((size_t)(D + 3) * RT * W);
      w->fold = alloc_floats(kChunk);
      ws.push_back(std::move(w));
    }
  }

  // Whether BN_d exists: before every dense layer with BN (d < D); with `sum`, before dense
  // layers 1 .. D - 1 and last for the sum (1 <= d <= D).
  bool hasBn(int d) const { return bn && (sum ? d >= 1 : d < D); }

  // BN_d's moving mean (its variance follows after W), in the order of the BNs.
  float* movingOf(int d) const { return moving + (size_t)(sum ? d - 1 : d) * 2 * W; }

  // ----- where a tile's rows live -----

  // IN_d of the rows starting at r0: the whole-batch arrays (BN), or the thread's own (no BN).
  float* act(int t, int d, int r0) {
    if (!bn) return ws[t]->chain.get() + (size_t)d * RT * W;
    return acts_.get() + ((size_t)d * rowsCap + r0) * W;
  }
  float* dxOf(int t, int r0) { return bn ? dx_.get() + (size_t)r0 * W : act(t, D + 1, 0); }
  // glonet-bn: the rows of the sum S (and, in dxOf, of its gradient dS).
  float* sumOf(int r0) { return sum_.get() + (size_t)r0 * W; }
  float* dyOf(int t, int r0) { return bn ? dy_.get() + (size_t)r0 * W : act(t, D + 2, 0); }
  float* part(uint32_t u) { return parts_.get() + (size_t)u * slotStride; }

  // ----- one tile's pieces -----

  static void prefetch(const float* p, size_t n) {
    for (size_t i = 0; i < n; i += 64 / sizeof(float)) __builtin_prefetch(p + i, 0, 2);
  }

  // A (the thread's) = relu(BN_d(in)) (training: batch statistics; inference: moving ones),
  // and with `xhat`, the normalized input into H; glonet-bn's dense 0 reads `in` as it is.
  void normalize(Workspace& w, int d, const float* in, int n, bool train, bool xhat = false) {
    if (sum && d == 0) return (void)std::memcpy(w.A.get(), in, (size_t)n * W * sizeof(float));
    if (!bn) return E->relu(in, w.A.get(), (size_t)n * W);
    const size_t o = (size_t)d * W;
    const float* mean = train ? mu.data() + o : movingOf(d);
    E->bn_relu(in, w.A.get(), xhat ? w.H.get() : nullptr, n, W, mean,
               (train ? rstd.data() : infRstd.data()) + o, params + oBn[d], params + oBn[d] + W);
  }

  void stem(int n, const float* X, float* out) {
    K->dense(X, nIn, n, nIn, params + oStemK, W, params + oStemB, out);
  }

  // out = relu(BN_d(in)) K_d + b_d (+ skipIn)
  void denseFwd(Workspace& w, int d, const float* in, float* out, const float* skipIn, int n, bool train) {
    normalize(w, d, in, n, train);
    K->dense(w.A.get(), W, n, W, params + oDense[d], W, params + oDense[d] + (size_t)W * W, out);
    if (skipIn) E->add(out, skipIn, (size_t)n * W);
  }

  // The tile's moments of IN_d (for BN_d), when BN_d exists.
  void tileMoments(int d, int r0, int n) {
    if (!hasBn(d)) return;
    float* tm = tileMoments_.get() + (size_t)(r0 / RT) * 2 * W;
    E->moments(act(0, d, r0), n, W, tm, tm + W);
  }

  void forwardLayer(int t, int d, int r0, int n) {
    const float* skipIn = skip && d % 2 == 1 ? act(t, d - 1, r0) : nullptr;
    denseFwd(*ws[t], d, act(t, d, r0), act(t, d + 1, r0), skipIn, n, true);
    if (sum && d >= 1) addToSum(*ws[t], d, r0, n);
  }

  // glonet-bn: S += A (relu(BN_d(IN_d)) of the rows, in the thread's A); the first term writes S.
  void addToSum(Workspace& w, int d, int r0, int n) {
    if (d == 1) return (void)std::memcpy(sumOf(r0), w.A.get(), (size_t)n * W * sizeof(float));
    E->add(sumOf(r0), w.A.get(), (size_t)n * W);
  }

  // glonet-bn, after BN_D's statistics: S's last term, the head and its backward (DX = dS), then
  // BN_D's output gradient DY = relu'(.) * dS and its sums for gamma and beta.
  double headSum(int t, int r0, int n, float* g, bool init) {
    Workspace& w = *ws[t];
    normalize(w, D, act(t, D, r0), n, true, true);
    if (D == 1) {
      std::memcpy(sumOf(r0), w.A.get(), (size_t)n * W * sizeof(float));
    } else {
      E->add(sumOf(r0), w.A.get(), (size_t)n * W);
    }
    const float* s = sumOf(r0);
    K->dense(s, W, n, W, params + oHeadK, nOut, params + oHeadB, w.out.get());
    const double loss = output_loss(lossKind, w.out.get(), y, r0, n, nOut, rows, w.dOut.get());
    K->outer_acc(s, W, n, W, w.dOut.get(), nOut, g + oHeadK, init);
    E->colsum(w.dOut.get(), n, nOut, g + oHeadB, init);
    float* dS = dxOf(t, r0);
    head_input_grad(w.dOut.get(), n, nOut, params + oHeadK, W, dS);
    float* dy = dyOf(t, r0);
    float* dbeta = g + oBn[D] + W;
    if (init)
      for (int j = 0; j < W; ++j) dbeta[j] = 0.f;
    K->relu_bwd(dS, w.A.get(), dy, dbeta, n, W);
    E->dgamma(dy, w.H.get(), n, W, g + oBn[D], init);
    return loss;
  }

  // Head, loss and head backward: the tile's loss sum; DX = dLoss/dX_nb.
  double head(int t, int r0, int n, float* g, bool init) {
    Workspace& w = *ws[t];
    const float* xin = act(t, D, r0);
    K->dense(xin, W, n, W, params + oHeadK, nOut, params + oHeadB, w.out.get());
    const double loss = output_loss(lossKind, w.out.get(), y, r0, n, nOut, rows, w.dOut.get());
    K->outer_acc(xin, W, n, W, w.dOut.get(), nOut, g + oHeadK, init);
    E->colsum(w.dOut.get(), n, nOut, g + oHeadB, init);
    head_input_grad(w.dOut.get(), n, nOut, params + oHeadK, W, dxOf(t, r0));
    return loss;
  }

  // The gradient with respect to IN_d of the rows, from DY (the gradient at BN_d's output, after
  // relu), into out (or added to it when acc); its column sums into db (= when init, else +=).
  void inputGrad(int t, int d, int r0, int n, float* out, bool acc, float* db, bool init) {
    const float* dy = dyOf(t, r0);
    if (hasBn(d)) {
      const size_t o = (size_t)d * W;
      return E->bn_back(dy, act(t, d, r0), n, W, mu.data() + o, scale.data() + o, c2.data() + o,
                        c4.data() + o, out, acc, db, init);
    }
    if (acc) {
      E->add(out, dy, (size_t)n * W);
    } else {
      std::memcpy(out, dy, (size_t)n * W * sizeof(float));
    }
    E->colsum(out, n, W, db, init);
  }

  // This thread's transposed kernel of dense layer d for the current step.
  const float* kernelT(Workspace& w, int d) {
    float* kt = w.KT.get() + (size_t)d * W * W;
    if (w.ktStep[d] != stepId) {
      const float* k = params + oDense[d];
      for (int i = 0; i < W; ++i)
        for (int j = 0; j < W; ++j) kt[(size_t)j * W + i] = k[(size_t)i * W + j];
      w.ktStep[d] = stepId;
    }
    return kt;
  }

  // Backward of dense layer d: its output gradient dz (from the head, or from BN_(d+1) and the
  // skip), the weight gradient, and DY = dL/d(BN_d output) (with BN: the tile's sums for
  // dL/dgamma, dL/dbeta in the unit's partial g).
  void backwardLayer(int t, int d, int r0, int n, float* g, bool init) {
    Workspace& w = *ws[t];
    // The next backward phase reads these rows of IN_(d-1), last touched in the forward pass (in
    // DRAM for deep models, and a tile is a page or two, too short for the hardware prefetcher):
    // fetch them now, while this tile computes. Threads mostly keep their tiles from phase to phase.
    if (bn && d > 0) prefetch(act(t, d - 1, r0), (size_t)n * W);
    float* gk = g + oDense[d];
    float* gb = gk + (size_t)W * W;
    float* dz;
    if (sum) {  // glonet-bn: BN_(d+1)'s input gradient (its output's gradient has dS in it)
      dz = w.G.get();
      inputGrad(t, d + 1, r0, n, dz, false, gb, init);
    } else if (d == D - 1) {
      dz = dxOf(t, r0);
      E->colsum(dz, n, W, gb, init);
    } else if (d % 2 == 1) {  // the block output X_(d/2+1): DX (the skip, if any) + BN_(d+1)
      dz = skip ? dxOf(t, r0) : w.G.get();
      inputGrad(t, d + 1, r0, n, dz, skip, gb, init);
    } else {
      dz = w.G.get();
      inputGrad(t, d + 1, r0, n, dz, false, gb, init);
    }
    normalize(w, d, act(t, d, r0), n, true, true);
    K->outer_acc(w.A.get(), W, n, W, dz, W, gk, init);
    float* dy = dyOf(t, r0);
    float* dbeta = hasBn(d) ? g + oBn[d] + W : w.scratch.get();
    if (init || !hasBn(d))
      for (int j = 0; j < W; ++j) dbeta[j] = 0.f;
    // glonet-bn: the relu(BN_d) output feeds the sum too (dS); dense 0 reads X_0 as it is (no relu).
    const bool linear = sum && d == 0;
    K->block_bwd(dz, kernelT(w, d), sum && d >= 1 ? dxOf(t, r0) : nullptr, linear ? nullptr : w.A.get(), dy,
                 linear ? nullptr : dbeta, n, W);
    if (hasBn(d)) E->dgamma(dy, w.H.get(), n, W, g + oBn[d], init);
  }

  void backwardStem(int t, int r0, int n, float* g, bool init) {
    Workspace& w = *ws[t];
    float* dz = skip ? dxOf(t, r0) : w.G.get();
    inputGrad(t, 0, r0, n, dz, skip, g + oStemB, init);
    K->outer_acc(x + (size_t)r0 * nIn, nIn, n, nIn, dz, W, g + oStemK, init);
  }

  // No BN: the whole training chain of one tile.
  double chainTile(int t, int r0, int n, float* g, bool init) {
    stem(n, x + (size_t)r0 * nIn, act(t, 0, r0));
    for (int d = 0; d < D; ++d) forwardLayer(t, d, r0, n);
    const double loss = head(t, r0, n, g, init);
    for (int d = D - 1; d >= 0; --d) backwardLayer(t, d, r0, n, g, init);
    backwardStem(t, r0, n, g, init);
    return loss;
  }

  // Inference on one tile (moving statistics): outputs to predOut, or the loss sum.
  double inferTile(int t, int r0, int n) {
    Workspace& w = *ws[t];
    float* X = w.scratch.get();
    float* Z = X + (size_t)RT * W;
    float* X2 = Z + (size_t)RT * W;
    stem(n, x + (size_t)r0 * nIn, X);
    if (sum) {  // glonet-bn: X2 holds the sum
      for (int d = 0; d < D; ++d) {
        denseFwd(w, d, X, Z, nullptr, n, false);
        if (d == 1) std::memcpy(X2, w.A.get(), (size_t)n * W * sizeof(float));
        if (d > 1) E->add(X2, w.A.get(), (size_t)n * W);
        std::swap(X, Z);
      }
      normalize(w, D, X, n, false);
      if (D == 1) {
        std::memcpy(X2, w.A.get(), (size_t)n * W * sizeof(float));
      } else {
        E->add(X2, w.A.get(), (size_t)n * W);
      }
      std::swap(X, X2);
    }
    for (int b = 0; b < (sum ? 0 : nb); ++b) {
      denseFwd(w, 2 * b, X, Z, nullptr, n, false);
      denseFwd(w, 2 * b + 1, Z, X2, skip ? X : nullptr, n, false);
      std::swap(X, X2);
    }
    float* out = predOut ? predOut + (size_t)r0 * nOut : w.out.get();
    K->dense(X, W, n, W, params + oHeadK, nOut, params + oHeadB, out);
    return predOut ? 0 : output_loss(lossKind, out, y, r0, n, nOut, rows, w.dOut.get());
  }

  // ----- phases -----

  void runPhase(PhaseKind k, uint32_t n, int layer = 0) {
    kind = k;
    cur = layer;
    pool.run(n, (n + 1) / 2, &BlockEngine::runUnit, this);
  }

  static void runUnit(void* self, int t, uint32_t idx, uint64_t) {
    static_cast<BlockEngine*>(self)->unit(t, idx);
  }

  void unit(int t, uint32_t u) {
    if (kind == kUpdate) return updateChunk(t, u);
    const uint32_t t0 = u * tilesPerUnit, t1 = std::min(nTiles, t0 + tilesPerUnit);
    float* g = kind == kInfer ? nullptr : part(u);
    double loss = 0;
    for (uint32_t k = t0; k < t1; ++k) {
      const int r0 = (int)k * RT, n = std::min(RT, rows - r0);
      const bool init = k == t0;
      switch (kind) {
        case kFwdStem:
          stem(n, x + (size_t)r0 * nIn, act(t, 0, r0));
          tileMoments(0, r0, n);
          break;
        case kFwd:
          forwardLayer(t, cur, r0, n);
          tileMoments(cur + 1, r0, n);
          if (cur == D - 1 && !sum) loss += head(t, r0, n, g, init);
          break;
        case kHeadSum: loss += headSum(t, r0, n, g, init); break;
        case kBwd: backwardLayer(t, cur, r0, n, g, init); break;
        case kBwdStem: backwardStem(t, r0, n, g, init); break;
        case kChain: loss += chainTile(t, r0, n, g, init); break;
        case kInfer: loss += inferTile(t, r0, n); break;
        case kUpdate: break;
      }
    }
    unitLoss[u] = loss;
  }

  // One chunk of the update: the units' partials summed in unit order, L2, Adam (or the
  // gradient written to gradOut).
  void updateChunk(int t, uint32_t idx) {
    const size_t lo = (size_t)idx * kChunk, hi = std::min(P, lo + kChunk);
    float* g = gsum_.get() + lo;
    if (!bn) {  // (with BN, gsum_ holds the sum already: foldLayer)
      g = ws[t]->fold.get();
      for (uint32_t u = 0; u < nUnits; ++u) K->fold(g, part(u) + lo, hi - lo, u == 0);
    }
    auto it = std::upper_bound(segs.begin(), segs.end(), lo,
                               [](size_t v, const Segment& s) { return v < s.off + s.len; });
    double sq = 0;
    for (; it != segs.end() && it->off < hi; ++it) {
      const size_t a = std::max(lo, it->off), b = std::min(hi, it->off + it->len);
      sq += K->adam(params + a, m + a, v + a, g + (a - lo), nullptr, b - a, it->kernel, ap,
                    gradOut ? gradOut + a : nullptr);
    }
    unitLoss[idx] = sq;
  }

  // ----- between phases (thread 0): batch statistics -----

  // BN_d's batch mean and variance from the tiles' moments (Chan's formula in float64, in tile
  // order); with `update`, the moving statistics move as TF.js moves them.
  void combineMoments(int d, bool update) {
    if (!hasBn(d)) return;
    const float* tm = tileMoments_.get();
    const size_t o = (size_t)d * W;
    const float* gamma = params + oBn[d];
    double* mean = combine_.data();
    double* m2 = mean + W;
    for (int j = 0; j < W; ++j) mean[j] = m2[j] = 0;
    for (uint32_t k = 0; k < nTiles; ++k) {
      const double n = std::min(RT, rows - (int)k * RT);
      for (int j = 0; j < W; ++j) mean[j] += n * tm[(size_t)k * 2 * W + j];
    }
    for (int j = 0; j < W; ++j) mean[j] /= rows;
    for (uint32_t k = 0; k < nTiles; ++k) {
      const double n = std::min(RT, rows - (int)k * RT);
      const float* t = tm + (size_t)k * 2 * W;
      for (int j = 0; j < W; ++j) {
        const double dm = t[j] - mean[j];
        m2[j] += t[W + j] + n * dm * dm;
      }
    }
    for (int j = 0; j < W; ++j) {
      const float mf = (float)mean[j], vf = (float)(m2[j] / rows);
      const float r = 1.f / std::sqrt(vf + eps);
      mu[o + j] = mf;
      rstd[o + j] = r;
      scale[o + j] = gamma[j] * r;
      if (update) {
        float* mm = movingOf(d);
        float* mv = mm + W;
        mm[j] = mm[j] - (mm[j] - mf) * decay;
        mv[j] = mv[j] - (mv[j] - vf) * decay;
      }
    }
  }

  // The batch gradient of parameters [off, off + len): the units' partials summed in unit order
  // into gsum_, while they are in cache (with BN, after the phase that wrote them).
  void foldLayer(size_t off, size_t len) {
    for (uint32_t u = 0; u < nUnits; ++u) K->fold(gsum_.get() + off, part(u) + off, len, u == 0);
  }

  // After the backward phase of dense layer d: its batch gradient, and BN_d's (its sums of dy,
  // for beta, and dy * xhat, for gamma) with BN_d's backward constants.
  void combineBackward(int d) {
    if (d < D) foldLayer(oDense[d], (size_t)W * W + W);
    if (!hasBn(d)) return;
    foldLayer(oBn[d], 2 * (size_t)W);
    const size_t o = (size_t)d * W;
    const float* sdyx = gsum_.get() + oBn[d];
    const float* sdy = sdyx + W;
    for (int j = 0; j < W; ++j) {
      c2[o + j] = sdy[j] / (float)rows;
      c4[o + j] = rstd[o + j] * (sdyx[j] / (float)rows);
    }
  }

  // ----- memory -----

  void planUnits(bool train) {
    nTiles = (uint32_t)((rows + RT - 1) / RT);
    tilesPerUnit = train ? (nTiles + maxUnits - 1) / maxUnits : 1;
    nUnits = (nTiles + tilesPerUnit - 1) / tilesPerUnit;
    if (unitLoss.size() < nUnits) unitLoss.resize(nUnits);
  }

  // Allocate first (std::bad_alloc reaches JS as an error), then commit.
  void ensureTrainingMemory() {
    if (nUnits > unitCap) {
      FloatBuf p = alloc_floats((size_t)nUnits * slotStride, false);
      parts_ = std::move(p);
      unitCap = nUnits;
    }
    if (!bn) return;
    if (rows > rowsCap) {
      FloatBuf a = alloc_floats((size_t)(D + 1) * rows * W, false);
      FloatBuf dx = alloc_floats((size_t)rows * W, false), dy = alloc_floats((size_t)rows * W, false);
      FloatBuf s = alloc_floats(sum ? (size_t)rows * W : 1, false);
      acts_ = std::move(a);
      dx_ = std::move(dx);
      dy_ = std::move(dy);
      sum_ = std::move(s);
      rowsCap = rows;
    }
    if (nTiles > tileCap) {
      tileMoments_ = alloc_floats((size_t)nTiles * 2 * W, false);
      tileCap = nTiles;
    }
  }

  // ----- entry points (thread 0 = the caller) -----

  // A training step (gradOut null) or the gradient alone (no update, moving statistics kept).
  // Returns the data loss plus the L2 penalty, before the update.
  double trainStep(const float* x_, const float* y_, int rows_, const AdamParams& ap_, float* gradOut_) {
    pool.tuneBefore();
    const auto t0 = std::chrono::steady_clock::now();
    x = x_;
    y = y_;
    rows = rows_;
    gradOut = gradOut_;
    ap = ap_;
    ++stepId;
    planUnits(true);
    ensureTrainingMemory();
    const bool update = gradOut == nullptr;
    if (bn) {
      runPhase(kFwdStem, nUnits);
      combineMoments(0, update);
      for (int d = 0; d < D; ++d) {
        runPhase(kFwd, nUnits, d);
        if (d == D - 1 && !sum) foldLayer(oHeadK, P - oHeadK);
        combineMoments(d + 1, update);
      }
      if (sum) {
        runPhase(kHeadSum, nUnits);
        foldLayer(oHeadK, P - oHeadK);
        combineBackward(D);
      }
    } else {
      runPhase(kChain, nUnits);
    }
    double loss = 0;
    for (uint32_t u = 0; u < nUnits; ++u) loss += unitLoss[u];
    if (bn) {
      for (int d = D - 1; d >= 0; --d) {
        runPhase(kBwd, nUnits, d);
        combineBackward(d);
      }
      runPhase(kBwdStem, nUnits);
      foldLayer(0, oStemB + W);
    }
    const uint32_t chunks = (uint32_t)((P + kChunk - 1) / kChunk);
    if (unitLoss.size() < chunks) unitLoss.resize(chunks);
    runPhase(kUpdate, chunks);
    double sq = 0;
    for (uint32_t i = 0; i < chunks; ++i) sq += unitLoss[i];
    pool.tuneAfter(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / rows);
    const double dataLoss = lossKind == kMse ? loss / ((double)rows * nOut) : loss / rows;
    return dataLoss + (double)ap.l2 * sq;
  }

  // Inference (moving statistics): the outputs into `out`, or (out null) the data loss.
  double inference(const float* x_, const float* y_, int rows_, float* out) {
    x = x_;
    y = y_;
    rows = rows_;
    predOut = out;
    for (int d = 0; d <= D; ++d) {
      if (!hasBn(d)) continue;
      const float* mv = movingOf(d) + W;
      for (int j = 0; j < W; ++j) infRstd[(size_t)d * W + j] = 1.f / std::sqrt(mv[j] + eps);
    }
    planUnits(false);
    runPhase(kInfer, nUnits);
    predOut = nullptr;
    double loss = 0;
    for (uint32_t u = 0; u < nUnits; ++u) loss += unitLoss[u];
    return lossKind == kMse ? loss / ((double)rows * nOut) : loss / rows;
  }

  // Data loss (no L2) at the current weights, in inference mode: forward only.
  double lossOnly(const float* x_, const float* y_, int rows_) { return inference(x_, y_, rows_, nullptr); }

  void predict(const float* x_, int rows_, float* out) { inference(x_, nullptr, rows_, out); }
};

// ---------------------------------------------------------------------------------------------
// Node-API glue

#define GLONET_MODULE "glonet_fused"
#include "../common/napi_util.h"
#include "mlp_napi.h"

// params, m, v and the moving statistics stay referenced while the engine lives
using BlockHandle = Handle<BlockEngine, 4>;

bool get_double_prop(napi_env env, napi_value obj, const char* name, double* out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return false;
  return napi_get_value_double(env, v, out) == napi_ok;
}

// blockCreate(params, m, v, moving, {nIn, width, blocks, nOut, loss, bn, skip, epsilon, decay,
//             threads, tileRows, simd, adaptive, sum}); with sum (glonet-bn), `blocks` one-layer blocks
napi_value BlockCreate(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 5) return throw_error(env, "blockCreate: expected (params, m, v, moving, config)");
  float *p, *m, *v, *mov;
  size_t np, nm, nv, nmov;
  if (!get_f32(env, argv[0], &p, &np) || !get_f32(env, argv[1], &m, &nm) ||
      !get_f32(env, argv[2], &v, &nv) || !get_f32(env, argv[3], &mov, &nmov))
    return throw_error(env, "blockCreate: params, m, v and moving must be Float32Arrays");
  const napi_value c = argv[4];
  int32_t nIn, width, blocks, nOut, loss, bn, skip, threads, tileRows, simd, adaptive = 0, sum = 0;
  double eps, decay;
  if (!get_int_prop(env, c, "nIn", &nIn) || !get_int_prop(env, c, "width", &width) ||
      !get_int_prop(env, c, "blocks", &blocks) || !get_int_prop(env, c, "nOut", &nOut) ||
      !get_int_prop(env, c, "loss", &loss) || !get_int_prop(env, c, "bn", &bn) ||
      !get_int_prop(env, c, "skip", &skip) || !get_double_prop(env, c, "epsilon", &eps) ||
      !get_double_prop(env, c, "decay", &decay) || !get_int_prop(env, c, "threads", &threads) ||
      !get_int_prop(env, c, "tileRows", &tileRows) || !get_int_prop(env, c, "simd", &simd))
    return throw_error(env, "blockCreate: bad config");
  get_int_prop(env, c, "adaptive", &adaptive);  // optional, as is sum
  get_int_prop(env, c, "sum", &sum);
  if (nIn < 1 || width < 1 || blocks < 1 || nOut < 1 || threads < 1 || threads > 64 || tileRows < 1 ||
      tileRows > kMaxTileRows || (loss != kMse && loss != kSoftmaxCe) || !(eps > 0) ||
      !(decay >= 0 && decay <= 1) || (sum && (!bn || skip)))
    return throw_error(env, "blockCreate: bad dimensions");
  // Dense layers and BNs: 2 per block (sum: 1 per block).
  const size_t W = width, layers = (size_t)blocks * (sum ? 1 : 2), perBn = bn ? 2 * W : 0;
  const size_t P = (size_t)nIn * W + W + layers * (W * W + W + perBn) + W * nOut + nOut;
  if (np != P || nm != P || nv != P) return throw_error(env, "blockCreate: params/m/v length mismatch");
  if (nmov != (bn ? layers * 2 * W : 0))
    return throw_error(env, "blockCreate: moving statistics length mismatch");
  BlockHandle* h = new BlockHandle();
  try {
    h->engine = new BlockEngine(nIn, width, blocks, nOut, loss, bn != 0, skip != 0, sum != 0, (float)eps,
                                (float)decay, threads, tileRows, simd != 0, adaptive != 0, p, m, v, mov);
  } catch (const std::exception& e) {
    delete h;
    return throw_error(env, std::string("blockCreate: ") + e.what());
  }
  return BlockHandle::wrap(env, h, argv);
}

}  // namespace

void glonet_define_block_mlp(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      method("blockCreate", BlockCreate),
      method("blockStep", mlp_step<BlockHandle>),
      method("blockGradients", mlp_gradients<BlockHandle>),
      method("blockPredict", mlp_predict<BlockHandle>),
      method("blockEvaluate", mlp_evaluate<BlockHandle>),
      method("blockDestroy", BlockHandle::destroy),
      method("blockFlushStates", flush_states<BlockHandle>),
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
