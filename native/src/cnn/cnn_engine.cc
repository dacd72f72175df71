// Fused training engine for the ResNet20 family (src/models/resnet20.ts; docs/architecture.md,
// "Canonical architectures"), all six archs: one call runs a whole training step (forward, backward,
// batch-normalization statistics, L2, and momentum SGD or Adam exactly as TF.js 4.22's).
//
//   glonet         stem conv3x3 (no bias, linear); 6n blocks conv3x3 + bias + ReLU (16/32/64
//                  channels, stride 2 entering stages 2 and 3); S = sum_k pad64(mean_hw(block k))
//                  With the norm-free options (src/layers/normfree.ts): every conv's kernel
//                  Scaled-Weight-Standardized (K^ = gamma * gain_c * (K - mean_c) / sqrt(N var_c +
//                  1e-4) per output channel, gamma 1 for the stem and block 1, sqrt(2/(1-1/pi))
//                  after a ReLU; the gain is a trainable array after the conv's bias); each block's
//                  term (mean_hw(block k) - center_k) * scale_k, with a fixed center vector and a
//                  trainable scalar scale (either may be absent: center 0, scale 1).
//   glonet-bn      stem; 6n pre-activation blocks conv3x3(relu(BN(x))) (no conv bias, no skip), the
//                  conv outputs pooled and summed as glonet's
//   vanilla        stem; 3n blocks h = conv(relu(BN(conv(relu(BN(x)))))); final BN + ReLU; pool
//   vanilla-nobn   the same without BN (every conv is then followed by a ReLU)
//   resnetv2       pre-activation blocks x = shortcut(x) + h (shortcut: identity, or a 1x1 conv
//                  with stride 2 where the stage changes); final BN + ReLU; pool
//   resnetv2-nobn  the same without BN
//   head           logits = S Wh + bh; loss = mean softmax cross-entropy + l2 * sum(kernel^2)
//
// Baseline convs have no bias; stride-2 3x3 convs pad one pixel on every side (PyTorch's
// padding=1; TF.js's zeroPadding2d + 'valid'). Batch normalization in training is TF.js's
// BatchNormalization layer: batch mean and biased variance, y = (x - mean) * gamma /
// sqrt(var + eps) + beta, moving statistics m = m - (m - batch) * (1 - momentum) in float32;
// predictions use the moving statistics.
//
// Convolutions (forward with fused bias, ReLU or residual sum; backward data; backward weights
// with the bias gradient) are oneDNN primitives (./cnn_onednn.h): its JIT kernels pick the
// CPU's ISA at run time. Everything else (batch normalization, ReLUs, pooling, the head, the
// update) is plain C++ (./cnn_kernels.h), vectorized for AVX-512, AVX2 and SSE2 and picked at
// run time. Activations are NHWC (the layout of TF.js; the input batch is read in place), or on
// AVX-512 CPUs oneDNN's nChw16c (16-channel blocks; for 16 channels the same bytes as NHWC).
// Kernels stay in the TF.js layout [kh, kw, in, out] (oneDNN's hwio) and are reordered into each
// primitive's preferred layout once per call.
//
// Forward convolutions are always direct: ReLU masks then come from exact zeros, as in TF.js.
// With algorithm 0 (the default) the backward passes of the stride-1 3x3 convs of 32 and 64
// channels use oneDNN's Winograd F(4x4, 3x3) kernels where it has them (AVX-512): faster there,
// linear in the gradient (no masks), rounding ~1e-6 relative. The 16-channel ones stay direct
// (faster, see tryWino).
//
// Parallelism is over the batch, not inside a convolution: the batch is cut into chunks of
// `chunk` rows (16 by default), and a thread runs a chunk through a stretch of the network with
// single-threaded primitives (../common/thread_pool.h). The network is compiled into a program of
// micro-ops cut into segments at the points where the whole batch must meet: a batch
// normalization needs the batch's statistics before it can normalize (forward) and the batch's
// sums of the gradient before it can pass a gradient on (backward). Between segments the calling
// thread combines the chunks' partial sums in chunk order. Without batch normalization (glonet,
// the -nobn archs, and every prediction) the program is one segment: a chunk runs the whole
// forward and backward pass without waiting for anyone. Each chunk writes its weight gradient to
// a slot of its own, and the update sums the slots in chunk order. Hence results do not depend on
// the thread count: 1 or 8 threads give bit-identical weights.
//
// oneDNN built with the OpenMP runtime (Debian's libdnnl) is told to use one thread on every
// thread that creates or runs primitives, so no OpenMP team is ever started.

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

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#include "../common/float_mode.h"
#include "../common/thread_pool.h"

namespace {

#include "cnn_onednn.h"
#include "cnn_program.h"
#include "cnn_kernels.h"

// ---------------------------------------------------------------------------------------------
// Buffers

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
  void reserve(size_t n) {
    if (n > floats) {
      p = alloc_floats(n);
      floats = n;
    }
  }
  void reserveBytes(size_t bytes) { reserve((bytes + sizeof(float) - 1) / sizeof(float)); }
  float* get() const { return p.get(); }
};

// ---------------------------------------------------------------------------------------------
// The network

// The batch normalization's coefficients for the current pass (batch statistics in training,
// moving statistics in predictions): y = (x - mean) * k + beta, k = gamma * rstd; backward:
// dx = k * dZ + c1 * (x - mean) + c0.
struct BnCoef {
  std::vector<float> mean, k, rstd, c1, c0;
};

// oneDNN memory descriptors and primitives of one conv at one chunk size.
struct ConvPrims {
  dn::memory::desc src, dst;    // forward
  dn::memory::desc bsrc, bdst;  // backward (same bytes, maybe described in another layout)
  dn::memory::desc bias, plainW, fwdW, bdW, diffW;
  dn::convolution_forward fwd;
  dn::convolution_backward_data bwdData;  // not when src is the input
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
  std::string kernel;  // oneDNN's implementations of the block convolutions (for info)
};

struct alignas(64) Workspace {
  dn::stream stream;
  std::vector<FloatBuf> acts;   // per tensor, one chunk (one-segment programs)
  std::vector<FloatBuf> grads;  // gradient buffers, one chunk of the largest tensor
  FloatBuf sum;                 // update: kUnit floats
  Buffer scratch, diffTmp;
};

// Per step, from JavaScript (float32 values, as TF.js's scalars are).
struct StepParams {
  float l2;
  bool adam;
  float momentum, negLr;                        // SGD
  float b1, omb1, b2, omb2, omab1, omab2, eps;  // Adam: beta1, 1 - beta1, ..., 1 - beta^t, epsilon
};

class Engine {
 public:
  // algorithm: 0 = Winograd backward passes where oneDNN implements them (AVX-512), direct
  // elsewhere; 1 = direct only. bnDecay = 1 - momentum of the BatchNormalization layers. nf:
  // glonet's norm-free options.
  Engine(Arch arch, int H, int W, int C, int classes, int n, int threads, int chunk, int algorithm,
         double bnEps, float bnDecay, NormFree nf)
      : H_(H), W_(W), C_(C), classes_(classes), n_(n), CH_(std::max(1, chunk)), arch_(arch),
        bnEps_(bnEps), bnDecay_(bnDecay), nf_(nf), net_(NetworkBuilder(arch, H, W, C, classes, n, nf).net),
        eval_(evalProgram(net_)), train_(trainProgram(net_)), eng_(dn::engine::kind::cpu, 0), pool_(threads, false, single_threaded_onednn) {
    OneThreadScope one;
    blocked_ = isa_is_avx512();
    winograd_ = blocked_ && algorithm == 0;
    for (const Bn& b : net_.bn) {
      BnCoef coef;
      for (auto* v : {&coef.mean, &coef.k, &coef.rstd, &coef.c1, &coef.c0}) v->assign(b.C, 0.f);
      coef_.push_back(coef);
    }
    for (const auto& s : net_.params) {
      for (size_t o = 0; o < s.len; o += kUnit) units_.push_back({s.off + o, std::min(kUnit, s.len - o), s.kind, s.reduced});
    }
    wsKernel_.resize(net_.conv.size());
    wsMean_.resize(net_.conv.size());
    wsR_.resize(net_.conv.size());
    for (size_t l = 0; l < net_.conv.size(); ++l) {
      if (!net_.conv[l].ws) continue;
      wsConvs_.push_back((int)l);
      wsKernel_[l] = alloc_floats(net_.conv[l].kLen);
      wsMean_[l].assign(net_.conv[l].cout, 0.0);
      wsR_[l].assign(net_.conv[l].cout, 0.0);
    }
    for (int t = 0; t < pool_.threads(); ++t) {
      auto w = std::make_unique<Workspace>();
      w->stream = dn::stream(eng_);
      w->acts.resize(net_.tensors.size());
      for (size_t i = 1; i < net_.tensors.size(); ++i) w->acts[i] = alloc_floats(net_.tensors[i].perImage() * CH_);
      if (!train_.persistent) {
        for (int g = 0; g < train_.gradBuffers; ++g) w->grads.push_back(alloc_floats(net_.maxPerImage * CH_));
      }
      w->sum = alloc_floats(kUnit);
      ws_.push_back(std::move(w));
    }
    setFor(CH_);  // build the primitives of a full chunk now: errors surface at creation
  }

  void bind(float* params, float* slotA, float* slotB) {
    params_ = params;
    slotA_ = slotA;
    slotB_ = slotB;
  }

  size_t paramCount() const { return net_.P; }
  size_t inSize() const { return (size_t)H_ * W_ * C_; }
  int threads() const { return pool_.threads(); }
  std::vector<int> flushStates() { return pool_.flushStates(); }
  int classes() const { return classes_; }
  const std::string& kernelInfo() { return setFor(CH_).kernel; }

  // One training step (gradOut null; the moving statistics are updated too) or the gradient
  // only (gradOut = P floats; nothing changes). Returns the data loss plus the L2 penalty at the
  // weights before the update.
  double train(const float* x, const float* y, int rows, const StepParams& sp, float* gradOut) {
    OneThreadScope one;
    checkLabels(y, rows);
    prog_ = &train_;
    const uint32_t chunks = (uint32_t)((rows + CH_ - 1) / CH_);
    prepare(rows, chunks);
    while (slots_.size() < chunks) slots_.push_back(alloc_floats(net_.P));
    x_ = x;
    y_ = y;
    rows_ = rows;
    nChunks_ = chunks;
    updateStats_ = gradOut == nullptr;
    chunkLoss_.assign(chunks, 0.0);
    runProgram();
    if (!wsConvs_.empty()) pool_.runEach((uint32_t)wsConvs_.size(), wsBackwardFn_);
    sp_ = sp;
    gradOut_ = gradOut;
    unitSq_.assign(units_.size(), 0.0);
    pool_.runEach((uint32_t)units_.size(), updateFn_);
    gradOut_ = nullptr;
    double data = 0, sq = 0;
    for (double l : chunkLoss_) data += l;
    for (double s : unitSq_) sq += s;
    return data / rows + (double)sp.l2 * sq;
  }

  void predict(const float* x, int rows, float* out) {
    OneThreadScope one;
    prog_ = &eval_;
    const uint32_t chunks = (uint32_t)((rows + CH_ - 1) / CH_);
    prepare(rows, chunks);
    movingCoefficients();
    x_ = x;
    y_ = nullptr;
    rows_ = rows;
    nChunks_ = chunks;
    predOut_ = out;
    runProgram();
    predOut_ = nullptr;
  }

 private:
  static constexpr size_t kUnit = 16384;

  // ----- helpers -----

  // Channels per block of the activation layout (see ./cnn_kernels.h).
  int blockOf(int C) const { return blocked_ ? 16 : C; }

  void checkLabels(const float* y, int rows) const {
    for (int r = 0; r < rows; ++r) {
      const float c = y[r];
      if (!(c >= 0.f && c < (float)classes_ && c == std::floor(c))) {
        throw std::runtime_error("label at row " + std::to_string(r) + " is not a class index");
      }
    }
  }

  float* act(int id, int t, int r0) const {
    if (id == 0) return const_cast<float*>(x_) + (size_t)r0 * inSize();
    if (prog_->persistent) return full_[id].get() + (size_t)r0 * net_.tensors[id].perImage();
    return ws_[t]->acts[id].get();
  }

  float* grad(int id, int t, int r0) const {
    const int s = prog_->gradSlot[id];
    if (prog_->persistent) return gradFull_[s].get() + (size_t)r0 * net_.maxPerImage;
    return ws_[t]->grads[s].get();
  }

  dn::memory mem(const dn::memory::desc& d, const void* p) const {
    return dn::memory(d, eng_, const_cast<void*>(p));
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
    for (size_t l = 0; l < net_.conv.size(); ++l) {
      const Conv& c = net_.conv[l];
      const bool fromInput = c.src == 0;
      ConvPrims p;
      // Backward layouts: the stem reads the NHWC input and writes 16 channels, which are NHWC
      // and nChw16c alike; the other convs use `act`. The forward of a 16 -> 16 conv reads and
      // writes the same bytes described as NHWC, where oneDNN has a faster forward kernel.
      const tag act = fromInput || !blocked_ ? tag::nhwc : tag::nChw16c;
      const tag fwdAct = c.cin == 16 && c.cout == 16 ? tag::nhwc : act;
      p.bsrc = dn::memory::desc({N, c.cin, c.hin, c.win}, dt::f32, fromInput ? tag::nhwc : act);
      p.bdst = dn::memory::desc({N, c.cout, c.hout, c.wout}, dt::f32, act);
      p.src = dn::memory::desc({N, c.cin, c.hin, c.win}, dt::f32, fromInput ? tag::nhwc : fwdAct);
      p.dst = dn::memory::desc({N, c.cout, c.hout, c.wout}, dt::f32, fwdAct);
      p.bias = dn::memory::desc({c.cout}, dt::f32, tag::x);
      p.plainW = dn::memory::desc({c.cout, c.cin, c.k, c.k}, dt::f32, tag::hwio);
      const dn::memory::desc anyW({c.cout, c.cin, c.k, c.k}, dt::f32, tag::any);
      const dn::memory::desc* bias = c.bias ? &p.bias : nullptr;
      auto fpd = fwd_pd(eng_, dn::algorithm::convolution_direct, p.src, anyW, bias, p.dst, c.geo, c.relu, c.sum);
      // Winograd only from 32 input channels: with 16 (the first stage, the largest images)
      // its transforms outweigh the saved multiplications, and oneDNN's direct backward kernels
      // were ~1.4x faster there on an AVX-512 EPYC (ONEDNN_VERBOSE times, batch 128 in chunks
      // of 16), while Winograd stayed faster at 32 and 64 channels.
      const bool tryWino = winograd_ && !fromInput && c.stride == 1 && c.k == 3 && c.cin >= 32;
      dn::convolution_backward_data::primitive_desc bpd;
      dn::convolution_backward_weights::primitive_desc wpd;
      for (int attempt = tryWino ? 0 : 1; attempt < 2; ++attempt) {
        const auto al = attempt == 0 ? dn::algorithm::convolution_winograd : dn::algorithm::convolution_direct;
        try {
          const bool sameAsFwd = attempt == 1 && !c.sum && p.bsrc == p.src && p.bdst == p.dst;
          const auto hint = sameAsFwd ? fpd : fwd_pd(eng_, al, p.bsrc, anyW, bias, p.bdst, c.geo, c.relu);
          if (!fromInput) bpd = bwd_data_pd(eng_, al, p.bsrc, anyW, p.bdst, c.geo, hint);
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
      if (!fromInput && c.k == 3) {
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
      if (!fromInput) {
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

  // Before a call (helpers idle): the primitive sets of this batch's chunk sizes, buffers, and
  // the kernels reordered into the primitives' layouts.
  void prepare(int rows, uint32_t chunks) {
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
    if (prog_->persistent && rows > fullRows_) {
      full_.clear();
      full_.resize(net_.tensors.size());
      for (size_t i = 1; i < net_.tensors.size(); ++i) full_[i] = alloc_floats(net_.tensors[i].perImage() * rows);
      gradFull_.clear();
      for (int g = 0; g < prog_->gradBuffers; ++g) gradFull_.push_back(alloc_floats(net_.maxPerImage * rows));
      fullRows_ = rows;
    }
    S_.reserve((size_t)64 * rows);
    dS_.reserve((size_t)64 * rows);
    logits_.reserve((size_t)classes_ * rows);
    std::memset(S_.get(), 0, sizeof(float) * 64 * rows);
    if (stats_.size() < chunks) stats_.resize(chunks);
    for (uint32_t c = 0; c < chunks; ++c) {
      stats_[c].sums.resize(net_.statDoubles);
      stats_[c].center.resize(net_.statDoubles / 3);
    }
    if (!net_.branches.empty() && (nf_.center || nf_.scale)) {
      pooled_.reserve(net_.branches.size() * 64 * (size_t)rows);
      std::memset(pooled_.get(), 0, sizeof(float) * net_.branches.size() * 64 * rows);
    }
    for (int l : wsConvs_) standardize(l);
    Workspace& w0 = *ws_[0];
    std::vector<PrimSet*> distinct{setFull_};
    if (setRest_ != setFull_) distinct.push_back(setRest_);
    for (PrimSet* s : distinct) {
      for (size_t l = 0; l < net_.conv.size(); ++l) {
        ConvPrims& p = s->conv[l];
        const float* k = kernelOf((int)l);
        if (!p.fwdPlain) {
          p.toFwdW.execute(w0.stream, {{DNNL_ARG_FROM, mem(p.plainW, k)},
                                       {DNNL_ARG_TO, mem(p.fwdW, p.fwdWBuf.get())},
                                       {DNNL_ARG_SCRATCHPAD, mem(p.toFwdScratch, w0.scratch.get())}});
        }
        if (net_.conv[l].src != 0 && !p.bdPlain) {
          p.toBdW.execute(w0.stream, {{DNNL_ARG_FROM, mem(p.plainW, k)},
                                      {DNNL_ARG_TO, mem(p.bdW, p.bdWBuf.get())},
                                      {DNNL_ARG_SCRATCHPAD, mem(p.toBdScratch, w0.scratch.get())}});
        }
      }
    }
    w0.stream.wait();
  }

  // ----- Scaled Weight Standardization -----

  // The kernel the primitives read: the raw one, or its standardized copy.
  const float* kernelOf(int l) const { return net_.conv[l].ws ? wsKernel_[l].get() : params_ + net_.conv[l].kOff; }

  // K^[i][c] = gamma * gain[c] * (K[i][c] - mean_c) * r_c, r_c = 1 / sqrt(sum_i (K[i][c] - mean_c)^2 + eps)
  // over the fan-in i (kernels are [kh, kw, in, out]: element i of channel c at i * cout + c). The
  // mean and r are kept for the backward pass.
  void standardize(int l) {
    const Conv& c = net_.conv[l];
    const size_t N = c.kLen / c.cout;
    const float* K = params_ + c.kOff;
    const float* gain = params_ + c.gOff;
    float* out = wsKernel_[l].get();
    for (int ch = 0; ch < c.cout; ++ch) {
      double sum = 0;
      for (size_t i = 0; i < N; ++i) sum += K[i * c.cout + ch];
      const double mean = sum / (double)N;
      double sq = 0;
      for (size_t i = 0; i < N; ++i) {
        const double u = K[i * c.cout + ch] - mean;
        sq += u * u;
      }
      const double r = 1.0 / std::sqrt(sq + kWsEpsilon);
      wsMean_[l][ch] = mean;
      wsR_[l][ch] = r;
      const double scale = (double)c.wsGamma * gain[ch] * r;
      for (size_t i = 0; i < N; ++i) out[i * c.cout + ch] = (float)((K[i * c.cout + ch] - mean) * scale);
    }
  }

  // The gradient of a standardized kernel, summed over the chunks into chunk 0's slot, becomes the
  // raw kernel's and the gain's there (u = K - mean; dK^ the kernel's gradient from the convs):
  //   dgain_c = gamma r_c sum_i dK^_i u_i
  //   dK_i    = gamma gain_c r_c (dK^_i - mean_i dK^ - r_c^2 u_i sum_j dK^_j u_j)
  void wsBackward(uint32_t w) {
    const int l = wsConvs_[w];
    const Conv& c = net_.conv[l];
    float* g = slots_[0].get() + c.kOff;
    for (uint32_t k = 1; k < nChunks_; ++k) {
      const float* s = slots_[k].get() + c.kOff;
      for (size_t i = 0; i < c.kLen; ++i) g[i] += s[i];
    }
    const size_t N = c.kLen / c.cout;
    const float* K = params_ + c.kOff;
    const float* gain = params_ + c.gOff;
    float* dgain = slots_[0].get() + c.gOff;
    for (int ch = 0; ch < c.cout; ++ch) {
      const double mean = wsMean_[l][ch], r = wsR_[l][ch];
      double dot = 0, sum = 0;
      for (size_t i = 0; i < N; ++i) {
        const double d = g[i * c.cout + ch];
        dot += d * (K[i * c.cout + ch] - mean);
        sum += d;
      }
      dgain[ch] = (float)(c.wsGamma * r * dot);
      const double a = (double)c.wsGamma * gain[ch] * r, dmean = sum / (double)N, r2dot = r * r * dot;
      for (size_t i = 0; i < N; ++i) {
        const size_t j = i * c.cout + ch;
        g[j] = (float)(a * (g[j] - dmean - r2dot * (K[j] - mean)));
      }
    }
  }

  // ----- the GloNet branches: (pooled - center) * scale -----

  float branchScale(int b) const { return b >= 0 && nf_.scale ? params_[net_.branches[b].scaleOff] : 1.f; }
  float* pooledOf(int b, int r0) const { return pooled_.get() + ((size_t)b * rows_ + r0) * 64; }

  // S += (mean_hw(A) - center) * scale over the chunk's m images (centers or scales on).
  void branchForward(int b, const float* A, const Tensor& T, int r0, int m) {
    const Branch& br = net_.branches[b];
    float* P = pooledOf(b, r0);
    ew::blocked<ew::PoolAdd>(blockOf(T.C), A, m, T.hw(), T.C, 1.f / (float)T.hw(), P);
    const float a = branchScale(b);
    const float* ctr = nf_.center ? params_ + br.centerOff : nullptr;
    float* S = S_.get() + (size_t)r0 * 64;
    for (int i = 0; i < m; ++i) {
      for (int ch = 0; ch < br.C; ++ch) S[(size_t)i * 64 + ch] += (P[(size_t)i * 64 + ch] - (ctr ? ctr[ch] : 0.f)) * a;
    }
  }

  // The chunk's gradient of a branch's scale: sum over its images of dS . (pooled - center).
  void branchScaleGrad(int b, uint32_t idx, int r0, int m) {
    if (!nf_.scale || b < 0) return;
    const Branch& br = net_.branches[b];
    const float* P = pooledOf(b, r0);
    const float* dS = dS_.get() + (size_t)r0 * 64;
    const float* ctr = nf_.center ? params_ + br.centerOff : nullptr;
    double sum = 0;
    for (int i = 0; i < m; ++i) {
      for (int ch = 0; ch < br.C; ++ch) sum += (double)dS[(size_t)i * 64 + ch] * (P[(size_t)i * 64 + ch] - (ctr ? ctr[ch] : 0.f));
    }
    slots_[idx][br.scaleOff] = (float)sum;
  }

  void runProgram() {
    for (const Segment& seg : prog_->segs) {
      seg_ = &seg;
      pool_.runEach(nChunks_, chunkFn_);
      if (seg.sync == Sync::Stats) combineStats(seg.bn);
      if (seg.sync == Sync::Sums) combineSums(seg.bn);
    }
    seg_ = nullptr;
  }

  // ----- batch normalization between segments (the calling thread) -----

  // The batch's mean and biased variance from the chunks' sums around their own centers (exact
  // for any centers), then the coefficients and, in a training step, the moving statistics.
  void combineStats(int bi) {
    const Bn& b = net_.bn[bi];
    BnCoef& cf = coef_[bi];
    const int C = b.C;
    const Tensor& T = net_.tensors[statTensor(bi)];
    const double N = (double)rows_ * T.hw();
    const float* gamma = params_ + b.off;
    float* movingMean = params_ + b.off + 2 * C;
    float* movingVar = params_ + b.off + 3 * C;
    for (int ch = 0; ch < C; ++ch) {
      double total = 0;
      for (uint32_t c = 0; c < nChunks_; ++c) {
        const int m = std::min(CH_, rows_ - (int)c * CH_);
        const double n = (double)m * T.hw();
        total += n * stats_[c].center[b.statOff / 3 + ch] + stats_[c].sums[b.statOff + C + ch];
      }
      const double mu = total / N;
      double m2 = 0;
      for (uint32_t c = 0; c < nChunks_; ++c) {
        const int m = std::min(CH_, rows_ - (int)c * CH_);
        const double n = (double)m * T.hw();
        const double d = (double)stats_[c].center[b.statOff / 3 + ch] - mu;
        m2 += stats_[c].sums[b.statOff + 2 * C + ch] + 2 * d * stats_[c].sums[b.statOff + C + ch] + n * d * d;
      }
      // As TF.js: float32 mean and variance, normalized in double: (x - mean) * gamma / sqrt(var + eps).
      const float mean = (float)mu;
      const float var = (float)std::max(0.0, m2 / N);
      const double rstd = 1.0 / std::sqrt((double)var + bnEps_);
      cf.mean[ch] = mean;
      cf.rstd[ch] = (float)rstd;
      cf.k[ch] = (float)((double)gamma[ch] * rstd);
      if (updateStats_) {
        movingMean[ch] = movingMean[ch] - (movingMean[ch] - mean) * bnDecay_;
        movingVar[ch] = movingVar[ch] - (movingVar[ch] - var) * bnDecay_;
      }
    }
  }

  // The batch's sums of dZ and dZ * xhat (the chunks' gradients of beta and gamma, added in
  // chunk order as the update adds them) give the backward coefficients.
  void combineSums(int bi) {
    const Bn& b = net_.bn[bi];
    BnCoef& cf = coef_[bi];
    const int C = b.C;
    const double N = (double)rows_ * net_.tensors[statTensor(bi)].hw();
    for (int ch = 0; ch < C; ++ch) {
      float dgamma = slots_[0][b.off + ch], dbeta = slots_[0][b.off + C + ch];
      for (uint32_t c = 1; c < nChunks_; ++c) {
        dgamma += slots_[c][b.off + ch];
        dbeta += slots_[c][b.off + C + ch];
      }
      const double a = cf.k[ch];
      cf.c1[ch] = (float)(-a * cf.rstd[ch] * (dgamma / N));
      cf.c0[ch] = (float)(-a * (dbeta / N));
    }
  }

  // Predictions: the moving statistics.
  void movingCoefficients() {
    for (size_t bi = 0; bi < net_.bn.size(); ++bi) {
      const Bn& b = net_.bn[bi];
      BnCoef& cf = coef_[bi];
      for (int ch = 0; ch < b.C; ++ch) {
        const double rstd = 1.0 / std::sqrt((double)params_[b.off + 3 * b.C + ch] + bnEps_);
        cf.mean[ch] = params_[b.off + 2 * b.C + ch];
        cf.rstd[ch] = (float)rstd;
        cf.k[ch] = (float)((double)params_[b.off + ch] * rstd);
      }
    }
  }

  // The tensor a batch normalization normalizes.
  int statTensor(int bi) const {
    for (const MicroOp& f : net_.fwd) {
      if (f.op == Op::BnRelu && f.idx == bi) return f.src;
    }
    throw std::logic_error("batch normalization without input");
  }

  // ----- one chunk through one segment -----

  void chunk(int t, uint32_t idx) {
    Workspace& w = *ws_[t];
    const int r0 = (int)idx * CH_;
    const int m = std::min(CH_, rows_ - r0);
    PrimSet& ps = m == setFull_->mb ? *setFull_ : *setRest_;
    for (const MicroOp& op : seg_->ops) {
      switch (op.op) {
        case Op::Conv: convForward(op, ps.conv[op.idx], w, t, r0); break;
        case Op::Stats: chunkStats(op, idx, t, r0, m); break;
        case Op::BnRelu: {
          const Bn& b = net_.bn[op.idx];
          const Tensor& T = net_.tensors[op.src];
          const BnCoef& cf = coef_[op.idx];
          ew::blocked<ew::BnRelu>(blockOf(T.C), (const float*)act(op.src, t, r0), act(op.dst, t, r0), m, T.hw(), T.C,
                                  (const float*)cf.mean.data(), (const float*)cf.k.data(), (const float*)(params_ + b.off + b.C));
          break;
        }
        case Op::Relu:
          ew::flat<ew::Relu>((const float*)act(op.src, t, r0), act(op.dst, t, r0), net_.tensors[op.src].perImage() * m);
          break;
        case Op::Copy:
          std::memcpy(act(op.dst, t, r0), act(op.src, t, r0), sizeof(float) * net_.tensors[op.src].perImage() * m);
          break;
        case Op::Pool: {
          const Tensor& T = net_.tensors[op.src];
          if (op.idx >= 0 && (nf_.center || nf_.scale)) {
            branchForward(op.idx, (const float*)act(op.src, t, r0), T, r0, m);
          } else {
            ew::blocked<ew::PoolAdd>(blockOf(T.C), (const float*)act(op.src, t, r0), m, T.hw(), T.C, 1.f / (float)T.hw(),
                                     S_.get() + (size_t)r0 * 64);
          }
          break;
        }
        case Op::Head: head(idx, r0, m); break;
        case Op::ConvBwd: convBackward(op, ps.conv[op.idx], w, t, idx, r0, m); break;
        case Op::PoolBwd: {
          const Tensor& T = net_.tensors[op.src];
          ew::blocked<ew::PoolBwd>(blockOf(T.C), grad(op.src, t, r0), (const float*)(dS_.get() + (size_t)r0 * 64), op.acc, m,
                                   T.hw(), T.C, branchScale(op.idx) / (float)T.hw());
          branchScaleGrad(op.idx, idx, r0, m);
          break;
        }
        case Op::BnSums: bnSums(op, idx, t, r0, m); break;
        case Op::BnDx: {
          const Tensor& T = net_.tensors[op.src];
          const BnCoef& cf = coef_[op.idx];
          ew::blocked<ew::BnBwdDx>(blockOf(T.C), (const float*)grad(op.dst, t, r0), (const float*)act(op.src, t, r0),
                                   grad(op.src, t, r0), op.acc, m, T.hw(), T.C, (const float*)cf.k.data(),
                                   (const float*)cf.c1.data(), (const float*)cf.mean.data(), (const float*)cf.c0.data());
          break;
        }
        case Op::ReluBwd:
          ew::flat<ew::ReluBwd>((const float*)grad(op.dst, t, r0), (const float*)act(op.dst, t, r0), grad(op.src, t, r0),
                                op.acc, net_.tensors[op.src].perImage() * m);
          break;
        case Op::CopyBwd: {
          const size_t n = net_.tensors[op.src].perImage() * m;
          if (op.acc) {
            ew::flat<ew::Add>((const float*)grad(op.dst, t, r0), grad(op.src, t, r0), n);
          } else {
            std::memcpy(grad(op.src, t, r0), grad(op.dst, t, r0), sizeof(float) * n);
          }
          break;
        }
      }
    }
  }

  void convForward(const MicroOp& op, ConvPrims& p, Workspace& w, int t, int r0) {
    const Conv& c = net_.conv[op.idx];
    const void* k = p.fwdPlain ? (const void*)kernelOf(op.idx) : (const void*)p.fwdWBuf.get();
    std::unordered_map<int, dn::memory> args{{DNNL_ARG_SRC, mem(p.src, act(c.src, t, r0))},
                                             {DNNL_ARG_WEIGHTS, mem(p.fwdW, k)},
                                             {DNNL_ARG_DST, mem(p.dst, act(c.dst, t, r0))},
                                             {DNNL_ARG_SCRATCHPAD, mem(p.fwdScratch, w.scratch.get())}};
    if (c.bias) args.insert({DNNL_ARG_BIAS, mem(p.bias, params_ + c.bOff)});
    p.fwd.execute(w.stream, args);
    w.stream.wait();
  }

  void convBackward(const MicroOp& op, ConvPrims& p, Workspace& w, int t, uint32_t idx, int r0, int m) {
    const Conv& c = net_.conv[op.idx];
    float* gdst = grad(c.dst, t, r0);
    if (c.relu) {
      const Tensor& T = net_.tensors[c.dst];
      ew::blocked<ew::MaskPoolBwd>(blockOf(T.C), gdst, (const float*)act(c.dst, t, r0),
                                   op.pooled ? (const float*)(dS_.get() + (size_t)r0 * 64) : (const float*)nullptr,
                                   op.acc, m, T.hw(), T.C, branchScale(op.branch) / (float)T.hw());
      if (op.pooled) branchScaleGrad(op.branch, idx, r0, m);
    }
    float* gslot = slots_[idx].get();
    void* dW = p.diffPlain ? (void*)(gslot + c.kOff) : (void*)w.diffTmp.get();
    std::unordered_map<int, dn::memory> args{{DNNL_ARG_SRC, mem(p.bsrc, act(c.src, t, r0))},
                                             {DNNL_ARG_DIFF_DST, mem(p.bdst, gdst)},
                                             {DNNL_ARG_DIFF_WEIGHTS, mem(p.diffW, dW)},
                                             {DNNL_ARG_SCRATCHPAD, mem(p.bwScratch, w.scratch.get())}};
    if (c.bias) args.insert({DNNL_ARG_DIFF_BIAS, mem(p.bias, gslot + c.bOff)});
    p.bwdWeights.execute(w.stream, args);
    if (!p.diffPlain) {
      p.fromDiffW.execute(w.stream, {{DNNL_ARG_FROM, mem(p.diffW, dW)},
                                     {DNNL_ARG_TO, mem(p.plainW, gslot + c.kOff)},
                                     {DNNL_ARG_SCRATCHPAD, mem(p.fromDiffScratch, w.scratch.get())}});
    }
    if (c.src != 0) {
      const void* k = p.bdPlain ? (const void*)kernelOf(op.idx) : (const void*)p.bdWBuf.get();
      p.bwdData.execute(w.stream, {{DNNL_ARG_DIFF_DST, mem(p.bdst, gdst)},
                                   {DNNL_ARG_WEIGHTS, mem(p.bdW, k)},
                                   {DNNL_ARG_DIFF_SRC, mem(p.bsrc, grad(c.src, t, r0))},
                                   {DNNL_ARG_SCRATCHPAD, mem(p.bdScratch, w.scratch.get())}});
    }
    w.stream.wait();
  }

  // A chunk's statistics of a batch normalization's input: its sum, then the sums of deviations
  // and squared deviations around its own (float) mean.
  void chunkStats(const MicroOp& op, uint32_t idx, int t, int r0, int m) {
    const Bn& b = net_.bn[op.idx];
    const Tensor& T = net_.tensors[op.src];
    const int C = b.C;
    double* sum = stats_[idx].sums.data() + b.statOff;
    float* center = stats_[idx].center.data() + b.statOff / 3;
    std::fill(sum, sum + 3 * C, 0.0);
    const float* x = act(op.src, t, r0);
    ew::blocked<ew::ChannelSum>(blockOf(C), x, m, T.hw(), C, sum);
    const double n = (double)m * T.hw();
    for (int ch = 0; ch < C; ++ch) center[ch] = (float)(sum[ch] / n);
    ew::blocked<ew::ChannelDeviation>(blockOf(C), x, m, T.hw(), C, (const float*)center, sum + C, sum + 2 * C);
  }

  // dZ at the normalization's output (in place) and the chunk's sums: its gradients of beta
  // (sum dZ) and gamma (sum dZ * xhat), in its gradient slot.
  void bnSums(const MicroOp& op, uint32_t idx, int t, int r0, int m) {
    const Bn& b = net_.bn[op.idx];
    const Tensor& T = net_.tensors[op.src];
    const BnCoef& cf = coef_[op.idx];
    double sdz[64] = {}, sdzx[64] = {};
    ew::blocked<ew::BnBwdSums>(blockOf(b.C), grad(op.dst, t, r0), (const float*)act(op.dst, t, r0),
                               (const float*)act(op.src, t, r0), m, T.hw(), T.C, (const float*)cf.mean.data(),
                               (const float*)cf.rstd.data(), sdz, sdzx);
    float* g = slots_[idx].get();
    for (int ch = 0; ch < b.C; ++ch) {
      g[b.off + ch] = (float)sdzx[ch];
      g[b.off + b.C + ch] = (float)sdz[ch];
    }
  }

  // The head on the chunk's S; in training, the loss, dlogits, the head's gradients and dS.
  void head(uint32_t idx, int r0, int m) {
    const float* Wh = params_ + net_.headK;
    const float* bh = params_ + net_.headB;
    const float* S = S_.get() + (size_t)r0 * 64;
    float* logits = logits_.get() + (size_t)r0 * classes_;
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
    float* dWh = grad + net_.headK;
    float* dbh = grad + net_.headB;
    std::memset(dWh, 0, sizeof(float) * 64 * classes_);
    std::memset(dbh, 0, sizeof(float) * classes_);
    float* dS = dS_.get() + (size_t)r0 * 64;
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
  }

  // ----- update: sum the chunk gradients in chunk order, L2, then momentum SGD or Adam -----

  void update(int t, uint32_t u) {
    const UpdateUnit& U = units_[u];
    if (U.kind == ParamKind::Frozen) {
      if (gradOut_) std::memset(gradOut_ + U.off, 0, sizeof(float) * U.len);
      return;
    }
    float* g = ws_[t]->sum.get();
    std::memcpy(g, slots_[0].get() + U.off, sizeof(float) * U.len);
    for (uint32_t c = 1; c < (U.reduced ? 1u : nChunks_); ++c) {
      const float* s = slots_[c].get() + U.off;
      for (size_t i = 0; i < U.len; ++i) g[i] += s[i];
    }
    float* w = params_ + U.off;
    const float l2 = sp_.l2;
    double sq = 0;
    if (U.kind == ParamKind::Kernel) {
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
    float* a = slotA_ + U.off;
    if (!sp_.adam) {
      // tf.train.momentum: acc = momentum * acc + g; w = (-lr) * acc + w
      const float mom = sp_.momentum, negLr = sp_.negLr;
      for (size_t i = 0; i < U.len; ++i) {
        const float acc = mom * a[i] + g[i];
        a[i] = acc;
        w[i] = negLr * acc + w[i];
      }
      return;
    }
    // tf.train.adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    // w = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) * (-lr) + w
    float* v = slotB_ + U.off;
    const StepParams& p = sp_;
    for (size_t i = 0; i < U.len; ++i) {
      const float mNew = a[i] * p.b1 + g[i] * p.omb1;
      const float vNew = v[i] * p.b2 + (g[i] * g[i]) * p.omb2;
      const float mh = mNew / p.omab1;
      const float vh = vNew / p.omab2;
      a[i] = mNew;
      v[i] = vNew;
      w[i] = (mh / (std::sqrt(vh) + p.eps)) * p.negLr + w[i];
    }
  }

  struct ChunkStats {
    std::vector<double> sums;   // per batch normalization: sum, sum of deviations, of squares
    std::vector<float> center;  // per batch normalization: the chunk's mean, as float
  };

  static constexpr double kWsEpsilon = 1e-4;

  const int H_, W_, C_, classes_, n_, CH_;
  const Arch arch_;
  const double bnEps_;
  const float bnDecay_;
  const NormFree nf_;
  bool blocked_ = false, winograd_ = false;
  const Network net_;
  std::vector<int> wsConvs_;                       // the standardized convs
  std::vector<FloatBuf> wsKernel_;                 // per conv: its standardized kernel (ws convs only)
  std::vector<std::vector<double>> wsMean_, wsR_;  // per conv and output channel: mean and r of the raw kernel
  Buffer pooled_;                                  // per branch: rows x 64 pooled outputs (centers or scales on)
  const Program eval_, train_;
  std::vector<BnCoef> coef_;
  std::vector<UpdateUnit> units_;  // the update's work: the parameters in pieces of kUnit
  float* params_ = nullptr;
  float* slotA_ = nullptr;  // SGD accumulators, or Adam's first moments
  float* slotB_ = nullptr;  // Adam's second moments
  dn::engine eng_;
  std::map<int, std::unique_ptr<PrimSet>> sets_;
  std::vector<std::unique_ptr<Workspace>> ws_;
  std::vector<FloatBuf> slots_;  // per chunk: its gradient (P floats)
  std::vector<FloatBuf> full_, gradFull_;  // whole-batch activations and gradients (several segments)
  int fullRows_ = 0;
  Buffer S_, dS_, logits_;
  std::vector<ChunkStats> stats_;
  ThreadPool pool_;

  // The current call (written by the calling thread before a phase starts).
  const Program* prog_ = nullptr;
  const Segment* seg_ = nullptr;
  PrimSet* setFull_ = nullptr;
  PrimSet* setRest_ = nullptr;
  const float* x_ = nullptr;
  const float* y_ = nullptr;
  int rows_ = 0;
  float* predOut_ = nullptr;
  float* gradOut_ = nullptr;
  uint32_t nChunks_ = 0;
  bool updateStats_ = false;
  StepParams sp_{};
  std::vector<double> chunkLoss_, unitSq_;
  const std::function<void(int, uint32_t)> chunkFn_ = [this](int t, uint32_t i) { chunk(t, i); };
  const std::function<void(int, uint32_t)> updateFn_ = [this](int t, uint32_t u) { update(t, u); };
  const std::function<void(int, uint32_t)> wsBackwardFn_ = [this](int, uint32_t w) { wsBackward(w); };
};

// ---------------------------------------------------------------------------------------------
// Node-API glue

#define GLONET_MODULE "glonet_cnn"
#include "../common/napi_util.h"

// params and both optimizer slots stay referenced while the engine lives
using EngineHandle = Handle<Engine, 3>;

Engine* get_engine(napi_env env, napi_value v) { return EngineHandle::engine_of(env, v); }

// create(params, slotA, slotB, config, bn: Float64Array [epsilon, 1 - momentum])
// config: {arch, height, width, channels, classes, blocksPerStage, threads, chunk, algorithm, weightStd, blockScale, center}
napi_value Create(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 5) return throw_error(env, "create: expected (params, slotA, slotB, config, bn)");
  float *p, *a, *b;
  size_t np, na, nb;
  if (!get_f32(env, argv[0], &p, &np) || !get_f32(env, argv[1], &a, &na) || !get_f32(env, argv[2], &b, &nb))
    return throw_error(env, "create: params and optimizer slots must be Float32Arrays");
  int32_t arch, h, w, c, classes, n, threads, chunk, algorithm = 0, weightStd = 0, blockScale = 0, center = 0;
  if (!get_int_prop(env, argv[3], "arch", &arch) || !get_int_prop(env, argv[3], "height", &h) ||
      !get_int_prop(env, argv[3], "width", &w) || !get_int_prop(env, argv[3], "channels", &c) ||
      !get_int_prop(env, argv[3], "classes", &classes) || !get_int_prop(env, argv[3], "blocksPerStage", &n) ||
      !get_int_prop(env, argv[3], "threads", &threads) || !get_int_prop(env, argv[3], "chunk", &chunk))
    return throw_error(env, "create: bad config");
  get_int_prop(env, argv[3], "algorithm", &algorithm);  // optional, as the norm-free flags (glonet only)
  get_int_prop(env, argv[3], "weightStd", &weightStd);
  get_int_prop(env, argv[3], "blockScale", &blockScale);
  get_int_prop(env, argv[3], "center", &center);
  void* bnv = nullptr;
  size_t nbn = 0;
  if (!get_typed(env, argv[4], napi_float64_array, &bnv, &nbn) || nbn < 2)
    return throw_error(env, "create: bn must be a Float64Array [epsilon, 1 - momentum]");
  const double* bn = static_cast<const double*>(bnv);
  if (arch < 0 || arch > 5 || ((weightStd || blockScale || center) && arch != 0) || h < 1 || w < 1 || c < 1 || classes < 2 || n < 1 || threads < 1 || threads > 64 ||
      chunk < 1 || chunk > 4096 || (int64_t)h * w * c > (1 << 24) || !(bn[0] > 0) || !(bn[1] >= 0 && bn[1] <= 1))
    return throw_error(env, "create: bad dimensions");
  Engine* e;
  try {
    NormFree nf;
    nf.weightStd = weightStd != 0;
    nf.center = center != 0;
    nf.scale = blockScale != 0;
    e = new Engine(static_cast<Arch>(arch), h, w, c, classes, n, threads, chunk, algorithm, bn[0], (float)bn[1], nf);
  } catch (const std::exception& ex) {
    return throw_error(env, std::string("create: ") + ex.what());
  }
  if (np != e->paramCount() || na != e->paramCount() || nb != e->paramCount()) {
    const size_t P = e->paramCount();
    delete e;
    return throw_error(env, "create: params/slots length mismatch (expected " + std::to_string(P) + ")");
  }
  e->bind(p, a, b);
  EngineHandle* hd = new EngineHandle();
  hd->engine = e;
  return EngineHandle::wrap(env, hd, argv);
}

// step(handle, x, y, rows, hp) / gradients(handle, x, y, rows, hp, gradOut), with
// hp: Float64Array [l2, adam (0/1), momentum, -lr, beta1, 1 - beta1, beta2, 1 - beta2,
//                   1 - beta1^t, 1 - beta2^t, epsilon]
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
  if (!get_typed(env, argv[4], napi_float64_array, &hpv, &nhp) || nhp < 11)
    return throw_error(env, "step: hyper-parameters must be a Float64Array of 11 values");
  const double* hp = static_cast<const double*>(hpv);
  float* gradOut = nullptr;
  if (grad) {
    size_t ng;
    if (!get_f32(env, argv[5], &gradOut, &ng) || ng != e->paramCount())
      return throw_error(env, "gradients: out must be a Float32Array of the parameter count");
  }
  const StepParams sp{(float)hp[0], hp[1] != 0, (float)hp[2], (float)hp[3], (float)hp[4], (float)hp[5],
                      (float)hp[6], (float)hp[7], (float)hp[8], (float)hp[9], (float)hp[10]};
  double loss;
  try {
    glonet_fp::FlushScope flush;
    loss = e->train(x, y, rows, sp, gradOut);
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
    glonet_fp::FlushScope flush;
    e->predict(x, rows, out);
  } catch (const std::exception& ex) {
    return throw_error(env, ex.what());
  }
  return nullptr;
}

// kernel(handle) -> oneDNN's implementations of the block convolutions, e.g. "fwd brgconv:avx512_core, ..."
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
  napi_value obj, isa, ver, rt, hw, flush;
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
  CHECK(napi_get_boolean(env, glonet_fp::kFlushSupported, &flush));
  CHECK(napi_set_named_property(env, obj, "flushSubnormals", flush));
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      method("create", Create),   method("step", Step),     method("gradients", Gradients),
      method("predict", Predict), method("kernel", Kernel), method("destroy", EngineHandle::destroy),
      method("flushStates", flush_states<EngineHandle>), method("info", Info),
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
