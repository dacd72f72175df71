/**
 * The data formats of a `glonet web` site that Node writes and the page reads: `site.json` (the
 * manifest) and the test-set sample, `sample/sample.json` (its header) and
 * `sample/inputs.bin` (the model inputs). Node writes it and runs `glonet analyze`'s analysis on
 * the decoded sample; the page decodes the same bytes with this same module, so both sides see
 * bit-identical float32 inputs and their numbers can be compared exactly.
 *
 * Inputs are stored as float32 (little-endian, the byte order of every platform TF.js runs on) or,
 * for images whose pixels are `byte / 255` (then optionally standardized per channel, as the
 * CIFAR-10 loader does), as the bytes themselves, a quarter of the size. The byte form is used only
 * when decoding it gives back every float32 input bit for bit.
 *
 * No runtime imports: this module runs in Node and, bundled into the page, in browsers.
 */
import type { Dataset } from '../data/dataset.js';
import { GlonetError } from '../errors.js';

/** `site.json`: what the page reads first. */
export interface SiteManifest {
  format: 'glonet-web';
  version: 1;
  glonet: string;
  /** The run folder's name, for the page title. */
  run: string;
  /** Whether run/analysis.json (the run's own `glonet analyze` output) is included. */
  runAnalysis: boolean;
  sample: { rows: number; testSize: number; encoding: string; analysisBackend: string };
}

export type SampleEncoding =
  | { type: 'float32' }
  /** x = f32((f32(byte / 255) - mean[c]) / std[c]) with c the channel (the last axis); no mean/std: x = f32(byte / 255). */
  | { type: 'uint8-pixels'; mean?: number[]; std?: number[] };

export interface SampleHeader {
  format: 'glonet-sample';
  version: 1;
  /** Examples in the sample: the first `rows` examples of the run's test split. */
  rows: number;
  /** Examples in the run's test split: the sample is the whole test set when `rows === testSize`. */
  testSize: number;
  inputShape: number[];
  task: 'regression' | 'classification';
  outputs: number;
  encoding: SampleEncoding;
  /** The targets as the model sees them: standardized values (regression) or class indices. */
  targets: number[];
}

class SampleFormatError extends GlonetError {
  override name = 'SampleFormatError';
}

const exampleSize = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function pixelDecoder(e: Extract<SampleEncoding, { type: 'uint8-pixels' }>, channels: number): (byte: number, index: number) => number {
  const unit = new Float32Array(256);
  for (let b = 0; b < 256; b++) unit[b] = b / 255;
  if (!e.mean || !e.std) return (byte) => unit[byte];
  const { mean, std } = e;
  if (mean.length !== channels || std.length !== channels) {
    throw new SampleFormatError(`sample.json: encoding has ${mean.length} means and ${std.length} stds for ${channels} channels`);
  }
  return (byte, i) => Math.fround((unit[byte] - mean[i % channels]) / std[i % channels]);
}

/** The float32 model inputs of a sample from the bytes of `inputs.bin`. */
export function decodeSampleInputs(header: SampleHeader, bytes: Uint8Array): Float32Array {
  const n = header.rows * exampleSize(header.inputShape);
  if (header.encoding.type === 'float32') {
    if (bytes.byteLength !== n * 4) throw new SampleFormatError(`inputs.bin: expected ${n * 4} bytes (${header.rows} rows of float32), got ${bytes.byteLength}`);
    return new Float32Array(bytes.slice().buffer, 0, n);
  }
  if (header.encoding.type !== 'uint8-pixels') throw new SampleFormatError(`sample.json: unknown encoding '${(header.encoding as { type: string }).type}'`);
  if (bytes.byteLength !== n) throw new SampleFormatError(`inputs.bin: expected ${n} bytes (${header.rows} images), got ${bytes.byteLength}`);
  const decode = pixelDecoder(header.encoding, header.inputShape[header.inputShape.length - 1]);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = decode(bytes[i], i);
  return x;
}

/**
 * The smallest exact encoding of `x`: pixel bytes when `pixels` describes how the images were
 * scaled and decoding reproduces every value bit for bit, float32 otherwise.
 */
export function encodeSampleInputs(
  x: Float32Array, inputShape: number[], pixels: { mean?: number[]; std?: number[] } | null,
): { encoding: SampleEncoding; bytes: Uint8Array } {
  const asFloat = (): { encoding: SampleEncoding; bytes: Uint8Array } => ({ encoding: { type: 'float32' }, bytes: new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)) });
  if (!pixels || inputShape.length !== 3) return asFloat();
  const encoding: SampleEncoding = pixels.mean && pixels.std ? { type: 'uint8-pixels', mean: pixels.mean, std: pixels.std } : { type: 'uint8-pixels' };
  const channels = inputShape[2];
  const decode = pixelDecoder(encoding, channels);
  const bytes = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % channels;
    const unit = encoding.mean && encoding.std ? x[i] * encoding.std[c] + encoding.mean[c] : x[i];
    const byte = Math.min(255, Math.max(0, Math.round(unit * 255)));
    if (decode(byte, i) !== x[i]) return asFloat();
    bytes[i] = byte;
  }
  return { encoding, bytes };
}

/** Checks a parsed sample.json and returns it typed; `where` names the file in errors. */
export function checkSampleHeader(value: unknown, where: string): SampleHeader {
  const h = value as Partial<SampleHeader> | null;
  if (!h || h.format !== 'glonet-sample' || h.version !== 1) throw new SampleFormatError(`${where}: not a glonet sample (format glonet-sample, version 1)`);
  if (!Number.isInteger(h.rows) || (h.rows as number) < 1) throw new SampleFormatError(`${where}: rows must be a positive integer`);
  if (!Array.isArray(h.inputShape) || !h.inputShape.every((d) => Number.isInteger(d) && d > 0)) throw new SampleFormatError(`${where}: inputShape must be positive integers`);
  if (!Array.isArray(h.targets) || h.targets.length !== h.rows) throw new SampleFormatError(`${where}: expected ${h.rows} targets, got ${Array.isArray(h.targets) ? h.targets.length : 'none'}`);
  if (h.task !== 'regression' && h.task !== 'classification') throw new SampleFormatError(`${where}: task must be regression or classification`);
  return h as SampleHeader;
}

/** The sample as a test-only Dataset (no training rows), the form the analysis functions take. */
export function sampleDataset(header: SampleHeader, x: Float32Array, name = 'sample'): Dataset {
  return {
    name, task: header.task, inputShape: header.inputShape, outputs: header.outputs,
    xTrain: new Float32Array(0), yTrain: new Float32Array(0), nTrain: 0,
    xTest: x, yTest: Float32Array.from(header.targets), nTest: header.rows,
    source: name,
  };
}

/**
 * The page's content security policy: its own scripts, styles, wasm and files only (the wasm
 * backend needs 'wasm-unsafe-eval' to compile TF.js's kernels; nothing is evaluated from strings,
 * Vega's expressions run in its interpreter), no plugins, forms, base URL or framing by other sites.
 * `frame-ancestors` works in a header only; the site's index.html carries the rest (SITE_POLICY).
 */
export const PAGE_POLICY = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** The policy a static copy of the site declares in its index.html (a <meta> cannot hold frame-ancestors). */
export const SITE_POLICY = PAGE_POLICY.replace(/; frame-ancestors 'none'$/, '');
