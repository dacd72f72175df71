/**
 * The seam between training and the engines that run its steps. Training (src/train) drives a
 * {@link Stepper}; which one a run gets is decided once, in ./select.ts.
 *
 * Engines, by name (src/vocabulary.ts's ENGINE_NAMES: what metrics.json, the report and `glonet info`
 * print), and where they are:
 *   tfjs              ./tfjs.ts             the TF.js model itself, with a TF.js optimizer, on the
 *                                           active backend
 *   fused-native      ./mlp/fused-native.ts the fused MLP engines (every MLP arch), native addon
 *                                           (native/src/mlp: C++, SIMD, every core)
 *   fused-js          ./mlp/fused-js.ts,    their portable JavaScript twins (no compiler needed)
 *                     ./mlp/fused-js-block.ts
 *   fused-native-cnn  ./cnn/fused-native-cnn.ts  the fused ResNet20 engine (every arch), native
 *                                           addon on oneDNN (native/src/cnn)
 *   fused-native-vit  ./vit/fused-native-vit.ts  the fused ViT engine (both archs), in the MLP
 *                                           engines' addon (native/src/vit: C++, SIMD, every core)
 * Each fused family's folder also has its adapter (./mlp/adapter.ts, ./cnn/adapter.ts,
 * ./vit/adapter.ts: the model's
 * layers in the engine's order), and the MLP folder the public engine objects
 * (./mlp/glonet-mlp.ts, ./mlp/block-mlp.ts) over the cores ./mlp/pick-core.ts chooses between.
 */
import type { EngineName, Protocol, Task } from '../vocabulary.js';

/** A named float array: optimizer slots and checkpoint contents. */
export interface NamedArray {
  /** The variable's name (a weight's name, or an optimizer slot such as `dense/kernel/m`). */
  name: string;
  /** Its shape. */
  shape: number[];
  /** Its values, row-major. */
  values: Float32Array;
}

/** What training drives: one engine holding a model's weights and optimizer state. */
export interface Stepper {
  /** Which engine this is. */
  readonly engine: EngineName;
  /**
   * One optimization step on `rows` examples; returns the batch's training objective before the
   * update: mean data loss plus the L2 penalty (what Keras' trainOnBatch reports).
   */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  /** The learning rate of the following steps (schedules call it between epochs). */
  setLearningRate(lr: number): void;
  /** Raw model outputs (regression values or logits), `rows * outputs` values. */
  predict(x: Float32Array, rows: number): Float32Array;
  /** Make the TF.js model's weights current. */
  syncToModel(): void;
  /** The optimizer's state (step count and slots), for checkpoints. */
  getOptimizerState(): Promise<NamedArray[]>;
  /** Restores a state from {@link Stepper.getOptimizerState} (resuming a run). */
  setOptimizerState(state: NamedArray[]): Promise<void>;
  /** Frees the engine's memory (the TF.js model stays usable). */
  dispose(): void;
}

/**
 * What every engine needs to know about a run beyond its model: the task, the outputs, one
 * example's shape, and the protocol's optimizer, learning rate, momentum and L2.
 */
export interface StepperOptions extends Pick<Protocol, 'optimizer' | 'lr' | 'momentum' | 'l2'> {
  /** 'regression' (MSE) or 'classification' (softmax cross-entropy on class indices). */
  task: Task;
  /** Classes, or 1 for regression. */
  outputs: number;
  /** Shape of one example, without the batch dimension. */
  inputShape: number[];
}
