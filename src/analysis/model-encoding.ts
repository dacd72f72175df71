/**
 * The table encoding of a trained model, whatever glonet wrote it: the one saved with the model
 * (CSV runs), or, for a model of table rows that has only per-column statistics (SGEMM, and CSV
 * runs trained before encodings existed), the all-numeric encoding those statistics describe.
 * No Node.js here: `glonet predict` and the page both read rows through it.
 */
import { numericEncoding, type TableEncoding } from '../data/table-encoding.js';
import type { ModelMetadata } from '../model-metadata.js';

/** The model's table encoding, or undefined for a model of images. */
export function modelEncoding(meta: ModelMetadata): TableEncoding | undefined {
  if (meta.encoding) return meta.encoding;
  if (meta.inputShape.length !== 1 || !meta.standardization) return undefined;
  return numericEncoding(meta.standardization, meta.classNames);
}
