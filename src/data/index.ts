/** Loading any supported data set by name, from a run's options. */
import { DataError, checkDataset, type Dataset } from './dataset.js';
import { loadCsv, loadSgemm } from './tabular.js';
import { isImageDataset, loadImageDataset } from './images.js';

/** Which data set to load and how (the `glonet train` options of the same names). */
export interface LoadOptions {
  /** 'sgemm', 'csv', 'mnist', 'fashion-mnist' or 'cifar10'. */
  dataset: string;
  /** A file (csv, sgemm) or folder (image data sets) to read instead of the default. */
  data?: string;
  /** csv: the target column. */
  target?: string;
  /** csv: columns to ignore. */
  drop?: string[];
  /** Seed of the subset and of the train/test split (default 0). */
  seed?: number;
  /** Keep a seeded random subset of this many examples. */
  subset?: number;
}

/**
 * Loads a data set by name, split and scaled as `glonet train` does, and checks it is fit to
 * train on (./dataset.ts, checkDataset).
 *
 * @throws {@link DataError} naming the file, line or option on bad input.
 */
export async function loadDataset(o: LoadOptions): Promise<Dataset> {
  const ds = await load(o);
  checkDataset(ds);
  return ds;
}

function load(o: LoadOptions): Promise<Dataset> | Dataset {
  if (o.dataset === 'sgemm') return loadSgemm({ data: o.data, seed: o.seed, subset: o.subset });
  if (o.dataset === 'csv') return loadCsv({ data: o.data, target: o.target, drop: o.drop, seed: o.seed, subset: o.subset });
  if (isImageDataset(o.dataset)) return loadImageDataset(o.dataset, { data: o.data, seed: o.seed, subset: o.subset });
  throw new DataError(`--dataset: expected one of sgemm, csv, mnist, fashion-mnist, cifar10, got '${o.dataset}'`);
}

export { DataError, type Dataset } from './dataset.js';
