/**
 * Fused training engine for the paper's two-layer-block MLP baselines (src/models/mlp.ts):
 * vanilla, vanilla-nobn, resnetv2 and resnetv2-nobn. Stem Dense (linear), n/2 blocks
 * `W2 relu(BN2(W1 relu(BN1(x))))` (plus x for resnetv2; no BN for -nobn), head Dense (linear) on
 * the last output. With `sum`, glonet-bn: n one-layer blocks `relu(BN(x K + b))`, the head on the
 * sum of their outputs (GloNet with the batch normalization the paper removes). Loss MSE or softmax cross-entropy on integer labels, L2 on kernels only (TF.js
 * `regularizers.l2` semantics), Adam exactly as `tf.train.adam(lr)` in TF.js 4.22 on every
 * trainable array (kernels, biases, BN gamma and beta).
 *
 * Batch normalization is TF.js 4.22's BatchNormalization layer (epsilon and momentum as the
 * model's layers have them; 1e-3 and 0.99 by default): in training, the batch mean and the biased
 * batch variance (tf.moments), with gradients through both; after every training step the moving
 * statistics move as the layer moves them (`moving -= (moving - batch) * (1 - momentum)`, float32);
 * `predict` and `evaluate` normalize with the moving statistics, as the layer does in inference.
 *
 * Weights go in and out as the model's layers have them: the layers stem, per block
 * [block_b_bn1], block_b_dense1, [block_b_bn2], block_b_dense2 (glonet-bn: block_b_dense,
 * block_b_bn), then head, each one's arrays in its getWeights() order (Dense: kernel, bias; BN:
 * gamma, beta, moving mean, moving variance).
 * Optimizer slots hold the trainable arrays only (BN: gamma, beta).
 *
 * One `step()` runs the whole training step: the native engine (native/src/mlp/block_mlp.cc; AVX2/FMA
 * when the CPU has it, every core, bitwise the same for any thread count) when built, otherwise
 * the JavaScript twin (./fused-js-block.ts), which agrees with it up to float rounding.
 */
import type { Protocol } from '../../vocabulary.js';
import type { LayerArrays } from '../fused-stepper.js';
import { blockLayout, createBlockJsCore, type BlockLayout, type BlockMlpShape } from './fused-js-block.js';
import { createNativeBlockCore } from './fused-native.js';
import { AdamClock } from '../adam-clock.js';
import { adamBuffers, checkMlpOptions, coreCalls, FusedMlpError, type FusedMlpEngineOptions } from './core.js';
import { kernelSquares } from './js-kernels.js';
import { pickCore } from './pick-core.js';

export interface FusedBlockMlpOptions extends Omit<BlockMlpShape, 'epsilon' | 'decay'>,
  FusedMlpEngineOptions, Pick<Protocol, 'l2' | 'lr'> {
  /** BN epsilon (default 1e-3, TF.js's). */
  bnEpsilon?: number;
  /** BN momentum of the moving statistics (default 0.99, TF.js's). */
  bnMomentum?: number;
}

interface FusedBlockMlpOptimizerState {
  /** Adam steps taken (TF.js `iterations`). */
  step: number;
  /** Per layer, its trainable arrays (Dense: kernel, bias; BN: gamma, beta). */
  m: LayerArrays;
  v: LayerArrays;
}

interface FusedBlockMlp {
  readonly engine: 'native' | 'js';
  readonly threads: number;
  /** Trainable parameters (the model's countParams() less the BN moving statistics). */
  readonly parameterCount: number;
  /** One Adam step; returns the batch loss plus the L2 penalty before the update (trainOnBatch's). */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  /** Outputs, rows x nOut, in inference mode (moving statistics). */
  predict(x: Float32Array, rows: number): Float32Array;
  /** Every layer's weights, in getWeights() order (copies). */
  getWeights(): LayerArrays;
  setLearningRate(lr: number): void;
  /**
   * Gradient of the training-mode loss (with L2) with respect to every trainable array, per layer;
   * the loss with L2 as `loss`. Changes nothing (not even the moving statistics).
   */
  gradients(x: Float32Array, y: Float32Array, rows: number): { loss: number; grads: LayerArrays };
  /** Inference-mode loss (moving statistics) plus the L2 penalty: forward only. */
  evaluate(x: Float32Array, y: Float32Array, rows: number): number;
  getOptimizerState(): FusedBlockMlpOptimizerState;
  setOptimizerState(s: FusedBlockMlpOptimizerState): void;
  /** As {@link FusedMlp.flushStates}. */
  flushStates(): Array<boolean | null>;
  dispose(): void;
}

function checkShape(o: FusedBlockMlpOptions): BlockMlpShape {
  checkMlpOptions(o, ['nIn', 'width', 'blocks', 'nOut'] as const);
  const epsilon = o.bnEpsilon ?? 1e-3;
  const momentum = o.bnMomentum ?? 0.99;
  if (!(epsilon > 0)) throw new FusedMlpError(`bnEpsilon must be > 0, got ${epsilon}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new FusedMlpError(`bnMomentum must be in [0, 1], got ${momentum}`);
  if (o.sum && (!o.bn || o.skip)) throw new FusedMlpError('sum (glonet-bn) needs bn and no skip');
  return {
    nIn: o.nIn, width: o.width, blocks: o.blocks, nOut: o.nOut, loss: o.loss, bn: o.bn, skip: o.skip, sum: o.sum === true,
    epsilon: Math.fround(epsilon), decay: Math.fround(1 - momentum),
  };
}

/** Per-layer arrays to the flat vectors (validating every size first), and back. */
function layerCodec(lay: BlockLayout) {
  const check = (a: LayerArrays, what: string, withMoving: boolean): void => {
    if (!Array.isArray(a) || a.length !== lay.layers.length) {
      throw new FusedMlpError(`${what}: expected ${lay.layers.length} layers, got ${Array.isArray(a) ? a.length : typeof a}`);
    }
    lay.layers.forEach((l, i) => {
      const sizes = [...l.params, ...(withMoving ? l.moving : [])].map(([, n]) => n);
      if (a[i]?.length !== sizes.length) throw new FusedMlpError(`${what}: layer ${i} has ${a[i]?.length} arrays, expected ${sizes.length}`);
      sizes.forEach((n, j) => {
        if (!(a[i][j] instanceof Float32Array) || a[i][j].length !== n) {
          throw new FusedMlpError(`${what}: layer ${i} array ${j} has ${a[i][j]?.length} values, expected ${n}`);
        }
      });
    });
  };
  return {
    /** Trainable arrays (and with `moving`, the BN moving statistics) into the flat vectors. */
    write(a: LayerArrays, what: string, params: Float32Array, moving: Float32Array | null): void {
      check(a, what, moving != null);
      lay.layers.forEach((l, i) => {
        l.params.forEach(([o], j) => params.set(a[i][j], o));
        if (moving) l.moving.forEach(([o], j) => moving.set(a[i][l.params.length + j], o));
      });
    },
    read(params: Float32Array, moving: Float32Array | null): LayerArrays {
      return lay.layers.map((l) => [
        ...l.params.map(([o, n]) => params.slice(o, o + n)),
        ...(moving ? l.moving.map(([o, n]) => moving.slice(o, o + n)) : []),
      ]);
    },
  };
}

export function createFusedBlockMlp(opts: FusedBlockMlpOptions, initial: LayerArrays): FusedBlockMlp {
  const shape = checkShape(opts);
  const lay = blockLayout(shape);
  const codec = layerCodec(lay);
  const P = lay.size;
  const { params, m, v } = adamBuffers(P);
  const moving = new Float32Array(lay.movingSize);
  codec.write(initial, 'initial weights', params, moving);

  const clock = new AdamClock(opts.lr, opts.l2, opts.beta1, opts.beta2, opts.epsilon);
  const { core, threads } = pickCore(opts, 64,
    () => createBlockJsCore(shape, params, m, v, moving),
    (addon, t) => createNativeBlockCore(addon, shape, params, m, v, moving, t));
  const { checkBatch, ...calls } = coreCalls(core, clock, shape);
  const l2Penalty = (): number => Math.fround(opts.l2) * kernelSquares(lay.segments, params);

  return {
    engine: core.engine,
    threads,
    parameterCount: P,
    ...calls,
    getWeights: () => codec.read(params, moving),
    gradients(x, y, rows) {
      checkBatch(x, y, rows);
      const g = new Float32Array(P);
      const loss = core.gradients(x, y, rows, clock.scalars(), g);
      return { loss, grads: codec.read(g, null) };
    },
    evaluate(x, y, rows) {
      checkBatch(x, y, rows);
      return core.loss(x, y, rows) + l2Penalty();
    },
    getOptimizerState: () => ({ step: clock.steps, m: codec.read(m, null), v: codec.read(v, null) }),
    setOptimizerState(s) {
      if (!Number.isInteger(s.step) || s.step < 0) throw new FusedMlpError(`optimizer step must be >= 0, got ${s.step}`);
      const m2 = new Float32Array(P);
      const v2 = new Float32Array(P);
      codec.write(s.m, 'optimizer state m', m2, null);
      codec.write(s.v, 'optimizer state v', v2, null);
      m.set(m2);
      v.set(v2);
      clock.reset(s.step);
    },
  };
}
