/** The in-memory form every loader returns and the trainer consumes. */

export type Task = 'regression' | 'classification';

/** Per-column z-score statistics, kept with a trained model so new inputs are scaled the same. */
export interface Standardization {
  featureNames: string[];
  mean: number[];
  std: number[];
  /** Regression only: the target's name, mean and std (the model predicts the z-scored target). */
  target?: { name: string; mean: number; std: number; transform?: 'ln' };
}

export interface Dataset {
  /** 'sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'. */
  name: string;
  task: Task;
  /** Shape of one example, without the batch dimension: [14], [28, 28, 1], [32, 32, 3]. */
  inputShape: number[];
  /** Classification: number of classes. Regression: 1. */
  outputs: number;
  /** Row-major examples, `n * prod(inputShape)` values; images are NHWC. */
  xTrain: Float32Array;
  /** Regression: the (standardized) target; classification: class index 0..outputs-1. */
  yTrain: Float32Array;
  xTest: Float32Array;
  yTest: Float32Array;
  nTrain: number;
  nTest: number;
  /** Tabular data: how raw columns map to model inputs. */
  standardization?: Standardization;
  /** Human-readable class names, when known. */
  classNames?: string[];
  /** Where the data came from (a path or a package name), for reports. */
  source: string;
}

/** A clear, user-facing data error (bad file, bad column, bad option). Never a stack trace. */
export class DataError extends Error {
  override name = 'DataError';
}

export function exampleSize(ds: Pick<Dataset, 'inputShape'>): number {
  return ds.inputShape.reduce((a, b) => a * b, 1);
}
