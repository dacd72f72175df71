/** Small helpers the benchmarks share. */
import { Rng } from '../src/random.js';

/** Median (the machine may be shared: medians, not minimums). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One standard normal draw (Box-Muller). */
export function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next());
}

/** `n` He-normal values for a layer of this fan-in. */
export function heNormalArray(rng: Rng, fanIn: number, n: number): Float32Array {
  const a = new Float32Array(n);
  const s = Math.sqrt(2 / fanIn);
  for (let i = 0; i < n; i++) a[i] = gaussian(rng) * s;
  return a;
}

/** `n` standard normal values. */
export function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = gaussian(rng);
  return a;
}
