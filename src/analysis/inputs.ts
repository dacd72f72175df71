/**
 * Inputs for `glonet predict`: a CSV with the training columns (by name; other columns are
 * ignored) or a JSON array, scaled exactly as the training data were.
 */
import * as fs from 'node:fs';
import type { ModelMetadata } from '../model-io.js';
import { readNumericCsv } from '../data/csv.js';
import { DataError } from '../data/dataset.js';

export interface ModelInput {
  x: Float32Array;
  rows: number;
}

function standardizeRow(values: number[], meta: ModelMetadata, where: string): number[] {
  const st = meta.standardization;
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  if (values.length !== size) throw new DataError(`${where}: expected ${size} values, got ${values.length}`);
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`${where}: value ${i + 1} is not a finite number`);
  });
  if (!st) return values;
  if (meta.inputShape.length === 1) return values.map((v, i) => (v - st.mean[i]) / st.std[i]);
  // Images with per-channel statistics (NHWC): channel = index mod channels.
  const c = meta.inputShape[meta.inputShape.length - 1];
  return values.map((v, i) => (v - st.mean[i % c]) / st.std[i % c]);
}

/**
 * Read rows to predict. Tabular models: CSV with the training columns, or JSON (array of objects
 * keyed by column name, or of arrays in training-column order), raw units. Image models: JSON
 * array of flat NHWC pixel arrays, pixels scaled as in training ([0, 1], then the run's channel
 * statistics when it used any).
 */
export async function readModelInput(file: string, meta: ModelMetadata): Promise<ModelInput> {
  if (!fs.existsSync(file)) throw new DataError(`--input: ${file} does not exist`);
  const text = fs.readFileSync(file);
  const looksJson = /^\s*[[{]/.test(text.subarray(0, 64).toString('utf8'));
  const names = meta.standardization?.featureNames;
  const tabular = meta.inputShape.length === 1;
  let rows: number[][];
  if (looksJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.toString('utf8'));
    } catch (e) {
      throw new DataError(`--input: ${file} is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new DataError(`--input: ${file}: expected a JSON array of rows`);
    rows = parsed.map((r, i) => {
      if (Array.isArray(r)) return r as number[];
      if (r && typeof r === 'object' && tabular && names) {
        return names.map((n) => {
          const v = (r as Record<string, unknown>)[n];
          if (typeof v !== 'number') throw new DataError(`--input: ${file} row ${i + 1}: missing or non-numeric '${n}'`);
          return v;
        });
      }
      throw new DataError(`--input: ${file} row ${i + 1}: expected an array of numbers${tabular && names ? ' or an object keyed by column name' : ''}`);
    });
    rows = rows.map((r, i) => standardizeRow(r, meta, `--input: ${file} row ${i + 1}`));
  } else {
    if (!tabular || !names) throw new DataError(`--input: ${file}: this model takes images; give a JSON array of pixel arrays`);
    const table = await readNumericCsv(file, { only: names });
    rows = Array.from({ length: table.rows }, (_, r) => table.values.map((col) => col[r]));
    rows = rows.map((r, i) => standardizeRow(r, meta, `--input: ${file} line ${i + 2}`));
  }
  if (rows.length === 0) throw new DataError(`--input: ${file} has no rows`);
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(rows.length * size);
  rows.forEach((r, i) => x.set(r, i * size));
  return { x, rows: rows.length };
}
