/**
 * Inputs for `glonet predict`: raw rows of a table in its own units, through the model's encoding
 * (./model-encoding.ts, src/data/table-encoding.ts), exactly as the training rows went: a CSV with
 * the training columns (by name, in any order; other columns ignored) or a JSON array (objects
 * keyed by column, or arrays in the encoding's column order). Image models take a JSON array of
 * flat NHWC pixel arrays, scaled as in training. A CSV is read as a stream and encoded row by row
 * into one growing buffer, so reading is linear in the rows.
 *
 * Every value must be a number where the model reads a number, and stay a finite float32 once
 * scaled; every prediction must come out finite; otherwise the row and column are named (a model
 * cannot say anything about inputs millions of standard deviations away from its training data,
 * and must not print NaN).
 */
import * as fs from 'node:fs';
import { scanCsv } from '../data/csv.js';
import { DataError, fitsFloat32, zScore } from '../data/dataset.js';
import { encodeRow, inputCount, parseCell, type Cell, type RowNotes, type TableEncoding } from '../data/table-encoding.js';
import { checkReadable, jsonProblem, readFileBounded, readHead } from '../io.js';
import { LIMITS } from '../limits.js';
import { shown, shownList } from '../errors.js';
import type { ModelMetadata } from '../model-metadata.js';
import { modelEncoding } from './model-encoding.js';

/** Rows ready for the model. */
export interface ModelInput {
  /** The model's inputs, row-major. */
  x: Float32Array;
  rows: number;
  /** Where row r came from ("rows.csv line 2", "rows.json row 1"), for messages. */
  where(r: number): string;
  /** Table rows whose cells were filled in or not recognised, by row. */
  notes: Map<number, RowNotes>;
}

/** How far reading has come: `done` of `total` (bytes of a plain CSV; undefined when unknown). */
export type ReadProgress = (done: number, total: number | undefined) => void;

/** The name of input value i: the training column, or the pixel's channel. */
function valueName(meta: ModelMetadata, i: number): string {
  const names = meta.standardization?.featureNames;
  if (meta.inputShape.length === 1) return names?.[i] !== undefined ? `column ${shown(names[i])}` : `value ${i + 1}`;
  const c = meta.inputShape[meta.inputShape.length - 1];
  return `value ${i + 1} (${names?.[i % c] ?? `channel ${i % c}`})`;
}

/** One image's pixels, scaled with the run's channel statistics when it used any. */
function imageRow(values: unknown[], meta: ModelMetadata, where: string): number[] {
  const st = meta.standardization;
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  if (values.length !== size) throw new DataError(`${where}: expected ${size} values, got ${values.length}`);
  const channels = meta.inputShape[meta.inputShape.length - 1];
  return values.map((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`${where}: ${valueName(meta, i)} is ${shown(JSON.stringify(v) ?? String(v))}; expected a finite number`);
    // Image models were trained on pixels scaled to [0, 1]: raw bytes (0-255) would be read as 255 times brighter, silently.
    if (meta.inputShape.length === 3 && (v < 0 || v > 1)) {
      throw new DataError(`${where}: ${valueName(meta, i)} is ${v}; an image model takes pixels scaled to [0, 1] as in training${v > 1 && v <= 255 && Number.isInteger(v) ? ' (divide bytes 0-255 by 255)' : ''}`);
    }
    const z = st ? zScore(v, st.mean[i % channels], st.std[i % channels]) : v;
    if (!fitsFloat32(z)) {
      throw new DataError(`${where}: ${valueName(meta, i)} = ${v}${st ? ` is ${z.toPrecision(3)} standard deviations from the training mean,` : ' is'} beyond float32 (the model's number type)`);
    }
    return z;
  });
}

/** A JSON value of a table cell as a {@link Cell}. */
function jsonCell(v: unknown, column: string, where: string): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new DataError(`${where}: column ${shown(column)} is ${v}; expected a finite number`);
    return v;
  }
  if (typeof v === 'string') return parseCell(v);
  throw new DataError(`${where}: column ${shown(column)} is ${shown(JSON.stringify(v))}; expected a number, a word or null`);
}

/** A growing row-major buffer of encoded rows. */
class RowBuffer {
  x: Float32Array;
  lines: Int32Array;
  rows = 0;
  constructor(readonly width: number) {
    this.x = new Float32Array(1024 * width);
    this.lines = new Int32Array(1024);
  }
  /** The offset of a new row (the buffers double when full). */
  add(line: number): number {
    if (this.rows === this.lines.length) {
      const x = new Float32Array(this.x.length * 2);
      x.set(this.x);
      this.x = x;
      const lines = new Int32Array(this.lines.length * 2);
      lines.set(this.lines);
      this.lines = lines;
    }
    this.lines[this.rows] = line;
    return this.rows++ * this.width;
  }
}

async function readCsvRows(file: string, enc: TableEncoding, progress?: ReadProgress): Promise<ModelInput> {
  const width = inputCount(enc);
  const buf = new RowBuffer(width);
  const notes = new Map<number, RowNotes>();
  const cells: Cell[] = new Array(enc.columns.length);
  let index: number[] = [];
  const total = isGzip(file) ? undefined : fs.statSync(file).size;
  let sinceReport = 0;
  await scanCsv(file, (h) => {
    const names = enc.columns.map((c) => c.name);
    const missing = names.filter((c) => !h.columns.includes(c));
    if (missing.length) {
      throw new DataError(`--input: ${file}: missing column${missing.length > 1 ? 's' : ''} ${shownList(missing)}; expected the training columns ${shownList(names)}`);
    }
    index = names.map((c) => h.columns.indexOf(c));
  }, (fields, line, bytes) => {
    for (let k = 0; k < index.length; k++) cells[k] = parseCell(fields[index[k]]);
    const offset = buf.add(line);
    const n = encodeRow(enc, cells, buf.x, offset, () => `--input: ${file} line ${line}`);
    if (n) notes.set(buf.rows - 1, n);
    if (progress && ++sinceReport === 4096) {
      sinceReport = 0;
      progress(bytes, total);
    }
  });
  if (buf.rows === 0) throw new DataError(`--input: ${file} has no rows`);
  const lines = buf.lines;
  return { x: buf.x.subarray(0, buf.rows * width), rows: buf.rows, where: (r) => `--input: ${file} line ${lines[r]}`, notes };
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

function readJsonRows(file: string, text: Buffer, meta: ModelMetadata, enc: TableEncoding | undefined): ModelInput {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new DataError(`--input: ${file} is not valid JSON (${jsonProblem(e)})`);
  }
  if (!Array.isArray(parsed)) throw new DataError(`--input: ${file}: expected a JSON array of rows`);
  if (parsed.length === 0) throw new DataError(`--input: ${file} has no rows`);
  const where = (r: number) => `--input: ${file} row ${r + 1}`;
  const notes = new Map<number, RowNotes>();
  if (!enc) {
    const size = meta.inputShape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(parsed.length * size);
    parsed.forEach((r, i) => {
      if (!Array.isArray(r)) throw new DataError(`${where(i)}: expected an array of numbers`);
      x.set(imageRow(r, meta, where(i)), i * size);
    });
    return { x, rows: parsed.length, where, notes };
  }
  const width = inputCount(enc);
  const names = enc.columns.map((c) => c.name);
  const x = new Float32Array(parsed.length * width);
  parsed.forEach((r, i) => {
    let cells: Cell[];
    if (Array.isArray(r)) {
      if (r.length !== names.length) throw new DataError(`${where(i)}: expected ${names.length} values (the columns ${shownList(names)}), got ${r.length}`);
      cells = r.map((v, k) => jsonCell(v, names[k], where(i)));
    } else if (r && typeof r === 'object') {
      const row = r as Record<string, unknown>;
      const absent = names.filter((n) => !(n in row));
      if (absent.length && enc.missing === 'refuse') throw new DataError(`${where(i)}: missing ${shownList(absent)}; expected every training column (${shownList(names)})`);
      cells = names.map((n) => jsonCell(row[n], n, where(i)));
    } else {
      throw new DataError(`${where(i)}: expected an object keyed by column name or an array of values`);
    }
    const n = encodeRow(enc, cells, x, i * width, () => where(i));
    if (n) notes.set(i, n);
  });
  return { x, rows: parsed.length, where, notes };
}

/**
 * Read rows to predict. Tables: CSV with the training columns, or JSON (an array of objects keyed
 * by column name, or of arrays in the encoding's column order), raw units. Image models: a JSON
 * array of flat NHWC pixel arrays.
 */
export async function readModelInput(file: string, meta: ModelMetadata, progress?: ReadProgress): Promise<ModelInput> {
  if (!fs.existsSync(file)) throw new DataError(`--input: ${file} does not exist`);
  if (fs.statSync(file).isDirectory()) throw new DataError(`--input: ${file} is a folder; expected a CSV or JSON file`);
  // A regular file of a bounded size (not /dev/zero, a FIFO or a link to one); only its first bytes are sniffed.
  const bounds = { what: 'input', maxBytes: LIMITS.inputBytes.max, why: LIMITS.inputBytes.why };
  try {
    checkReadable(file, bounds);
  } catch (e) {
    throw new DataError(`--input: ${(e as Error).message}`);
  }
  const enc = modelEncoding(meta);
  const head = readHead(file, 64);
  const looksJson = /^\s*[[{]/.test(head.toString('utf8'));
  if (looksJson) return readJsonRows(file, readFileBounded(file, bounds), meta, enc);
  if (!enc) throw new DataError(`--input: ${file}: this model takes images; give a JSON array of pixel arrays`);
  return readCsvRows(file, enc, progress);
}

/**
 * Refuse outputs that are not finite numbers: the row's inputs are too far from the training
 * data for the model (its most extreme scaled value is named).
 */
export function checkOutputs(raw: Float32Array, input: ModelInput, meta: ModelMetadata): void {
  const out = raw.length / input.rows;
  const size = input.x.length / input.rows;
  for (let r = 0; r < input.rows; r++) {
    let finite = true;
    for (let k = 0; k < out; k++) if (!Number.isFinite(raw[r * out + k])) finite = false;
    if (finite) continue;
    let far = 0;
    for (let i = 1; i < size; i++) if (Math.abs(input.x[r * size + i]) > Math.abs(input.x[r * size + far])) far = i;
    const value = input.x[r * size + far].toPrecision(3);
    const how = meta.standardization ? `${valueName(meta, far)} is ${value} standard deviations from the training mean` : `${valueName(meta, far)} is ${value}`;
    throw new DataError(`${input.where(r)}: the model's output is not a finite number; the inputs are too far from the training data (${how})`);
  }
}
