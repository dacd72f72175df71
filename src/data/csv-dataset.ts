/**
 * Your own table as a data set (`--dataset csv`): a CSV file as it comes, with class labels,
 * words, empty cells. What happens to it, in order:
 *
 * 1. The target (`--target COL`) decides the task: a column of words is classification (its
 *    distinct values are the classes, sorted), a numeric column regression unless `--task
 *    classification` says its numbers are class codes. Rows whose target is missing are left out
 *    and counted. A single class, more classes than `--max-classes`, a constant numeric target or a
 *    class with fewer rows than the split needs are errors naming the file and column.
 * 2. A seeded subset (`--subset`), then a seeded 80/20 split: stratified by class for
 *    classification (every class on both sides), a plain shuffle for regression (as SGEMM).
 * 3. The other columns (less `--drop`): a column of words is categorical, so is a numeric one named
 *    in `--categorical`; the rest are numeric. A categorical column whose values are all different
 *    in the training rows (names, IDs) is left out with a note that says how to keep it; a column
 *    with an empty header and no values (a trailing comma) is left out with a note, and so is a
 *    column that holds one value in every training row (it carries nothing to learn from); any
 *    other column without a single value is an error.
 * 4. The encoding is fitted on the training rows only (./table-encoding.ts says what each column
 *    becomes: z-scores with a median and a missing indicator, or one-hot levels with a missing
 *    level and an `(other)` level past `--max-levels`), then applied to every row by the same
 *    function `glonet predict` and the page use. `--missing refuse` makes every missing value an error.
 *
 * With `encoding` (a trained model's), steps 3-4 use it as it is: analysis and the page see the
 * inputs the model was trained on, and the file must still have its columns.
 */
import * as fs from 'node:fs';
import { Rng } from '../random.js';
import type { Task } from '../vocabulary.js';
import { readCsvTable, rawCell, type RawColumn, type RawTable } from './csv.js';
import { DataError, checkSubset, fitsFloat32, zScore, type Dataset, type Standardization } from './dataset.js';
import { cachedRead, meanStd, type TabularOptions } from './tabular.js';
import {
  columnWidth, encodeRow, inputNames, levelKey, MISSING_TOKENS,
  type Cell, type ColumnEncoding, type TableEncoding, type TargetEncoding,
} from './table-encoding.js';
import { shown, shownList } from '../errors.js';

/** At most this many classes unless `--max-classes` says otherwise. */
export const DEFAULT_MAX_CLASSES = 100;
/** At most this many one-hot levels per categorical column unless `--max-levels` says otherwise; rarer levels share `(other)`. */
export const DEFAULT_MAX_LEVELS = 50;

/** How a CSV becomes a data set (the `glonet train` options of the same names). */
export interface CsvOptions {
  /** The CSV file (plain or gzip). */
  data?: string;
  /** The column to predict. */
  target?: string;
  /** Columns to leave out. */
  drop?: string[];
  /** 'classification' for a numeric target of class codes; 'regression' to insist on numbers. Default: from the target's values. */
  task?: Task;
  /** Numeric columns to read as categories (words are categorical anyway). */
  categorical?: string[];
  /** 'impute' (default): missing values are filled in (table-encoding.ts); 'refuse': each is an error. */
  missing?: 'impute' | 'refuse';
  /** The most classes a target may have (default {@link DEFAULT_MAX_CLASSES}). */
  maxClasses?: number;
  /** One-hot levels per categorical column before the rarer ones share `(other)` (default {@link DEFAULT_MAX_LEVELS}). */
  maxLevels?: number;
  /** Apply this encoding (a trained model's) instead of fitting one. */
  encoding?: TableEncoding;
}

const missingWords = `empty or ${MISSING_TOKENS.slice(0, 3).join(', ')}`;

/** Keys of a categorical column in a stable order: numerically when every key is a number, else by code units. */
function sortKeys(keys: string[]): string[] {
  const numeric = keys.every((k) => k !== '' && Number.isFinite(Number(k)));
  return numeric ? keys.sort((a, b) => Number(a) - Number(b)) : keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The cell of a column as a level key (or null for missing). */
function keyAt(c: RawColumn, row: number): string | null {
  const cell = rawCell(c, row);
  return cell === null ? null : levelKey(cell);
}

/** The one value a column holds in every one of the rows (none missing), or null when they differ. */
function constantIn(c: RawColumn, rows: ArrayLike<number>): string | null {
  if (rows.length === 0) return null;
  const first = keyAt(c, rows[0]);
  if (first === null) return null;
  for (let i = 1; i < rows.length; i++) if (keyAt(c, rows[i]) !== first) return null;
  return first;
}

/** Whether a column reads as words: more words than numbers. */
const wordy = (c: RawColumn): boolean => c.wordCount > c.numbers.length - c.missing - c.wordCount;

function requireColumn(table: RawTable, name: string, option: string): RawColumn {
  const c = table.columns.find((col) => col.name === name);
  if (!c) throw new DataError(`${option}: ${table.file} has no column ${shown(name)} (columns: ${shownList(table.columns.map((col) => col.name))})`);
  return c;
}

/** A numeric column with a stray word: one line naming the word's line and the ways out. */
function strayWord(table: RawTable, c: RawColumn, fixes: string): DataError {
  const numbers = c.numbers.length - c.missing - c.wordCount;
  return new DataError(`${table.file} line ${table.lines[c.firstWord!.row]}: column ${shown(c.name)} holds numbers (${numbers} of ${numbers + c.wordCount} values) but here has the word ${shown(c.firstWord!.text)}; expected a number or a missing value (${missingWords}); ${fixes}`);
}

/**
 * The seeded split: subset first, then 20% test. Classification splits each class on its own (in
 * the shuffled order), so every class is on both sides.
 */
function split(rows: Int32Array, classOf: ((row: number) => number) | null, classes: string[], opts: TabularOptions, table: RawTable): { train: Int32Array; test: Int32Array } {
  const rng = new Rng(opts.seed ?? 0);
  checkSubset(opts.subset, rows.length, table.file, 'rows');
  let order = Array.from(rng.permutation(rows.length), (i) => rows[i]);
  if (opts.subset != null) order = order.slice(0, opts.subset);
  const testFraction = opts.testFraction ?? 0.2;
  if (!classOf) {
    const nTest = Math.round(order.length * testFraction);
    const nTrain = order.length - nTest;
    if (nTrain < 2 || nTest < 1) throw new DataError(`${table.file}: too few rows (${order.length}) for a train/test split; expected at least 3`);
    return { train: Int32Array.from(order.slice(0, nTrain)), test: Int32Array.from(order.slice(nTrain)) };
  }
  const members: number[][] = classes.map(() => []);
  for (const r of order) members[classOf(r)].push(r);
  const testSet = new Set<number>();
  members.forEach((m, k) => {
    if (m.length < 2) {
      const where = m.length === 1 ? ` (line ${table.lines[m[0]]})` : '';
      throw new DataError(`${table.file}: class ${shown(classes[k])} of the target has ${m.length} row${m.length === 1 ? '' : 's'}${opts.subset != null ? ` in the --subset of ${opts.subset}` : ''}${where}; each class needs at least 2 (one to train on, one to test on): add rows, merge the class into another, or remove its rows`);
    }
    const nTest = Math.min(m.length - 1, Math.max(1, Math.round(m.length * testFraction)));
    for (const r of m.slice(m.length - nTest)) testSet.add(r);
  });
  return { train: Int32Array.from(order.filter((r) => !testSet.has(r))), test: Int32Array.from(order.filter((r) => testSet.has(r))) };
}

/** Fit one feature column's encoding on the training rows. */
function fitColumn(c: RawColumn, kind: 'numeric' | 'categorical', train: Int32Array, maxLevels: number, table: RawTable): ColumnEncoding {
  if (kind === 'numeric') {
    const observed: number[] = [];
    let missing = false;
    for (const r of train) {
      const v = c.numbers[r];
      if (v === v) observed.push(v);
      else missing = true;
    }
    if (observed.length === 0) throw new DataError(`${table.file}: column ${shown(c.name)} has no value in the training rows; leave it out with --drop ${shown(c.name)}`);
    const { mean, std } = meanStd(observed, Int32Array.from(observed.keys()));
    const sorted = Float64Array.from(observed).sort();
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { name: c.name, kind: 'numeric', mean, std, median: Number.isFinite(median) ? median : sorted[mid], indicator: missing };
  }
  const counts = new Map<string, number>();
  let missing = false;
  for (const r of train) {
    const k = keyAt(c, r);
    if (k === null) missing = true;
    else counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  let levels = [...counts.keys()];
  let otherLevel = false;
  if (levels.length > maxLevels) {
    // The most frequent levels keep their own input (ties by key, for a stable choice); the rest share (other).
    levels = levels.sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0)).slice(0, maxLevels);
    otherLevel = true;
  }
  return { name: c.name, kind: 'categorical', levels: sortKeys(levels), missingLevel: missing, otherLevel };
}

/**
 * Any CSV as a data set: classification or regression of `target` on the other columns (less
 * `drop`), categorical columns one-hot encoded, missing values imputed (see the module comment).
 *
 * @throws {@link DataError} naming the file, line, column or option.
 */
export async function loadCsv(opts: TabularOptions & CsvOptions): Promise<Dataset> {
  if (!opts.data) throw new DataError('--data: --dataset csv needs --data PATH naming the CSV file');
  if (!opts.target) throw new DataError('--target: --dataset csv needs --target COL naming the column to predict');
  if (!fs.existsSync(opts.data)) throw new DataError(`--data: ${opts.data} does not exist`);
  if (opts.task != null && opts.task !== 'classification' && opts.task !== 'regression') throw new DataError(`--task: expected classification or regression, got ${shown(String(opts.task))}`);
  if (opts.missing != null && opts.missing !== 'impute' && opts.missing !== 'refuse') throw new DataError(`--missing: expected impute or refuse, got ${shown(String(opts.missing))}`);
  if (opts.maxClasses != null && !(Number.isSafeInteger(opts.maxClasses) && opts.maxClasses >= 2)) throw new DataError(`--max-classes: expected an integer of at least 2, got ${opts.maxClasses}`);
  if (opts.maxLevels != null && !(Number.isSafeInteger(opts.maxLevels) && opts.maxLevels >= 1)) throw new DataError(`--max-levels: expected a positive integer, got ${opts.maxLevels}`);
  if (opts.categorical != null && !(Array.isArray(opts.categorical) && opts.categorical.every((c) => typeof c === 'string'))) throw new DataError('--categorical: expected a list of column names');
  const file = opts.data;
  const targetName = opts.target;
  const drop = opts.drop ?? [];
  const refuse = (opts.encoding?.missing ?? opts.missing) === 'refuse';
  if (drop.includes(targetName)) throw new DataError(`--drop: the target column ${shown(targetName)} cannot be dropped`);
  for (const c of opts.categorical ?? []) {
    if (c === targetName) throw new DataError(`--categorical: ${shown(c)} is the target; a numeric target of class codes takes --task classification`);
    if (drop.includes(c)) throw new DataError(`--categorical: ${shown(c)} is also in --drop`);
  }
  const table = await cachedRead(file, ['table', drop], () => readCsvTable(file, { drop }));
  for (const c of opts.categorical ?? []) requireColumn(table, c, '--categorical');
  const t = requireColumn(table, targetName, '--target');
  const notes: string[] = [];
  const maxClasses = opts.maxClasses ?? DEFAULT_MAX_CLASSES;

  // 1. The target and the task.
  const given = opts.encoding?.target;
  const task: Task = given ? (given.kind === 'classes' ? 'classification' : 'regression') : opts.task ?? (wordy(t) ? 'classification' : 'regression');
  if (task === 'regression' && t.wordCount > 0) {
    throw wordy(t)
      ? new DataError(`${file} line ${table.lines[t.firstWord!.row]}: the target column ${shown(t.name)} holds words (${shown(t.firstWord!.text)}); a regression target must be numeric (leave out --task regression to classify its values)`)
      : strayWord(table, t, `or read its values as classes with --task classification`);
  }
  const kept: number[] = [];
  for (let r = 0; r < table.rows; r++) {
    if (rawCell(t, r) !== null) kept.push(r);
    else if (refuse) throw new DataError(`${file} line ${table.lines[r]}: the target column ${shown(t.name)} is empty; expected a value in every row (--missing refuse)`);
  }
  if (kept.length < table.rows) notes.push(`left out ${table.rows - kept.length} of ${table.rows} rows whose target ${shown(t.name)} is missing`);
  if (kept.length === 0) throw new DataError(`${file}: the target column ${shown(t.name)} is empty in every row; expected values to predict`);
  const rows = Int32Array.from(kept);

  let classes: string[] = [];
  let classOf: ((row: number) => number) | null = null;
  if (task === 'classification') {
    const keys = Array.from(rows, (r) => keyAt(t, r)!);
    if (given?.kind === 'classes') {
      classes = given.classes;
    } else {
      classes = sortKeys([...new Set(keys)]);
      if (classes.length < 2) throw new DataError(`${file}: the target column ${shown(t.name)} has the single class ${shown(classes[0])} in every row; a classifier needs at least two classes`);
      if (classes.length > maxClasses) {
        throw new DataError(`${file}: the target column ${shown(t.name)} has ${classes.length} distinct values, more than ${maxClasses} classes${wordy(t) ? '' : ' (a numeric target is regression unless --task classification says otherwise)'}; raise the limit with --max-classes ${classes.length}`);
      }
    }
    const index = new Map(classes.map((c, i) => [c, i]));
    const byRow = new Int32Array(table.rows).fill(-1);
    rows.forEach((r, i) => {
      const k = index.get(keys[i]);
      if (k === undefined) throw new DataError(`${file} line ${table.lines[r]}: the target ${shown(keys[i])} is not one of the model's classes (${shownList(classes)})`);
      byRow[r] = k;
    });
    classOf = (r) => byRow[r];
  } else if (!given) {
    const first = t.numbers[rows[0]];
    if (rows.every((r) => t.numbers[r] === first)) {
      throw new DataError(`${file}: the target column ${shown(t.name)} has the same value ${first} in every row; there is nothing to predict`);
    }
  }

  // 2. The split.
  const { train, test } = split(rows, classOf, classes, opts, table);

  // 3-4. The feature columns and their encoding.
  let enc: TableEncoding;
  let sources: RawColumn[];
  if (opts.encoding) {
    enc = opts.encoding;
    sources = enc.columns.map((c) => requireColumn(table, c.name, '--data'));
  } else {
    const columns: ColumnEncoding[] = [];
    sources = [];
    const asCategorical = new Set(opts.categorical ?? []);
    for (const c of table.columns) {
      if (c === t) continue;
      if (c.missing === c.numbers.length) {
        if (c.unnamed) {
          notes.push(`left out ${shown(c.name)}: it has no header and no values (a trailing separator in the header?)`);
          continue;
        }
        throw new DataError(`${file}: column ${shown(c.name)} is empty in every row; leave it out with --drop ${shown(c.name)}`);
      }
      const constant = constantIn(c, train);
      if (constant !== null) {
        notes.push(`left out ${shown(c.name)}${c.unnamed ? ' (no header)' : ''}: it holds ${shown(constant)} in every training row, so it carries nothing to learn from`);
        continue;
      }
      const categorical = asCategorical.has(c.name) || wordy(c);
      if (!categorical && c.wordCount > 0) throw strayWord(table, c, `read the column as categories with --categorical ${shown(c.name)}, or leave it out with --drop ${shown(c.name)}`);
      if (refuse && c.missing > 0) {
        throw new DataError(`${file} line ${table.lines[c.firstMissing!]}: column ${shown(c.name)} is empty; expected a value in every row (--missing refuse)`);
      }
      if (categorical && !asCategorical.has(c.name)) {
        const seen = new Set<string>();
        let present = 0;
        for (const r of train) {
          const k = keyAt(c, r);
          if (k === null) continue;
          present++;
          seen.add(k);
        }
        if (present >= 3 && seen.size === present) {
          notes.push(`left out ${shown(c.name)}${c.unnamed ? ' (no header)' : ''}: its ${present} values in the training rows are all different, like names or IDs; keep it with --categorical ${shown(c.name)}`);
          continue;
        }
      }
      columns.push(fitColumn(c, categorical ? 'categorical' : 'numeric', train, opts.maxLevels ?? DEFAULT_MAX_LEVELS, table));
      sources.push(c);
    }
    if (columns.length === 0) throw new DataError(`${file}: no feature columns besides the target ${shown(targetName)}`);
    let target: TargetEncoding;
    if (task === 'classification') target = { name: targetName, kind: 'classes', classes };
    else target = { name: targetName, kind: 'numeric', ...meanStd(t.numbers, train) };
    enc = { format: 'glonet-table', version: 1, columns, target, missing: refuse ? 'refuse' : 'impute' };
  }

  // Every row goes through encodeRow, the function predict and the page use.
  const nInputs = enc.columns.reduce((s, c) => s + columnWidth(c), 0);
  const cells: Cell[] = new Array(sources.length);
  const unseen = new Map<string, number>();
  const encode = (split: Int32Array, counting: boolean) => {
    const x = new Float32Array(split.length * nInputs);
    const y = new Float32Array(split.length);
    split.forEach((r, i) => {
      for (let k = 0; k < sources.length; k++) cells[k] = rawCell(sources[k], r);
      const where = () => `${file} line ${table.lines[r]}`;
      const n = encodeRow(enc, cells, x, i * nInputs, where);
      if (counting && n?.unknown) for (const u of n.unknown) unseen.set(u.column, (unseen.get(u.column) ?? 0) + 1);
      if (classOf) y[i] = classOf(r);
      else {
        const tt = enc.target as Extract<TargetEncoding, { kind: 'numeric' }>;
        const z = zScore(t.numbers[r], tt.mean, tt.std);
        if (!fitsFloat32(z)) throw new DataError(`${where()}: column ${shown(t.name)} has the value ${t.numbers[r]}, ${z.toPrecision(3)} standard deviations from the training rows' mean, beyond float32 (the model's number type); remove the row or rescale the column`);
        y[i] = z;
      }
    });
    return { x, y };
  };
  const trainXY = encode(train, false);
  const testXY = encode(test, true);
  if (unseen.size > 0) {
    notes.push(`test rows with a level not seen in the training rows (encoded as ${enc.columns.some((c) => c.kind === 'categorical' && c.otherLevel) ? '(other) or ' : ''}no level): ${[...unseen].map(([c, n]) => `${shown(c)} ${n}`).join(', ')}`);
  }

  const names = inputNames(enc);
  const mean: number[] = [];
  const std: number[] = [];
  for (const c of enc.columns) {
    for (let k = 0; k < columnWidth(c); k++) {
      const scaled = c.kind === 'numeric' && k === 0;
      mean.push(scaled ? c.mean : 0);
      std.push(scaled ? c.std : 1);
    }
  }
  const standardization: Standardization = { featureNames: names, mean, std };
  if (enc.target.kind === 'numeric') standardization.target = { name: enc.target.name, mean: enc.target.mean, std: enc.target.std };
  return {
    name: 'csv', task, inputShape: [nInputs], outputs: task === 'classification' ? classes.length : 1,
    xTrain: trainXY.x, yTrain: trainXY.y, xTest: testXY.x, yTest: testXY.y, nTrain: train.length, nTest: test.length,
    standardization, ...(task === 'classification' ? { classNames: classes.slice() } : {}),
    encoding: enc, notes, rows: { train, test }, source: file,
  };
}
