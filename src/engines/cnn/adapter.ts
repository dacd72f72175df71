/**
 * The fused CNN engine (./fused-native-cnn.ts) as a {@link FusedEngine}: ResNet20-family models of every
 * arch (glonet with any norm-free options, glonet-bn, vanilla, vanilla-nobn, resnetv2,
 * resnetv2-nobn) trained with momentum SGD or Adam
 * run their whole step in one native call (oneDNN convolutions). Augmentation happens on the
 * batch before `step`, so it applies unchanged.
 * Layout: fusedCnnLayers() (the model's conv, BN, center, scale and head layers in the engine's
 * order); the BN layers' moving statistics and the fixed centers travel with the weights, so they
 * are written back to the model with them; optimizer slots cover the trainable arrays only.
 */
import type * as tf from '@tensorflow/tfjs';
import { RESNET20_ARCHS, type ResNet20Arch } from '../../models/resnet20.js';
import type { StepperOptions } from '../types.js';
import { bnSettings, fusedEngine, readLayers, type FusedEngine, type LayerArrays } from '../fused-stepper.js';
import { createFusedResNet20, fusedCnnInfo, fusedCnnLayers, fusedCnnSlots } from './fused-native-cnn.js';
import type { ModelMetadata } from '../../model-metadata.js';

/**
 * Whether the fused CNN engine can train this model with these options: ResNet20-family image
 * classifiers of any arch (any depth 6n + 2, any image size) trained with SGD or Adam, when the
 * addon is built.
 */
export function fusedCnnApplies(meta: ModelMetadata, _opts: Pick<StepperOptions, 'optimizer'>): boolean {
  // Both optimizers (OptimizerName: 'sgd' | 'adam') run on the engine.
  return meta.model === 'resnet20' && (RESNET20_ARCHS as readonly string[]).includes(meta.arch) && meta.task === 'classification' &&
    meta.inputShape.length === 3 && meta.truncatedFrom == null && Number.isInteger((meta.depth - 2) / 6) && meta.depth >= 8 &&
    fusedCnnInfo().available;
}

export function createCnnEngine(model: tf.LayersModel, meta: ModelMetadata, opts: StepperOptions): FusedEngine {
  const arch = meta.arch as ResNet20Arch;
  const [h, w, c] = opts.inputShape;
  const nf = meta.normFree ?? {};
  const shape = {
    arch, inputShape: [h, w, c] as [number, number, number], classes: opts.outputs, blocksPerStage: (meta.depth - 2) / 6,
    normFree: { weightStd: nf.weightStd === true, centerBlocks: nf.centerBlocks === true, blockScale: nf.blockScale != null && nf.blockScale !== 'none' },
  };
  const spec = fusedCnnLayers(shape);
  const layers = spec.map((l) => l.name);
  const initial = readLayers(model, layers);
  const fused = createFusedResNet20({
    ...shape, l2: opts.l2, optimizer: opts.optimizer, lr: opts.lr, momentum: opts.momentum,
    ...bnSettings(model, spec.filter((l) => l.kind === 'bn').map((l) => l.name)),
  }, initial);
  // The engine's weights are already per-layer arrays; its optimizer slots cover the trainable ones.
  const trainable = initial.map((arrays, i) => arrays.slice(0, spec[i].trainable));
  const same = (a: LayerArrays) => a;
  return fusedEngine({
    engine: 'fused-native-cnn', layers, initial: trainable, core: fused, slots: fusedCnnSlots(opts.optimizer), toLayers: same, fromLayers: same,
  });
}
