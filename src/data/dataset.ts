/** The in-memory form every loader returns and the trainer consumes. */
import type { Task } from '../vocabulary.js';
import { DataError } from './values.js';
import type { TableEncoding } from './table-encoding.js';

export { DataError, fitsFloat32, zScore } from './values.js';

/**
 * Per-input z-score statistics, kept with a trained model so new inputs are scaled the same. For a
 * table with an encoding (./table-encoding.ts) these describe the model's inputs: a numeric
 * column's mean and std, and mean 0, std 1 for the inputs that are not scaled (one-hot levels,
 * missing indicators); the encoding says how raw columns become them.
 */
export interface Standardization {
  /** The model's inputs (for tables, the columns or `column=level` names), in input order. */
  featureNames: string[];
  /** Each input's training mean. */
  mean: number[];
  /** Each input's training standard deviation. */
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
  /** Tables read column by column (CSV): how raw columns become the inputs; saved with the model. */
  encoding?: TableEncoding;
  /** What the loader decided that the user should hear (rows left out, columns left out), one line each. */
  notes?: string[];
  /** Tables read from a file: the data rows of each split (0-based, the header not counted), in split order. */
  rows?: {
    /** The training rows. */
    train: Int32Array;
    /** The test rows. */
    test: Int32Array;
  };
  /** Where the data came from (a path or a package name), for reports. */
  source: string;
}


/** Values per example: the product of `inputShape` (784 for MNIST, 14 for SGEMM). */
export function exampleSize(ds: Pick<Dataset, 'inputShape'>): number {
  return ds.inputShape.reduce((a, b) => a * b, 1);
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
