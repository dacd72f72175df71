/**
 * The fused CNN engine as a training stepper: GloNet-ResNet20 models trained with SGD (momentum)
 * run their whole step in one native call (oneDNN convolutions) instead of the TF.js graph. The
 * TF.js model stays the model: its weights are copied in at the start and written back after
 * every epoch, so it saves, loads and predicts exactly as a model trained on the plain path.
 * Augmentation happens on the batch before `step`, so it applies unchanged.
 */
import { readLayerWeights, writeLayerWeights } from './layer-weights.js';
import type * as tf from '@tensorflow/tfjs';
import type { ModelMetadata } from '../model-io.js';
import type { RunConfig } from '../train/config.js';
import type { NamedArray, Stepper, StepperOptions } from '../train/stepper.js';
import { createFusedResNet20, fusedCnnInfo, type FusedCnn, type FusedCnnWeights } from './fused-cnn.js';

/**
 * The fused CNN engine applies to GloNet-ResNet20 image classifiers (any depth 6n + 2, any image
 * size) trained with SGD, when its native addon is available on this machine.
 */
export function fusedCnnApplies(meta: ModelMetadata, cfg: Pick<RunConfig, 'model' | 'arch' | 'optimizer'>): boolean {
  return cfg.model === 'resnet20' && cfg.arch === 'glonet' && meta.model === 'resnet20' && meta.arch === 'glonet' &&
    cfg.optimizer === 'sgd' && meta.task === 'classification' && meta.inputShape.length === 3 &&
    meta.truncatedFrom == null && Number.isInteger((meta.depth - 2) / 6) && meta.depth >= 8 && fusedCnnInfo().available;
}

/** The conv layers of a GloNet-ResNet of this depth, in order: `block_1` .. `block_6n`. */
function blockNames(depth: number): string[] {
  return Array.from({ length: 6 * ((depth - 2) / 6) }, (_, i) => `block_${i + 1}`);
}

export class FusedCnnStepper implements Stepper {
  readonly engine: string;
  private readonly fused: FusedCnn;
  private readonly names: string[];

  constructor(private readonly model: tf.LayersModel, meta: ModelMetadata, cfg: Pick<RunConfig, 'l2'>, opts: StepperOptions) {
    this.names = blockNames(meta.depth);
    const values = (name: string) => readLayerWeights(model, name);
    const [stemK] = values('stem');
    const [headK, headB] = values('head');
    const weights: FusedCnnWeights = {
      stem: { kernel: stemK },
      blocks: this.names.map((n) => {
        const [kernel, bias] = values(n);
        return { kernel, bias };
      }),
      head: { kernel: headK, bias: headB },
    };
    const [h, w, c] = opts.inputShape;
    this.fused = createFusedResNet20({
      inputShape: [h, w, c], classes: opts.outputs, blocksPerStage: (meta.depth - 2) / 6,
      l2: cfg.l2, lr: opts.lr, momentum: opts.momentum,
    }, weights);
    this.engine = 'fused-native-cnn';
  }

  step(x: Float32Array, y: Float32Array, rows: number): number {
    return this.fused.step(x, y, rows);
  }

  setLearningRate(lr: number): void {
    this.fused.setLearningRate(lr);
  }

  predict(x: Float32Array, rows: number): Float32Array {
    return this.fused.predict(x, rows);
  }

  syncToModel(): void {
    const w = this.fused.getWeights();
    const set = (name: string, arrays: Float32Array[]) => writeLayerWeights(this.model, name, arrays);
    set('stem', [w.stem.kernel]);
    this.names.forEach((n, i) => set(n, [w.blocks[i].kernel, w.blocks[i].bias]));
    set('head', [w.head.kernel, w.head.bias]);
  }

  async getOptimizerState(): Promise<NamedArray[]> {
    const s = this.fused.getOptimizerState();
    const a = s.accum;
    const slot = (name: string, values: Float32Array): NamedArray => ({ name: `accum/${name}`, shape: [values.length], values });
    return [
      { name: 'step', shape: [], values: Float32Array.of(s.step) },
      slot('stem/kernel', a.stem.kernel),
      ...this.names.flatMap((n, i) => [slot(`${n}/kernel`, a.blocks[i].kernel), slot(`${n}/bias`, a.blocks[i].bias)]),
      slot('head/kernel', a.head.kernel),
      slot('head/bias', a.head.bias),
    ];
  }

  async setOptimizerState(state: NamedArray[]): Promise<void> {
    const byName = new Map(state.map((s) => [s.name, s.values]));
    const get = (name: string) => {
      const v = byName.get(name);
      if (!v) throw new Error(`checkpoint: optimizer slot '${name}' is missing`);
      return v;
    };
    this.fused.setOptimizerState({
      step: get('step')[0],
      accum: {
        stem: { kernel: get('accum/stem/kernel') },
        blocks: this.names.map((n) => ({ kernel: get(`accum/${n}/kernel`), bias: get(`accum/${n}/bias`) })),
        head: { kernel: get('accum/head/kernel'), bias: get('accum/head/bias') },
      },
    });
  }

  dispose(): void {
    this.fused.dispose();
  }
}
