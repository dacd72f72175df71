/**
 * The fused MLP engine (./fused-mlp.ts) as a {@link FusedEngine}: GloNet MLPs trained with Adam
 * run their whole step in one native (or JavaScript) call instead of hundreds of TF.js ops.
 * Layout: `stem`, the blocks (the model's block layers), `head`; each a Dense layer [kernel, bias].
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelMetadata } from '../model-io.js';
import type { StepperOptions } from './types.js';
import { fusedEngine, readLayers, type FusedEngine, type LayerArrays } from './fused-stepper.js';
import { createFusedMlp, type DenseWeights, type FusedMlpWeights } from './fused-mlp.js';

/** Whether the fused MLP engine can train this model with these options. */
export function fusedMlpApplies(meta: ModelMetadata, opts: Pick<StepperOptions, 'optimizer'>): boolean {
  return meta.model === 'mlp' && meta.arch === 'glonet' && meta.truncatedFrom == null && opts.optimizer === 'adam';
}

const toLayers = (w: FusedMlpWeights): LayerArrays => [w.stem, ...w.blocks, w.head].map((d) => [d.kernel, d.bias]);

function fromLayers(a: LayerArrays): FusedMlpWeights {
  const dense = ([kernel, bias]: Float32Array[]): DenseWeights => ({ kernel, bias });
  return { stem: dense(a[0]), blocks: a.slice(1, -1).map(dense), head: dense(a[a.length - 1]) };
}

export function createMlpEngine(model: tf.LayersModel, meta: ModelMetadata, opts: StepperOptions): FusedEngine {
  const layers = ['stem', ...meta.blockLayers, 'head'];
  const initial = readLayers(model, layers);
  const weights = fromLayers(initial);
  const fused = createFusedMlp({
    nIn: opts.inputShape.reduce((a, b) => a * b, 1), width: weights.stem.bias.length, depth: weights.blocks.length,
    nOut: opts.outputs, loss: opts.task === 'regression' ? 'mse' : 'softmax-ce', l2: opts.l2, lr: opts.lr,
  }, weights);
  return fusedEngine({
    engine: fused.engine === 'native' ? 'fused-native' : 'fused-js',
    layers, initial, core: fused, slots: ['m', 'v'], toLayers, fromLayers,
  });
}
