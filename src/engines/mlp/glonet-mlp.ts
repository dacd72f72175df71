/**
 * Fused training engine for the GloNet MLP: stem Dense(nIn -> W) (linear), n blocks
 * `x -> relu(x K_l + b_l)`, GloNet layer = sum of the n block outputs (with `blockScale`, each
 * times a learnable scalar a_l: the model's BlockScale layers), head Dense(W -> nOut)
 * (linear). Loss MSE or softmax cross-entropy on integer labels, L2 on every kernel
 * (`l2 * sum(w^2)`, TF.js `regularizers.l2` semantics), Adam exactly as `tf.train.adam(lr)` in
 * TF.js 4.22 (bias correction through float32 running products beta^t, epsilon outside the square
 * root: `w -= lr * m^ / (sqrt(v^) + eps)`).
 *
 * One `step()` runs the whole training step. The native engine (C++ addon, AVX2/FMA when the CPU
 * has it, every core) is used when built; otherwise a single-threaded JavaScript engine with the
 * same algorithm and results up to float rounding. Kernels use the TF.js Dense layout:
 * [inUnits, outUnits], row-major, y = x K + b, so weights move to and from a tf.layers model
 * unchanged.
 *
 * Determinism: the same initial weights, engine (and SIMD kernels), options and batches give
 * bitwise the same losses and weights. The native engine cuts each batch into fixed tiles of
 * `tileRows` rows and sums their gradients and losses in a fixed order (tile order within each
 * half of the batch, then the halves), so its results do not depend on `threads`, on the
 * adaptive default, or on how the OS schedules the threads. The native and
 * JavaScript engines (and the AVX2 and portable kernels) agree to rounding, not bitwise.
 */
import type { Protocol } from '../../vocabulary.js';
import { AdamClock } from '../adam-clock.js';
import { adamBuffers, checkMlpOptions, coreCalls, FusedMlpError, type FusedLoss, type FusedMlpEngineOptions } from './core.js';
import { createJsCore, paramLayout, type MlpShape, type ParamLayout } from './fused-js.js';
import { createNativeCore } from './fused-native.js';
import { kernelSquares } from './js-kernels.js';
import { pickCore } from './pick-core.js';

export type { FusedLoss } from './core.js';

/** One Dense layer's weights in the TF.js layout. */
export interface DenseWeights {
  /** [inUnits, outUnits], row-major (TF.js Dense kernel layout). */
  kernel: Float32Array;
  /** [outUnits]. */
  bias: Float32Array;
}

/** Every weight of a GloNet MLP, layer by layer. */
export interface FusedMlpWeights {
  /** The linear stem, Dense(nIn -> width). */
  stem: DenseWeights;
  /** The blocks, relu(x K + b), each Dense(width -> width). */
  blocks: DenseWeights[];
  /** The linear head, Dense(width -> nOut), reading the sum of the block outputs. */
  head: DenseWeights;
  /** With `blockScale`: the depth scalars a_l of the block outputs in the sum. */
  scales?: Float32Array;
}

/** The GloNet MLP a fused engine trains, and its loss and optimizer (Adam). */
export interface FusedMlpOptions extends FusedMlpEngineOptions, Pick<Protocol, 'l2' | 'lr'> {
  /** Inputs per example. */
  nIn: number;
  /** Units of the stem and of every block. */
  width: number;
  /** Number of GloNet blocks (>= 1). */
  depth: number;
  /** Outputs: 1 (or more) regression targets, or the number of classes. */
  nOut: number;
  /** 'mse' or 'softmax-ce'. */
  loss: FusedLoss;
  /** A learnable scalar on each block's term of the sum (the weights then have `scales`). Default false. */
  blockScale?: boolean;
}

/** Adam's state, for checkpoints. */
export interface FusedMlpOptimizerState {
  /** Adam steps taken (TF.js `iterations`). */
  step: number;
  /** First moments, in the weights' layout. */
  m: FusedMlpWeights;
  /** Second moments, in the weights' layout. */
  v: FusedMlpWeights;
}

/** A GloNet MLP training on a fused engine: each call runs a whole step on its own copy of the weights. */
export interface FusedMlp {
  /** The engine in use: the native addon or the JavaScript twin. */
  readonly engine: 'native' | 'js';
  /** Threads the native engine uses (1 for the JavaScript engine). */
  readonly threads: number;
  /** Number of weights. */
  readonly parameterCount: number;
  /**
   * One Adam step on a batch of `rows` rows (x: rows x nIn; y: rows x nOut targets for MSE, or
   * rows class indices for softmax-ce). Returns the batch loss including the L2 penalty, computed
   * before the update (what TF.js `model.trainOnBatch` reports).
   */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  /** Outputs, rows x nOut (regression values, or logits for softmax-ce). */
  predict(x: Float32Array, rows: number): Float32Array;
  /** A copy of the current weights. */
  getWeights(): FusedMlpWeights;
  /** Replaces the weights (shapes must match). */
  setWeights(w: FusedMlpWeights): void;
  /** The learning rate of the following steps. */
  setLearningRate(lr: number): void;
  /** Gradient of the loss (with L2) with respect to every weight; no update. */
  gradients(x: Float32Array, y: Float32Array, rows: number): FusedMlpWeights;
  /** Loss (with L2) of a batch at the current weights: forward only, no update. */
  evaluate(x: Float32Array, y: Float32Array, rows: number): number;
  /** Adam's step count and moments. */
  getOptimizerState(): FusedMlpOptimizerState;
  /** Restores a state from {@link FusedMlp.getOptimizerState}. */
  setOptimizerState(s: FusedMlpOptimizerState): void;
  /**
   * Whether each of the engine's threads computes with subnormal floats flushed to zero ([the
   * calling thread during its last step, helper 1, ...]; null where not known). The native engine
   * flushes them (on Intel cores a subnormal costs about a hundred cycles); JavaScript cannot: [false].
   */
  flushStates(): Array<boolean | null>;
  /** Frees the engine (the native engine's threads and buffers); the object is unusable after. */
  dispose(): void;
}

function checkShape(o: FusedMlpOptions): MlpShape {
  checkMlpOptions(o, ['nIn', 'width', 'depth', 'nOut'] as const);
  return { nIn: o.nIn, width: o.width, depth: o.depth, nOut: o.nOut, loss: o.loss, scales: o.blockScale === true };
}

/** Tensor views [name, offset, length] over a flat vector, in TF.js weight order. */
function tensors(s: MlpShape, lay: ParamLayout): Array<[string, number, number]> {
  const W = s.width;
  const t: Array<[string, number, number]> = [
    ...(s.scales ? [['scales', lay.scale, s.depth] as [string, number, number]] : []),
    ['stem.kernel', lay.stemKernel, s.nIn * W], ['stem.bias', lay.stemBias, W]];
  for (let l = 0; l < s.depth; l++) {
    const o = lay.blocks + lay.blockStride * l;
    t.push([`blocks[${l}].kernel`, o, W * W], [`blocks[${l}].bias`, o + W * W, W]);
  }
  t.push(['head.kernel', lay.headKernel, W * s.nOut], ['head.bias', lay.headBias, s.nOut]);
  return t;
}

function unflatten(s: MlpShape, lay: ParamLayout, flat: Float32Array): FusedMlpWeights {
  const part = (o: number, n: number): Float32Array => flat.slice(o, o + n);
  const W = s.width;
  const blocks: DenseWeights[] = [];
  for (let l = 0; l < s.depth; l++) {
    const o = lay.blocks + lay.blockStride * l;
    blocks.push({ kernel: part(o, W * W), bias: part(o + W * W, W) });
  }
  return {
    stem: { kernel: part(lay.stemKernel, s.nIn * W), bias: part(lay.stemBias, W) },
    blocks,
    head: { kernel: part(lay.headKernel, W * s.nOut), bias: part(lay.headBias, s.nOut) },
    ...(s.scales ? { scales: part(lay.scale, s.depth) } : {}),
  };
}

function flatten(s: MlpShape, lay: ParamLayout, w: FusedMlpWeights, dst: Float32Array, what: string): void {
  if (w?.blocks?.length !== s.depth) {
    throw new FusedMlpError(`${what}: expected ${s.depth} blocks, got ${w?.blocks?.length}`);
  }
  const list: Float32Array[] = [...(s.scales ? [w.scales as Float32Array] : []), w.stem.kernel, w.stem.bias];
  for (const b of w.blocks) list.push(b.kernel, b.bias);
  list.push(w.head.kernel, w.head.bias);
  const views = tensors(s, lay);
  // Validate everything before writing anything.
  views.forEach(([name, , n], i) => {
    const a = list[i];
    if (!(a instanceof Float32Array) && !Array.isArray(a)) throw new FusedMlpError(`${what}: ${name} is missing`);
    if (a.length !== n) throw new FusedMlpError(`${what}: ${name} has ${a.length} values, expected ${n}`);
  });
  views.forEach(([, o], i) => dst.set(list[i], o));
}

/**
 * A fused training engine for a GloNet MLP, starting from `initial` weights (copied): the native
 * addon when it loads (see {@link fastPathInfo}), else the JavaScript engine.
 *
 * @throws FusedMlpError on bad options or weights of the wrong size.
 * @example
 * ```ts
 * import { createFusedMlp, type DenseWeights } from 'glonet';
 * const dense = (i: number, o: number): DenseWeights => ({
 *   kernel: Float32Array.from({ length: i * o }, () => (Math.random() - 0.5) * Math.sqrt(24 / i)),
 *   bias: new Float32Array(o),
 * });
 * const mlp = createFusedMlp(
 *   { nIn: 4, width: 16, depth: 10, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01 },
 *   { stem: dense(4, 16), blocks: Array.from({ length: 10 }, () => dense(16, 16)), head: dense(16, 1) },
 * );
 * const x = Float32Array.from({ length: 64 * 4 }, Math.random);
 * const y = Float32Array.from({ length: 64 }, (_, r) => x[r * 4] - x[r * 4 + 1]);
 * for (let s = 0; s < 100; s++) mlp.step(x, y, 64);
 * console.log(mlp.engine, mlp.evaluate(x, y, 64));
 * mlp.dispose();
 * ```
 */
export function createFusedMlp(opts: FusedMlpOptions, initial: FusedMlpWeights): FusedMlp {
  const shape = checkShape(opts);
  const lay = paramLayout(shape);
  const P = lay.size;
  const { params, m, v } = adamBuffers(P);
  flatten(shape, lay, initial, params, 'initial weights');

  const clock = new AdamClock(opts.lr, opts.l2, opts.beta1, opts.beta2, opts.epsilon);
  const { core, threads } = pickCore(opts, 48,
    () => createJsCore(shape, params, m, v, opts.tileRows ?? 64),
    (addon, t) => createNativeCore(addon, shape, params, m, v, t));
  const { checkBatch, ...calls } = coreCalls(core, clock, shape);

  return {
    engine: core.engine,
    threads,
    parameterCount: P,
    ...calls,
    getWeights: () => unflatten(shape, lay, params),
    setWeights(w) {
      flatten(shape, lay, w, params, 'setWeights');
    },
    gradients(x, y, rows) {
      checkBatch(x, y, rows);
      const g = new Float32Array(P);
      core.gradients(x, y, rows, clock.scalars(), g);
      return unflatten(shape, lay, g);
    },
    evaluate(x, y, rows) {
      checkBatch(x, y, rows);
      return core.loss(x, y, rows) + (opts.l2 !== 0 ? Math.fround(opts.l2) * kernelSquares(lay.segments, params) : 0);
    },
    getOptimizerState: () => ({ step: clock.steps, m: unflatten(shape, lay, m), v: unflatten(shape, lay, v) }),
    setOptimizerState(s) {
      if (!Number.isInteger(s.step) || s.step < 0) throw new FusedMlpError(`optimizer step must be >= 0, got ${s.step}`);
      const m2 = new Float32Array(P);
      const v2 = new Float32Array(P);
      flatten(shape, lay, s.m, m2, 'optimizer state m');
      flatten(shape, lay, s.v, v2, 'optimizer state v');
      m.set(m2);
      v.set(v2);
      clock.reset(s.step);
    },
  };
}
