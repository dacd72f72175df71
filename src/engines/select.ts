/**
 * Which engine trains a run: the one decision, made here from the model (its family, arch and
 * shape, recorded in its metadata), the run's optimizer and what this machine has built.
 *
 *   family    arch            optimizer  engine                          when
 *   mlp       all five        adam       fused-native, else fused-js     always (the JS twins need nothing)
 *   resnet20  all five        sgd, adam  fused-native-cnn                the oneDNN addon is built
 *   vit       glonet, plain   adam       fused-native-vit                the MLP addon is built (it holds the ViT engine)
 *   anything else                        tfjs
 *
 * `--fast off` (cfg.fast) forces tfjs. Training (src/train) imports only this module's functions
 * and ./types.ts from src/engines.
 */
import type * as tf from '@tensorflow/tfjs';
import { createCnnEngine, fusedCnnApplies } from './cnn/adapter.js';
import { FusedStepper } from './fused-stepper.js';
import { createMlpEngine, fusedMlpApplies } from './mlp/adapter.js';
import { TfjsStepper } from './tfjs.js';
import { createVitEngine, fusedVitApplies } from './vit/adapter.js';
import type { Stepper, StepperOptions } from './types.js';

/** The stepper that trains this model: a fused engine where one applies, else TF.js. */
export function createStepper(model: tf.LayersModel, meta: ModelMetadata, opts: StepperOptions, fast: 'auto' | 'off'): Stepper {
  if (fast !== 'off') {
    if (fusedMlpApplies(meta, opts)) return new FusedStepper(model, createMlpEngine(model, meta, opts));
    if (fusedCnnApplies(meta, opts)) return new FusedStepper(model, createCnnEngine(model, meta, opts));
    if (fusedVitApplies(meta, opts)) return new FusedStepper(model, createVitEngine(model, meta, opts));
  }
  return new TfjsStepper(model, opts);
}

export { fastPathInfo } from './mlp/pick-core.js';
export { fusedCnnInfo } from './cnn/fused-native-cnn.js';
export { fusedVitInfo } from './vit/fused-native-vit.js';
import type { ModelMetadata } from '../model-metadata.js';
