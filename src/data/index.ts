/** Loading any supported data set by name, from a run's options. */
import { DataError, checkDataset, type Dataset } from './dataset.js';
import { loadCsv, loadSgemm } from './tabular.js';
import { isImageDataset, loadImageDataset } from './images.js';

export interface LoadOptions {
  dataset: string;
  data?: string;
  target?: string;
  drop?: string[];
  seed?: number;
  subset?: number;
}

/** Load a data set by name and check it is fit to train on (./dataset.ts, checkDataset). */
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
