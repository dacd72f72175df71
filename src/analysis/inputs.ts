/**
 * Inputs for `glonet predict`: a CSV with the training columns (by name; other columns are
 * ignored) or a JSON array, scaled exactly as the training data were. Every value must be a
 * finite number that stays a finite float32 once scaled, and every prediction must come out
 * finite; otherwise the row and column are named (a model cannot say anything about inputs
 * millions of standard deviations away from its training data, and must not print NaN).
 */
import * as fs from 'node:fs';
import { readNumericCsv } from '../data/csv.js';
import { DataError, fitsFloat32, zScore } from '../data/dataset.js';
import { readFileChecked } from '../io.js';
import { shown } from '../errors.js';
import type { ModelMetadata } from '../model-metadata.js';

interface ModelInput {
  x: Float32Array;
  rows: number;
  /** Where each row came from ("rows.csv line 2", "rows.json row 1"), for messages. */
  where: string[];
}

/** The name of input value i: the training column, or the pixel's channel. */
function valueName(meta: ModelMetadata, i: number): string {
  const names = meta.standardization?.featureNames;
  if (meta.inputShape.length === 1) return names?.[i] !== undefined ? `column ${shown(names[i])}` : `value ${i + 1}`;
  const c = meta.inputShape[meta.inputShape.length - 1];
  return `value ${i + 1} (${names?.[i % c] ?? `channel ${i % c}`})`;
}

function standardizeRow(values: unknown[], meta: ModelMetadata, where: string): number[] {
  const st = meta.standardization;
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  if (values.length !== size) throw new DataError(`${where}: expected ${size} values, got ${values.length}`);
  // Tabular statistics are per column; image statistics per channel (NHWC: channel = index mod channels).
  const channels = meta.inputShape.length === 1 ? size : meta.inputShape[meta.inputShape.length - 1];
  return values.map((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`${where}: ${valueName(meta, i)} is ${shown(JSON.stringify(v) ?? String(v))}; expected a finite number`);
    const z = st ? zScore(v, st.mean[i % channels], st.std[i % channels]) : v;
    if (!fitsFloat32(z)) {
      throw new DataError(`${where}: ${valueName(meta, i)} = ${v}${st ? ` is ${z.toPrecision(3)} standard deviations from the training mean,` : ' is'} beyond float32 (the model's number type)`);
    }
    return z;
  });
}

/**
 * Read rows to predict. Tabular models: CSV with the training columns, or JSON (array of objects
 * keyed by column name, or of arrays in training-column order), raw units. Image models: JSON
 * array of flat NHWC pixel arrays, pixels scaled as in training ([0, 1], then the run's channel
 * statistics when it used any).
 */
export async function readModelInput(file: string, meta: ModelMetadata): Promise<ModelInput> {
  if (!fs.existsSync(file)) throw new DataError(`--input: ${file} does not exist`);
  if (fs.statSync(file).isDirectory()) throw new DataError(`--input: ${file} is a folder; expected a CSV or JSON file`);
  const text = readFileChecked(file, 'input');
  const looksJson = /^\s*[[{]/.test(text.subarray(0, 64).toString('utf8'));
  const names = meta.standardization?.featureNames;
  const tabular = meta.inputShape.length === 1;
  let rows: number[][];
  let where: string[];
  if (looksJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.toString('utf8'));
    } catch (e) {
      throw new DataError(`--input: ${file} is not valid JSON (${shown((e as Error).message, 120).slice(1, -1)})`);
    }
    if (!Array.isArray(parsed)) throw new DataError(`--input: ${file}: expected a JSON array of rows`);
    where = parsed.map((_, i) => `--input: ${file} row ${i + 1}`);
    rows = parsed.map((r, i) => {
      if (Array.isArray(r)) return standardizeRow(r, meta, where[i]);
      if (r && typeof r === 'object' && tabular && names) {
        return standardizeRow(names.map((n) => {
          const v = (r as Record<string, unknown>)[n];
          if (typeof v !== 'number') throw new DataError(`${where[i]}: missing or non-numeric ${shown(n)}`);
          return v;
        }), meta, where[i]);
      }
      throw new DataError(`${where[i]}: expected an array of numbers${tabular && names ? ' or an object keyed by column name' : ''}`);
    });
  } else {
    if (!tabular || !names) throw new DataError(`--input: ${file}: this model takes images; give a JSON array of pixel arrays`);
    const table = await readNumericCsv(file, { only: names, hint: () => 'the model was trained on this column, so it must be numeric' });
    where = Array.from(table.lines, (l) => `--input: ${file} line ${l}`);
    rows = Array.from({ length: table.rows }, (_, r) => standardizeRow(table.values.map((col) => col[r]), meta, where[r]));
  }
  if (rows.length === 0) throw new DataError(`--input: ${file} has no rows`);
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(rows.length * size);
  rows.forEach((r, i) => x.set(r, i * size));
  return { x, rows: rows.length, where };
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
    throw new DataError(`${input.where[r]}: the model's output is not a finite number; the inputs are too far from the training data (${how})`);
  }
}
