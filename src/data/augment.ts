/**
 * The standard CIFAR-10 training augmentation: each image is flipped left-right with
 * probability 1/2, then zero-padded by 4 pixels on every side and cropped back to its size at a
 * random offset, i.e. shifted by -4..4 pixels in each direction with zeros filling the gap.
 */
import { Rng } from '../random.js';

/**
 * Augments a batch of `n` NHWC images of `h` x `w` x `c` (`x.length === n * h * w * c`).
 * Pure: returns a new array and leaves `x` alone. Seeded: the same `rng` state gives the same
 * result. Per image it draws, in order, the flip, the row shift and the column shift. The zero
 * padding is zero in the values given (for standardized data that is the mean colour).
 */
export function augmentBatch(
  x: Float32Array,
  n: number,
  h: number,
  w: number,
  c: number,
  rng: Rng,
  pad = 4,
): Float32Array {
  const size = h * w * c;
  if (x.length !== n * size) {
    throw new RangeError(`augmentBatch: ${x.length} values, expected n*h*w*c = ${n}*${h}*${w}*${c} = ${n * size}`);
  }
  const out = new Float32Array(x.length);
  const row = w * c;
  for (let k = 0; k < n; k++) {
    const flip = rng.next() < 0.5;
    // Crop offset in the padded image is 0..2*pad; output (i, j) reads input (i + dy, j + dx).
    const dy = rng.int(2 * pad + 1) - pad;
    const dx = rng.int(2 * pad + 1) - pad;
    const base = k * size;
    for (let i = 0; i < h; i++) {
      const si = i + dy;
      if (si < 0 || si >= h) continue; // a padded (zero) row
      for (let j = 0; j < w; j++) {
        const fj = j + dx; // column in the flipped image
        if (fj < 0 || fj >= w) continue;
        const sj = flip ? w - 1 - fj : fj;
        const to = base + i * row + j * c;
        const from = base + si * row + sj * c;
        for (let ch = 0; ch < c; ch++) out[to + ch] = x[from + ch];
      }
    }
  }
  return out;
}
