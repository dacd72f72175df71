/**
 * The data floor's own error and number rules, below everything else of src/data (the dataset
 * type, the table encoding and the loaders all use them): no imports but the error base.
 */
import { GlonetError } from '../errors.js';

/** A clear, user-facing data error (bad file, bad column, bad option). Never a stack trace. */
export class DataError extends GlonetError {
  /** 'DataError'. */
  override name = 'DataError';
}

/** The largest finite float32, the number type of the model's inputs and weights. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** True when `v` is finite and stays finite as a float32. */
export function fitsFloat32(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX;
}

/** (v - mean) / std, computed so that huge values do not overflow on the way. */
export function zScore(v: number, mean: number, std: number): number {
  const d = v - mean;
  return Number.isFinite(d) ? d / std : v / std - mean / std;
}

