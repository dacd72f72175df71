/**
 * What `glonet predict` says about each row, computed a batch at a time so that the work and the
 * memory grow linearly with the rows: the predicted label and one probability per class
 * (classification), or the value in the target's units (regression); the cells that were filled
 * in or not recognised; and with `explain`, each block's additive contribution to the predicted
 * class's logit (or to the prediction), which adds up with the head's bias to exactly it.
 */
import * as tf from '@tensorflow/tfjs';
import { explain } from './explain.js';
import { blockView, type BlockView } from './blocks.js';
import type { RowNotes, UnknownLevel } from '../data/table-encoding.js';
import type { Standardization } from '../data/dataset.js';
import type { ModelMetadata } from '../model-metadata.js';
import { modelEncoding } from './model-encoding.js';

/** Rows per forward pass: large enough to be fast, small enough that memory does not grow with the input. */
export const PREDICT_BATCH = 4096;

/** One row's prediction, as `glonet predict` prints it. */
export interface PredictionRow {
  /** 1-based row of the input. */
  row: number;
  /** Regression: the prediction in the target's units. */
  prediction?: number;
  /** Regression: the target's name. */
  target?: string;
  /** Regression with an 'ln' target (SGEMM): exp(prediction), in the original units. */
  predictionExp?: number;
  /** Classification: the predicted class's name. */
  label?: string;
  /** Classification: the predicted class's index. */
  class?: number;
  /** Classification: its probability. */
  probability?: number;
  /** Classification: every class's probability, by name. */
  probabilities?: Record<string, number>;
  /** Classification: the raw outputs. */
  logits?: number[];
  /** Columns whose missing value was filled in. */
  missing?: string[];
  /** Columns whose level was not seen in training. */
  unknown?: UnknownLevel[];
  /** With explain: the head's bias and each block's contribution to the explained output. */
  explanation?: {
    /** The output explained: 'prediction', or the predicted class's logit. */
    output: string;
    /** The head's bias (for regression, in the target's units, with the target's mean). */
    bias: number;
    /** Each block's additive contribution, block 1 first. */
    blocks: number[];
  };
}

/** The model's raw outputs for every row, PREDICT_BATCH rows per forward pass. */
export function predictAll(model: tf.LayersModel, inputShape: number[], x: Float32Array, rows: number, onBatch?: (done: number) => void): Float32Array {
  const size = inputShape.reduce((a, b) => a * b, 1);
  let raw: Float32Array | undefined;
  for (let start = 0; start < rows; start += PREDICT_BATCH) {
    const n = Math.min(PREDICT_BATCH, rows - start);
    const out = tf.tidy(() => (model.predict(tf.tensor(x.subarray(start * size, (start + n) * size), [n, ...inputShape])) as tf.Tensor).dataSync() as Float32Array);
    raw ??= new Float32Array(rows * (out.length / n));
    raw.set(out, start * (out.length / n));
    onBatch?.(start + n);
  }
  return raw!;
}

function softmax(logits: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]);
  const e = Array.from(logits, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** Turns raw outputs into {@link PredictionRow}s, a batch at a time (explaining each batch when asked). */
export class Predictions {
  private readonly view: BlockView | undefined;
  private readonly classes: string[];
  private readonly scale: number;
  private readonly shift: number;
  private readonly target: Standardization['target'];

  constructor(private readonly model: tf.LayersModel, private readonly meta: ModelMetadata, private readonly explainRows: boolean) {
    this.view = explainRows ? blockView(model, meta) : undefined;
    const enc = modelEncoding(meta);
    this.classes = enc?.target.kind === 'classes' ? enc.target.classes : meta.classNames ?? Array.from({ length: meta.outputs }, (_, k) => String(k));
    const target = meta.standardization?.target;
    this.target = target;
    // Regression outputs are z-scores of the target; the map back is affine, so contributions
    // scale by std and the mean joins the bias: the sum still equals the prediction.
    this.scale = meta.task === 'regression' && target ? target.std : 1;
    this.shift = meta.task === 'regression' && target ? target.mean : 0;
  }

  /** The class names, in output order (classification). */
  get classNames(): string[] {
    return this.classes;
  }

  /**
   * Rows `start .. start + count - 1`: `raw` holds every row's outputs, `x` every row's inputs
   * (read only to explain), `notes` what happened to their cells.
   */
  rows(raw: Float32Array, x: Float32Array, start: number, count: number, notes?: Map<number, RowNotes>): PredictionRow[] {
    const out = this.meta.outputs;
    let e: ReturnType<typeof explain> | undefined;
    if (this.explainRows) {
      const size = x.length / (raw.length / out);
      const t = tf.tensor(x.subarray(start * size, (start + count) * size), [count, ...this.meta.inputShape]);
      try {
        e = explain(this.model, this.meta, t, this.view);
      } finally {
        t.dispose();
      }
    }
    const result: PredictionRow[] = [];
    for (let i = 0; i < count; i++) {
      const r = start + i;
      const logits = raw.subarray(r * out, (r + 1) * out);
      const res: PredictionRow = { row: r + 1 };
      let k = 0;
      if (this.meta.task === 'regression') {
        res.prediction = logits[0] * this.scale + this.shift;
        if (this.target) res.target = this.target.name;
        if (this.target?.transform === 'ln') res.predictionExp = Math.exp(res.prediction);
      } else {
        const p = softmax(logits);
        for (let c = 1; c < p.length; c++) if (p[c] > p[k]) k = c;
        res.label = this.classes[k];
        res.class = k;
        res.probability = p[k];
        res.probabilities = Object.fromEntries(this.classes.map((c, j) => [c, p[j]]));
        res.logits = Array.from(logits);
      }
      const n = notes?.get(r);
      if (n?.missing) res.missing = n.missing;
      if (n?.unknown) res.unknown = n.unknown;
      if (e) {
        const blocks = Array.from({ length: e.blocks }, (_, l) => e!.contributions[(i * e!.blocks + l) * out + k] * this.scale);
        res.explanation = {
          output: this.meta.task === 'regression' ? 'prediction' : `logit of class ${k} (${this.classes[k]})`,
          bias: e.bias[k] * this.scale + this.shift, blocks,
        };
      }
      result.push(res);
    }
    return result;
  }
}

/** A CSV field, quoted when it holds a separator, a quote or a line break. */
export function csvField(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The header of `glonet predict --format csv`: row, then the label and one probability per class, or the prediction; with blocks, the bias and block_1 .. block_L. */
export function csvHeader(meta: ModelMetadata, classes: string[], blocks: number): string {
  const head = meta.task === 'regression' ? ['row', 'prediction'] : ['row', 'label', 'probability', ...classes.map((c) => `p_${c}`)];
  if (blocks > 0) head.push('bias', ...Array.from({ length: blocks }, (_, l) => `block_${l + 1}`));
  return head.map(csvField).join(',');
}

/** One row of `glonet predict --format csv`. */
export function csvLine(res: PredictionRow, classes: string[]): string {
  const cells: unknown[] = res.prediction !== undefined
    ? [res.row, res.prediction]
    : [res.row, res.label, res.probability, ...classes.map((c) => res.probabilities![c])];
  if (res.explanation) cells.push(res.explanation.bias, ...res.explanation.blocks);
  return cells.map(csvField).join(',');
}
