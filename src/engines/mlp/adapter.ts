/**
 * The fused MLP engines as {@link FusedEngine}s: every MLP arch trained with Adam runs its whole
 * step in one native (or JavaScript) call instead of hundreds of TF.js ops.
 *   glonet         ./glonet-mlp.ts; layout `stem`, the blocks (the model's block layers), `head`,
 *                  each a Dense layer [kernel, bias]
 *   vanilla, vanilla-nobn, resnetv2, resnetv2-nobn
 *                  ./block-mlp.ts; layout `stem`, per block b [`block_b_bn1`],
 *                  `block_b_dense1`, [`block_b_bn2`], `block_b_dense2`, then `head`: Dense
 *                  [kernel, bias], BN [gamma, beta, moving mean, moving variance]; the moving
 *                  statistics go back to the model with the weights
 * Optimizer slots (m, v) cover the trainable arrays of each layer.
 */
import type * as tf from '@tensorflow/tfjs';
import type { StepperOptions } from '../types.js';
import { bnSettings, fusedEngine, readLayers, type FusedEngine, type LayerArrays } from '../fused-stepper.js';
import { createFusedMlp, type DenseWeights, type FusedMlpWeights } from './glonet-mlp.js';
import { createFusedBlockMlp } from './block-mlp.js';
import type { ModelMetadata } from '../../model-metadata.js';

const BLOCK_ARCHS = ['vanilla', 'vanilla-nobn', 'resnetv2', 'resnetv2-nobn'];

/** Whether the fused MLP engines can train this model with these options. */
export function fusedMlpApplies(meta: ModelMetadata, opts: Pick<StepperOptions, 'optimizer'>): boolean {
  return meta.model === 'mlp' && (meta.arch === 'glonet' || BLOCK_ARCHS.includes(meta.arch)) &&
    meta.truncatedFrom == null && opts.optimizer === 'adam';
}

/** The model's layers a fused MLP engine holds, in its order. */
export function mlpEngineLayers(meta: Pick<ModelMetadata, 'arch' | 'depth' | 'blockLayers'>): string[] {
  if (meta.arch === 'glonet') return ['stem', ...meta.blockLayers, 'head'];
  const bn = !meta.arch.endsWith('-nobn');
  const layers = ['stem'];
  for (let b = 1; b <= meta.depth / 2; b++) {
    for (const k of [1, 2]) {
      if (bn) layers.push(`block_${b}_bn${k}`);
      layers.push(`block_${b}_dense${k}`);
    }
  }
  return [...layers, 'head'];
}

export function createMlpEngine(model: tf.LayersModel, meta: ModelMetadata, opts: StepperOptions): FusedEngine {
  const layers = mlpEngineLayers(meta);
  return meta.arch === 'glonet' ? glonetEngine(model, layers, opts) : blockEngine(model, meta, layers, opts);
}

const nIn = (opts: StepperOptions) => opts.inputShape.reduce((a, b) => a * b, 1);
const lossOf = (opts: StepperOptions) => (opts.task === 'regression' ? 'mse' as const : 'softmax-ce' as const);

function glonetEngine(model: tf.LayersModel, layers: string[], opts: StepperOptions): FusedEngine {
  const toLayers = (w: FusedMlpWeights): LayerArrays => [w.stem, ...w.blocks, w.head].map((d) => [d.kernel, d.bias]);
  const fromLayers = (a: LayerArrays): FusedMlpWeights => {
    const dense = ([kernel, bias]: Float32Array[]): DenseWeights => ({ kernel, bias });
    return { stem: dense(a[0]), blocks: a.slice(1, -1).map(dense), head: dense(a[a.length - 1]) };
  };
  const initial = readLayers(model, layers);
  const weights = fromLayers(initial);
  const fused = createFusedMlp({
    nIn: nIn(opts), width: weights.stem.bias.length, depth: weights.blocks.length,
    nOut: opts.outputs, loss: lossOf(opts), l2: opts.l2, lr: opts.lr,
  }, weights);
  return fusedEngine({
    engine: fused.engine === 'native' ? 'fused-native' : 'fused-js',
    layers, initial, core: fused, slots: ['m', 'v'], toLayers, fromLayers,
  });
}

function blockEngine(model: tf.LayersModel, meta: ModelMetadata, layers: string[], opts: StepperOptions): FusedEngine {
  const initial = readLayers(model, layers);
  const fused = createFusedBlockMlp({
    nIn: nIn(opts), width: initial[0][1].length, blocks: meta.depth / 2, nOut: opts.outputs, loss: lossOf(opts),
    bn: !meta.arch.endsWith('-nobn'), skip: meta.arch.startsWith('resnetv2'), l2: opts.l2, lr: opts.lr,
    ...bnSettings(model, layers.filter((n) => n.includes('_bn'))),
  }, initial);
  // Optimizer slots: each layer's trainable arrays (BN: gamma and beta, not the moving statistics).
  const trainable = initial.map((arrays, i) => arrays.slice(0, layers[i].includes('_bn') ? 2 : arrays.length));
  const same = (a: LayerArrays): LayerArrays => a;
  return fusedEngine({
    engine: fused.engine === 'native' ? 'fused-native' : 'fused-js',
    layers, initial: trainable, core: fused, slots: ['m', 'v'], toLayers: same, fromLayers: same,
  });
}
