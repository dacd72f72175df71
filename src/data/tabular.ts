/**
 * Tabular regression data sets: SGEMM (bundled) and any numeric CSV. Protocol (docs/architecture.md, "Data"):
 * optional seeded subset, seeded 80/20 split, features and target z-scored with training-split
 * statistics; errors are MSE on the standardized target. The last parsed file is kept, so a
 * process that reads it again (training then analysis, the cells of an experiment) parses it once.
 */
import * as fs from 'node:fs';
import { Rng } from '../random.js';
import { bundledData } from '../paths.js';
import { readNumericCsv } from './csv.js';
import { DataError, checkSubset, fitsFloat32, zScore, type Dataset, type Standardization } from './dataset.js';
import { shown } from '../errors.js';

/** How a table is sampled and split. */
export interface TabularOptions {
  /** Seed of the subset and of the split (default 0). */
  seed?: number;
  /** Keep a seeded random subset of this many rows before the split. */
  subset?: number;
  /** The share of rows held out for test (default 0.2). */
  testFraction?: number;
}

interface RawRegression {
  featureNames: string[];
  /** The file line of each row, for messages. */
  lines?: Int32Array;
  /** Column-major features. */
  features: Float64Array[];
  target: Float64Array;
  targetName: string;
  targetTransform?: 'ln';
  rows: number;
}

/** Mean and standard deviation of `values` at `rows` (std 1 for a constant column), safe from overflow. */
export function meanStd(values: ArrayLike<number>, rows: ArrayLike<number>): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < rows.length; i++) sum += values[rows[i]];
  let mean = sum / rows.length;
  let sq = 0;
  for (let i = 0; i < rows.length; i++) sq += (values[rows[i]] - mean) ** 2;
  let std = Math.sqrt(sq / rows.length);
  if (!Number.isFinite(mean) || !Number.isFinite(std)) {
    // Sums of values near 1e308 overflow: the same statistics of the values divided by the largest.
    let big = 0;
    for (let i = 0; i < rows.length; i++) big = Math.max(big, Math.abs(values[rows[i]]));
    let s = 0;
    for (let i = 0; i < rows.length; i++) s += values[rows[i]] / big;
    const m = s / rows.length;
    let q = 0;
    for (let i = 0; i < rows.length; i++) q += (values[rows[i]] / big - m) ** 2;
    mean = m * big;
    std = Math.sqrt(q / rows.length) * big;
  }
  // A constant column standardizes to 0 instead of dividing by zero.
  return { mean, std: std > 0 ? std : 1 };
}

function buildRegression(raw: RawRegression, name: string, source: string, opts: TabularOptions): Dataset {
  const rng = new Rng(opts.seed ?? 0);
  checkSubset(opts.subset, raw.rows, source, 'rows');
  let order = rng.permutation(raw.rows);
  if (opts.subset != null) order = order.slice(0, opts.subset);
  const testFraction = opts.testFraction ?? 0.2;
  const nTest = Math.round(order.length * testFraction);
  const nTrain = order.length - nTest;
  if (nTrain < 2 || nTest < 1) throw new DataError(`${source}: too few rows (${order.length}) for a train/test split`);
  const trainRows = order.slice(0, nTrain);
  const testRows = order.slice(nTrain);

  const nf = raw.features.length;
  const stats = raw.features.map((col) => meanStd(col, trainRows));
  const tStats = meanStd(raw.target, trainRows);
  // Standardized values must be finite float32 numbers (the model's number type): a test row far
  // outside the training rows' range may not be, and is named rather than turned into Infinity.
  const scaled = (v: number, st: { mean: number; std: number }, r: number, column: string): number => {
    const z = zScore(v, st.mean, st.std);
    if (!fitsFloat32(z)) {
      throw new DataError(`${source} line ${raw.lines ? raw.lines[r] : r + 2}: column ${shown(column)} has the value ${v}, ${z.toPrecision(3)} standard deviations from the training rows' mean, beyond float32 (the model's number type); remove the row or rescale the column`);
    }
    return z;
  };
  const fill = (rows: Int32Array) => {
    const x = new Float32Array(rows.length * nf);
    const y = new Float32Array(rows.length);
    rows.forEach((r, i) => {
      for (let f = 0; f < nf; f++) x[i * nf + f] = scaled(raw.features[f][r], stats[f], r, raw.featureNames[f]);
      y[i] = scaled(raw.target[r], tStats, r, raw.targetName);
    });
    return { x, y };
  };
  const train = fill(trainRows);
  const test = fill(testRows);
  const standardization: Standardization = {
    featureNames: raw.featureNames,
    mean: stats.map((s) => s.mean),
    std: stats.map((s) => s.std),
    target: { name: raw.targetName, mean: tStats.mean, std: tStats.std, transform: raw.targetTransform },
  };
  return {
    name, task: 'regression', inputShape: [nf], outputs: 1,
    xTrain: train.x, yTrain: train.y, xTest: test.x, yTest: test.y, nTrain, nTest,
    standardization, source,
  };
}

let lastTable: { key: string; table: Promise<unknown> } | null = null;

/**
 * `read(file)`, reusing the last result while the file (its size and modification time) and
 * `what` (the columns read, the reader) are the same: training then analysis in one process, or
 * the cells of an experiment, parse a file once.
 */
export async function cachedRead<T>(file: string, what: unknown, read: () => Promise<T>): Promise<T> {
  let key: string;
  try {
    const s = fs.statSync(file);
    key = JSON.stringify([file, s.size, s.mtimeMs, what]);
  } catch {
    return read();
  }
  if (lastTable?.key === key) return lastTable.table as Promise<T>;
  lastTable = null;
  const table = read();
  lastTable = { key, table };
  table.catch(() => {
    if (lastTable?.key === key) lastTable = null;
  });
  return table;
}

/** The 14 SGEMM kernel parameters, the model's inputs in this order. */
export const SGEMM_FEATURES = ['MWG', 'NWG', 'KWG', 'MDIMC', 'NDIMC', 'MDIMA', 'NDIMB', 'KWI', 'VWM', 'VWN', 'STRM', 'STRN', 'SA', 'SB'];
const SGEMM_RUNS = ['Run1 (ms)', 'Run2 (ms)', 'Run3 (ms)', 'Run4 (ms)'];

export function sgemmPath(): string {
  return bundledData('sgemm', 'sgemm_product.csv.gz');
}

/**
 * SGEMM GPU kernel performance (UCI, CC BY 4.0; bundled, or the file `opts.data`): target
 * ln(mean of the 4 runs), seeded 80/20 split, features and target z-scored with training statistics.
 *
 * @example
 * ```ts
 * import { loadSgemm } from 'glonet';
 * const ds = await loadSgemm({ subset: 20000, seed: 1 });
 * console.log(ds.nTrain, ds.nTest, ds.inputShape);      // 16000 4000 [ 14 ]
 * ```
 */
export async function loadSgemm(opts: TabularOptions & { data?: string } = {}): Promise<Dataset> {
  const file = opts.data ?? sgemmPath();
  const table = await cachedRead(file, 'numeric', () => readNumericCsv(file));
  for (const c of [...SGEMM_FEATURES, ...SGEMM_RUNS]) {
    if (!table.columns.includes(c)) throw new DataError(`${file}: not the SGEMM file: column '${c}' is missing`);
  }
  const col = (c: string) => table.values[table.columns.indexOf(c)];
  const runs = SGEMM_RUNS.map(col);
  const target = new Float64Array(table.rows);
  for (let r = 0; r < table.rows; r++) {
    const mean = (runs[0][r] + runs[1][r] + runs[2][r] + runs[3][r]) / 4;
    if (!(mean > 0 && Number.isFinite(mean))) throw new DataError(`${file} line ${table.lines[r]}: run times must be positive and finite to take the logarithm, got a mean of ${mean}`);
    target[r] = Math.log(mean);
  }
  return buildRegression(
    { featureNames: SGEMM_FEATURES, features: SGEMM_FEATURES.map(col), target, targetName: 'ln(mean run ms)', targetTransform: 'ln', rows: table.rows, lines: table.lines },
    'sgemm', file, opts);
}
