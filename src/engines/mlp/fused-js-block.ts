/**
 * Portable twin of the native two-layer-block MLP engine (native/src/mlp/block_mlp.cc): the paper's
 * baselines vanilla, vanilla-nobn, resnetv2 and resnetv2-nobn, and glonet-bn (`sum`: one-layer
 * blocks relu(BN(x K + b)) read by the head through their sum) (src/models/mlp.ts), trained with
 * Adam, batch normalization as TF.js's BatchNormalization layer does it. The same algorithm in
 * plain Float32Array loops on one thread, used when the addon is not built; it goes layer by layer
 * over the whole batch (the native engine's order with BN) and agrees with the native engine up
 * to float rounding.
 *
 * Parameters live in one flat Float32Array (see {@link blockLayout}), Adam moments in two more of
 * the same length, the BN moving statistics in a fourth.
 */
import type { StepScalars } from '../adam-clock.js';
import type { FusedCore, FusedLoss } from './core.js';
import { adamUpdate, checkLabels, headBackward, headForward, kernelsFor, outputLoss } from './js-kernels.js';

export interface BlockMlpShape {
  nIn: number;
  width: number;
  /** Two-layer blocks (the model's depth / 2). */
  blocks: number;
  nOut: number;
  loss: FusedLoss;
  /** Batch normalization before each dense layer of a block (vanilla, resnetv2). */
  bn: boolean;
  /** Residual blocks (resnetv2, resnetv2-nobn). */
  skip: boolean;
  /**
   * glonet-bn: `blocks` one-layer blocks A_k = relu(BN_k(A_(k-1) K_k + b_k)) (A_0 the stem's
   * output) and the head on their sum. As dense layers: D = blocks, dense 0 reads IN_0 as it is,
   * dense d >= 1 reads relu(BN_d(IN_d)), and BN_D normalizes the last output for the sum only.
   */
  sum?: boolean;
  /** BN epsilon. */
  epsilon: number;
  /** 1 - BN momentum: moving -= (moving - batch) * decay. */
  decay: number;
}

/** Offsets in the flat parameter vector (TF.js getWeights order of the layers, see below). */
export interface BlockLayout {
  /** Trainable parameter count. */
  size: number;
  /** Moving statistics count: per BN, mean (width) then variance (width). */
  movingSize: number;
  stemK: number;
  stemB: number;
  headK: number;
  headB: number;
  /** Per dense layer d = 0 .. 2 blocks - 1: its kernel (its bias follows the kernel). */
  dense: number[];
  /** Per BN d (the BN before dense layer d; with `sum`, d = 1 .. D): its gamma (beta follows); -1 where none. */
  bn: number[];
  /** [offset, length, isKernel] of every trainable array, in order. */
  segments: Array<[number, number, boolean]>;
  /**
   * The model's layers in order (stem, per block [bn1], dense1, [bn2], dense2, head): each one's
   * trainable arrays as [offset, length] in the parameter vector and, for a BN, its moving mean
   * and variance as [offset, length] in the moving statistics.
   */
  layers: Array<{ params: Array<[number, number]>; moving: Array<[number, number]> }>;
}

/** The number of dense layers after the stem. */
export function denseLayers(s: Pick<BlockMlpShape, 'blocks' | 'sum'>): number {
  return s.sum ? s.blocks : 2 * s.blocks;
}

/** Whether BN_d exists: before each dense layer with BN; with `sum`, for d = 1 .. D. */
export function hasBn(s: Pick<BlockMlpShape, 'blocks' | 'bn' | 'sum'>, d: number): boolean {
  return s.bn && (s.sum ? d >= 1 && d <= s.blocks : d < 2 * s.blocks);
}

export function blockLayout(s: Pick<BlockMlpShape, 'nIn' | 'width' | 'blocks' | 'nOut' | 'bn' | 'sum'>): BlockLayout {
  const W = s.width;
  let o = 0;
  let mo = 0;
  const segments: Array<[number, number, boolean]> = [];
  const layers: BlockLayout['layers'] = [];
  const take = (n: number, kernel: boolean): number => {
    segments.push([o, n, kernel]);
    o += n;
    return o - n;
  };
  const denseLayer = (fanIn: number, units: number): number => {
    const k = take(fanIn * units, true);
    const b = take(units, false);
    layers.push({ params: [[k, fanIn * units], [b, units]], moving: [] });
    return k;
  };
  const stemK = denseLayer(s.nIn, W);
  const dense: number[] = [];
  const bn: number[] = [];
  const D = denseLayers(s);
  for (let d = 0; d <= D; d++) {
    bn.push(-1);
    if (hasBn(s, d)) {
      const g = take(W, false);
      take(W, false);
      layers.push({ params: [[g, W], [g + W, W]], moving: [[mo, W], [mo + W, W]] });
      mo += 2 * W;
      bn[d] = g;
    }
    if (d < D) dense.push(denseLayer(W, W));
  }
  const headK = denseLayer(W, s.nOut);
  return { size: o, movingSize: mo, stemK, stemB: stemK + s.nIn * W, headK, headB: headK + W * s.nOut, dense, bn, segments, layers };
}

/** Whole-batch arrays of one pass (training: IN_0 .. IN_D; inference: three rolling ones). */
class Buffers {
  cap = 0;
  acts = new Float32Array(0);
  A = new Float32Array(0);
  G = new Float32Array(0);
  DX = new Float32Array(0);
  DY = new Float32Array(0);
  out = new Float32Array(0);
  dOut = new Float32Array(0);
  /** glonet-bn: the sum of the blocks' outputs. */
  S = new Float32Array(0);

  constructor(private readonly layers: number, private readonly W: number, private readonly nOut: number) {}

  /** Room for `rows` rows (grown, never shrunk; 0 frees everything). */
  fit(rows: number, disposed: boolean): this {
    if (disposed) throw new Error('fused MLP engine is disposed');
    if (rows > 0 && rows <= this.cap) return this;
    const { W } = this;
    this.cap = rows;
    this.acts = new Float32Array(this.layers * rows * W);
    this.A = new Float32Array(rows * W);
    this.G = new Float32Array(rows * W);
    this.DX = new Float32Array(rows * W);
    this.DY = new Float32Array(rows * W);
    this.out = new Float32Array(rows * this.nOut);
    this.dOut = new Float32Array(rows * this.nOut);
    this.S = new Float32Array(rows * W);
    return this;
  }
}

const f = Math.fround;

export function createBlockJsCore(shape: BlockMlpShape, params: Float32Array, m: Float32Array, v: Float32Array,
  moving: Float32Array, codegen = true): FusedCore {
  const { nIn, width: W, blocks: nb, nOut, bn, skip } = shape;
  const sum = shape.sum === true;
  const D = denseLayers(shape);
  const withBn = (d: number) => hasBn(shape, d);
  /** BN_d's moving mean (its variance follows after W), in the order of the BNs. */
  const movingAt = (d: number) => (sum ? d - 1 : d) * 2 * W;
  const lay = blockLayout(shape);
  const isCe = shape.loss === 'softmax-ce';
  const eps = f(shape.epsilon);
  const decay = f(shape.decay);
  const { k: K } = kernelsFor(W, codegen);
  const grad = new Float32Array(lay.size);
  // Per dense layer d (D x W): BN_d's mean, 1/sqrt(var + eps) and gamma * rstd of this pass
  // (batch statistics in training; the moving mean and gamma/sqrt(moving var + eps) in inference),
  // and its backward constants mean(dy), rstd * mean(dy * xhat).
  const mu = new Float32Array((D + 1) * W);
  const rstd = new Float32Array((D + 1) * W);
  const scale = new Float32Array((D + 1) * W);
  const c2 = new Float32Array((D + 1) * W);
  const c4 = new Float32Array((D + 1) * W);
  const KT = new Float32Array(W * W + W); // a transposed kernel, then a zero bias for K.dense
  const sdy = new Float64Array(W);
  const sdyx = new Float64Array(W);
  const training = new Buffers(D + 1, W, nOut);
  const inference = new Buffers(3, W, nOut);
  let B = training;
  let disposed = false;

  /** A = relu(BN_d(IN)) (or relu(IN); glonet-bn's dense 0: IN itself) for the rows of IN at offset `in0`. */
  function normalize(d: number, in0: number, rows: number): void {
    const { acts, A } = B;
    if (sum && d === 0) {
      A.set(acts.subarray(in0, in0 + rows * W));
      return;
    }
    if (!bn) {
      for (let i = 0; i < rows * W; i++) A[i] = acts[in0 + i] > 0 ? acts[in0 + i] : 0;
      return;
    }
    const o = d * W;
    const beta = lay.bn[d] + W;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < W; j++) {
        const yv = f(f(f(acts[in0 + r * W + j] - mu[o + j]) * scale[o + j]) + params[beta + j]);
        A[r * W + j] = yv > 0 ? yv : 0;
      }
    }
  }

  /** BN_d's batch statistics of IN at `in0` (float64 two-pass); `update` moves the moving ones. */
  function moments(d: number, in0: number, rows: number, update: boolean): void {
    const o = d * W;
    const { acts } = B;
    const mean = sdy;
    const m2 = sdyx;
    mean.fill(0);
    m2.fill(0);
    for (let r = 0; r < rows; r++) for (let j = 0; j < W; j++) mean[j] += acts[in0 + r * W + j];
    for (let j = 0; j < W; j++) mean[j] /= rows;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < W; j++) {
        const dv = acts[in0 + r * W + j] - mean[j];
        m2[j] += dv * dv;
      }
    }
    for (let j = 0; j < W; j++) {
      const mf = f(mean[j]);
      const vf = f(m2[j] / rows);
      const rs = f(1 / Math.sqrt(f(vf + eps)));
      mu[o + j] = mf;
      rstd[o + j] = rs;
      scale[o + j] = f(params[lay.bn[d] + j] * rs);
      if (update) {
        const mm = movingAt(d) + j;
        const mv = mm + W;
        moving[mm] = f(moving[mm] - f(f(moving[mm] - mf) * decay));
        moving[mv] = f(moving[mv] - f(f(moving[mv] - vf) * decay));
      }
    }
  }

  /** Inference: BN_d with the moving statistics. */
  function inferenceStats(): void {
    for (let d = 0; d <= D; d++) {
      if (!withBn(d)) continue;
      for (let j = 0; j < W; j++) {
        const o = d * W + j;
        mu[o] = moving[movingAt(d) + j];
        scale[o] = f(params[lay.bn[d] + j] / f(Math.sqrt(f(moving[movingAt(d) + W + j] + eps))));
      }
    }
  }

  /** glonet-bn: S (the first term) or S += A. */
  function addToSum(rows: number, first: boolean): void {
    const { A, S } = B;
    for (let i = 0; i < rows * W; i++) S[i] = first ? A[i] : f(S[i] + A[i]);
  }

  /** The dense layer d on A into `dst` at `c0` (plus the rows at `skip0` when >= 0). */
  function dense(d: number, rows: number, dst: Float32Array, c0: number, skip0: number): void {
    K.dense(B.A, 0, W, rows, W, params, lay.dense[d], lay.dense[d] + W * W, dst, c0);
    const { acts } = B;
    if (skip0 >= 0) for (let i = 0; i < rows * W; i++) dst[c0 + i] = f(dst[c0 + i] + acts[skip0 + i]);
  }

  /** Training forward: IN_0 .. IN_D and the outputs; BN statistics of the batch. */
  function forward(x: Float32Array, rows: number, update: boolean): void {
    const at = (d: number): number => d * B.cap * W;
    K.dense(x, 0, nIn, rows, nIn, params, lay.stemK, lay.stemB, B.acts, 0);
    if (withBn(0)) moments(0, 0, rows, update);
    for (let d = 0; d < D; d++) {
      normalize(d, at(d), rows);
      if (sum && d >= 1) addToSum(rows, d === 1);
      dense(d, rows, B.acts, at(d + 1), skip && d % 2 === 1 ? at(d - 1) : -1);
      if (withBn(d + 1)) moments(d + 1, at(d + 1), rows, update);
    }
    if (sum) {
      normalize(D, at(D), rows);
      addToSum(rows, D === 1);
      headForward(params, lay.headK, lay.headB, W, nOut, B.S, 0, rows, B.out);
    } else {
      headForward(params, lay.headK, lay.headB, W, nOut, B.acts, at(D), rows, B.out);
    }
  }

  /** The gradient with respect to IN_d from DY (BN_d backward, or identity) into dst, or added. */
  function inputGrad(d: number, rows: number, dst: Float32Array, acc: boolean): void {
    const in0 = d * B.cap * W;
    const { acts, DY } = B;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < W; j++) {
        const i = r * W + j;
        const o = d * W + j;
        const dx = withBn(d) ? f(scale[o] * f(f(DY[i] - c2[o]) - f(f(acts[in0 + i] - mu[o]) * c4[o]))) : DY[i];
        dst[i] = acc ? f(dst[i] + dx) : dx;
      }
    }
  }

  function colsum(src: Float32Array, rows: number, n: number, g0: number): void {
    for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) grad[g0 + j] += src[r * n + j];
  }

  /** BN_d's gradient sums from DY (dL/dbeta = sum(dy), dL/dgamma = sum(dy * xhat)) and its backward constants. */
  function bnBackward(d: number, rows: number): void {
    const in0 = d * B.cap * W;
    const { DY, acts } = B;
    const o = d * W;
    sdy.fill(0);
    sdyx.fill(0);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < W; j++) {
        const dy = DY[r * W + j];
        sdy[j] += dy;
        sdyx[j] += dy * f(f(acts[in0 + r * W + j] - mu[o + j]) * rstd[o + j]);
      }
    }
    for (let j = 0; j < W; j++) {
      grad[lay.bn[d] + W + j] = sdy[j];
      grad[lay.bn[d] + j] = sdyx[j];
      c2[o + j] = f(sdy[j] / rows);
      c4[o + j] = f(rstd[o + j] * f(sdyx[j] / rows));
    }
  }

  /** Loss and gradient of the batch into `grad` (training mode). */
  function backward(x: Float32Array, y: Float32Array, rows: number): number {
    grad.fill(0);
    const loss = outputLoss(isCe, nOut, B.out, y, 0, rows, rows, B.dOut);
    if (sum) {
      // DX = dS; BN_D's output gradient relu'(.) * dS.
      headBackward(params, lay.headK, lay.headB, W, nOut, B.S, 0, rows, B.dOut, grad, B.DX);
      normalize(D, D * B.cap * W, rows);
      for (let i = 0; i < rows * W; i++) B.DY[i] = B.A[i] > 0 ? B.DX[i] : 0;
      bnBackward(D, rows);
    } else {
      headBackward(params, lay.headK, lay.headB, W, nOut, B.acts, D * B.cap * W, rows, B.dOut, grad, B.DX);
    }
    for (let d = D - 1; d >= 0; d--) {
      let dz = B.G;
      if (d === D - 1 && !sum) dz = B.DX;
      else if (d % 2 === 1 && skip) inputGrad(d + 1, rows, (dz = B.DX), true);
      else inputGrad(d + 1, rows, dz, false);
      const in0 = d * B.cap * W;
      normalize(d, in0, rows);
      K.outer(B.A, 0, W, rows, W, dz, grad, lay.dense[d]);
      colsum(dz, rows, W, lay.dense[d] + W * W);
      const k0 = lay.dense[d];
      for (let i = 0; i < W; i++) for (let j = 0; j < W; j++) KT[j * W + i] = params[k0 + i * W + j];
      K.dense(dz, 0, W, rows, W, KT, 0, W * W, B.DY, 0); // dA = dz K^T
      const { A, DY, DX } = B;
      if (sum && d === 0) continue; // glonet-bn's dense 0 reads the stem's output as it is
      if (sum) for (let i = 0; i < rows * W; i++) DY[i] = f(DY[i] + DX[i]); // A_d is in the sum too
      for (let i = 0; i < rows * W; i++) if (!(A[i] > 0)) DY[i] = 0;
      if (withBn(d)) bnBackward(d, rows);
    }
    const dz = skip ? B.DX : B.G;
    inputGrad(0, rows, dz, skip);
    K.outer(x, 0, nIn, rows, nIn, dz, grad, lay.stemK);
    colsum(dz, rows, W, lay.stemB);
    return isCe ? loss / rows : loss / (rows * nOut);
  }

  function train(x: Float32Array, y: Float32Array, rows: number, s: StepScalars, gradOut: Float32Array | null): number {
    if (isCe) checkLabels(y, rows, nOut);
    B = training.fit(rows, disposed);
    forward(x, rows, gradOut == null);
    const loss = backward(x, y, rows);
    return loss + adamUpdate(lay.segments, params, m, v, grad, s, gradOut);
  }

  /** Inference (moving statistics) on rolling buffers: outputs into `out`. */
  function infer(x: Float32Array, rows: number): void {
    B = inference.fit(rows, disposed);
    inferenceStats();
    let X = 0;
    let Z = B.cap * W;
    let X2 = 2 * B.cap * W;
    K.dense(x, 0, nIn, rows, nIn, params, lay.stemK, lay.stemB, B.acts, X);
    if (sum) {
      for (let d = 0; d < D; d++) {
        normalize(d, X, rows);
        if (d >= 1) addToSum(rows, d === 1);
        dense(d, rows, B.acts, Z, -1);
        [X, Z] = [Z, X];
      }
      normalize(D, X, rows);
      addToSum(rows, D === 1);
      headForward(params, lay.headK, lay.headB, W, nOut, B.S, 0, rows, B.out);
      return;
    }
    for (let b = 0; b < nb; b++) {
      normalize(2 * b, X, rows);
      dense(2 * b, rows, B.acts, Z, -1);
      normalize(2 * b + 1, Z, rows);
      dense(2 * b + 1, rows, B.acts, X2, skip ? X : -1);
      [X, X2] = [X2, X];
    }
    headForward(params, lay.headK, lay.headB, W, nOut, B.acts, X, rows, B.out);
  }

  return {
    engine: 'js',
    flushStates: () => [false],
    step: (x, y, rows, scalars) => train(x, y, rows, scalars, null),
    gradients: (x, y, rows, scalars, gradOut) => train(x, y, rows, scalars, gradOut),
    loss(x, y, rows) {
      if (isCe) checkLabels(y, rows, nOut);
      infer(x, rows);
      return outputLoss(isCe, nOut, B.out, y, 0, rows, rows, B.dOut) / (isCe ? rows : rows * nOut);
    },
    predict(x, rows, dst) {
      infer(x, rows);
      dst.set(B.out.subarray(0, rows * nOut));
    },
    dispose() {
      disposed = true;
      training.fit(0, false);
      inference.fit(0, false);
    },
  };
}
