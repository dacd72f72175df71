/**
 * The fused engine as a training stepper: GloNet MLPs trained with Adam run their whole step in
 * one native (or JavaScript) call instead of hundreds of TF.js ops. The TF.js model stays the
 * model: its weights are copied in at the start and written back after every epoch, so it saves,
 * loads and predicts exactly as a model trained on the plain path.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelMetadata } from '../model-io.js';
import type { RunConfig } from '../train/config.js';
import type { NamedArray, Stepper, StepperOptions } from '../train/stepper.js';
import { readLayerWeights, writeLayerWeights } from './layer-weights.js';
import { createFusedMlp, type DenseWeights, type FusedMlp, type FusedMlpWeights } from './fused-mlp.js';

function denseOf(model: tf.LayersModel, name: string): DenseWeights {
  const [kernel, bias] = readLayerWeights(model, name);
  return { kernel, bias };
}

/** The fused engine applies to GloNet MLPs trained with Adam (any data set, any width). */
export function fusedApplies(meta: ModelMetadata, cfg: Pick<RunConfig, 'model' | 'arch' | 'optimizer'>): boolean {
  return cfg.model === 'mlp' && cfg.arch === 'glonet' && meta.arch === 'glonet' && cfg.optimizer === 'adam';
}

export class FusedStepper implements Stepper {
  readonly engine: string;
  private readonly fused: FusedMlp;
  private readonly names: string[];

  constructor(private readonly model: tf.LayersModel, meta: ModelMetadata, cfg: Pick<RunConfig, 'l2' | 'lr'>, opts: StepperOptions) {
    this.names = meta.blockLayers;
    const stem = denseOf(model, 'stem');
    const head = denseOf(model, 'head');
    const weights: FusedMlpWeights = { stem, blocks: this.names.map((n) => denseOf(model, n)), head };
    const nIn = opts.inputShape.reduce((a, b) => a * b, 1);
    this.fused = createFusedMlp({
      nIn, width: stem.bias.length, depth: this.names.length, nOut: opts.outputs,
      loss: opts.task === 'regression' ? 'mse' : 'softmax-ce', l2: cfg.l2, lr: opts.lr,
    }, weights);
    this.engine = `fused-${this.fused.engine}`;
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
    const set = (name: string, d: DenseWeights) => writeLayerWeights(this.model, name, [d.kernel, d.bias]);
    set('stem', w.stem);
    this.names.forEach((n, i) => set(n, w.blocks[i]));
    set('head', w.head);
  }

  async getOptimizerState(): Promise<NamedArray[]> {
    const s = this.fused.getOptimizerState();
    const flat = (tag: string, w: FusedMlpWeights): NamedArray[] => [
      ...[['stem', w.stem] as const, ...w.blocks.map((b, i) => [this.names[i], b] as const), ['head', w.head] as const]
        .flatMap(([n, d]) => [
          { name: `${tag}/${n}/kernel`, shape: [d.kernel.length], values: d.kernel },
          { name: `${tag}/${n}/bias`, shape: [d.bias.length], values: d.bias },
        ]),
    ];
    return [{ name: 'step', shape: [], values: Float32Array.of(s.step) }, ...flat('m', s.m), ...flat('v', s.v)];
  }

  async setOptimizerState(state: NamedArray[]): Promise<void> {
    const byName = new Map(state.map((s) => [s.name, s.values]));
    const get = (name: string) => {
      const v = byName.get(name);
      if (!v) throw new Error(`checkpoint: optimizer slot '${name}' is missing`);
      return v;
    };
    const unflat = (tag: string): FusedMlpWeights => {
      const d = (n: string): DenseWeights => ({ kernel: get(`${tag}/${n}/kernel`), bias: get(`${tag}/${n}/bias`) });
      return { stem: d('stem'), blocks: this.names.map(d), head: d('head') };
    };
    this.fused.setOptimizerState({ step: get('step')[0], m: unflat('m'), v: unflat('v') });
  }

  dispose(): void {
    this.fused.dispose();
  }
}
