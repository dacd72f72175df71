/**
 * Scoring a model's outputs against targets, in float64: the one definition of the test loss,
 * the error (MSE, or 1 - accuracy) and the accuracy that training, analysis, the browser entry
 * and the page all report.
 */
import { exampleSize, type Dataset } from './data/dataset.js';
import type { Task } from './vocabulary.js';

/** A model's scores on a set of examples. */
export interface Evaluation {
  /** Mean data loss (MSE, or softmax cross-entropy). */
  loss: number;
  /** MSE (regression) or 1 - accuracy (classification). */
  error: number;
  /** Classification only: accuracy in [0, 1]. */
  accuracy?: number;
  /** Classification only: `confusion[t][p]` rows of true class t predicted as class p. */
  confusion?: number[][];
}

/** Loss and error of raw outputs against targets, computed in float64 in JavaScript. */
export function scoreOutputs(task: Task, outputs: number, pred: Float32Array, y: Float32Array, rows: number, confusion?: number[][]): {
  /** Sum over the rows of the data loss (squared error, or cross-entropy). */
  lossSum: number;
  /** Sum over the rows of the error (squared error, or 1 for a wrong class). */
  errSum: number;
  /** Classification: rows whose arg-max is the label. */
  correct: number;
} {
  let lossSum = 0;
  let errSum = 0;
  let correct = 0;
  if (task === 'regression') {
    for (let i = 0; i < rows; i++) {
      const d = pred[i] - y[i];
      lossSum += d * d;
    }
    errSum = lossSum;
  } else {
    for (let i = 0; i < rows; i++) {
      const o = i * outputs;
      let max = -Infinity;
      let arg = 0;
      for (let k = 0; k < outputs; k++) if (pred[o + k] > max) { max = pred[o + k]; arg = k; }
      let z = 0;
      for (let k = 0; k < outputs; k++) z += Math.exp(pred[o + k] - max);
      lossSum += Math.log(z) + max - pred[o + y[i]];
      if (arg === y[i]) correct++;
      if (confusion) confusion[y[i]][arg]++;
    }
  }
  return { lossSum, errSum, correct };
}

/**
 * Scores a predictor on `n` examples (`x`, `y` laid out as in a {@link Dataset}), `chunk` rows at a
 * time, in float64.
 */
export function evaluate(
  predict: (x: Float32Array, rows: number) => Float32Array,
  ds: Pick<Dataset, 'task' | 'outputs' | 'inputShape'>,
  x: Float32Array, y: Float32Array, n: number, chunk = 4096,
): Evaluation {
  const size = exampleSize(ds);
  let lossSum = 0;
  let errSum = 0;
  let correct = 0;
  const confusion = ds.task === 'classification' ? Array.from({ length: ds.outputs }, () => new Array<number>(ds.outputs).fill(0)) : undefined;
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    const pred = predict(x.subarray(start * size, (start + rows) * size), rows);
    const s = scoreOutputs(ds.task, ds.outputs, pred, y.subarray(start, start + rows), rows, confusion);
    lossSum += s.lossSum;
    errSum += s.errSum;
    correct += s.correct;
  }
  if (ds.task === 'regression') return { loss: lossSum / n, error: errSum / n };
  const accuracy = correct / n;
  return { loss: lossSum / n, error: 1 - accuracy, accuracy, confusion };
}
