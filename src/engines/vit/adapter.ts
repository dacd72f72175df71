/**
 * The fused ViT engine (./fused-native-vit.ts) as a {@link FusedEngine}: ViT-family models of
 * both archs (glonet, plain) trained with Adam run their whole step in one native call.
 * Layout: vitLayers() (the model's patch embedding, class token, positions, encoder layers and
 * head, in the model's order); the shape (width, heads, feed-forward width, patch, LayerNorm
 * epsilon) is read from the model's own layers, so any ViT the family builds (src/models/vit.ts,
 * `mlpDim` 2048 included) maps onto the engine.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelMetadata } from '../../model-metadata.js';
import { VIT_ARCHS, type VitArch } from '../../models/vit.js';
import type { StepperOptions } from '../types.js';
import { fusedEngine, readLayers, type FusedEngine, type LayerArrays } from '../fused-stepper.js';
import { createFusedVit, fusedVitInfo, vitLayers, type VitShape } from './fused-native-vit.js';

/**
 * Whether the fused ViT engine can train this model with these options: ViT-family image
 * classifiers of either arch (not truncated) trained with Adam, when the addon has the engine.
 */
export function fusedVitApplies(meta: ModelMetadata, opts: Pick<StepperOptions, 'optimizer'>): boolean {
  return meta.model === 'vit' && (VIT_ARCHS as readonly string[]).includes(meta.arch) && meta.task === 'classification' &&
    opts.optimizer === 'adam' && meta.inputShape.length === 3 && meta.truncatedFrom == null && fusedVitInfo().available;
}

/** The model's ViT shape, read from its layers (throws when a layer of the family is missing or differs). */
export function vitShapeOf(model: tf.LayersModel, meta: ModelMetadata): VitShape {
  const [h, w, c] = meta.inputShape;
  const kernelShape = (name: string) => model.getLayer(name).getWeights()[0].shape;
  const [pd, width] = kernelShape('patch_embed') as [number, number];
  const patch = Math.round(Math.sqrt(pd / c));
  const attn = model.getLayer('encoder_1_attn').getConfig() as { heads?: number };
  const ln = model.getLayer('encoder_1_ln1').getConfig() as { epsilon?: number };
  const mlpDim = kernelShape('encoder_1_ffn1')[1] as number;
  const classes = kernelShape('head')[1] as number;
  const shape: VitShape = {
    arch: meta.arch as VitArch, inputShape: [h, w, c], classes, depth: meta.depth, width, heads: attn.heads ?? 0, mlpDim, patch,
    lnEpsilon: ln.epsilon ?? 0,
  };
  // Every layer the engine holds must exist with the sizes of this shape.
  for (const l of vitLayers(shape)) {
    const sizes = model.getLayer(l.name).getWeights().map((t) => t.size);
    if (sizes.length !== l.sizes.length || sizes.some((s, i) => s !== l.sizes[i])) {
      throw new Error(`fused ViT engine: layer ${l.name} has weights of sizes [${sizes.join(', ')}], expected [${l.sizes.join(', ')}]`);
    }
  }
  return shape;
}

export function createVitEngine(model: tf.LayersModel, meta: ModelMetadata, opts: StepperOptions): FusedEngine {
  const shape = vitShapeOf(model, meta);
  const layers = vitLayers(shape).map((l) => l.name);
  const initial = readLayers(model, layers);
  const fused = createFusedVit({ ...shape, l2: opts.l2, lr: opts.lr }, initial);
  const same = (a: LayerArrays) => a;
  return fusedEngine({ engine: 'fused-native-vit', layers, initial, core: fused, slots: ['m', 'v'], toLayers: same, fromLayers: same });
}
