/**
 * The seam between training and the engines that run its steps. Training (src/train) drives a
 * {@link Stepper}; which one a run gets is decided once, in ./select.ts.
 *
 * Engines, by name (what metrics.json, the report and `glonet info` print):
 *   tfjs              the TF.js model itself, with a TF.js optimizer, on the active backend
 *   fused-native      the fused MLP engines (every MLP arch), native addon (C++, SIMD, every core)
 *   fused-js          the fused MLP engines' portable JavaScript twins (no compiler at install)
 *   fused-native-cnn  the fused ResNet20 engine, native addon on oneDNN
 */
import type { Task } from '../data/dataset.js';

export const ENGINE_NAMES = ['tfjs', 'fused-native', 'fused-js', 'fused-native-cnn'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export type OptimizerName = 'adam' | 'sgd';

/** A named float array: optimizer slots and checkpoint contents. */
export interface NamedArray {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface Stepper {
  readonly engine: EngineName;
  /**
   * One optimization step on `rows` examples; returns the batch's training objective before the
   * update: mean data loss plus the L2 penalty (what Keras' trainOnBatch reports).
   */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  setLearningRate(lr: number): void;
  /** Raw model outputs (regression values or logits), `rows * outputs` values. */
  predict(x: Float32Array, rows: number): Float32Array;
  /** Make the TF.js model's weights current. */
  syncToModel(): void;
  getOptimizerState(): Promise<NamedArray[]>;
  setOptimizerState(state: NamedArray[]): Promise<void>;
  dispose(): void;
}

/** What every engine needs to know about a run beyond its model. */
export interface StepperOptions {
  task: Task;
  outputs: number;
  inputShape: number[];
  optimizer: OptimizerName;
  lr: number;
  /** SGD momentum (ignored by Adam). */
  momentum: number;
  /** L2 coefficient on kernels: penalty = l2 * sum(w^2). */
  l2: number;
}
