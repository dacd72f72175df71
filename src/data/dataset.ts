/** The in-memory form every loader returns and the trainer consumes. */
import type { Task } from '../vocabulary.js';
import { GlonetError } from '../errors.js';

/** Per-column z-score statistics, kept with a trained model so new inputs are scaled the same. */
export interface Standardization {
  /** The input columns, in model input order. */
  featureNames: string[];
  /** Each column's training mean. */
  mean: number[];
  /** Each column's training standard deviation. */
  std: number[];
  /** Regression only: the target's name, mean and std (the model predicts the z-scored target). */
  target?: {
    /** The target column's name. */
    name: string;
    /** Training mean of the (transformed) target. */
    mean: number;
    /** Training standard deviation of the (transformed) target. */
    std: number;
    /** 'ln': the model predicts ln(target) (SGEMM run times). */
    transform?: 'ln';
  };
}

/** A loaded data set, split into training and test rows: what every loader returns. */
export interface Dataset {
  /** 'sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'. */
  name: string;
  /** 'regression' or 'classification'. */
  task: Task;
  /** Shape of one example, without the batch dimension: [14], [28, 28, 1], [32, 32, 3]. */
  inputShape: number[];
  /** Classification: number of classes. Regression: 1. */
  outputs: number;
  /** Row-major examples, `n * prod(inputShape)` values; images are NHWC. */
  xTrain: Float32Array;
  /** Regression: the (standardized) target; classification: class index 0..outputs-1. */
  yTrain: Float32Array;
  /** Test examples, laid out as `xTrain`. */
  xTest: Float32Array;
  /** Test targets, as `yTrain`. */
  yTest: Float32Array;
  /** Training examples. */
  nTrain: number;
  /** Test examples. */
  nTest: number;
  /** Tabular data: how raw columns map to model inputs. */
  standardization?: Standardization;
  /** Human-readable class names, when known. */
  classNames?: string[];
  /** Where the data came from (a path or a package name), for reports. */
  source: string;
}

/** A clear, user-facing data error (bad file, bad column, bad option). Never a stack trace. */
export class DataError extends GlonetError {
  /** 'DataError'. */
  override name = 'DataError';
}

/** Values per example: the product of `inputShape` (784 for MNIST, 14 for SGEMM). */
export function exampleSize(ds: Pick<Dataset, 'inputShape'>): number {
  return ds.inputShape.reduce((a, b) => a * b, 1);
}

/** The largest finite float32, the number type of the model's inputs and weights. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** True when `v` is finite and stays finite as a float32. */
export function fitsFloat32(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX;
}

/** (v - mean) / std, computed so that huge values do not overflow on the way. */
export function zScore(v: number, mean: number, std: number): number {
  const d = v - mean;
  return Number.isFinite(d) ? d / std : v / std - mean / std;
}

/**
 * The one `--subset` rule of every data set: a whole number of at least 10, and no more than the
 * data hold (`available`, described by `source` and `what`). Nothing is clipped silently.
 */
export function checkSubset(subset: number | undefined, available?: number, source?: string, what = 'examples'): void {
  if (subset == null) return;
  if (!Number.isInteger(subset) || subset < 10) throw new DataError(`--subset: expected an integer of at least 10, got ${subset}`);
  if (available != null && subset > available) throw new DataError(`--subset: ${source} has only ${available} ${what}, asked for ${subset}`);
}

/**
 * What every loader's result must be before training: both splits non-empty, examples of at least
 * one value, every input and target finite in float32. Loaders name the column and line of a bad
 * value themselves; this is the last line of defence and names the split and example.
 */
export function checkDataset(ds: Dataset): void {
  if (exampleSize(ds) < 1) throw new DataError(`${ds.source}: examples of shape [${ds.inputShape.join(', ')}] hold no values`);
  if (ds.nTrain < 1) throw new DataError(`${ds.source}: no training examples; expected at least one`);
  if (ds.nTest < 1) throw new DataError(`${ds.source}: no test examples; expected at least one`);
  const size = exampleSize(ds);
  const firstNonFinite = (a: Float32Array): number => {
    for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return i; // NaN or +-Infinity
    return -1;
  };
  for (const [split, x, y] of [['training', ds.xTrain, ds.yTrain], ['test', ds.xTest, ds.yTest]] as const) {
    const i = firstNonFinite(x);
    if (i >= 0) throw new DataError(`${ds.source}: ${split} example ${Math.floor(i / size) + 1} has the value ${x[i]}; expected finite numbers`);
    const j = y.findIndex((v) => !Number.isFinite(v) || (ds.task === 'classification' && !(Number.isInteger(v) && v >= 0 && v < ds.outputs)));
    if (j >= 0) throw new DataError(`${ds.source}: ${split} example ${j + 1} has the target ${y[j]}; expected ${ds.task === 'classification' ? `a class 0..${ds.outputs - 1}` : 'a finite number'}`);
  }
}
