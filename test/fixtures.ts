/**
 * Fixtures shared by the fused-engine tests (fused-mlp, fused-block-mlp, fused-cnn via
 * cnn-fixtures): random data, exact and relative comparisons, and the MLP engine variants every
 * MLP test runs on with its data shapes.
 */
import assert from 'node:assert/strict';
import type { Rng } from '../src/random.js';
import { fastPathInfo } from '../src/engines/mlp/pick-core.js';

export const info = fastPathInfo();
export const nativeSkip: string | false = info.engine === 'native' ? false : `native addon unavailable: ${info.reason}`;

export type Loss = 'mse' | 'softmax-ce';

/** The engine variants: the JavaScript twin, the native engine, the native engine's portable kernels. */
export const ENGINES: Array<{ name: string; opts: { engine: 'js' | 'native'; threads?: number; simd?: 'portable' }; skip: string | false }> = [
  { name: 'js', opts: { engine: 'js' }, skip: false },
  { name: 'native', opts: { engine: 'native', threads: 2 }, skip: nativeSkip },
  { name: 'native portable kernels', opts: { engine: 'native', threads: 2, simd: 'portable' }, skip: nativeSkip },
];

export const SHAPES: Record<Loss, { nIn: number; nOut: number }> = {
  'mse': { nIn: 14, nOut: 1 }, // SGEMM-shaped regression
  'softmax-ce': { nIn: 40, nOut: 10 }, // small MNIST-shaped classification
};

/** A standard normal draw (Box-Muller). */
export function gaussian(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** n normal values of mean `shift` and standard deviation `scale`. */
export function randn(rng: Rng, n: number, scale = 1, shift = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = shift + gaussian(rng) * scale;
  return a;
}

/**
 * Every element within `rtol` relative, with an absolute floor of `rtol` times the tensor's largest
 * magnitude (so elements that are zero up to rounding compare on the tensor's own scale).
 * `nonZeroReference` also fails when the reference is all zeros but the actual is not (a
 * comparison against nothing).
 */
export function assertClose(actual: Float32Array, expected: Float32Array, rtol: number, what: string,
  { nonZeroReference = false } = {}): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  if (nonZeroReference) assert.ok(scale > 0 || actual.every((a) => a === 0), `${what}: reference is all zeros`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= rtol * (Math.abs(e) + scale) + 1e-12)) {
      assert.fail(`${what}[${i}]: ${a} vs ${e} (relative error ${(Math.abs(a - e) / (Math.abs(e) || 1)).toExponential(2)}, tensor scale ${scale.toExponential(2)})`);
    }
  }
}

/** |a - e| <= rtol |e|. */
export function assertRelClose(a: number, e: number, rtol: number, what: string): void {
  assert.ok(Math.abs(a - e) <= rtol * Math.abs(e), `${what}: ${a} vs ${e} (relative ${(Math.abs(a - e) / Math.abs(e)).toExponential(2)})`);
}

/** Bitwise equality of two float arrays, reporting the first differing element. */
export function assertBitwise(actual: Float32Array | Float64Array, expected: Float32Array | Float64Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  if (Buffer.compare(a, e) === 0) return;
  const i = actual.findIndex((v, k) => !Object.is(v, expected[k]));
  assert.fail(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (not bitwise equal)`);
}

/** Runs `fn` with GLONET_FAST_ENGINE set to `engine` (unset: as it was), restoring it after. */
export async function withEngineEnv<T>(engine: string | undefined, fn: () => T | Promise<T>): Promise<T> {
  const saved = process.env.GLONET_FAST_ENGINE;
  if (engine !== undefined) process.env.GLONET_FAST_ENGINE = engine;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.GLONET_FAST_ENGINE;
    else process.env.GLONET_FAST_ENGINE = saved;
  }
}
