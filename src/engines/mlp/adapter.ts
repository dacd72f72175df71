/**
 * The fused MLP engines as {@link FusedEngine}s: every MLP arch trained with Adam runs its whole
 * step in one native (or JavaScript) call instead of hundreds of TF.js ops.
 *   glonet         ./glonet-mlp.ts; layout `stem`, the blocks `block_1` .. `block_n`, (with
 *                  --block-scale) their scales `block_1_scale` .. `block_n_scale`, `head`: Dense
 *                  layers [kernel, bias], BlockScale layers [scale]
 *   vanilla, vanilla-nobn, resnetv2, resnetv2-nobn, glonet-bn
 *                  ./block-mlp.ts; layout `stem`, per block b [`block_b_bn1`],
 *                  `block_b_dense1`, [`block_b_bn2`], `block_b_dense2` (glonet-bn: `block_b_dense`,
 *                  `block_b_bn`), then `head`: Dense
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

const BLOCK_ARCHS = ['glonet-bn', 'vanilla', 'vanilla-nobn', 'resnetv2', 'resnetv2-nobn'];

/** Whether the fused MLP engines can train this model with these options (GloNet: with or without block scales). */
export function fusedMlpApplies(meta: ModelMetadata, opts: Pick<StepperOptions, 'optimizer'>): boolean {
  const nf = meta.normFree ?? {};
  const onlyScales = nf.weightStd == null && nf.centerBlocks == null && (nf.blockScale == null || meta.arch === 'glonet');
  return meta.model === 'mlp' && (meta.arch === 'glonet' || BLOCK_ARCHS.includes(meta.arch)) &&
    meta.truncatedFrom == null && onlyScales && opts.optimizer === 'adam';
}

/** Whether a GloNet MLP has block scales. */
const scaled = (meta: Pick<ModelMetadata, 'normFree'>) => meta.normFree?.blockScale != null && meta.normFree.blockScale !== 'none';

/** The model's layers a fused MLP engine holds, in its order. */
export function mlpEngineLayers(meta: Pick<ModelMetadata, 'arch' | 'depth' | 'blockLayers' | 'normFree'>): string[] {
  const blocks = (suffix: string) => Array.from({ length: meta.depth }, (_, i) => `block_${i + 1}${suffix}`);
  if (meta.arch === 'glonet') return ['stem', ...blocks(''), ...(scaled(meta) ? blocks('_scale') : []), 'head'];
  if (meta.arch === 'glonet-bn') return ['stem', ...Array.from({ length: meta.depth }, (_, i) => [`block_${i + 1}_dense`, `block_${i + 1}_bn`]).flat(), 'head'];
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
  return meta.arch === 'glonet' ? glonetEngine(model, layers, opts, scaled(meta)) : blockEngine(model, meta, layers, opts);
}

const nIn = (opts: StepperOptions) => opts.inputShape.reduce((a, b) => a * b, 1);
const lossOf = (opts: StepperOptions) => (opts.task === 'regression' ? 'mse' as const : 'softmax-ce' as const);

function glonetEngine(model: tf.LayersModel, layers: string[], opts: StepperOptions, withScales: boolean): FusedEngine {
  // Layers: stem, the L blocks, (with scales) the L scale layers, head.
  const L = withScales ? (layers.length - 2) / 2 : layers.length - 2;
  const toLayers = (w: FusedMlpWeights): LayerArrays => [
    ...[w.stem, ...w.blocks].map((d) => [d.kernel, d.bias]),
    ...(withScales ? Array.from(w.scales!, (a) => [Float32Array.of(a)]) : []),
    [w.head.kernel, w.head.bias],
  ];
  const fromLayers = (a: LayerArrays): FusedMlpWeights => {
    const dense = ([kernel, bias]: Float32Array[]): DenseWeights => ({ kernel, bias });
    return {
      stem: dense(a[0]), blocks: a.slice(1, 1 + L).map(dense), head: dense(a[a.length - 1]),
      ...(withScales ? { scales: Float32Array.from(a.slice(1 + L, 1 + 2 * L), ([s]) => s[0]) } : {}),
    };
  };
  const initial = readLayers(model, layers);
  const weights = fromLayers(initial);
  const fused = createFusedMlp({
    nIn: nIn(opts), width: weights.stem.bias.length, depth: weights.blocks.length,
    nOut: opts.outputs, loss: lossOf(opts), l2: opts.l2, lr: opts.lr, blockScale: withScales,
  }, weights);
  return fusedEngine({
    engine: fused.engine === 'native' ? 'fused-native' : 'fused-js',
    layers, initial, core: fused, slots: ['m', 'v'], toLayers, fromLayers,
  });
}

function blockEngine(model: tf.LayersModel, meta: ModelMetadata, layers: string[], opts: StepperOptions): FusedEngine {
  const initial = readLayers(model, layers);
  const sum = meta.arch === 'glonet-bn';
  const fused = createFusedBlockMlp({
    nIn: nIn(opts), width: initial[0][1].length, blocks: sum ? meta.depth : meta.depth / 2, nOut: opts.outputs, loss: lossOf(opts),
    bn: !meta.arch.endsWith('-nobn'), skip: meta.arch.startsWith('resnetv2'), sum, l2: opts.l2, lr: opts.lr,
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
