/**
 * Reading the files of an experiment folder without trusting them: experiment.json, and each
 * cell's metrics.json, analysis.json, cell.json and failed.json. A folder may be shared by many
 * machines, copied, edited or damaged; a value of the wrong type or out of its range must not
 * change a verdict (a best test error of "abc" or -5), and a cell id must not name a folder outside
 * the experiment's (`../../../runs/base1`). Every file is read bounded and inside the experiment
 * folder (src/io.ts), and every problem is an ExperimentFileError naming the file and the field.
 */
import * as path from 'node:path';
import type { Analysis, CellRecord, ExperimentManifest, Metrics } from '../contracts.js';
import { readJson } from '../io.js';
import { BadFileError, shown } from '../errors.js';
import { LIMITS } from '../limits.js';

/** A file of an experiment folder that is not what glonet wrote there (exit code 2). */
export class ExperimentFileError extends BadFileError {
  override name = 'ExperimentFileError';
}

/** A cell id: a folder name under DIR/cells/ (letters, digits, '.', '_', '-'; never '..' or a path). */
const CELL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** True when `id` can name a cell folder inside DIR/cells/. */
export const isCellId = (id: unknown): id is string => typeof id === 'string' && CELL_ID.test(id);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown): string => shown(JSON.stringify(v) ?? String(v), 40);

/** Field checks of one file: each failure names the file and the field. */
class Fields {
  constructor(readonly file: string) {}
  fail(field: string, expected: string, got: unknown): never {
    throw new ExperimentFileError(`${this.file}: ${field} is ${describe(got)}; expected ${expected}`);
  }
  object(v: unknown, field: string): Record<string, unknown> {
    return isObject(v) ? v : this.fail(field, 'an object', v);
  }
  string(v: unknown, field: string): string {
    return typeof v === 'string' ? v : this.fail(field, 'a string', v);
  }
  /** A finite number in [min, max]. */
  number(v: unknown, field: string, min = -Infinity, max = Infinity): number {
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max) return v;
    const range = max === Infinity ? (min === -Infinity ? 'a finite number' : `a finite number of at least ${min}`) : `a number from ${min} to ${max}`;
    return this.fail(field, range, v);
  }
  integer(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? v as number : this.fail(field, `an integer from ${min} to ${max}`, v);
  }
  array(v: unknown, field: string, max: number): unknown[] {
    if (!Array.isArray(v)) this.fail(field, 'a list', v);
    if (v.length > max) this.fail(`${field} (${v.length} entries)`, `at most ${max} entries`, `${v.length} entries`);
    return v;
  }
}

/** Read experiment.json: the experiment and preset names, the data, and every cell id (valid and distinct). */
export function readManifestFile(dir: string, file: string): ExperimentManifest {
  const f = new Fields(file);
  const m = f.object(readJson<unknown>(file, 'experiment manifest', { within: dir }), 'the manifest');
  f.string(m.experiment, 'experiment');
  f.string(m.preset, 'preset');
  if (m.seeds !== undefined) f.integer(m.seeds, 'seeds', 1, LIMITS.seeds.max);
  const data = f.object(m.data, 'data');
  f.string(data.dataset, 'data.dataset');
  for (const k of ['data', 'target'] as const) if (data[k] !== undefined) f.string(data[k], `data.${k}`);
  if (data.drop !== undefined) f.array(data.drop, 'data.drop', 100_000).forEach((d, i) => f.string(d, `data.drop[${i}]`));
  const cells = f.array(m.cells, 'cells', LIMITS.cells.max);
  const seen = new Set<string>();
  cells.forEach((id: unknown, i) => {
    if (!isCellId(id)) return f.fail(`cells[${i}]`, 'a cell id (letters, digits, \'.\', \'_\' and \'-\'; a folder name under cells/)', id);
    if (seen.has(id)) f.fail(`cells[${i}]`, 'an id listed once', id);
    seen.add(id);
  });
  return m as unknown as ExperimentManifest;
}

/** Read a finished cell's cell.json: its own id, the analysis seconds, the load and where it ran. */
export function readCellRecord(dir: string, file: string, id: string): CellRecord {
  const f = new Fields(file);
  const r = f.object(readJson<unknown>(file, 'cell record', { within: dir, maxBytes: 1 << 20, why: 'it is a few lines' }), 'the cell record');
  if (r.id !== id) f.fail('id', `'${id}', the cell's own id`, r.id);
  f.number(r.analyzeSeconds, 'analyzeSeconds', 0);
  const load = f.object(r.load, 'load');
  f.number(load.start, 'load.start', 0);
  f.number(load.end, 'load.end', 0);
  f.integer(load.cpus, 'load.cpus', 1, 1 << 20);
  f.string(r.host, 'host');
  f.string(r.finishedAt, 'finishedAt');
  return r as unknown as CellRecord;
}

/**
 * Read a cell's metrics.json: the fields the results and the claims use, each of its type and in
 * its range (errors and losses finite and not negative, accuracies and classification errors in
 * [0, 1], epochs counted from 1). `finished` cells must have at least one epoch.
 */
export function readCellMetrics(dir: string, file: string, finished: boolean): Metrics {
  const f = new Fields(file);
  const m = f.object(readJson<unknown>(file, 'metrics', { within: dir }), 'the metrics');
  const c = f.object(m.config, 'config');
  for (const k of ['model', 'arch', 'dataset'] as const) f.string(c[k], `config.${k}`);
  f.integer(c.depth, 'config.depth', 1);
  f.integer(c.seed, 'config.seed', 0);
  if (m.task !== 'regression' && m.task !== 'classification') f.fail('task', '\'regression\' or \'classification\'', m.task);
  const cls = m.task === 'classification';
  const errorMax = cls ? 1 : Infinity;
  const epochs = f.array(m.epochs, 'epochs', LIMITS.epochs.max);
  if (finished && epochs.length === 0) f.fail('epochs', 'at least one epoch in a finished cell', m.epochs);
  epochs.forEach((e, i) => {
    const at = `epochs[${i}]`;
    const ep = f.object(e, at);
    f.integer(ep.epoch, `${at}.epoch`, 1, LIMITS.epochs.max);
    // JSON writes a NaN or infinite loss as null (a diverged epoch): allowed, and never a verdict.
    for (const k of ['trainLoss', 'testLoss'] as const) if (ep[k] !== null) f.number(ep[k], `${at}.${k}`, 0);
    if (ep.testError !== null) f.number(ep.testError, `${at}.testError`, 0, errorMax);
    if (ep.testAccuracy !== undefined && ep.testAccuracy !== null) f.number(ep.testAccuracy, `${at}.testAccuracy`, 0, 1);
    f.number(ep.seconds, `${at}.seconds`, 0);
  });
  if (m.best !== null && m.best !== undefined) {
    const b = f.object(m.best, 'best');
    f.integer(b.epoch, 'best.epoch', 1, LIMITS.epochs.max);
    f.number(b.testError, 'best.testError', 0, errorMax);
    if (!epochs.some((e) => (e as { epoch: unknown }).epoch === b.epoch)) f.fail('best.epoch', 'the number of one of the epochs listed', b.epoch);
  }
  f.number(m.meanEpochSeconds, 'meanEpochSeconds', 0);
  if (m.data !== undefined) {
    const d = f.object(m.data, 'data');
    f.integer(d.nTrain, 'data.nTrain', 0);
    f.integer(d.nTest, 'data.nTest', 0);
  }
  f.string(m.backend, 'backend');
  if (m.engine !== undefined) f.string(m.engine, 'engine');
  if (m.diverged !== undefined) f.integer(f.object(m.diverged, 'diverged').epoch, 'diverged.epoch', 1, LIMITS.epochs.max);
  return m as unknown as Metrics;
}

/** Read a cell's analysis.json: the effective depths, block norms and truncation curve the report draws. */
export function readCellAnalysis(dir: string, file: string, depthMax: number): Analysis {
  const f = new Fields(file);
  const a = f.object(readJson<unknown>(file, 'analysis', { within: dir }), 'the analysis');
  f.integer(a.samples, 'samples', 0);
  const norms = f.array(a.blockNorms, 'blockNorms', depthMax);
  norms.forEach((b, i) => {
    const n = f.object(b, `blockNorms[${i}]`);
    f.integer(n.block, `blockNorms[${i}].block`, 1, depthMax);
    // A block whose norm overflowed is written as null; the report leaves it out.
    if (n.mean !== null) f.number(n.mean, `blockNorms[${i}].mean`, 0);
    if (n.std !== null) f.number(n.std, `blockNorms[${i}].std`, 0);
  });
  if (a.truncation !== undefined) {
    f.array(a.truncation, 'truncation', depthMax).forEach((p, i) => {
      const t = f.object(p, `truncation[${i}]`);
      f.integer(t.blocks, `truncation[${i}].blocks`, 1, depthMax);
      if (t.testError !== null) f.number(t.testError, `truncation[${i}].testError`, 0);
      if (t.testAccuracy !== undefined && t.testAccuracy !== null) f.number(t.testAccuracy, `truncation[${i}].testAccuracy`, 0, 1);
    });
  }
  const ed = f.object(a.effectiveDepth, 'effectiveDepth');
  if (ed.byError !== null) f.integer(ed.byError, 'effectiveDepth.byError', 1, depthMax);
  f.integer(ed.byNorm, 'effectiveDepth.byNorm', 0, depthMax);
  const share = f.object(ed.normShare, 'effectiveDepth.normShare');
  f.number(share.share, 'effectiveDepth.normShare.share', 0, 1);
  f.integer(share.blocks, 'effectiveDepth.normShare.blocks', 0, depthMax);
  f.number(ed.tolerance, 'effectiveDepth.tolerance', 0);
  if (ed.definitions !== undefined) f.object(ed.definitions, 'effectiveDepth.definitions');
  return a as unknown as Analysis;
}

/** Read a failed cell's failed.json: its error, as one line. */
export function readCellFailure(dir: string, file: string): string {
  const f = new Fields(file);
  const r = f.object(readJson<unknown>(file, 'cell failure', { within: dir, maxBytes: 1 << 20, why: 'it holds one message' }), 'the failure record');
  return f.string(r.error, 'error').split('\n')[0];
}

/** The cell folder of `id` under DIR/cells/, refused unless the id is a plain folder name. */
export function cellFolder(dir: string, id: string, file: string): string {
  if (!isCellId(id)) throw new ExperimentFileError(`${file}: cell id ${describe(id)} is not a folder name under cells/`);
  return path.join(dir, 'cells', id);
}
