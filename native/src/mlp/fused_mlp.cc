// Fused training engine for the GloNet MLP (stem Dense -> n x relu(Dense) blocks -> sum of the
// block outputs -> head Dense), with MSE or softmax cross-entropy, L2 on kernels and Adam exactly
// as tf.train.adam in TF.js 4.22. One call runs a whole training step: forward, backward, gradient
// reduction across threads, L2 and the Adam update.
//
// Layout and semantics are those of src/engines/js-engine.ts (the portable twin of this file):
//   params = [scales (depth, with block scales only), stemK (nIn x W), stemB (W), {blockK (W x W),
//   blockB (W)} x depth, headK (W x nOut), headB (nOut)], kernels in TF.js Dense layout
//   (y = x K + b, K row-major [in, out]). With block scales (`--block-scale`) the sum is
//   S = sum_l a_l h_l; the scales lead the vector, in the stem's fold group (folded last, after
//   the backward pass has computed their gradients).
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
// The SIMD kernels (portable, AVX2+FMA and AVX-512F, picked at run time) are in mlp_kernels.h, the loss in
// mlp_loss.h, the threads in common/thread_pool.h; all three are shared with block_mlp.cc.

#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "block_mlp.h"
#include "../vit/vit_engine.h"
#include "mlp_kernels.h"
#include "mlp_loss.h"
#include "../common/thread_pool.h"

namespace {

// ---------------------------------------------------------------------------------------------
// The engine
//
// Threads (common/thread_pool.h). A phase (the tiles of a batch, or the parameter chunks of the Adam
// update) is a list of units the threads claim one at a time; a training phase has two such
// lists, the two halves of the batch: thread t claims from half t % 2 first, then from the
// other, so that with two threads consecutive units mostly run on the same thread (see
// Determinism).
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

enum PhaseKind { kTrain = 0, kPredict = 1, kUpdate = 2, kLoss = 3 };

struct Segment {
  size_t off, len;
  bool kernel;
};

struct alignas(64) Workspace {  // one per thread
  FloatBuf acts;  // (depth + 1) x tileRows x W: H_0 (stem output) .. H_depth
  FloatBuf S, dS, G, G2, out, dOut, xpad;
  FloatBuf dSl;   // block scales: a_l dS of the block being differentiated
  FloatBuf WT;    // depth x W x W: this thread's transposed block kernels for the current step
  int buf = -1;   // the gradient buffer (Engine::bufs_) of this thread's units, -1: none yet
  uint64_t wtPhase = 0;    // phase for which WT was transposed
};

struct Engine {
  int nIn, W, L, nOut, lossKind, T, RT;
  bool scaled;
  size_t P, oStemK, oStemB, oBlocks, blockStride, oHeadK, oHeadB;  // scales at 0 when `scaled`
  float *params, *m, *v;
  const Kernels* K;
  std::vector<Segment> segs;
  std::vector<std::unique_ptr<Workspace>> ws;

  // Current phase (written by thread 0 before it starts the phase).
  PhaseKind kind = kTrain;
  const float* x = nullptr;
  const float* y = nullptr;
  float* predOut = nullptr;
  float* gradOut = nullptr;
  int rows = 0;
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

  ThreadPool pool;  // last: its threads stop before anything they use goes

  std::vector<int> flushStates() { return pool.flushStates(); }

  Engine(int nIn_, int W_, int L_, int nOut_, int loss_, bool scaled_, int threads, int tileRows, bool simd,
         bool adaptive_, float* p, float* m_, float* v_)
      : nIn(nIn_), W(W_), L(L_), nOut(nOut_), lossKind(loss_), T(std::max(1, threads)), scaled(scaled_), params(p),
        m(m_), v(v_), pool(threads, adaptive_) {
    RT = std::max(4, (tileRows + 3) / 4 * 4);
    oStemK = scaled ? (size_t)L : 0;
    oStemB = oStemK + (size_t)nIn * W;
    oBlocks = oStemB + W;
    blockStride = (size_t)W * W + W;
    oHeadK = oBlocks + blockStride * L;
    oHeadB = oHeadK + (size_t)W * nOut;
    P = oHeadB + nOut;
    if (scaled) segs.push_back({0, (size_t)L, false});
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
      w->dSl = alloc_floats(scaled ? (size_t)RT * W : 1);
      w->WT = alloc_floats((size_t)L * W * W);
      ws.push_back(std::move(w));
    }
  }

  // ----- phases -----

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

  // Runs the current phase: n units, [0, mid) and [mid, n) claimed separately.
  void runPhase(uint32_t n, uint32_t mid) { pool.run(n, mid, &Engine::runUnit, this); }

  static void runUnit(void* self, int t, uint32_t idx, uint64_t phase) {
    static_cast<Engine*>(self)->unit(t, idx, phase);
  }

  void unit(int t, uint32_t idx, uint64_t phase) {
    if (kind == kUpdate) {
      updateChunk(idx);
      return;
    }
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
      // With scales the kernel's own sum goes to dSl (unused until the backward pass), then
      // S += a_l h_l (the first term writes S).
      K->block_fwd(acts + act * l, acts + act * (l + 1), scaled ? w.dSl.get() : S, blk, blk + (size_t)W * W, Rp, W,
                   scaled || l == 0);
      if (scaled) {
        const float a = params[l];
        const float* h = acts + act * (l + 1);
        const size_t n = (size_t)Rp * W;
        if (l == 0) {
          for (size_t i = 0; i < n; ++i) S[i] = h[i] * a;
        } else {
          for (size_t i = 0; i < n; ++i) S[i] += h[i] * a;
        }
      }
    }
    float* out = w.out.get();
    K->dense(S, W, Rp, W, params + oHeadK, nOut, params + oHeadB, out);
    if (kind == kPredict) {
      std::memcpy(predOut + (size_t)r0 * nOut, out, (size_t)n * nOut * sizeof(float));
      return 0;
    }

    // Loss and its gradient with respect to the head output (zero for pad rows).
    float* dOut = w.dOut.get();
    const double loss = output_loss(lossKind, out, y, r0, n, nOut, rows, dOut);
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
    head_input_grad(dOut, Rp, nOut, params + oHeadK, W, dS);
    float* G = w.G.get();
    float* G2 = w.G2.get();
    // With scales, block l's share of dS is a_l dS (into dSl), and the gradient of a_l the sum
    // of dS h_l over the tile (added to the unit's partial at l).
    if (scaled) zeroIfInit(g, L);
    auto share = [&](int l) -> const float* {
      if (!scaled) return dS;
      const float a = params[l];
      const float* h = acts + act * (l + 1);
      float* d = w.dSl.get();
      double s = 0;
      for (size_t i = 0; i < (size_t)Rp * W; ++i) {
        d[i] = dS[i] * a;
        s += (double)dS[i] * h[i];
      }
      g[l] += (float)s;
      return d;
    };
    // dZ of the last block; each block_bwd then yields the next block's dZ (the stem's input
    // gradient for the first block, which has no relu).
    zeroIfInit(g + oBlocks + blockStride * (L - 1) + (size_t)W * W, W);
    K->relu_bwd(share(L - 1), acts + act * L, G, g + oBlocks + blockStride * (L - 1) + (size_t)W * W, Rp, W);
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
        K->block_bwd(G, wt, share(l - 1), acts + act * l, G2, gk - blockStride + (size_t)W * W, Rp, W);
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
    pool.tuneBefore();
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = trainStepOnce(x_, y_, rows_, ap_, gradOut_);
    pool.tuneAfter(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
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
#include "../common/napi_util.h"
#include "mlp_napi.h"

using EngineHandle = Handle<Engine, 3>;  // params, m and v stay referenced while the engine lives


// create(params, m, v, {nIn, width, depth, nOut, loss, threads, tileRows, simd, adaptive, scales})
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
  int32_t nIn, width, depth, nOut, loss, threads, tileRows, simd, adaptive = 0, scales = 0;
  if (!get_int_prop(env, argv[3], "nIn", &nIn) || !get_int_prop(env, argv[3], "width", &width) ||
      !get_int_prop(env, argv[3], "depth", &depth) || !get_int_prop(env, argv[3], "nOut", &nOut) ||
      !get_int_prop(env, argv[3], "loss", &loss) ||
      !get_int_prop(env, argv[3], "threads", &threads) ||
      !get_int_prop(env, argv[3], "tileRows", &tileRows) ||
      !get_int_prop(env, argv[3], "simd", &simd))
    return throw_error(env, "create: bad config");
  get_int_prop(env, argv[3], "adaptive", &adaptive);  // optional, as is scales
  get_int_prop(env, argv[3], "scales", &scales);
  if (nIn < 1 || width < 1 || depth < 1 || nOut < 1 || threads < 1 || threads > 64 ||
      tileRows < 1 || tileRows > kMaxTileRows || (loss != kMse && loss != kSoftmaxCe))
    return throw_error(env, "create: bad dimensions");
  const size_t P = (scales ? (size_t)depth : 0) + (size_t)nIn * width + width + ((size_t)width * width + width) * depth +
                   (size_t)width * nOut + nOut;
  if (np != P || nm != P || nv != P) return throw_error(env, "create: params/m/v length mismatch");
  EngineHandle* h = new EngineHandle();
  try {
    h->engine = new Engine(nIn, width, depth, nOut, loss, scales != 0, threads, tileRows, simd != 0,
                           adaptive != 0, p, m, v);
  } catch (const std::exception& e) {
    delete h;
    return throw_error(env, std::string("create: ") + e.what());
  }
  return EngineHandle::wrap(env, h, argv);
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, simd, hw, flush;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, pick_kernels(true).name, NAPI_AUTO_LENGTH, &simd));
  CHECK(napi_create_uint32(env, std::max(1u, std::thread::hardware_concurrency()), &hw));
  CHECK(napi_set_named_property(env, obj, "simd", simd));
  CHECK(napi_get_boolean(env, glonet_fp::kFlushSupported, &flush));
  CHECK(napi_set_named_property(env, obj, "flushSubnormals", flush));
  CHECK(napi_set_named_property(env, obj, "hardwareThreads", hw));
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      method("create", Create),
      method("step", mlp_step<EngineHandle>),
      method("gradients", mlp_gradients<EngineHandle>),
      method("predict", mlp_predict<EngineHandle>),
      method("evaluate", mlp_evaluate<EngineHandle>),
      method("destroy", EngineHandle::destroy),
      method("flushStates", flush_states<EngineHandle>),
      method("info", Info),
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  glonet_define_block_mlp(env, exports);
  glonet_define_vit(env, exports);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
#else
}  // namespace
#endif  // GLONET_KERNELS_ONLY
