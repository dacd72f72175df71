/**
 * Fused training engine for the GloNet-ResNet20 family (src/models/resnet20.ts, arch 'glonet'):
 * stem conv3x3 (16, no bias), 6n conv3x3 + bias + ReLU blocks in three stages of 16/32/64
 * channels (stride 2 with one pixel of zero padding entering stages 2 and 3), each block output
 * global-average-pooled, the pooled vectors zero-padded to 64 and summed (the GloNet layer),
 * Dense head. Mean softmax cross-entropy on integer labels, L2 on kernels (`l2 * sum(w^2)`), and
 * SGD with momentum exactly as `tf.train.momentum(lr, momentum)` in TF.js 4.22
 * (`acc = momentum * acc + g; w = -lr * acc + w`).
 *
 * One `step()` runs forward, backward, L2 and the update in the native addon
 * native/build/Release/glonet_cnn.node (oneDNN convolutions, every core). There is no JavaScript
 * twin: when the addon is missing (oneDNN was not installed at build time) `fusedCnnInfo()` says
 * why and training uses the TF.js model.
 *
 * Weights use the TF.js layouts: conv kernels [kh, kw, in, out], Dense [in, out], so they move
 * to and from the tf.layers model unchanged. Inputs are NHWC float32 batches, as TF.js holds them.
 */
import { defaultThreads, loadAddon, type AddonLoad } from './addon.js';
import { STAGE_CHANNELS } from '../models/resnet20.js';

interface CnnAddon {
  create(params: Float32Array, accum: Float32Array, config: {
    height: number; width: number; channels: number; classes: number; blocksPerStage: number;
    threads: number; chunk: number; algorithm: number;
  }): unknown;
  step(h: unknown, x: Float32Array, y: Float32Array, rows: number, hp: Float64Array): number;
  gradients(h: unknown, x: Float32Array, y: Float32Array, rows: number, hp: Float64Array, out: Float32Array): number;
  predict(h: unknown, x: Float32Array, rows: number, out: Float32Array): void;
  kernel(h: unknown): string;
  destroy(h: unknown): void;
  info(): { isa: string; onednn: string; runtime: string; hardwareThreads: number };
}

export interface FusedCnnOptions {
  /** [height, width, channels] of an example (NHWC). */
  inputShape: [number, number, number];
  classes: number;
  /** n: two-conv blocks per stage (depth 6n + 2; 3 = ResNet20). */
  blocksPerStage: number;
  /** L2 factor on kernels (not biases): penalty `l2 * sum(w^2)`. */
  l2: number;
  lr: number;
  /** SGD momentum (0 = plain SGD). */
  momentum: number;
  /** Worker threads. Default: the available cores (at most 8). Results do not depend on it. */
  threads?: number;
  /**
   * Rows a thread processes at a time (default 16): the unit of work and of gradient summation.
   * Results depend on it only in the last bits (the order of the float sums).
   */
  chunkRows?: number;
  /**
   * 'auto' (default): Winograd F(4x4, 3x3) for the stride-1 convolutions where oneDNN has it
   * (AVX-512 CPUs), about 1.5x faster there, with float rounding that differs from a direct
   * convolution by about 1e-6 relative; 'direct': direct convolutions only.
   */
  convAlgorithm?: 'auto' | 'direct';
}

export interface ConvWeights {
  /** [kh, kw, in, out] (TF.js conv2d kernel layout). */
  kernel: Float32Array;
  bias: Float32Array;
}

export interface FusedCnnWeights {
  /** [3, 3, channels, 16]; the stem has no bias. */
  stem: { kernel: Float32Array };
  /** The 6n blocks, `block_1` .. `block_6n`. */
  blocks: ConvWeights[];
  /** [64, classes] and [classes]. */
  head: { kernel: Float32Array; bias: Float32Array };
}

export interface FusedCnnOptimizerState {
  /** Steps taken (TF.js `iterations`). */
  step: number;
  /** Momentum accumulators, in the weights' layout. */
  accum: FusedCnnWeights;
}

export interface FusedCnn {
  readonly engine: 'native';
  readonly threads: number;
  readonly parameterCount: number;
  /** oneDNN's implementations of the block convolutions, e.g. 'jit_wino_4x3:avx512_core, jit:avx512_core'. */
  readonly kernel: string;
  /**
   * One momentum-SGD step on `rows` examples (x: rows * h * w * c NHWC values, y: rows class
   * indices). Returns the mean cross-entropy plus the L2 penalty, before the update.
   */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  /** Logits, rows * classes. */
  predict(x: Float32Array, rows: number): Float32Array;
  /** Loss (with L2) at the current weights; no update. */
  evaluate(x: Float32Array, y: Float32Array, rows: number): number;
  getWeights(): FusedCnnWeights;
  setWeights(w: FusedCnnWeights): void;
  setLearningRate(lr: number): void;
  /** Gradient of the loss (with L2) for every weight; no update. */
  gradients(x: Float32Array, y: Float32Array, rows: number): FusedCnnWeights;
  getOptimizerState(): FusedCnnOptimizerState;
  setOptimizerState(s: FusedCnnOptimizerState): void;
  dispose(): void;
}

export interface FusedCnnInfo {
  available: boolean;
  /** Why the engine is unavailable. */
  reason?: string;
  /** The CPU instruction set oneDNN dispatches to ('avx512_core', 'avx2', ...). */
  isa?: string;
  /** oneDNN version the addon runs with. */
  onednn?: string;
  /** How the addon got here: 'built from source at install', 'built from source (npm prepare)', ... */
  origin?: string;
  /** Threads a default engine uses. */
  threads: number;
}

export class FusedCnnError extends Error {
  override name = 'FusedCnnError';
}

// ----- loading -----

let cached: AddonLoad<CnnAddon> | undefined;

/** The CNN addon ($GLONET_CNN_ADDON, else native/build/ of this package), loaded once. */
function loadCnnAddon(): AddonLoad<CnnAddon> {
  cached ??= loadAddon<CnnAddon>({
    name: 'glonet_cnn', engine: 'cnn', envVar: 'GLONET_CNN_ADDON', what: 'native CNN engine',
    hint: 'it needs oneDNN: `apt-get install libdnnl-dev`, then `node scripts/build-native.mjs`',
  });
  return cached;
}

/** $GLONET_CNN_ALGORITHM=direct|auto: the default convAlgorithm. */
function envAlgorithm(): 'auto' | 'direct' {
  return process.env.GLONET_CNN_ALGORITHM === 'direct' ? 'direct' : 'auto';
}

/** Whether the fused CNN engine can run here, and if not, why. */
export function fusedCnnInfo(): FusedCnnInfo {
  if (process.env.GLONET_FAST_ENGINE === 'js') {
    return { available: false, reason: 'GLONET_FAST_ENGINE=js (the CNN engine is native only)', threads: 1 };
  }
  const l = loadCnnAddon();
  if (l.addon == null) return { available: false, reason: l.reason, threads: 1 };
  const i = l.addon.info();
  return { available: true, isa: i.isa, onednn: i.onednn, origin: l.origin, threads: defaultThreads() };
}

// ----- parameter layout -----

interface View {
  name: string;
  offset: number;
  length: number;
  kernel: boolean;
}

function layout(o: FusedCnnOptions): { views: View[]; size: number } {
  const views: View[] = [];
  let off = 0;
  const add = (name: string, length: number, kernel: boolean) => {
    views.push({ name, offset: off, length, kernel });
    off += length;
  };
  add('stem.kernel', 9 * o.inputShape[2] * 16, true);
  let cin = 16;
  let b = 0;
  for (const cout of STAGE_CHANNELS) {
    for (let i = 0; i < 2 * o.blocksPerStage; i++) {
      add(`blocks[${b}].kernel`, 9 * cin * cout, true);
      add(`blocks[${b}].bias`, cout, false);
      cin = cout;
      b++;
    }
  }
  add('head.kernel', 64 * o.classes, true);
  add('head.bias', o.classes, false);
  return { views, size: off };
}

function toList(w: FusedCnnWeights): unknown[] {
  const list: unknown[] = [w?.stem?.kernel];
  for (const b of w?.blocks ?? []) list.push(b?.kernel, b?.bias);
  list.push(w?.head?.kernel, w?.head?.bias);
  return list;
}

function flatten(o: FusedCnnOptions, views: View[], w: FusedCnnWeights, dst: Float32Array, what: string): void {
  const blocks = 6 * o.blocksPerStage;
  if (w?.blocks?.length !== blocks) throw new FusedCnnError(`${what}: expected ${blocks} blocks, got ${w?.blocks?.length}`);
  const list = toList(w);
  views.forEach((v, i) => {
    const a = list[i];
    if (!(a instanceof Float32Array)) throw new FusedCnnError(`${what}: ${v.name} must be a Float32Array`);
    if (a.length !== v.length) throw new FusedCnnError(`${what}: ${v.name} has ${a.length} values, expected ${v.length}`);
  });
  views.forEach((v, i) => dst.set(list[i] as Float32Array, v.offset));
}

function unflatten(views: View[], flat: Float32Array): FusedCnnWeights {
  const part = (i: number) => flat.slice(views[i].offset, views[i].offset + views[i].length);
  const blocks: ConvWeights[] = [];
  for (let i = 1; i < views.length - 2; i += 2) blocks.push({ kernel: part(i), bias: part(i + 1) });
  return { stem: { kernel: part(0) }, blocks, head: { kernel: part(views.length - 2), bias: part(views.length - 1) } };
}

function check(o: FusedCnnOptions): void {
  const s = o.inputShape;
  if (!Array.isArray(s) || s.length !== 3 || s.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new FusedCnnError(`inputShape must be [height, width, channels] of positive integers, got ${JSON.stringify(s)}`);
  }
  if (!Number.isInteger(o.classes) || o.classes < 2) throw new FusedCnnError(`classes must be an integer >= 2, got ${o.classes}`);
  if (!Number.isInteger(o.blocksPerStage) || o.blocksPerStage < 1) {
    throw new FusedCnnError(`blocksPerStage must be a positive integer, got ${o.blocksPerStage}`);
  }
  if (!(o.l2 >= 0)) throw new FusedCnnError(`l2 must be >= 0, got ${o.l2}`);
  if (!(o.lr > 0)) throw new FusedCnnError(`lr must be > 0, got ${o.lr}`);
  if (!(o.momentum >= 0)) throw new FusedCnnError(`momentum must be >= 0, got ${o.momentum}`);
  if (o.chunkRows != null && !(Number.isInteger(o.chunkRows) && o.chunkRows >= 1 && o.chunkRows <= 4096)) {
    throw new FusedCnnError(`chunkRows must be an integer in [1, 4096], got ${o.chunkRows}`);
  }
  if (o.convAlgorithm != null && o.convAlgorithm !== 'auto' && o.convAlgorithm !== 'direct') {
    throw new FusedCnnError(`convAlgorithm must be 'auto' or 'direct', got ${String(o.convAlgorithm)}`);
  }
}

/** The fused engine for a GloNet-ResNet (depth 6n + 2) with these initial weights. */
export function createFusedResNet20(opts: FusedCnnOptions, initial: FusedCnnWeights): FusedCnn {
  check(opts);
  const load = loadCnnAddon();
  if (load.addon == null) throw new FusedCnnError(`fused CNN engine unavailable: ${load.reason}`);
  const addon = load.addon;
  const { views, size: P } = layout(opts);
  const params = new Float32Array(P);
  const accum = new Float32Array(P);
  flatten(opts, views, initial, params, 'initial weights');
  const [h, w, c] = opts.inputShape;
  const inSize = h * w * c;
  const threads = Math.max(1, Math.min(64, Math.floor(opts.threads ?? defaultThreads())));
  let handle: unknown = addon.create(params, accum, {
    height: h, width: w, channels: c, classes: opts.classes, blocksPerStage: opts.blocksPerStage,
    threads, chunk: opts.chunkRows ?? 16, algorithm: (opts.convAlgorithm ?? envAlgorithm()) === 'direct' ? 1 : 0,
  });
  const kernel = addon.kernel(handle);
  const f = Math.fround;
  let lr = opts.lr;
  let steps = 0;
  const hp = new Float64Array(3);
  const fillHp = (): Float64Array => {
    hp[0] = f(opts.l2);
    hp[1] = f(opts.momentum);
    hp[2] = f(-lr);
    return hp;
  };
  const live = (): unknown => {
    if (handle == null) throw new FusedCnnError('fused CNN engine is disposed');
    return handle;
  };
  const checkBatch = (x: Float32Array, y: Float32Array | null, rows: number): void => {
    if (!Number.isInteger(rows) || rows < 1) throw new FusedCnnError(`rows must be a positive integer, got ${rows}`);
    if (!(x instanceof Float32Array) || x.length < rows * inSize) {
      throw new FusedCnnError(`x must be a Float32Array of at least rows*h*w*c = ${rows * inSize} values`);
    }
    if (y == null) return;
    if (!(y instanceof Float32Array) || y.length < rows) throw new FusedCnnError(`y must be a Float32Array of at least ${rows} labels`);
    for (let r = 0; r < rows; r++) {
      const k = y[r];
      if (!(k >= 0 && k < opts.classes && Number.isInteger(k))) {
        throw new RangeError(`label ${k} at row ${r} is not a class index in [0, ${opts.classes})`);
      }
    }
  };
  const predict = (x: Float32Array, rows: number): Float32Array => {
    checkBatch(x, null, rows);
    const out = new Float32Array(rows * opts.classes);
    addon.predict(live(), x, rows, out);
    return out;
  };

  return {
    engine: 'native',
    threads,
    parameterCount: P,
    kernel,
    step(x, y, rows) {
      checkBatch(x, y, rows);
      const loss = addon.step(live(), x, y, rows, fillHp());
      steps++;
      return loss;
    },
    predict,
    evaluate(x, y, rows) {
      checkBatch(x, y, rows);
      const logits = predict(x, rows);
      const K = opts.classes;
      let ce = 0;
      for (let r = 0; r < rows; r++) {
        let mx = -Infinity;
        for (let k = 0; k < K; k++) mx = Math.max(mx, logits[r * K + k]);
        let se = 0;
        for (let k = 0; k < K; k++) se += Math.exp(logits[r * K + k] - mx);
        ce += Math.log(se) + mx - logits[r * K + y[r]];
      }
      let sq = 0;
      for (const v of views) {
        if (!v.kernel) continue;
        for (let i = v.offset; i < v.offset + v.length; i++) sq += params[i] * params[i];
      }
      return ce / rows + f(opts.l2) * sq;
    },
    getWeights: () => unflatten(views, params),
    setWeights(wts) {
      flatten(opts, views, wts, params, 'setWeights');
    },
    setLearningRate(x) {
      if (!(x > 0)) throw new FusedCnnError(`lr must be > 0, got ${x}`);
      lr = x;
    },
    gradients(x, y, rows) {
      checkBatch(x, y, rows);
      const g = new Float32Array(P);
      addon.gradients(live(), x, y, rows, fillHp(), g);
      return unflatten(views, g);
    },
    getOptimizerState: () => ({ step: steps, accum: unflatten(views, accum) }),
    setOptimizerState(s) {
      if (!Number.isInteger(s?.step) || s.step < 0) throw new FusedCnnError(`optimizer step must be >= 0, got ${s?.step}`);
      const a = new Float32Array(P);
      flatten(opts, views, s.accum, a, 'optimizer state');
      accum.set(a);
      steps = s.step;
    },
    dispose() {
      if (handle != null) addon.destroy(handle);
      handle = null;
    },
  };
}
