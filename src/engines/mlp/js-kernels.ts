/**
 * The JavaScript kernels both portable MLP engines share (./fused-js.ts, the GloNet MLP;
 * ./fused-js-block.ts, the two-layer-block baselines): the loss and its gradient, label checks,
 * the linear head, L2, TF.js 4.22's Adam update (all in float32 as TF.js computes them), and the
 * dense-layer kernels of width W (generic loops, or code generated for one width).
 */
import type { StepScalars } from '../adam-clock.js';

const f = Math.fround;

type F32 = Float32Array;

/**
 * Loss of the R output rows in `out` (rows r0 .. r0+R of a batch of `totalRows`) and, into
 * `dOut`, its gradient with respect to them: the sum of squared errors (MSE, gradient scaled for
 * the mean over totalRows x nOut) or of softmax cross-entropies on the integer labels in `y`.
 */
export function outputLoss(isCe: boolean, nOut: number, out: F32, y: F32, r0: number, R: number, totalRows: number, dOut: F32): number {
  let loss = 0;
  if (!isCe) {
    const scale = 2 / (totalRows * nOut);
    const y0 = r0 * nOut;
    for (let i = 0; i < R * nOut; i++) {
      const d = out[i] - y[y0 + i];
      loss += d * d;
      dOut[i] = d * scale;
    }
  } else {
    for (let r = 0; r < R; r++) {
      const o = r * nOut;
      const label = y[r0 + r];
      let mx = out[o];
      for (let j = 1; j < nOut; j++) if (out[o + j] > mx) mx = out[o + j];
      let sum = 0;
      for (let j = 0; j < nOut; j++) sum += Math.exp(out[o + j] - mx);
      const lse = mx + Math.log(sum);
      loss += lse - out[o + label];
      for (let j = 0; j < nOut; j++) {
        dOut[o + j] = (Math.exp(out[o + j] - lse) - (j === label ? 1 : 0)) / totalRows;
      }
    }
  }
  return loss;
}

/** Throws unless y[0..rows) are class indices in [0, nOut). */
export function checkLabels(y: F32, rows: number, nOut: number): void {
  for (let r = 0; r < rows; r++) {
    const c = y[r];
    if (!(c >= 0 && c < nOut && Number.isInteger(c))) {
      throw new RangeError(`label ${c} at row ${r} is not a class index in [0, ${nOut})`);
    }
  }
}

/** The linear head: dst (R x nOut) = src rows (R x W, from s0) . headK + headB. */
export function headForward(params: F32, headK: number, headB: number, W: number, nOut: number, src: F32, s0: number, R: number, dst: F32): void {
  for (let r = 0; r < R; r++) {
    for (let o = 0; o < nOut; o++) {
      let a = params[headB + o];
      for (let j = 0; j < W; j++) a += src[s0 + r * W + j] * params[headK + j * nOut + o];
      dst[r * nOut + o] = a;
    }
  }
}

/**
 * The head's backward: grad[headK] += src^T dOut, grad[headB] += colsum(dOut), and the gradient
 * with respect to its input, dIn (R x W) = dOut . headK^T.
 */
export function headBackward(params: F32, headK: number, headB: number, W: number, nOut: number, src: F32, s0: number, R: number,
  dOut: F32, grad: F32, dIn: F32): void {
  for (let r = 0; r < R; r++) {
    for (let o = 0; o < nOut; o++) {
      const d = dOut[r * nOut + o];
      grad[headB + o] += d;
      if (d === 0) continue;
      for (let j = 0; j < W; j++) grad[headK + j * nOut + o] += src[s0 + r * W + j] * d;
    }
    for (let j = 0; j < W; j++) {
      let a = 0;
      for (let o = 0; o < nOut; o++) a += dOut[r * nOut + o] * params[headK + j * nOut + o];
      dIn[r * W + j] = a;
    }
  }
}

/** The sum of squares of the kernel segments of `params` (the L2 penalty is l2 times it). */
export function kernelSquares(segments: Array<[number, number, boolean]>, params: F32): number {
  let sq = 0;
  for (const [off, len, kernel] of segments) {
    if (!kernel) continue;
    for (let i = off; i < off + len; i++) sq += params[i] * params[i];
  }
  return sq;
}

/**
 * The L2 gradient on kernels, then Adam on every segment [offset, length, isKernel] of `params`
 * with the batch gradient `grad` (or, with `gradOut`, the full gradient copied out and nothing
 * updated). Returns the L2 penalty before the update.
 */
export function adamUpdate(segments: Array<[number, number, boolean]>, params: F32, m: F32, v: F32, grad: F32, s: StepScalars, gradOut: F32 | null): number {
  const l2 = f(s[0]);
  const b1 = f(s[1]), omb1 = f(s[2]), b2 = f(s[3]), omb2 = f(s[4]);
  const omab1 = f(s[5]), omab2 = f(s[6]), eps = f(s[7]), neglr = f(s[8]);
  let sq = 0;
  for (const [off, len, kernel] of segments) {
    for (let i = off; i < off + len; i++) {
      let g = grad[i];
      const w = params[i];
      if (kernel) {
        sq += w * w;
        g = f(g + f(l2 * f(w * 2)));
      }
      if (gradOut) {
        gradOut[i] = g;
        continue;
      }
      // Float32 operations in TF.js's order: m' = m b1 + g (1-b1), v' = v b2 + g^2 (1-b2),
      // w' = (m'/(1-b1^t)) / (sqrt(v'/(1-b2^t)) + eps) * -lr + w.
      const mNew = f(f(m[i] * b1) + f(g * omb1));
      const vNew = f(f(v[i] * b2) + f(f(g * g) * omb2));
      const mh = f(mNew / omab1);
      const vh = f(vNew / omab2);
      m[i] = mNew;
      v[i] = vNew;
      params[i] = f(f(f(mh / f(f(Math.sqrt(vh)) + eps)) * neglr) + w);
    }
  }
  return l2 * sq;
}


/**
 * The four hot loops, all with output width W (the block width). Offsets (`a0`, `b0`, ...) index
 * into the arrays passed, so no subarray views are made per call.
 */
interface JsKernels {
  /** C[c0 + r*W + j] = P[bias0 + j] + sum_k A[a0 + r*lda + k] * P[b0 + k*W + j], r < R, k < K */
  dense(A: F32, a0: number, lda: number, R: number, K: number, P: F32, b0: number, bias0: number, C: F32, c0: number): void;
  /** Block forward: the same with lda = K = W, then relu into C and S (S = h, or S += h). */
  fwd(A: F32, a0: number, R: number, P: F32, b0: number, bias0: number, C: F32, c0: number, S: F32, first: boolean): void;
  /** g[g0 + k*W + j] += sum_r A[a0 + r*lda + k] * D[r*W + j], k < K, r < R */
  outer(A: F32, a0: number, lda: number, R: number, K: number, D: F32, g: F32, g0: number): void;
  /**
   * Block backward, data part: dZ = G * (H[h0..] > 0) written into G, g[gB + j] += colsum(dZ),
   * G2 = (useDS ? dS : 0) + dZ . WT[wt0..] (WT: the transposed kernel).
   */
  back(G: F32, G2: F32, H: F32, h0: number, WT: F32, wt0: number, dS: F32, useDS: boolean, g: F32, gB: number, R: number): void;
}

/** Plain loops for any width. */
function genericKernels(W: number): JsKernels {
  return {
    dense(A, a0, lda, R, K, P, b0, bias0, C, c0) {
      for (let r = 0; r < R; r++) {
        const cr = c0 + r * W;
        for (let j = 0; j < W; j++) C[cr + j] = P[bias0 + j];
        const ar = a0 + r * lda;
        for (let k = 0; k < K; k++) {
          const a = A[ar + k];
          if (a === 0) continue;
          const bk = b0 + k * W;
          for (let j = 0; j < W; j++) C[cr + j] += a * P[bk + j];
        }
      }
    },
    fwd(A, a0, R, P, b0, bias0, C, c0, S, first) {
      this.dense(A, a0, W, R, W, P, b0, bias0, C, c0);
      for (let i = 0; i < R * W; i++) {
        const h = C[c0 + i] > 0 ? C[c0 + i] : 0;
        C[c0 + i] = h;
        S[i] = first ? h : S[i] + h;
      }
    },
    outer(A, a0, lda, R, K, D, g, g0) {
      for (let r = 0; r < R; r++) {
        const ar = a0 + r * lda;
        const dr = r * W;
        for (let k = 0; k < K; k++) {
          const a = A[ar + k];
          if (a === 0) continue;
          const o = g0 + k * W;
          for (let j = 0; j < W; j++) g[o + j] += a * D[dr + j];
        }
      }
    },
    back(G, G2, H, h0, WT, wt0, dS, useDS, g, gB, R) {
      for (let r = 0; r < R; r++) {
        const ro = r * W;
        for (let j = 0; j < W; j++) {
          const dz = H[h0 + ro + j] > 0 ? G[ro + j] : 0;
          G[ro + j] = dz;
          g[gB + j] += dz;
          G2[ro + j] = useDS ? dS[ro + j] : 0;
        }
        for (let c = 0; c < W; c++) {
          const dz = G[ro + c];
          if (dz === 0) continue;
          const wc = wt0 + c * W;
          for (let j = 0; j < W; j++) G2[ro + j] += dz * WT[wc + j];
        }
      }
    },
  };
}

/**
 * The same loops specialized for one width: the W outputs of a row live in W local variables
 * (unrolled), about three times faster in V8 than indexed loops. Generated once per engine.
 */
function unrolledKernels(W: number): JsKernels {
  // Locals are named acc_j, dz_j, db_j, h_j: never a parameter's name.
  const J = Array.from({ length: W }, (_, j) => j);
  const each = (fn: (j: number) => string) => J.map(fn).join('\n');
  const fn = (args: string, body: string) => new Function(...args.split(','), `'use strict';\n${body}`);
  const denseBody = (relu: boolean) => `
    for (let r = 0; r < R; r++) {
      ${each((j) => `let acc_${j} = P[bias0 + ${j}];`)}
      const ar = a0 + r * lda;
      for (let k = 0; k < K; k++) {
        const a = A[ar + k];
        if (a === 0) continue;
        const bk = b0 + k * ${W};
        ${each((j) => `acc_${j} += a * P[bk + ${j}];`)}
      }
      const cr = c0 + r * ${W};
      ${relu ? `const sr = r * ${W};
      ${each((j) => `const h_${j} = Math.fround(acc_${j} > 0 ? acc_${j} : 0); C[cr + ${j}] = h_${j}; S[sr + ${j}] = first ? h_${j} : S[sr + ${j}] + h_${j};`)}`
    : each((j) => `C[cr + ${j}] = acc_${j};`)}
    }`;
  const dense = fn('A,a0,lda,R,K,P,b0,bias0,C,c0', denseBody(false));
  const fwdInner = fn('A,a0,lda,R,K,P,b0,bias0,C,c0,S,first', denseBody(true));
  const outer = fn('A,a0,lda,R,K,D,g,g0', `
    for (let k = 0; k < K; k++) {
      const o = g0 + k * ${W};
      ${each((j) => `let acc_${j} = g[o + ${j}];`)}
      for (let r = 0; r < R; r++) {
        const a = A[a0 + r * lda + k];
        if (a === 0) continue;
        const dr = r * ${W};
        ${each((j) => `acc_${j} += a * D[dr + ${j}];`)}
      }
      ${each((j) => `g[o + ${j}] = acc_${j};`)}
    }`);
  const back = fn('G,G2,H,h0,WT,wt0,dS,useDS,g,gB,R', `
    ${each((j) => `let db_${j} = 0;`)}
    for (let r = 0; r < R; r++) {
      const ro = r * ${W};
      const hr = h0 + ro;
      ${each((j) => `const dz_${j} = H[hr + ${j}] > 0 ? G[ro + ${j}] : 0; G[ro + ${j}] = dz_${j}; db_${j} += dz_${j};`)}
      ${each((j) => `let acc_${j} = useDS ? dS[ro + ${j}] : 0;`)}
      for (let c = 0; c < ${W}; c++) {
        const d = G[ro + c];
        if (d === 0) continue;
        const wc = wt0 + c * ${W};
        ${each((j) => `acc_${j} += d * WT[wc + ${j}];`)}
      }
      ${each((j) => `G2[ro + ${j}] = acc_${j};`)}
    }
    ${each((j) => `g[gB + ${j}] += db_${j};`)}`);
  return {
    dense: dense as JsKernels['dense'],
    fwd: (A, a0, R, P, b0, bias0, C, c0, S, first) => fwdInner(A, a0, W, R, W, P, b0, bias0, C, c0, S, first),
    outer: outer as JsKernels['outer'],
    back: back as JsKernels['back'],
  };
}

/** Unrolled kernels for widths up to 32 when the runtime allows code generation; else loops. */
export function kernelsFor(W: number, codegen: boolean): { k: JsKernels; unrolled: boolean } {
  const env = typeof process === 'undefined' ? undefined : process.env?.GLONET_JS_CODEGEN;
  if (codegen && W <= 32 && env !== '0') {
    try {
      return { k: unrolledKernels(W), unrolled: true };
    } catch {
      // Code generation from strings disallowed (--disallow-code-generation-from-strings).
    }
  }
  return { k: genericKernels(W), unrolled: false };
}
