/**
 * The fused CNN engine (./fused-cnn.ts) as a {@link FusedEngine}: GloNet-ResNet20 models trained
 * with momentum SGD run their whole step in one native call (oneDNN convolutions). Augmentation
 * happens on the batch before `step`, so it applies unchanged.
 * Layout: `stem` [kernel], `block_1` .. `block_6n` [kernel, bias], `head` [kernel, bias].
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelMetadata } from '../model-io.js';
import type { StepperOptions } from './types.js';
import { fusedEngine, readLayers, type FusedEngine, type LayerArrays } from './fused-stepper.js';
import { createFusedResNet20, fusedCnnInfo, type FusedCnnWeights } from './fused-cnn.js';

/**
 * Whether the fused CNN engine can train this model with these options: GloNet-ResNet20 image
 * classifiers (any depth 6n + 2, any image size) trained with SGD, when the addon is built.
 */
export function fusedCnnApplies(meta: ModelMetadata, opts: Pick<StepperOptions, 'optimizer'>): boolean {
  return meta.model === 'resnet20' && meta.arch === 'glonet' && opts.optimizer === 'sgd' && meta.task === 'classification' &&
    meta.inputShape.length === 3 && meta.truncatedFrom == null && Number.isInteger((meta.depth - 2) / 6) && meta.depth >= 8 &&
    fusedCnnInfo().available;
}

const toLayers = (w: FusedCnnWeights): LayerArrays => [[w.stem.kernel], ...w.blocks.map((b) => [b.kernel, b.bias]), [w.head.kernel, w.head.bias]];

function fromLayers(a: LayerArrays): FusedCnnWeights {
  return {
    stem: { kernel: a[0][0] },
    blocks: a.slice(1, -1).map(([kernel, bias]) => ({ kernel, bias })),
    head: { kernel: a[a.length - 1][0], bias: a[a.length - 1][1] },
  };
}

export function createCnnEngine(model: tf.LayersModel, meta: ModelMetadata, opts: StepperOptions): FusedEngine {
  const blocks = (meta.depth - 2) / 6;
  const layers = ['stem', ...Array.from({ length: 6 * blocks }, (_, i) => `block_${i + 1}`), 'head'];
  const initial = readLayers(model, layers);
  const [h, w, c] = opts.inputShape;
  const fused = createFusedResNet20({
    inputShape: [h, w, c], classes: opts.outputs, blocksPerStage: blocks, l2: opts.l2, lr: opts.lr, momentum: opts.momentum,
  }, fromLayers(initial));
  return fusedEngine({ engine: 'fused-native-cnn', layers, initial, core: fused, slots: ['accum'], toLayers, fromLayers });
}
