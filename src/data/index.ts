/** Loading any supported data set by name, from a run's options. */
import { checkDataset, type Dataset } from './dataset.js';
import { getDataset, type LoadOptions } from './registry.js';

/**
 * Loads a data set by name, split and scaled as `glonet train` does, and checks it is fit to
 * train on (./dataset.ts, checkDataset).
 *
 * @throws {@link DataError} naming the file, line or option on bad input.
 */
export async function loadDataset(o: LoadOptions): Promise<Dataset> {
  const ds = await getDataset(o.dataset).load(o);
  checkDataset(ds);
  return ds;
}

export { DataError, type Dataset } from './dataset.js';
export type { LoadOptions } from './registry.js';
