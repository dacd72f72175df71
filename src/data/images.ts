/** Loading an image data set by name (from ./registry.ts), and a flattening helper for MLPs. */
import { DataError, exampleSize, type Dataset } from './dataset.js';
import { getDataset } from './registry.js';

/** Where an image data set is read from and how much of it. */
export interface ImageLoadOptions {
  /** A folder of data files: IDX files (MNIST, Fashion-MNIST) or binary batches (CIFAR-10). */
  data?: string;
  /** Seed of the subset (and of MNIST's split). */
  seed?: number;
  /** Keep a seeded random subset of this many training and test examples. */
  subset?: number;
}

/**
 * Loads an image data set by its registered name ('mnist', 'fashion-mnist', 'cifar10', or one
 * added with registerDataset whose loader is synchronous; `loadDataset` takes any). Problems are
 * DataErrors.
 */
export function loadImageDataset(name: string, opts: ImageLoadOptions = {}): Dataset {
  const ds = getDataset(name, 'images').load({ dataset: name, ...opts });
  if (ds instanceof Promise) throw new DataError(`loadImageDataset: '${name}' loads asynchronously; use loadDataset`);
  return ds;
}

/**
 * The same data seen as flat vectors ([784] for MNIST, [3072] for CIFAR-10), for MLPs. A shallow
 * copy: the arrays are shared (NHWC row-major order is already the flat order).
 */
export function flattenInputShape(ds: Dataset): Dataset {
  return { ...ds, inputShape: [exampleSize(ds)] };
}
