/**
 * The `fused-js` engine of the GloNet MLP: the portable twin of the native engine
 * (native/src/mlp/fused_mlp.cc), the same algorithm in plain Float32Array loops on one thread,
 * used when the addon is not built.
 *
 * Parameters live in one flat Float32Array (see {@link paramLayout}); Adam moments in two more of
 * the same length (with block scales, the scales first). Rows are processed in tiles of `tileRows`: forward through the whole chain,
 * loss, backward through the whole chain, so the activations kept are depth x tileRows x width
 * floats whatever the batch size, and nothing is allocated per step. The pieces both JavaScript
 * MLP engines share (loss, head, L2, Adam) are in ./js-kernels.ts.
 */
import type { StepScalars } from '../adam-clock.js';
import type { FusedCore, FusedLoss } from './core.js';
import { adamUpdate, checkLabels, headBackward, headForward, kernelsFor, outputLoss } from './js-kernels.js';

export interface MlpShape {
  nIn: number;
  width: number;
  depth: number;
  nOut: number;
  loss: FusedLoss;
  /**
   * A learnable scalar a_l on each block's term of the sum (`--block-scale`): S = sum_l a_l h_l.
   * The scales lead the parameter vector (so that the native engine folds their gradients last).
   */
  scales?: boolean;
}

/** Offsets of every tensor in the flat parameter vector (TF.js weight order, the block scales first). */
export interface ParamLayout {
  /** Offset of the depth block scales, or -1 without them. */
  scale: number;
  stemKernel: number;
  stemBias: number;
  /** Offset of block l's kernel is `blocks + l * blockStride`; its bias follows the kernel. */
  blocks: number;
  blockStride: number;
  headKernel: number;
  headBias: number;
  /** Total parameter count. */
  size: number;
  /** [offset, length, isKernel] of every tensor, in order. */
  segments: Array<[number, number, boolean]>;
}

export function paramLayout(s: MlpShape): ParamLayout {
  const { nIn, width: W, depth: L, nOut } = s;
  const stemKernel = s.scales ? L : 0;
  const stemBias = stemKernel + nIn * W;
  const blocks = stemBias + W;
  const blockStride = W * W + W;
  const headKernel = blocks + blockStride * L;
  const headBias = headKernel + W * nOut;
  const segments: Array<[number, number, boolean]> = [...(s.scales ? [[0, L, false] as [number, number, boolean]] : []), [stemKernel, nIn * W, true], [stemBias, W, false]];
  for (let l = 0; l < L; l++) {
    segments.push([blocks + blockStride * l, W * W, true], [blocks + blockStride * l + W * W, W, false]);
  }
  segments.push([headKernel, W * nOut, true], [headBias, nOut, false]);
  return { scale: s.scales ? 0 : -1, stemKernel, stemBias, blocks, blockStride, headKernel, headBias, size: headBias + nOut, segments };
}

export function createJsCore(
  shape: MlpShape,
  params: Float32Array,
  m: Float32Array,
  v: Float32Array,
  tileRows = 64,
  codegen = true,
): FusedCore & { readonly unrolled: boolean } {
  const { nIn, width: W, depth: L, nOut } = shape;
  const lay = paramLayout(shape);
  const P = lay.size;
  const RT = Math.max(1, Math.floor(tileRows));
  const acts = new Float32Array((L + 1) * RT * W);
  const S = new Float32Array(RT * W);
  const dS = new Float32Array(RT * W);
  let G = new Float32Array(RT * W);
  let G2 = new Float32Array(RT * W);
  const out = new Float32Array(RT * nOut);
  const dOut = new Float32Array(RT * nOut);
  const grad = new Float32Array(P);
  const WT = new Float32Array(L * W * W);
  // With block scales: block outputs' unscaled sums go to `spare`; dSl is a_l dS for one block.
  const scaled = lay.scale >= 0;
  const spare = new Float32Array(scaled ? RT * W : 0);
  const dSl = new Float32Array(scaled ? RT * W : 0);
  const f = Math.fround;
  const isCe = shape.loss === 'softmax-ce';
  const { k: K, unrolled } = kernelsFor(W, codegen);
  let disposed = false;

  function forward(x: Float32Array, r0: number, R: number): void {
    K.dense(x, r0 * nIn, nIn, R, nIn, params, lay.stemKernel, lay.stemBias, acts, 0);
    const act = RT * W;
    for (let l = 0; l < L; l++) {
      const kOff = lay.blocks + lay.blockStride * l;
      K.fwd(acts, act * l, R, params, kOff, kOff + W * W, acts, act * (l + 1), scaled ? spare : S, scaled || l === 0);
      if (!scaled) continue;
      // S += a_l h_l (the first term writes S), in float32 as TF.js's scale layer and sum.
      const a = params[lay.scale + l];
      const h0 = act * (l + 1);
      for (let i = 0; i < R * W; i++) S[i] = l === 0 ? f(acts[h0 + i] * a) : f(S[i] + f(acts[h0 + i] * a));
    }
    headForward(params, lay.headKernel, lay.headBias, W, nOut, S, 0, R, out);
  }

  /** Block l's share of dS (a_l dS, into dSl) and its scale's gradient (sum of dS h_l). */
  function scaleBackward(l: number, R: number): void {
    const a = params[lay.scale + l];
    const h0 = RT * W * (l + 1);
    let g = 0;
    for (let i = 0; i < R * W; i++) {
      dSl[i] = f(dS[i] * a);
      g += dS[i] * acts[h0 + i];
    }
    grad[lay.scale + l] += g;
  }

  function tile(x: Float32Array, y: Float32Array, r0: number, R: number, totalRows: number): number {
    forward(x, r0, R);
    const loss = outputLoss(isCe, nOut, out, y, r0, R, totalRows, dOut);
    headBackward(params, lay.headKernel, lay.headBias, W, nOut, S, 0, R, dOut, grad, dS);
    if (scaled) scaleBackward(L - 1, R);
    G.set((scaled ? dSl : dS).subarray(0, R * W));
    const act = RT * W;
    for (let l = L - 1; l >= 0; l--) {
      const gK = lay.blocks + lay.blockStride * l;
      if (scaled && l > 0) scaleBackward(l - 1, R);
      K.back(G, G2, acts, act * (l + 1), WT, l * W * W, scaled ? dSl : dS, l > 0, grad, gK + W * W, R);
      K.outer(acts, act * l, W, R, W, G, grad, gK);
      const t = G;
      G = G2;
      G2 = t;
    }
    K.outer(x, r0 * nIn, nIn, R, nIn, G, grad, lay.stemKernel);
    for (let r = 0; r < R; r++) for (let j = 0; j < W; j++) grad[lay.stemBias + j] += G[r * W + j];
    return loss;
  }

  function computeGradients(x: Float32Array, y: Float32Array, rows: number): number {
    if (disposed) throw new Error('fused MLP engine is disposed');
    for (let l = 0; l < L; l++) {
      const k = lay.blocks + lay.blockStride * l;
      const o = l * W * W;
      for (let i = 0; i < W; i++) for (let j = 0; j < W; j++) WT[o + j * W + i] = params[k + i * W + j];
    }
    grad.fill(0);
    let loss = 0;
    for (let r = 0; r < rows; r += RT) loss += tile(x, y, r, Math.min(RT, rows - r), rows);
    return isCe ? loss / rows : loss / (rows * nOut);
  }

  return {
    engine: 'js',
    flushStates: () => [false],
    unrolled,
    step(x, y, rows, scalars) {
      if (isCe) checkLabels(y, rows, nOut);
      const loss = computeGradients(x, y, rows);
      return loss + adamUpdate(lay.segments, params, m, v, grad, scalars, null);
    },
    gradients(x, y, rows, scalars, gradOut) {
      if (isCe) checkLabels(y, rows, nOut);
      const loss = computeGradients(x, y, rows);
      return loss + adamUpdate(lay.segments, params, m, v, grad, scalars, gradOut);
    },
    loss(x, y, rows) {
      if (disposed) throw new Error('fused MLP engine is disposed');
      if (isCe) checkLabels(y, rows, nOut);
      let loss = 0;
      for (let r = 0; r < rows; r += RT) {
        const R = Math.min(RT, rows - r);
        forward(x, r, R);
        loss += outputLoss(isCe, nOut, out, y, r, R, rows, dOut);
      }
      return isCe ? loss / rows : loss / (rows * nOut);
    },
    predict(x, rows, dst) {
      if (disposed) throw new Error('fused MLP engine is disposed');
      for (let r = 0; r < rows; r += RT) {
        const R = Math.min(RT, rows - r);
        forward(x, r, R);
        dst.set(out.subarray(0, R * nOut), r * nOut);
      }
    },
    dispose() {
      disposed = true;
    },
  };
}
