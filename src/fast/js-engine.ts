/**
 * Portable twin of the native fused GloNet MLP engine (native/src/glonet_fused.cc): the same
 * algorithm in plain Float32Array loops on one thread, used when the addon is not built.
 *
 * Parameters live in one flat Float32Array (see {@link paramLayout}); Adam moments in two more of
 * the same length. Rows are processed in tiles of `tileRows`: forward through the whole chain,
 * loss, backward through the whole chain, so the activations kept are depth x tileRows x width
 * floats whatever the batch size, and nothing is allocated per step.
 */

export type FusedLoss = 'mse' | 'softmax-ce';

export interface MlpShape {
  nIn: number;
  width: number;
  depth: number;
  nOut: number;
  loss: FusedLoss;
}

/** Offsets of every tensor in the flat parameter vector (TF.js weight order). */
export interface ParamLayout {
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
  const stemBias = nIn * W;
  const blocks = stemBias + W;
  const blockStride = W * W + W;
  const headKernel = blocks + blockStride * L;
  const headBias = headKernel + W * nOut;
  const segments: Array<[number, number, boolean]> = [[0, nIn * W, true], [stemBias, W, false]];
  for (let l = 0; l < L; l++) {
    segments.push([blocks + blockStride * l, W * W, true], [blocks + blockStride * l + W * W, W, false]);
  }
  segments.push([headKernel, W * nOut, true], [headBias, nOut, false]);
  return { stemKernel: 0, stemBias, blocks, blockStride, headKernel, headBias, size: headBias + nOut, segments };
}

/**
 * Adam's scalars for one step, as TF.js 4.22's AdamOptimizer uses them (float32 scalars):
 * `[l2, beta1, 1-beta1, beta2, 1-beta2, 1-beta1^t, 1-beta2^t, epsilon, -lr]`.
 */
export type StepScalars = Float64Array;

/** What an engine (native or JavaScript) does; weights, m and v are the caller's arrays. */
export interface FusedCore {
  readonly engine: 'native' | 'js';
  /** One training step (gradients, L2, Adam in place). Returns data loss + L2 penalty. */
  step(x: Float32Array, y: Float32Array, rows: number, scalars: StepScalars): number;
  /** Full gradient (with L2) into `out`, no update. Returns data loss + L2 penalty. */
  gradients(x: Float32Array, y: Float32Array, rows: number, scalars: StepScalars, out: Float32Array): number;
  /** Model output (rows x nOut: regression values or logits) into `out`. */
  predict(x: Float32Array, rows: number, out: Float32Array): void;
  dispose(): void;
}

const f = Math.fround;

export function createJsCore(
  shape: MlpShape,
  params: Float32Array,
  m: Float32Array,
  v: Float32Array,
  tileRows = 64,
): FusedCore {
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
  const isCe = shape.loss === 'softmax-ce';
  let disposed = false;

  /** C[R x N] = A[R x K] (row stride lda, from offset a0) . B + bias (B and bias in params). */
  function dense(A: Float32Array, a0: number, lda: number, R: number, K: number, b0: number, N: number,
    bias0: number, C: Float32Array, c0: number): void {
    for (let r = 0; r < R; r++) {
      const cr = c0 + r * N;
      for (let j = 0; j < N; j++) C[cr + j] = params[bias0 + j];
      const ar = a0 + r * lda;
      for (let k = 0; k < K; k++) {
        const a = A[ar + k];
        if (a === 0) continue;
        const bk = b0 + k * N;
        for (let j = 0; j < N; j++) C[cr + j] += a * params[bk + j];
      }
    }
  }

  /** dK (in grad, from k0) += A^T . D ; A is R x K (stride lda), D is R x N. */
  function outerAcc(A: Float32Array, a0: number, lda: number, R: number, K: number, D: Float32Array,
    N: number, k0: number): void {
    for (let r = 0; r < R; r++) {
      const ar = a0 + r * lda;
      const dr = r * N;
      for (let k = 0; k < K; k++) {
        const a = A[ar + k];
        if (a === 0) continue;
        const o = k0 + k * N;
        for (let j = 0; j < N; j++) grad[o + j] += a * D[dr + j];
      }
    }
  }

  function forward(x: Float32Array, r0: number, R: number): void {
    dense(x, r0 * nIn, nIn, R, nIn, lay.stemKernel, W, lay.stemBias, acts, 0);
    const act = RT * W;
    const n = R * W;
    for (let l = 0; l < L; l++) {
      const kOff = lay.blocks + lay.blockStride * l;
      const hOut = act * (l + 1);
      dense(acts, act * l, W, R, W, kOff, W, kOff + W * W, acts, hOut);
      for (let i = 0; i < n; i++) {
        const h = acts[hOut + i];
        const hr = h > 0 ? h : 0;
        acts[hOut + i] = hr;
        S[i] = l === 0 ? hr : S[i] + hr;
      }
    }
    dense(S, 0, W, R, W, lay.headKernel, nOut, lay.headBias, out, 0);
  }

  function tile(x: Float32Array, y: Float32Array, r0: number, R: number, totalRows: number): number {
    forward(x, r0, R);
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
    // Head.
    outerAcc(S, 0, W, R, W, dOut, nOut, lay.headKernel);
    for (let r = 0; r < R; r++) for (let j = 0; j < nOut; j++) grad[lay.headBias + j] += dOut[r * nOut + j];
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < W; j++) {
        let a = 0;
        for (let o = 0; o < nOut; o++) a += dOut[r * nOut + o] * params[lay.headKernel + j * nOut + o];
        dS[r * W + j] = a;
      }
    }
    G.set(dS.subarray(0, R * W));
    const act = RT * W;
    for (let l = L - 1; l >= 0; l--) {
      const gK = lay.blocks + lay.blockStride * l;
      const gB = gK + W * W;
      const hOut = act * (l + 1);
      const hIn = act * l;
      const wt = l * W * W;
      for (let r = 0; r < R; r++) {
        const ro = r * W;
        for (let j = 0; j < W; j++) {
          const dz = acts[hOut + ro + j] > 0 ? G[ro + j] : 0;
          G[ro + j] = dz;
          grad[gB + j] += dz;
        }
        if (l > 0) {
          for (let j = 0; j < W; j++) G2[ro + j] = dS[ro + j];
        } else {
          for (let j = 0; j < W; j++) G2[ro + j] = 0;
        }
        for (let c = 0; c < W; c++) {
          const dz = G[ro + c];
          if (dz === 0) continue;
          const wc = wt + c * W;
          for (let j = 0; j < W; j++) G2[ro + j] += dz * WT[wc + j];
        }
        // dW += H_in[r]^T dZ[r]
        const hr = hIn + ro;
        for (let k = 0; k < W; k++) {
          const a = acts[hr + k];
          if (a === 0) continue;
          const o = gK + k * W;
          for (let j = 0; j < W; j++) grad[o + j] += a * G[ro + j];
        }
      }
      const t = G;
      G = G2;
      G2 = t;
    }
    outerAcc(x, r0 * nIn, nIn, R, nIn, G, W, lay.stemKernel);
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

  /** L2 gradient on kernels and Adam (or copy the gradient out); returns the L2 penalty. */
  function finish(s: StepScalars, gradOut: Float32Array | null): number {
    const l2 = f(s[0]);
    const b1 = f(s[1]), omb1 = f(s[2]), b2 = f(s[3]), omb2 = f(s[4]);
    const omab1 = f(s[5]), omab2 = f(s[6]), eps = f(s[7]), neglr = f(s[8]);
    let sq = 0;
    for (const [off, len, kernel] of lay.segments) {
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

  function checkLabels(y: Float32Array, rows: number): void {
    if (!isCe) return;
    for (let r = 0; r < rows; r++) {
      const c = y[r];
      if (!(c >= 0 && c < nOut && Number.isInteger(c))) {
        throw new RangeError(`label ${c} at row ${r} is not a class index in [0, ${nOut})`);
      }
    }
  }

  return {
    engine: 'js',
    step(x, y, rows, scalars) {
      checkLabels(y, rows);
      const loss = computeGradients(x, y, rows);
      return loss + finish(scalars, null);
    },
    gradients(x, y, rows, scalars, gradOut) {
      checkLabels(y, rows);
      const loss = computeGradients(x, y, rows);
      return loss + finish(scalars, gradOut);
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
