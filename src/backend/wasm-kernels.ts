/**
 * Kernels this package adds to (or replaces on) the TF.js `wasm` backend so that conv nets and
 * ViTs train on it, and train fast.
 *
 * `@tensorflow/tfjs-backend-wasm` 4.22 has no `Conv2DBackpropFilter` (conv training throws), a
 * naive C loop for `Conv2DBackpropInput` (an order of magnitude slower than its forward conv), no
 * `UnsortedSegmentSum` (the gradient of `gather`, so of embedding lookups), and a naive loop for
 * most matrix products. Every kernel here is built from the backend's own kernels, mainly its
 * XNNPACK forward `Conv2D` and `BatchMatMul`, with layout work done by its `Transpose` kernel or
 * by plain loops over the wasm heap:
 *
 * - Conv2DBackpropInput: the input gradient of a stride-s conv is one stride-1 forward conv of
 *   dy with a rearranged filter. Split the input rows and columns by their phase modulo s; the
 *   phase (rh, rw) receives only the filter taps (rh + j*s, rw + i*s), flipped. All s*s phases
 *   become the output channels of one conv (filter [ceil(kh/s), ceil(kw/s), outC, s*s*inC]),
 *   and a transpose interleaves them back into rows and columns (a depth-to-space; the backend's
 *   own DepthToSpace kernel is far slower than its Transpose). No zero-insertion, so no work is
 *   spent on zeros except for taps past the filter's edge. A strided 1x1 filter feeds one phase
 *   only: that phase is computed alone and zero-padded into place.
 * - Conv2DBackpropFilter: dW[a, b, c, o] = sum over (n, oh, ow) of
 *   x[n, oh*s + a - padTop, ow*s + b - padLeft, c] * dy[n, oh, ow, o], which is a forward conv
 *   with the roles moved: input x transposed to [inC, H, W, N] (batch inC, channels N), filter dy
 *   transposed to [outH, outW, N, outC] with dilation s, output [inC, kh, kw, outC]. For filters
 *   with few taps times input channels (1x1 shortcuts, a first layer on RGB) and for strides of
 *   2 and more, an explicit im2col (JS on the heap) followed by one XNNPACK MatMul
 *   [kh*kw*inC, M] x [M, outC] is faster, so that path is taken there (measured with
 *   bench/conv-kernels.ts). Both are bound by XNNPACK packing its "weights" operand (here dy,
 *   as big as an activation) afresh on every call.
 * - BatchMatMul: the package sends only unbatched, untransposed products to XNNPACK and the rest
 *   (every Dense layer's backward pass, every attention product) to a naive loop 5-15x slower.
 *   Ours transposes operands explicitly with the Transpose kernel, folds a batched a against one
 *   b into a single product, and runs other batches as one XNNPACK product per matrix (tiny
 *   matrices stay on the loop, which wins below about 8k multiply-adds each).
 * - UnsortedSegmentSum: a scatter-add loop on the heap.
 * - Tile: block copies on the heap (the package's C kernel costs about 60 ns per element).
 *
 * `registerTrainingGradients()` replaces tfjs-core's Tile gradient (one slice + add per
 * repetition, which tf.layers.layerNormalization triggers batch x tokens times) with a reshape and
 * a sum; gradients are global, so it applies to every backend.
 *
 * `registerWasmTrainingKernels()` is idempotent; `src/backend/index.ts` calls it once the wasm
 * backend is active.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of the wasm backend (`BackendWasm`) these kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  readSync(dataId: object): ArrayLike<number>;
  disposeData(dataId: object, force?: boolean): boolean;
}

type Padding = tf.Conv2DBackpropInputAttrs['pad'];
type RoundingMode = tf.Conv2DBackpropInputAttrs['dimRoundingMode'];
type Shape4 = [number, number, number, number];

const BACKEND = 'wasm';

/** The wasm package's own kernels that ours replaced, by kernel name. */
const builtinKernels = new Map<string, tf.KernelConfig>();

/** Stride-1 filters with at most this many taps times input channels take the im2col + MatMul path. */
const IM2COL_MAX_PATCH = 32;

function run(name: string, backend: WasmBackend, inputs: tf.NamedTensorInfoMap, attrs: object = {}): tf.TensorInfo {
  const kernel = tf.getKernel(name, BACKEND);
  if (kernel == null) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, backend: backend as unknown as tf.KernelBackend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

function dispose(backend: WasmBackend, ...ts: tf.TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

/** A tensor info sharing t's data under another shape (no copy, no refcount: do not dispose). */
function view(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

function convInfo(xShape: Shape4, filterShape: Shape4, strides: number | [number, number], pad: Padding,
                  dimRoundingMode: RoundingMode): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
}

function transpose(backend: WasmBackend, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return run('Transpose', backend, { x }, { perm });
}

function conv2d(backend: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, pad: number[][],
                dilations: [number, number] = [1, 1]): tf.TensorInfo {
  return run('Conv2D', backend, { x, filter }, { strides: 1, pad, dataFormat: 'NHWC', dilations });
}

function slice4(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  return run('Slice', backend, { x }, { begin, size });
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput

/**
 * dx for y = conv2d(x, w, strides, pad), NHWC, dilation 1. Returns null for cases this
 * formulation does not cover (the caller then uses the backend's own kernel).
 */
export function conv2dInputGrad(backend: WasmBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, inputShape: Shape4,
                                strides: number | [number, number], pad: Padding,
                                dimRoundingMode?: RoundingMode): tf.TensorInfo | null {
  const info = convInfo(inputShape, filter.shape as Shape4, strides, pad, dimRoundingMode);
  const { batchSize: n, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw,
    inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, inChannels: c, outChannels: co } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  if (dy.shape[1] !== oh || dy.shape[2] !== ow || pt < 0 || pl < 0) return null;
  // Sub-filter size per phase and the phase-stacked filter
  // F[t, u, o, (rh*sw + rw)*c + ci] = w[rh + (jh-1-t)*sh, rw + (jw-1-u)*sw, ci, o] (0 past the edge).
  const jh = Math.ceil(kh / sh), jw = Math.ceil(kw / sw);
  // A 1x1 filter feeds phase (0, 0) only: compute that phase alone and zero-fill the others.
  const onePhase = kh === 1 && kw === 1;
  const sc = (onePhase ? 1 : sh * sw) * c;
  const wv = backend.readSync(filter.dataId);
  const fv = new Float32Array(jh * jw * co * sc);
  for (let t = 0; t < jh; t++) {
    for (let u = 0; u < jw; u++) {
      for (let rh = 0; rh < sh; rh++) {
        const a = rh + (jh - 1 - t) * sh;
        if (a >= kh) continue;
        for (let rw = 0; rw < sw; rw++) {
          const b = rw + (jw - 1 - u) * sw;
          if (b >= kw) continue;
          const src = (a * kw + b) * c * co;
          const dst = (t * jw + u) * co * sc + (rh * sw + rw) * c;
          for (let ci = 0; ci < c; ci++) {
            for (let o = 0; o < co; o++) fv[dst + o * sc + ci] = wv[src + ci * co + o];
          }
        }
      }
    }
  }
  // Phase-split output row q (rows q*sh + rh of the padded input) gathers dy rows q-jh+1 .. q.
  // Rows needed: q0..q1 covering padded rows [pt, pt + h).
  const q0h = Math.floor(pt / sh), q1h = Math.floor((pt + h - 1) / sh);
  const q0w = Math.floor(pl / sw), q1w = Math.floor((pl + w - 1) / sw);
  // Conv output row o is phase row q0h + o: pad top jh-1-q0h, or drop leading dy rows if negative.
  const dropH = Math.max(0, q0h - (jh - 1)), dropW = Math.max(0, q0w - (jw - 1));
  if (dropH >= oh || dropW >= ow) return null;
  const padT = Math.max(0, jh - 1 - q0h), padL = Math.max(0, jw - 1 - q0w);
  const rowsIn = oh - dropH, colsIn = ow - dropW;
  const padB = Math.max(0, (q1h - q0h + 1) - (rowsIn + padT - jh + 1));
  const padR = Math.max(0, (q1w - q0w + 1) - (colsIn + padL - jw + 1));
  const f = backend.makeOutput([jh, jw, co, sc], 'float32', undefined, fv);
  let src = dy;
  if (dropH > 0 || dropW > 0) src = slice4(backend, dy, [0, dropH, dropW, 0], [n, rowsIn, colsIn, co]);
  const z = conv2d(backend, src, f, [[0, 0], [padT, padB], [padL, padR], [0, 0]]);
  dispose(backend, f);
  if (src !== dy) dispose(backend, src);
  let d = z;
  const [, zh, zw] = z.shape;
  if (onePhase && (sh > 1 || sw > 1)) {
    // [n, zh, 1, zw, 1, c] zero-padded to [n, zh, sh, zw, sw, c] = [n, zh*sh, zw*sw, c]
    d = run('PadV2', backend, { x: view(z, [n, zh, 1, zw, 1, c]) },
      { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
    d.shape = [n, zh * sh, zw * sw, c];
    dispose(backend, z);
  } else if (sh > 1 || sw > 1) {
    // [n, zh, zw, sh, sw, c] -> [n, zh, sh, zw, sw, c] = [n, zh*sh, zw*sw, c]
    d = transpose(backend, view(z, [n, zh, zw, sh, sw, c]), [0, 1, 3, 2, 4, 5]);
    d.shape = [n, zh * sh, zw * sw, c];
    dispose(backend, z);
  }
  // Row u of d is padded input row q0h*sh + u; dx row i is padded row pt + i.
  const bh = pt - q0h * sh, bw = pl - q0w * sw;
  if (bh === 0 && bw === 0 && d.shape[1] === h && d.shape[2] === w) return d;
  const out = slice4(backend, d, [0, bh, bw, 0], [n, h, w, c]);
  dispose(backend, d);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter

/** dW via a forward conv: input x^T [C, H, W, N], filter dy^T [OH, OW, N, CO], dilation = stride. */
export function conv2dFilterGradConv(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, filterShape: Shape4,
                                     strides: number | [number, number], pad: Padding,
                                     dimRoundingMode?: RoundingMode): tf.TensorInfo {
  const info = convInfo(x.shape as Shape4, filterShape, strides, pad, dimRoundingMode);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw,
    inHeight: h, inWidth: w, outHeight: oh, outWidth: ow } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  // Bottom/right padding that makes the output exactly kh x kw (negative: output is sliced).
  const pb = kh + (oh - 1) * sh - h - pt, pr = kw + (ow - 1) * sw - w - pl;
  const xT = transpose(backend, x, [3, 1, 2, 0]);
  const dyT = transpose(backend, dy, [1, 2, 0, 3]);
  const c = conv2d(backend, xT, dyT, [[0, 0], [pt, Math.max(0, pb)], [pl, Math.max(0, pr)], [0, 0]], [sh, sw]);
  dispose(backend, xT, dyT);
  let c2 = c;
  if (c.shape[1] !== kh || c.shape[2] !== kw) {
    c2 = slice4(backend, c, [0, 0, 0, 0], [c.shape[0], kh, kw, c.shape[3]]);
    dispose(backend, c);
  }
  const out = transpose(backend, c2, [1, 2, 0, 3]);
  dispose(backend, c2);
  return out;
}

/** dW via im2col: cols^T [kh*kw*C, M] (built on the heap) times dy [M, CO] in one XNNPACK MatMul. */
export function conv2dFilterGradIm2col(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, filterShape: Shape4,
                                       strides: number | [number, number], pad: Padding,
                                       dimRoundingMode?: RoundingMode): tf.TensorInfo {
  const info = convInfo(x.shape as Shape4, filterShape, strides, pad, dimRoundingMode);
  const { batchSize: n, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw,
    inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, inChannels: c, outChannels: co } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const m = n * oh * ow;
  // x as [C, N, H, W], so every row of cols^T is read along w.
  const xT = c === 1 ? x : transpose(backend, x, [3, 0, 1, 2]);
  const cols = backend.makeOutput([1, kh * kw * c, m], 'float32');
  // Views are taken after every allocation (a heap growth detaches earlier views).
  const xv = backend.typedArrayFromHeap(xT) as Float32Array;
  const cv = backend.typedArrayFromHeap(cols) as Float32Array;
  const hw = h * w;
  let o = 0;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      // Output columns whose input column ow*sw + b - pl lies inside [0, w).
      const owLo = Math.min(ow, Math.max(0, Math.ceil((pl - b) / sw)));
      const owHi = Math.max(owLo, Math.min(ow, Math.floor((w - 1 + pl - b) / sw) + 1));
      for (let ci = 0; ci < c; ci++) {
        for (let ni = 0; ni < n; ni++) {
          const base = (ci * n + ni) * hw;
          for (let r = 0; r < oh; r++) {
            const ih = r * sh + a - pt;
            if (ih < 0 || ih >= h) {
              cv.fill(0, o, o + ow);
              o += ow;
              continue;
            }
            for (let k = 0; k < owLo; k++) cv[o + k] = 0;
            let src = base + ih * w + owLo * sw + b - pl;
            if (sw === 1) {
              cv.set(xv.subarray(src, src + owHi - owLo), o + owLo);
            } else {
              for (let k = owLo; k < owHi; k++, src += sw) cv[o + k] = xv[src];
            }
            for (let k = owHi; k < ow; k++) cv[o + k] = 0;
            o += ow;
          }
        }
      }
    }
  }
  if (xT !== x) dispose(backend, xT);
  const out = xnnMatMul(backend, cols, view(dy, [1, m, co]), builtinMatMul());
  dispose(backend, cols);
  out.shape = [kh, kw, c, co];
  return out;
}

export function conv2dFilterGrad(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, filterShape: Shape4,
                                 strides: number | [number, number], pad: Padding,
                                 dimRoundingMode?: RoundingMode): tf.TensorInfo {
  const [kh, kw, c] = filterShape;
  const info = convInfo(x.shape as Shape4, filterShape, strides, pad, dimRoundingMode);
  // im2col copies kh*kw*C values per output position: cheap when the filter is small or the
  // stride thins the positions out; the conv path pays a transpose of all of x instead.
  return kh * kw * c <= IM2COL_MAX_PATCH || kh * kw === 1 || info.strideHeight * info.strideWidth >= 4
    ? conv2dFilterGradIm2col(backend, x, dy, filterShape, strides, pad, dimRoundingMode)
    : conv2dFilterGradConv(backend, x, dy, filterShape, strides, pad, dimRoundingMode);
}

// ---------------------------------------------------------------------------------------------
// UnsortedSegmentSum

function unsortedSegmentSum(backend: WasmBackend, x: tf.TensorInfo, segmentIds: tf.TensorInfo,
                            numSegments: number): tf.TensorInfo {
  const idsRank = segmentIds.shape.length;
  const inner = tf.util.sizeFromShape(x.shape.slice(idsRank));
  const count = tf.util.sizeFromShape(segmentIds.shape);
  const out = backend.makeOutput([numSegments, ...x.shape.slice(idsRank)], x.dtype);
  const ids = backend.readSync(segmentIds.dataId);
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  ov.fill(0);
  for (let i = 0; i < count; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner, dst = s * inner;
    for (let j = 0; j < inner; j++) ov[dst + j] += xv[src + j];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul

/** Batched products with at least this many multiply-adds per matrix run one XNNPACK call each. */
const MATMUL_PER_ITEM_MIN_MACS = 8192;

/** The [k, n] each tensor data was last given to XNNPACK as a right operand under. */
const rightOperandShapes = new WeakMap<object, string>();

function copyOf(backend: WasmBackend, t: tf.TensorInfo): tf.TensorInfo {
  const out = backend.makeOutput(t.shape, t.dtype);
  (backend.typedArrayFromHeap(out) as Float32Array).set(backend.typedArrayFromHeap(t) as Float32Array);
  return out;
}

/**
 * x [1, m, k] @ y [1, k, n] through the wasm package's XNNPACK path (`builtin` is its BatchMatMul).
 * XNNPACK's packed copy of the right operand is cached under its tensor id alone: a tensor seen
 * before with another [k, n] (a reshape shares the id) goes in as a fresh copy.
 */
function xnnMatMul(backend: WasmBackend, x: tf.TensorInfo, y: tf.TensorInfo, builtin: tf.KernelFunc): tf.TensorInfo {
  const key = `${y.shape[1]}x${y.shape[2]}`;
  const seen = rightOperandShapes.get(y.dataId);
  if (seen === undefined) rightOperandShapes.set(y.dataId, key);
  const fresh = seen !== undefined && seen !== key;
  const yy = fresh ? copyOf(backend, y) : y;
  const out = builtin({
    inputs: { a: x, b: yy }, backend: backend as unknown as tf.KernelBackend,
    attrs: { transposeA: false, transposeB: false },
  }) as tf.TensorInfo;
  if (fresh) dispose(backend, yy);
  return out;
}

/** The wasm package's own BatchMatMul, whether or not ours has replaced it. */
function builtinMatMul(): tf.KernelFunc {
  const kernel = builtinKernels.get(tf.BatchMatMul) ?? tf.getKernel(tf.BatchMatMul, BACKEND);
  if (kernel == null) throw new Error('wasm kernel BatchMatMul is not registered');
  return kernel.kernelFunc;
}

/** Flat index into a (broadcast) outer shape for each flat index of the output's outer shape. */
function broadcastIndex(outer: number[], own: number[]): (i: number) => number {
  const rank = outer.length;
  const padded = [...new Array<number>(rank - own.length).fill(1), ...own];
  if (padded.every((d, k) => d === outer[k])) return (i) => i;
  if (tf.util.sizeFromShape(own) === 1) return () => 0;
  const ownStrides = tf.util.computeStrides(padded);
  const outStrides = tf.util.computeStrides(outer);
  return (i) => {
    let flat = 0, rest = i;
    for (let k = 0; k < rank; k++) {
      const stride = k < rank - 1 ? outStrides[k] : 1;
      const coord = Math.floor(rest / stride);
      rest -= coord * stride;
      if (padded[k] !== 1) flat += coord * (k < rank - 1 ? ownStrides[k] : 1);
    }
    return flat;
  };
}

/**
 * a @ b with optional transposes and broadcast batch dimensions. The wasm package runs only the
 * unbatched, untransposed case through XNNPACK and everything else through a naive loop (5-15x
 * slower: every Dense layer's backward pass, every attention product). Here operands are
 * transposed explicitly and batches either fold into one product (a batched against one b) or
 * run one XNNPACK product each. Returns null to leave tiny batched products to the built-in loop.
 */
function batchMatMul(backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean,
                            transposeB: boolean, builtin: tf.KernelFunc,
                            perItemMinMacs = MATMUL_PER_ITEM_MIN_MACS): tf.TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ar = a.shape.length, br = b.shape.length;
  const m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const k = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const n = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  if ((transposeB ? b.shape[br - 1] : b.shape[br - 2]) !== k) return null;
  const aOuter = a.shape.slice(0, -2), bOuter = b.shape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(aOuter, bOuter);
  const batch = tf.util.sizeFromShape(outer);
  const batchA = tf.util.sizeFromShape(aOuter), batchB = tf.util.sizeFromShape(bOuter);
  if (m * k * n === 0) return null;
  const xnn = (x: tf.TensorInfo, y: tf.TensorInfo) => xnnMatMul(backend, x, y, builtin);
  // Operands as [batch, rows, cols] with the transposes applied (fresh tensors when transposed).
  const a3 = view(a, [batchA, transposeA ? k : m, transposeA ? m : k]);
  const b3 = view(b, [batchB, transposeB ? n : k, transposeB ? k : n]);
  if (batchB === 1) {
    // One product: a's batches (if any) fold into its rows.
    const at = transposeA ? transpose(backend, a3, [0, 2, 1]) : a3;
    const bt = transposeB ? transpose(backend, b3, [0, 2, 1]) : b3;
    const out = xnn(view(at, [1, batchA * m, k]), view(bt, [1, k, n]));
    if (at !== a3) dispose(backend, at);
    if (bt !== b3) dispose(backend, bt);
    out.shape = [...outer, m, n];
    return out;
  }
  if (m * k * n < perItemMinMacs) return null;
  const at = transposeA ? transpose(backend, a3, [0, 2, 1]) : a3;
  const bt = transposeB ? transpose(backend, b3, [0, 2, 1]) : b3;
  const out = backend.makeOutput([...outer, m, n], 'float32');
  const aItem = backend.makeOutput([1, m, k], 'float32');
  const aIndex = broadcastIndex(outer, aOuter), bIndex = broadcastIndex(outer, bOuter);
  const mk = m * k, kn = k * n, mn = m * n;
  for (let i = 0; i < batch; i++) {
    // XNNPACK's packed right operand is cached under the tensor id: each item gets a fresh one.
    const bItem = backend.makeOutput([1, k, n], 'float32');
    const ai = aIndex(i), bi = bIndex(i);
    (backend.typedArrayFromHeap(aItem) as Float32Array).set(
      (backend.typedArrayFromHeap(at) as Float32Array).subarray(ai * mk, ai * mk + mk));
    (backend.typedArrayFromHeap(bItem) as Float32Array).set(
      (backend.typedArrayFromHeap(bt) as Float32Array).subarray(bi * kn, bi * kn + kn));
    const o = xnn(aItem, bItem);
    (backend.typedArrayFromHeap(out) as Float32Array).set(backend.typedArrayFromHeap(o) as Float32Array, i * mn);
    dispose(backend, o, bItem);
  }
  dispose(backend, aItem);
  if (at !== a3) dispose(backend, at);
  if (bt !== b3) dispose(backend, bt);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tile

/**
 * tile(x, reps) by block copies on the heap: the innermost dims that are not repeated are copied
 * as contiguous runs, and each repeated dim is filled by copying the block just written (doubling
 * with copyWithin). The package's C kernel computes every element's source index alone, about
 * 60 ns per element (15 ms to tile layer-norm statistics over 64 x 65 tokens x 64).
 */
function tile(backend: WasmBackend, x: tf.TensorInfo, reps: number[]): tf.TensorInfo {
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  // Dims from `inner` on are not repeated: x's runs of `run` elements are copied whole.
  let inner = rank;
  while (inner > 0 && reps[inner - 1] === 1) inner--;
  const run = tf.util.sizeFromShape(x.shape.slice(inner));
  const inStride = new Array<number>(rank + 1).fill(1), outStride = new Array<number>(rank + 1).fill(1);
  for (let i = rank - 1; i >= 0; i--) {
    inStride[i] = inStride[i + 1] * x.shape[i];
    outStride[i] = outStride[i + 1] * outShape[i];
  }
  const fill = (dim: number, src: number, dst: number): void => {
    if (dim === inner) {
      ov.set(xv.subarray(src, src + run), dst);
      return;
    }
    for (let i = 0; i < x.shape[dim]; i++) fill(dim + 1, src + i * inStride[dim + 1], dst + i * outStride[dim + 1]);
    const block = x.shape[dim] * outStride[dim + 1];
    const total = block * reps[dim];
    for (let done = block; done < total; done *= 2) ov.copyWithin(dst + done, dst, dst + Math.min(done, total - done));
  };
  fill(0, 0, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tile gradient (any backend)

/**
 * The gradient of tile(x, reps): dy reshaped to [reps0, x0, reps1, x1, ...] and summed over the
 * reps axes. tfjs-core's own gradient adds one slice of dy per repetition, prod(reps) slice+add
 * pairs: tf.layers.layerNormalization tiles its statistics and its gamma/beta over batch x tokens,
 * so a ViT at batch 64 spent seconds per step in those loops.
 */
function tileGrad(dy: tf.Tensor, xShape: number[], reps: number[]): tf.Tensor {
  const split: number[] = [];
  const axes: number[] = [];
  xShape.forEach((d, i) => {
    if (reps[i] !== 1) {
      axes.push(split.length);
      split.push(reps[i]);
    }
    split.push(d);
  });
  return axes.length === 0 ? tf.reshape(dy, xShape) : tf.sum(tf.reshape(dy, split), axes);
}

let gradientsRegistered = false;

/** Register (once, for every backend: gradients are global) the faster Tile gradient. */
export function registerTrainingGradients(): void {
  if (gradientsRegistered) return;
  gradientsRegistered = true;
  tf.registerGradient({
    kernelName: tf.Tile,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { reps } = attrs as unknown as tf.TileAttrs;
      return { x: () => tileGrad(dy as tf.Tensor, x.shape, reps) };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Registration

function assertNHWC(dataFormat: string, kernel: string): void {
  if (dataFormat !== 'NHWC') {
    throw new Error(`wasm ${kernel} supports dataFormat 'NHWC' only, got '${dataFormat}'`);
  }
}

let registered = false;

/** The wasm package's own kernel that ours replaced (Conv2DBackpropInput, BatchMatMul), for benchmarks. */
export function builtinWasmKernel(name: string): tf.KernelConfig | undefined {
  return builtinKernels.get(name);
}

/** Register `name` on wasm, replacing (and keeping, as `builtin`) the package's own kernel if any. */
function replaceKernel(name: string, make: (builtin: tf.KernelConfig | undefined) => tf.KernelFunc): void {
  const builtin = tf.getKernel(name, BACKEND);
  if (builtin != null) {
    builtinKernels.set(name, builtin);
    tf.unregisterKernel(name, BACKEND);
  }
  // The built-in setup binds the wasm function the built-in kernel (our fallback) calls.
  tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: make(builtin), setupFunc: builtin?.setupFunc });
}

/** Register (once) the kernels the wasm backend needs to train conv nets and ViTs fast. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;

  replaceKernel(tf.Conv2DBackpropFilter, () => ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    assertNHWC(dataFormat, 'Conv2DBackpropFilter');
    return conv2dFilterGrad(backend as unknown as WasmBackend, x, dy, filterShape, strides, pad, dimRoundingMode);
  });

  replaceKernel(tf.Conv2DBackpropInput, (builtin) => (args) => {
    const { dy, filter } = args.inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const out = dataFormat === 'NHWC'
      ? conv2dInputGrad(args.backend as unknown as WasmBackend, dy, filter, inputShape, strides, pad, dimRoundingMode)
      : null;
    if (out != null) return out;
    if (builtin == null) throw new Error('wasm Conv2DBackpropInput: unsupported arguments');
    return builtin.kernelFunc(args);
  });

  replaceKernel(tf.BatchMatMul, (builtin) => (args) => {
    if (builtin == null) throw new Error('wasm BatchMatMul: the backend has none to build on');
    const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    return batchMatMul(args.backend as unknown as WasmBackend, a, b, transposeA, transposeB, builtin.kernelFunc)
      ?? builtin.kernelFunc(args);
  });

  replaceKernel(tf.Tile, (builtin) => (args) => {
    const { x } = args.inputs as unknown as { x: tf.TensorInfo };
    const { reps } = args.attrs as unknown as tf.TileAttrs;
    if (x.dtype === 'string' || x.dtype === 'complex64') {
      if (builtin == null) throw new Error(`wasm Tile: dtype ${x.dtype} is not supported`);
      return builtin.kernelFunc(args);
    }
    return tile(args.backend as unknown as WasmBackend, x, reps);
  });

  if (tf.getKernel(tf.UnsortedSegmentSum, BACKEND) == null) {
    tf.registerKernel({
      kernelName: tf.UnsortedSegmentSum,
      backendName: BACKEND,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x, segmentIds } = inputs as unknown as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
        const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
        return unsortedSegmentSum(backend as unknown as WasmBackend, x, segmentIds, numSegments);
      },
    });
  }
}
