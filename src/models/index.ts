/** Building any model family from a run's options; what analysis needs is recorded as metadata. */
import type * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset.js';
import type { ModelMetadata } from '../model-io.js';
import { buildMlp, MLP_ARCHS, ModelConfigError, type MlpArch } from './mlp.js';

export interface BuildOptions {
  model: string;
  arch: string;
  depth: number;
  width: number;
  l2: number;
  seed: number;
}

export interface BuiltModel {
  model: tf.LayersModel;
  meta: ModelMetadata;
}

/** Names of the layers whose outputs are the blocks' outputs (the analysis unit). */
export function mlpBlockLayers(arch: MlpArch, depth: number): string[] {
  if (arch === 'glonet') return Array.from({ length: depth }, (_, i) => `block_${i + 1}`);
  const skip = arch.startsWith('resnetv2');
  return Array.from({ length: depth / 2 }, (_, i) => (skip ? `block_${i + 1}` : `block_${i + 1}_dense2`));
}

type FamilyBuilder = (o: BuildOptions, ds: Pick<Dataset, 'inputShape' | 'outputs' | 'task'>) => BuiltModel;

const families = new Map<string, FamilyBuilder>();

/** Register a model family (`--model NAME`). */
export function registerFamily(name: string, build: FamilyBuilder): void {
  families.set(name, build);
}

registerFamily('mlp', (o, ds) => {
  const model = buildMlp({ arch: o.arch as MlpArch, depth: o.depth, width: o.width, inputShape: ds.inputShape, outputs: ds.outputs, l2: o.l2, seed: o.seed });
  return {
    model,
    meta: { model: 'mlp', arch: o.arch, depth: o.depth, task: ds.task, inputShape: ds.inputShape, outputs: ds.outputs, blockLayers: mlpBlockLayers(o.arch as MlpArch, o.depth) },
  };
});

export function buildModel(o: BuildOptions, ds: Pick<Dataset, 'inputShape' | 'outputs' | 'task'>): BuiltModel {
  const build = families.get(o.model);
  if (!build) throw new ModelConfigError(`--model: expected one of ${[...families.keys()].join(', ')}, got '${o.model}'`);
  return build(o, ds);
}

export { MLP_ARCHS, ModelConfigError };

// The image families. Their modules import only types from this file, so there is no runtime
// import cycle; registering here (not in those modules) keeps `families` initialized first.
import { buildResNet20Family } from './resnet20.js';
import { buildVitFamily } from './vit.js';
registerFamily('resnet20', buildResNet20Family);
registerFamily('vit', buildVitFamily);
