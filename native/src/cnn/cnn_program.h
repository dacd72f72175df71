// The fused CNN engine's network and programs (cnn_engine.cc): what the engine computes, apart
// from how it runs it.
//
//   Network          the tensors (activations: tensor 0 is the input batch), the convolutions,
//                    the batch normalizations, a GloNet's terms of its sum (branches), the
//                    forward micro-ops and the parameter layout (the TF.js model's weights,
//                    layer by layer), built once per architecture and norm-free options by
//                    NetworkBuilder
//   Program          micro-ops cut into segments: evalProgram (predictions: the forward pass,
//                    one segment) and trainProgram (forward, then backward last op first, cut
//                    where a batch normalization needs the whole batch), with the gradient buffers
//                    each tensor's gradient lives in, assigned by liveness
//
// Included by cnn_engine.cc inside its anonymous namespace, after cnn_onednn.h (Geometry).

enum class Arch : int { GloNet = 0, Vanilla = 1, VanillaNoBn = 2, ResNetV2 = 3, ResNetV2NoBn = 4, GloNetBn = 5 };

// glonet's norm-free options (src/layers/normfree.ts): Scaled-Weight-Standardized convs, a fixed
// center and a learnable scale on each block's pooled output.
struct NormFree {
  bool weightStd = false, center = false, scale = false;
};

// An activation: C channels of H x W pixels per image. Tensor 0 is the input batch.
struct Tensor {
  int C = 0, H = 0, W = 0;
  int hw() const { return H * W; }
  size_t perImage() const { return (size_t)C * H * W; }
};

struct Conv {
  int src = 0, dst = 0;
  int cin = 0, cout = 0, hin = 0, win = 0, hout = 0, wout = 0, k = 3, stride = 1;
  bool bias = false;  // a bias (glonet's convs)
  bool relu = false;  // a ReLU after it (post-op)
  bool sum = false;   // dst += conv(src) (post-op: the residual add onto the shortcut's output)
  size_t kOff = 0, kLen = 0, bOff = 0;
  // Scaled Weight Standardization: the gain's offset (cout values after the bias) and the fixed
  // gamma; the engine makes the standardized kernel the primitives read before every call.
  bool ws = false;
  size_t gOff = 0;
  float wsGamma = 1.f;
  Geometry geo;
};

// A GloNet block's term of the sum: (mean_hw(block output) - center) * scale. Offsets of the
// fixed center (C values) and the scale (1 value) in the parameters, or kNone.
constexpr size_t kNone = ~(size_t)0;
struct Branch {
  int C = 0;
  size_t centerOff = kNone, scaleOff = kNone;
};

// Weights at off: gamma, beta, moving mean, moving variance (C each, the TF.js order).
struct Bn {
  int C = 0;
  size_t off = 0;
  size_t statOff = 0;  // where its per-chunk statistics start in a chunk's statistics record
};

// Micro-ops. Forward: Conv, Stats (a chunk's partial batch statistics of `src`), BnRelu
// (dst = relu(BN(src))), Relu, Copy, Pool (S += mean_hw(src)), Head (logits; in training the
// loss, the head's gradients and dS). Backward: ConvBwd (the mask of its ReLU, with the pool's
// gradient when `pooled`; weight gradient; data gradient to src), PoolBwd, BnSums (dZ and the
// chunk's partial sums), BnDx, ReluBwd, CopyBwd. `acc`: add to the gradient of src (or, for
// ConvBwd, to the gradient of dst) rather than overwrite it.
enum class Op : uint8_t { Conv, Stats, BnRelu, Relu, Copy, Pool, Head, ConvBwd, PoolBwd, BnSums, BnDx, ReluBwd, CopyBwd };

struct MicroOp {
  Op op;
  int idx = -1;  // conv or batch-normalization index; for Pool and PoolBwd the GloNet branch (-1: a baseline's pool)
  int src = -1, dst = -1;
  bool acc = false, pooled = false;
  int branch = -1;  // ConvBwd with `pooled`: the GloNet branch of the fused pool
};

// What the calling thread does after a segment: combine the chunks' statistics of a batch
// normalization (forward), or its gradient sums (backward).
enum class Sync : uint8_t { None, Stats, Sums };

struct Segment {
  std::vector<MicroOp> ops;
  Sync sync = Sync::None;
  int bn = -1;
};

struct Program {
  std::vector<Segment> segs;
  std::vector<int> gradSlot;  // per tensor: its gradient buffer (-1: none)
  int gradBuffers = 0;
  bool persistent = false;  // several segments: chunks keep their activations between them
};

enum class ParamKind : uint8_t { Kernel, Plain, Frozen };  // L2 + update, update, neither

// `reduced`: the whole batch's gradient is already in chunk 0's slot (weight standardization's
// backward needs each kernel's summed gradient, so it sums the chunks first).
struct UpdateUnit {
  size_t off, len;
  ParamKind kind;
  bool reduced;
};


// Everything the architecture fixes.
struct Network {
  std::vector<Tensor> tensors;
  std::vector<Conv> conv;
  std::vector<Bn> bn;
  std::vector<MicroOp> fwd;      // the forward pass, in order
  std::vector<Branch> branches;  // glonet and glonet-bn: each block's term of the sum
  std::vector<UpdateUnit> params;  // the parameters' segments, in the TF.js weights' order
  size_t P = 0;                  // parameters in all
  size_t headK = 0, headB = 0;   // the head's kernel [64, classes] and bias
  size_t maxPerImage = 0;        // floats per image of the largest activation
  size_t statDoubles = 0;        // a chunk's batch-statistics record (3 doubles per BN channel)
};

// Builds the Network of an architecture: a stem conv, 3 stages of n blocks, the head.
class NetworkBuilder {
 public:
  NetworkBuilder(Arch arch, int H, int W, int C, int classes, int n, NormFree nf)
      : H_(H), W_(W), C_(C), classes_(classes), n_(n), arch_(arch), nf_(nf) {
    build();
  }

  Network net;

 private:
  const int H_, W_, C_, classes_, n_;
  const Arch arch_;
  const NormFree nf_;

  int addTensor(int C, int H, int W) {
    net.tensors.push_back(Tensor{C, H, W});
    return (int)net.tensors.size() - 1;
  }

  void addParams(size_t len, ParamKind kind, bool reduced = false) {
    net.params.push_back({net.P, len, kind, reduced});
    net.P += len;
  }

  // A conv's weights (kernel, then bias) at the current end of the parameters; its output is a
  // new tensor, or `dst` (a sum onto the shortcut's output).
  int addConv(int src, int cout, int k, int stride, bool bias, bool relu, bool sum = false, int dst = -1) {
    const Tensor in = net.tensors[src];
    Conv c;
    c.src = src;
    c.cin = in.C;
    c.cout = cout;
    c.hin = in.H;
    c.win = in.W;
    c.k = k;
    c.stride = stride;
    const int pad = (k - 1) / 2;
    c.hout = (in.H + 2 * pad - k) / stride + 1;
    c.wout = (in.W + 2 * pad - k) / stride + 1;
    c.bias = bias;
    c.relu = relu;
    c.sum = sum;
    c.kOff = net.P;
    c.kLen = (size_t)k * k * c.cin * cout;
    c.ws = nf_.weightStd;
    addParams(c.kLen, ParamKind::Kernel, c.ws);
    if (bias) {
      c.bOff = net.P;
      addParams((size_t)cout, ParamKind::Plain);
    }
    if (c.ws) {
      c.gOff = net.P;
      addParams((size_t)cout, ParamKind::Plain, true);
      // gamma: 1 when the input is linear (the image, the stem's output), else after a ReLU.
      const bool linearInput = src == 0 || (!net.conv.empty() && src == net.conv[0].dst);
      c.wsGamma = linearInput ? 1.f : (float)std::sqrt(2.0 / (1.0 - 1.0 / 3.14159265358979323846));
    }
    // oneDNN: pad `pad` before; after, whatever makes (hin + padL + padR - k) / stride + 1 = hout.
    const int64_t prH = std::max<int64_t>(0, (int64_t)(c.hout - 1) * stride + k - in.H - pad);
    const int64_t prW = std::max<int64_t>(0, (int64_t)(c.wout - 1) * stride + k - in.W - pad);
    c.geo = Geometry{{stride, stride}, {pad, pad}, {prH, prW}};
    if (dst < 0) {
      dst = addTensor(cout, c.hout, c.wout);
    } else {
      const Tensor& d = net.tensors[dst];
      if (d.C != cout || d.H != c.hout || d.W != c.wout) throw std::logic_error("conv output shape mismatch");
    }
    c.dst = dst;
    net.conv.push_back(c);
    return (int)net.conv.size() - 1;
  }

  int addBn(int C) {
    Bn b;
    b.C = C;
    b.off = net.P;
    b.statOff = net.statDoubles;
    net.statDoubles += 3 * (size_t)C;  // sum, sum of deviations, sum of squared deviations
    addParams(2 * (size_t)C, ParamKind::Plain);   // gamma, beta
    addParams(2 * (size_t)C, ParamKind::Frozen);  // moving mean, moving variance
    net.bn.push_back(b);
    return (int)net.bn.size() - 1;
  }

  void fwd(Op op, int idx, int src, int dst) { net.fwd.push_back(MicroOp{op, idx, src, dst}); }

  void addConvOp(int c) { fwd(Op::Conv, c, net.conv[c].src, net.conv[c].dst); }

  // The layers in the order of the TF.js model's weights (src/engines/cnn/fused-native-cnn.ts,
  // fusedCnnLayers).
  void build() {
    addTensor(C_, H_, W_);
    const int channels[3] = {16, 32, 64};
    if (arch_ == Arch::GloNet || arch_ == Arch::GloNetBn) {
      const bool bn = arch_ == Arch::GloNetBn;
      int t = net.conv[addConv(0, 16, 3, 1, false, false)].dst;
      addConvOp(0);
      for (int stage = 0; stage < 3; ++stage) {
        for (int i = 0; i < 2 * n_; ++i) {
          if (bn) {  // pre-activation: the block's input normalized, then the conv
            const Tensor x = net.tensors[t];
            const int b = addBn(x.C);
            const int a = addTensor(x.C, x.H, x.W);
            fwd(Op::BnRelu, b, t, a);
            t = a;
          }
          const int c = addConv(t, channels[stage], 3, stage > 0 && i == 0 ? 2 : 1, !bn, !bn);
          addConvOp(c);
          t = net.conv[c].dst;
          Branch br;
          br.C = channels[stage];
          if (nf_.center) {
            br.centerOff = net.P;
            addParams((size_t)br.C, ParamKind::Frozen);
          }
          if (nf_.scale) {
            br.scaleOff = net.P;
            addParams(1, ParamKind::Plain);
          }
          net.branches.push_back(br);
          fwd(Op::Pool, (int)net.branches.size() - 1, t, -1);
        }
      }
    } else {
      const bool bn = arch_ == Arch::Vanilla || arch_ == Arch::ResNetV2;
      const bool skip = arch_ == Arch::ResNetV2 || arch_ == Arch::ResNetV2NoBn;
      // vanilla-nobn: every conv is followed by a ReLU (the next block's first, or the final one).
      const bool chainRelu = arch_ == Arch::VanillaNoBn;
      int t = net.conv[addConv(0, 16, 3, 1, false, chainRelu)].dst;
      addConvOp(0);
      for (int stage = 0; stage < 3; ++stage) {
        for (int i = 0; i < n_; ++i) {
          const int stride = stage > 0 && i == 0 ? 2 : 1;
          const Tensor x = net.tensors[t];
          int a1 = t;
          if (bn) {
            const int b1 = addBn(x.C);
            a1 = addTensor(x.C, x.H, x.W);
            fwd(Op::BnRelu, b1, t, a1);
          } else if (skip) {
            a1 = addTensor(x.C, x.H, x.W);
            fwd(Op::Relu, -1, t, a1);
          }
          const int c1 = addConv(a1, channels[stage], 3, stride, false, !bn);
          addConvOp(c1);
          int a2 = net.conv[c1].dst;
          if (bn) {
            const int b2 = addBn(channels[stage]);
            const Tensor y1 = net.tensors[a2];
            const int z = addTensor(y1.C, y1.H, y1.W);
            fwd(Op::BnRelu, b2, a2, z);
            a2 = z;
          }
          const int c2 = addConv(a2, channels[stage], 3, 1, false, chainRelu, skip);
          if (skip) {
            const int out = net.conv[c2].dst;
            if (stride != 1 || x.C != channels[stage]) {
              addConvOp(addConv(t, channels[stage], 1, stride, false, false, false, out));
            } else {
              fwd(Op::Copy, -1, t, out);
            }
          }
          addConvOp(c2);
          t = net.conv[c2].dst;
        }
      }
      const Tensor x = net.tensors[t];
      if (bn) {
        const int fb = addBn(x.C);
        const int a = addTensor(x.C, x.H, x.W);
        fwd(Op::BnRelu, fb, t, a);
        t = a;
      } else if (skip) {
        const int a = addTensor(x.C, x.H, x.W);
        fwd(Op::Relu, -1, t, a);
        t = a;
      }
      fwd(Op::Pool, -1, t, -1);
    }
    net.headK = net.P;
    addParams((size_t)64 * classes_, ParamKind::Kernel);
    net.headB = net.P;
    addParams((size_t)classes_, ParamKind::Plain);
    for (size_t i = 1; i < net.tensors.size(); ++i) net.maxPerImage = std::max(net.maxPerImage, net.tensors[i].perImage());
    for (const Tensor& t : net.tensors) {
      if (&t != &net.tensors[0] && t.C != 16 && t.C != 32 && t.C != 64) throw std::logic_error("channels must be 16, 32 or 64");
    }
  }
};

// Predictions: the forward pass with the moving statistics, one segment.
inline Program evalProgram(const Network& net) {
Program eval;
eval.segs.emplace_back();
for (const MicroOp& f : net.fwd) eval.segs.back().ops.push_back(f);
eval.segs.back().ops.push_back(MicroOp{Op::Head});
eval.gradSlot.assign(net.tensors.size(), -1);
return eval;
}

// Gradient buffers by liveness: a tensor's gradient takes a free buffer at its first use and
// frees it after its last.
inline void assignGradientBuffers(const Network& net, Program& pr) {
  pr.gradSlot.assign(net.tensors.size(), -1);
  std::vector<const MicroOp*> ops;
  for (const Segment& s : pr.segs) {
    for (const MicroOp& o : s.ops) ops.push_back(&o);
  }
  auto uses = [](const MicroOp& o) {
    std::vector<int> u;
    switch (o.op) {
      case Op::ConvBwd:
        u.push_back(o.dst);
        if (o.src != 0) u.push_back(o.src);
        break;
      case Op::PoolBwd:
        u.push_back(o.src);
        break;
      case Op::BnSums:
        u.push_back(o.dst);
        break;
      case Op::BnDx:
      case Op::ReluBwd:
      case Op::CopyBwd:
        u.push_back(o.dst);
        u.push_back(o.src);
        break;
      default:
        break;
    }
    return u;
  };
  std::vector<size_t> last(net.tensors.size(), 0);
  for (size_t i = 0; i < ops.size(); ++i) {
    for (int t : uses(*ops[i])) last[t] = i;
  }
  std::vector<int> freeList;
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::vector<int> u = uses(*ops[i]);
    for (int t : u) {
      if (pr.gradSlot[t] >= 0) continue;
      if (freeList.empty()) {
        pr.gradSlot[t] = pr.gradBuffers++;
      } else {
        pr.gradSlot[t] = freeList.back();
        freeList.pop_back();
      }
    }
    for (int t : u) {
      if (last[t] == i && std::find(freeList.begin(), freeList.end(), pr.gradSlot[t]) == freeList.end()) {
        freeList.push_back(pr.gradSlot[t]);
      }
    }
  }
}

// Training: the forward micro-ops, then the backward ones, cut into segments where a batch
// normalization needs the whole batch (its statistics forward, its gradient sums backward).
inline Program trainProgram(const Network& net) {
  Program train;
  // A batch normalization first needs the batch's statistics of its input.
  std::vector<Segment>& segs = train.segs;
  segs.emplace_back();
  auto cut = [&](Sync s, int bn) {
    segs.back().sync = s;
    segs.back().bn = bn;
    segs.emplace_back();
  };
  for (const MicroOp& f : net.fwd) {
    if (f.op == Op::BnRelu) {
      segs.back().ops.push_back(MicroOp{Op::Stats, f.idx, f.src, -1});
      cut(Sync::Stats, f.idx);
    }
    segs.back().ops.push_back(f);
  }
  segs.back().ops.push_back(MicroOp{Op::Head});
  // Backward, last op first. A tensor's gradient is written by the first contribution and
  // added to by the others.
  std::vector<bool> written(net.tensors.size(), false);
  auto contribute = [&](int t) {
    const bool acc = written[t];
    written[t] = true;
    return acc;
  };
  auto need = [&](int t) {
    if (!written[t]) throw std::logic_error("a tensor's gradient is read before it is written");
  };
  for (auto it = net.fwd.rbegin(); it != net.fwd.rend(); ++it) {
    const MicroOp& f = *it;
    std::vector<MicroOp>& ops = segs.back().ops;
    switch (f.op) {
      case Op::Pool:
        ops.push_back(MicroOp{Op::PoolBwd, f.idx, f.src, -1, contribute(f.src)});
        break;
      case Op::Conv: {
        const Conv& c = net.conv[f.idx];
        MicroOp b{Op::ConvBwd, f.idx, c.src, c.dst};
        if (c.relu && !ops.empty() && ops.back().op == Op::PoolBwd && ops.back().src == c.dst) {
          b.pooled = true;  // fuse the pool's gradient with the ReLU's mask
          b.acc = ops.back().acc;
          b.branch = ops.back().idx;
          ops.pop_back();
        } else {
          need(c.dst);
          b.acc = true;
        }
        if (c.src != 0) {
          // oneDNN's backward-data writes its output: it must be the first contribution.
          if (written[c.src]) throw std::logic_error("a conv's data gradient would overwrite another");
          written[c.src] = true;
        }
        ops.push_back(b);
        break;
      }
      case Op::BnRelu:
        need(f.dst);
        ops.push_back(MicroOp{Op::BnSums, f.idx, f.src, f.dst});
        cut(Sync::Sums, f.idx);
        segs.back().ops.push_back(MicroOp{Op::BnDx, f.idx, f.src, f.dst, contribute(f.src)});
        break;
      case Op::Relu:
        need(f.dst);
        ops.push_back(MicroOp{Op::ReluBwd, -1, f.src, f.dst, contribute(f.src)});
        break;
      case Op::Copy:
        need(f.dst);
        ops.push_back(MicroOp{Op::CopyBwd, -1, f.src, f.dst, contribute(f.src)});
        break;
      default:
        throw std::logic_error("unexpected forward op");
    }
  }
  train.persistent = segs.size() > 1;
  assignGradientBuffers(net, train);
  return train;
}

