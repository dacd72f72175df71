/**
 * Times the conv kernels on the wasm backend at ResNet20 shapes (batch 128, CIFAR 32x32):
 * forward Conv2D, the input gradient (ours against the wasm package's built-in kernel) and the
 * filter gradient (both of our formulations, and the one the kernel picks; wasm has none built in).
 * Then the other kernels src/backend/wasm-kernels.ts replaces, against the built-in ones: the
 * matrix products of a Dense layer's backward pass and of ViT attention, and Tile.
 *
 *   npx tsc -p . && node dist/bench/conv-kernels.js [--batch 128] [--reps 3]
 *
 * Prints milliseconds per op (best of the repetitions, after one warm-up call).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import {
  builtinWasmKernel, conv2dFilterGrad, conv2dFilterGradConv, conv2dFilterGradIm2col, conv2dInputGrad,
  type WasmBackend,
} from '../src/backend/wasm-kernels.js';

type Shape4 = [number, number, number, number];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const batch = arg('--batch', 128);
const reps = arg('--reps', 3);

/** [label, input shape (without batch), filter shape, stride, how many ResNet20 layers have it]. */
const layers: Array<[string, [number, number, number], Shape4, number, number]> = [
  ['stem 3->16 32x32', [32, 32, 3], [3, 3, 3, 16], 1, 1],
  ['16->16 32x32', [32, 32, 16], [3, 3, 16, 16], 1, 6],
  ['16->32 s2 32x32', [32, 32, 16], [3, 3, 16, 32], 2, 1],
  ['1x1 16->32 s2', [32, 32, 16], [1, 1, 16, 32], 2, 1],
  ['32->32 16x16', [16, 16, 32], [3, 3, 32, 32], 1, 5],
  ['32->64 s2 16x16', [16, 16, 32], [3, 3, 32, 64], 2, 1],
  ['1x1 32->64 s2', [16, 16, 32], [1, 1, 32, 64], 2, 1],
  ['64->64 8x8', [8, 8, 64], [3, 3, 64, 64], 1, 5],
];

function time(backend: WasmBackend, fn: () => tf.TensorInfo, n = reps): number {
  backend.disposeData(fn().dataId);
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const out = fn();
    best = Math.min(best, performance.now() - t0);
    backend.disposeData(out.dataId);
  }
  return best;
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const backend = tf.backend() as unknown as WasmBackend;
  const builtin = builtinWasmKernel('Conv2DBackpropInput');
  const conv = tf.getKernel('Conv2D', 'wasm');
  console.log(`wasm backend, batch ${batch}, ms per op (best of ${reps})`);
  const cols = ['layer', 'count', 'forward', 'dx builtin', 'dx ours', 'dW conv', 'dW im2col', 'dW chosen'];
  console.log(cols.map((c, i) => (i === 0 ? c.padEnd(18) : c.padStart(10))).join(''));
  const totals = new Array<number>(cols.length - 2).fill(0);
  for (const [label, [h, w, c], fShape, s, count] of layers) {
    const xShape: Shape4 = [batch, h, w, c];
    const x = tf.randomNormal(xShape);
    const f = tf.randomNormal(fShape, 0, 0.1);
    const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, s, 'same');
    const dy = tf.randomNormal(y.shape);
    const fwd = time(backend, () => conv.kernelFunc({
      inputs: { x, filter: f }, backend: backend as unknown as tf.KernelBackend,
      attrs: { strides: s, pad: 'same', dataFormat: 'NHWC', dilations: 1 },
    }) as tf.TensorInfo);
    // The stem's input gradient is never needed in training.
    const stem = c === 3;
    const dxBuiltin = stem || builtin == null ? NaN : time(backend, () => builtin.kernelFunc({
      inputs: { dy, filter: f }, backend: backend as unknown as tf.KernelBackend,
      attrs: { strides: s, pad: 'same', dataFormat: 'NHWC', inputShape: xShape },
    }) as tf.TensorInfo, Math.min(reps, 2));
    const dxOurs = stem ? NaN : time(backend, () => conv2dInputGrad(backend, dy, f, xShape, s, 'same')!);
    const dwConv = time(backend, () => conv2dFilterGradConv(backend, x, dy, fShape, s, 'same'));
    const dwIm2col = time(backend, () => conv2dFilterGradIm2col(backend, x, dy, fShape, s, 'same'));
    const dwChosen = time(backend, () => conv2dFilterGrad(backend, x, dy, fShape, s, 'same'));
    const row = [fwd, dxBuiltin, dxOurs, dwConv, dwIm2col, dwChosen];
    row.forEach((v, i) => { if (Number.isFinite(v)) totals[i] += v * count; });
    console.log(label.padEnd(18) + String(count).padStart(10) + row.map((v) => (Number.isFinite(v) ? v.toFixed(1) : '-').padStart(10)).join(''));
    tf.dispose([x, f, y, dy]);
  }
  console.log('ResNet20 total'.padEnd(18) + ''.padStart(10) + totals.map((v) => v.toFixed(0).padStart(10)).join(''));
  console.log('(totals weight each row by its count of ResNet20 layers; "-" = not applicable)');

  // Matrix products: [label, a shape, b shape, transposeA, transposeB].
  const mm: Array<[string, number[], number[], boolean, boolean]> = [
    ['dense fwd x@W', [batch * 64, 64], [64, 64], false, false],
    ['dense dx = dy@W^T', [batch * 64, 64], [64, 64], false, true],
    ['dense dW = x^T@dy', [batch * 64, 64], [batch * 64, 64], true, false],
    ['attn q@k^T', [batch, 4, 65, 16], [batch, 4, 65, 16], false, true],
    ['attn a@v', [batch, 4, 65, 65], [batch, 4, 65, 16], false, false],
  ];
  const builtinMm = builtinWasmKernel('BatchMatMul');
  const oursMm = tf.getKernel('BatchMatMul', 'wasm');
  console.log(`\nBatchMatMul (ViT-like: ${batch} x 64 tokens, width 64, 4 heads), ms`);
  console.log('op'.padEnd(22) + 'builtin'.padStart(10) + 'ours'.padStart(10));
  for (const [label, as, bs, ta, tb] of mm) {
    const a = tf.randomNormal(as), b = tf.randomNormal(bs);
    const call = (k: tf.KernelConfig) => () => k.kernelFunc({
      inputs: { a, b }, backend: backend as unknown as tf.KernelBackend, attrs: { transposeA: ta, transposeB: tb },
    }) as tf.TensorInfo;
    const t0 = builtinMm == null ? NaN : time(backend, call(builtinMm), Math.min(reps, 2));
    const t1 = time(backend, call(oursMm));
    console.log(label.padEnd(22) + t0.toFixed(1).padStart(10) + t1.toFixed(1).padStart(10));
    tf.dispose([a, b]);
  }

  const builtinTile = builtinWasmKernel('Tile');
  const oursTile = tf.getKernel('Tile', 'wasm');
  console.log('\nTile (layer-norm broadcasts), ms');
  for (const [shape, tileReps] of [[[1, 1, 64], [batch, 65, 1]], [[batch, 65, 1], [1, 1, 64]]]) {
    const x = tf.randomNormal(shape);
    const call = (k: tf.KernelConfig) => () => k.kernelFunc({
      inputs: { x }, backend: backend as unknown as tf.KernelBackend, attrs: { reps: tileReps },
    }) as tf.TensorInfo;
    const t0 = builtinTile == null ? NaN : time(backend, call(builtinTile));
    const t1 = time(backend, call(oursTile));
    console.log(`[${shape}] x [${tileReps}]`.padEnd(22) + t0.toFixed(1).padStart(10) + t1.toFixed(2).padStart(10));
    x.dispose();
  }
}

await main();
