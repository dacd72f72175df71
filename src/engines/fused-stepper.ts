/**
 * Fused engines as training steppers. A fused engine runs a whole training step in one call on
 * its own copies of the weights; the TF.js model stays the model. What ties the two together is
 * described once, here: an engine holds the weights of a list of the model's layers, in order,
 * each layer's arrays in that layer's `getWeights()` order (kernel then bias; BN gamma, beta,
 * moving mean, moving variance). They are read from the model when the engine is made and written
 * back by {@link FusedStepper.syncToModel} after every epoch, so a model trained on a fused engine
 * saves, loads and predicts exactly as one trained on TF.js.
 */
import * as tf from '@tensorflow/tfjs';
import type { NamedArray, Stepper } from './types.js';
import type { EngineName } from '../vocabulary.js';

/** The per-layer arrays of a layout: `values[i][j]` is weight j of layer `layers[i]`. */
export type LayerArrays = Float32Array[][];

/** What a fused engine offers the training loop. */
export interface FusedEngine {
  readonly engine: EngineName;
  /** The model's layers whose weights the engine holds, in the engine's order. */
  readonly layers: readonly string[];
  step(x: Float32Array, y: Float32Array, rows: number): number;
  setLearningRate(lr: number): void;
  predict(x: Float32Array, rows: number): Float32Array;
  /** Current weights of `layers`, each layer's in its getWeights() order. */
  layerWeights(): LayerArrays;
  optimizerState(): NamedArray[];
  setOptimizerState(state: NamedArray[]): void;
  dispose(): void;
}

/** The current values of these layers' weights (copies). */
export function readLayers(model: tf.LayersModel, layers: readonly string[]): LayerArrays {
  return layers.map((name) => model.getLayer(name).getWeights().map((t) => (t.dataSync() as Float32Array).slice()));
}

/**
 * The momentum and epsilon of a model's BatchNormalization layers, which a fused engine takes as
 * one setting for all of them (the families build them alike); an error if they differ.
 */
export function bnSettings(model: tf.LayersModel, bnLayers: readonly string[]): { bnMomentum?: number; bnEpsilon?: number } {
  const settings = bnLayers.map((n) => model.getLayer(n).getConfig() as { momentum?: number; epsilon?: number });
  const first = settings[0];
  if (first && settings.some((s) => s.momentum !== first.momentum || s.epsilon !== first.epsilon)) {
    throw new Error('fused engine: the model\'s BatchNormalization layers differ in momentum or epsilon');
  }
  return first ? { bnMomentum: first.momentum, bnEpsilon: first.epsilon } : {};
}

/** Write per-layer arrays into the model's layers (the same sizes as their getWeights()). */
function writeLayers(model: tf.LayersModel, layers: readonly string[], values: LayerArrays): void {
  layers.forEach((name, i) => {
    const layer = model.getLayer(name);
    const shapes = layer.getWeights().map((t) => t.shape);
    if (shapes.length !== values[i].length) throw new Error(`layer ${name}: ${values[i].length} arrays for ${shapes.length} weights`);
    const tensors = values[i].map((a, j) => tf.tensor(a, shapes[j]));
    layer.setWeights(tensors); // copies the values into the layer's variables
    tensors.forEach((t) => t.dispose());
  });
}

/**
 * Optimizer slots in checkpoint form: `${slot}/${layer}/${j}` for weight j of each layer, plus
 * the step count as `step`. `slots` maps a slot name (e.g. 'm', 'v', 'accum') to per-layer arrays.
 */
function slotsToNamed(step: number, layers: readonly string[], slots: Record<string, LayerArrays>): NamedArray[] {
  const out: NamedArray[] = [{ name: 'step', shape: [], values: Float32Array.of(step) }];
  for (const [slot, values] of Object.entries(slots)) {
    layers.forEach((layer, i) => values[i].forEach((v, j) => out.push({ name: `${slot}/${layer}/${j}`, shape: [v.length], values: v })));
  }
  return out;
}

/** The inverse of {@link slotsToNamed}; `like` gives each layer's array count and sizes. */
function namedToSlots(state: NamedArray[], layers: readonly string[], slotNames: readonly string[], like: LayerArrays): { step: number; slots: Record<string, LayerArrays> } {
  const byName = new Map(state.map((s) => [s.name, s.values]));
  const get = (name: string, length: number): Float32Array => {
    const v = byName.get(name);
    if (!v) throw new Error(`checkpoint: optimizer slot '${name}' is missing`);
    if (v.length !== length) throw new Error(`checkpoint: optimizer slot '${name}' has ${v.length} values, expected ${length}`);
    return v;
  };
  const slots: Record<string, LayerArrays> = {};
  for (const slot of slotNames) slots[slot] = layers.map((layer, i) => like[i].map((w, j) => get(`${slot}/${layer}/${j}`, w.length)));
  return { step: get('step', 1)[0], slots };
}

/**
 * The parts of an engine that keeps its weights in a structure of its own (`W`), with optimizer
 * state `{ step, <slot>: W, ... }` (Adam: m and v; momentum SGD: accum).
 */
interface StructuredEngine<W, S extends { step: number }> {
  step(x: Float32Array, y: Float32Array, rows: number): number;
  setLearningRate(lr: number): void;
  predict(x: Float32Array, rows: number): Float32Array;
  getWeights(): W;
  getOptimizerState(): S;
  setOptimizerState(s: S): void;
  dispose(): void;
}

/**
 * A {@link FusedEngine} over a structured engine: `toLayers`/`fromLayers` map its structure to
 * and from the per-layer arrays of `layers`; `initial` has, per layer, the arrays an optimizer
 * slot holds (the layers' current values, or their trainable ones where a layer also has others).
 */
export function fusedEngine<W, S extends { step: number }>(o: {
  engine: EngineName;
  layers: readonly string[];
  initial: LayerArrays;
  core: StructuredEngine<W, S>;
  /** The keys of S that hold a W each. */
  slots: ReadonlyArray<Exclude<keyof S, 'step'> & string>;
  toLayers: (w: W) => LayerArrays;
  fromLayers: (a: LayerArrays) => W;
}): FusedEngine {
  const { core, layers } = o;
  return {
    engine: o.engine,
    layers,
    step: (x, y, rows) => core.step(x, y, rows),
    setLearningRate: (lr) => core.setLearningRate(lr),
    predict: (x, rows) => core.predict(x, rows),
    layerWeights: () => o.toLayers(core.getWeights()),
    optimizerState() {
      const s = core.getOptimizerState();
      return slotsToNamed(s.step, layers, Object.fromEntries(o.slots.map((k) => [k, o.toLayers(s[k] as W)])));
    },
    setOptimizerState(state) {
      const { step, slots } = namedToSlots(state, layers, o.slots, o.initial);
      core.setOptimizerState({ step, ...Object.fromEntries(o.slots.map((k) => [k, o.fromLayers(slots[k])])) } as S);
    },
    dispose: () => core.dispose(),
  };
}

export class FusedStepper implements Stepper {
  readonly engine: EngineName;

  constructor(private readonly model: tf.LayersModel, private readonly fused: FusedEngine) {
    this.engine = fused.engine;
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
    writeLayers(this.model, this.fused.layers, this.fused.layerWeights());
  }

  async getOptimizerState(): Promise<NamedArray[]> {
    return this.fused.optimizerState();
  }

  async setOptimizerState(state: NamedArray[]): Promise<void> {
    this.fused.setOptimizerState(state);
  }

  dispose(): void {
    this.fused.dispose();
  }
}
