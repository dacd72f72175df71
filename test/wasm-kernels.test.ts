/**
 * The kernels src/backend/wasm-kernels.ts adds to the wasm backend: conv gradients (filter and
 * input), BatchMatMul, UnsortedSegmentSum and Tile match the cpu backend or a plain reference, a
 * small conv net trains to the same losses on both backends, the Tile gradient is right, and the
 * kernels leave no tensor behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import {
  conv2dFilterGradConv, conv2dFilterGradIm2col, conv2dInputGrad, type WasmBackend,
} from '../src/backend/wasm-kernels.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase { x: [number, number, number, number]; w: [number, number, number, number]; s: number | [number, number]; pad: Pad }

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(1e-6, scale);
}

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

interface Grads { dx: Float32Array; dw: Float32Array }

/** dx, dw of sum(conv2d(x, w) * dy) on the active backend, with dy as an array. */
function convGrads(c: ConvCase, seed: number): Grads {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(size(c.x), seed), c.x);
    const w = tf.tensor4d(values(size(c.w), seed + 1), c.w);
    const yShape = tf.conv2d(x, w, c.s, c.pad).shape;
    const dy = tf.tensor(values(size(yShape), seed + 2), yShape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad).mul(dy).sum())([x, w]);
    return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

const cases: ConvCase[] = [];
for (const s of [1, 2]) {
  for (const pad of ['same', 'valid'] as const) {
    // [height, width, in channels, out channels, kernel]: odd and even sizes; patches of
    // kh*kw*inC both <= 32 (im2col path) and > 32 (conv path).
    for (const [h, w, c, co, k] of [[8, 8, 4, 6, 3], [7, 9, 3, 5, 3], [9, 6, 8, 4, 1], [6, 7, 5, 3, 2], [10, 9, 2, 3, 5]]) {
      cases.push({ x: [2, h, w, c], w: [k, k, c, co], s, pad });
    }
  }
}
// ResNet20-like: 16 -> 32 channels, 3x3 stride 2 and the 1x1 stride-2 shortcut.
cases.push({ x: [2, 8, 8, 16], w: [3, 3, 16, 32], s: 2, pad: 'same' });
cases.push({ x: [2, 8, 8, 16], w: [1, 1, 16, 32], s: 2, pad: 'same' });
cases.push({ x: [2, 7, 7, 16], w: [1, 1, 16, 32], s: 2, pad: 'valid' });
// Stride 3, unequal strides, explicit padding (including a padding past the first phase row).
cases.push({ x: [1, 10, 8, 3], w: [3, 3, 3, 4], s: 3, pad: 'same' });
cases.push({ x: [2, 7, 8, 6], w: [3, 3, 6, 4], s: [1, 2], pad: 'same' });
cases.push({ x: [2, 7, 6, 5], w: [3, 3, 5, 4], s: 2, pad: [[0, 0], [2, 1], [0, 3], [0, 0]] });
cases.push({ x: [2, 7, 6, 5], w: [3, 3, 5, 4], s: 1, pad: [[0, 0], [4, 1], [1, 5], [0, 0]] });

test('conv2d gradients (filter and input) on wasm match cpu', async () => {
  await initBackend('cpu');
  const ref = cases.map((c, i) => convGrads(c, 100 + 7 * i));
  await initBackend('wasm');
  cases.forEach((c, i) => {
    const got = convGrads(c, 100 + 7 * i);
    const label = JSON.stringify(c);
    assert.ok(relErr(got.dw, ref[i].dw) < 1e-4, `filter gradient ${label}: ${relErr(got.dw, ref[i].dw)}`);
    assert.ok(relErr(got.dx, ref[i].dx) < 1e-4, `input gradient ${label}: ${relErr(got.dx, ref[i].dx)}`);
  });
});

test('both filter-gradient formulations and the input gradient agree with cpu on every case', async () => {
  await initBackend('cpu');
  const ref = cases.map((c, i) => convGrads(c, 300 + 5 * i));
  await initBackend('wasm');
  const backend = tf.backend() as unknown as WasmBackend;
  cases.forEach((c, i) => {
    const x = tf.tensor4d(values(size(c.x), 300 + 5 * i), c.x);
    const w = tf.tensor4d(values(size(c.w), 301 + 5 * i), c.w);
    const yShape = tf.conv2d(x, w, c.s, c.pad).shape;
    const dy = tf.tensor(values(size(yShape), 302 + 5 * i), yShape);
    const label = JSON.stringify(c);
    for (const f of [conv2dFilterGradConv, conv2dFilterGradIm2col]) {
      const dw = f(backend, x, dy, c.w, c.s, c.pad);
      assert.deepEqual(dw.shape, c.w);
      assert.ok(relErr(backend.readSync(dw.dataId), ref[i].dw) < 1e-4, `${f.name} ${label}`);
      backend.disposeData(dw.dataId);
    }
    const dx = conv2dInputGrad(backend, dy, w, c.x, c.s, c.pad);
    assert.ok(dx != null, `input gradient covers ${label}`);
    assert.deepEqual(dx.shape, c.x);
    assert.ok(relErr(backend.readSync(dx.dataId), ref[i].dx) < 1e-4, `input gradient ${label}`);
    backend.disposeData(dx.dataId);
    tf.dispose([x, w, dy]);
  });
});

test('gather gradient (UnsortedSegmentSum) on wasm matches cpu', async () => {
  const table = values(7 * 5, 11);
  const ids = [3, 0, 3, 6, 1, 3];
  const run = () => tf.tidy(() => {
    const t = tf.tensor2d(table, [7, 5]);
    const up = tf.tensor2d(values(6 * 5, 12), [6, 5]);
    return tf.grad((a: tf.Tensor) => tf.gather(a, tf.tensor1d(ids, 'int32')).mul(up).sum())(t).dataSync();
  });
  await initBackend('cpu');
  const ref = run();
  await initBackend('wasm');
  assert.ok(relErr(run(), ref) < 1e-6);
});

/** Small conv net: conv s1 + conv s2 + batchNorm + avg pool + 1x1 s2 shortcut + dense. */
function smallConvNet(): tf.LayersModel {
  const input = tf.input({ shape: [9, 9, 3] });
  const a = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tf.SymbolicTensor;
  let b = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(a) as tf.SymbolicTensor;
  b = tf.layers.batchNormalization().apply(b) as tf.SymbolicTensor;
  b = tf.layers.reLU().apply(b) as tf.SymbolicTensor;
  const shortcut = tf.layers.conv2d({ filters: 8, kernelSize: 1, strides: 2, padding: 'same' }).apply(a) as tf.SymbolicTensor;
  let c = tf.layers.add().apply([b, shortcut]) as tf.SymbolicTensor;
  c = tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }).apply(c) as tf.SymbolicTensor;
  c = tf.layers.flatten().apply(c) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4 }).apply(c) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

test('SGD steps of a small conv net give the same losses on wasm and cpu', async () => {
  const n = 6, steps = 4;
  const xs = values(n * 9 * 9 * 3, 21);
  const labels = [0, 1, 2, 3, 1, 2];
  let weights: number[][] | null = null;
  let shapes: number[][] = [];
  const train = async (): Promise<number[]> => {
    const model = smallConvNet();
    if (weights == null) {
      weights = model.getWeights().map((t) => Array.from(t.dataSync()));
      shapes = model.getWeights().map((t) => t.shape);
    } else {
      const ws = weights.map((v, i) => tf.tensor(v, shapes[i]));
      model.setWeights(ws);
      tf.dispose(ws);
    }
    const optimizer = tf.train.sgd(0.05);
    const x = tf.tensor4d(xs, [n, 9, 9, 3]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4);
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true);
      losses.push(loss!.dataSync()[0]);
      loss!.dispose();
    }
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
    return losses;
  };
  await initBackend('cpu');
  const cpu = await train();
  await initBackend('wasm');
  const wasm = await train();
  assert.ok(cpu[steps - 1] < cpu[0], `loss goes down on cpu: ${cpu}`);
  for (let i = 0; i < steps; i++) {
    assert.ok(Math.abs(wasm[i] - cpu[i]) / Math.max(1e-6, Math.abs(cpu[i])) < 1e-4, `step ${i}: wasm ${wasm[i]} cpu ${cpu[i]}`);
  }
});

test('the kernels leave no tensor behind', async () => {
  await initBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const x = tf.tensor4d(values(2 * 9 * 9 * 16, 5), [2, 9, 9, 16]);
  const filters = [tf.tensor4d(values(9 * 16 * 8, 6), [3, 3, 16, 8]), tf.tensor4d(values(16 * 8, 7), [1, 1, 16, 8]),
    tf.tensor4d(values(9 * 16 * 4, 8), [3, 3, 16, 4])];
  const table = tf.tensor2d(values(20, 9), [5, 4]);
  const step = () => {
    for (const w of filters) {
      for (const s of [1, 2]) {
        for (const pad of ['same', 'valid'] as const) {
          const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad).square().sum())([x, w]);
          tf.dispose([dx, dw]);
        }
      }
    }
    tf.grad((t: tf.Tensor) => tf.gather(t, [1, 1, 4]).sum())(table).dispose();
    tf.grad((t: tf.Tensor) => tf.tile(t, [2, 3]).square().sum())(table).dispose();
    // BatchMatMul: folded, per-item, transposed, built-in loop, and the fresh-copy guard.
    tf.tidy(() => {
      const a = tf.tensor3d(values(3 * 24 * 20, 31), [3, 24, 20]);
      const b = tf.tensor3d(values(3 * 20 * 24, 32), [3, 20, 24]);
      const w = tf.tensor2d(values(20 * 24, 33), [20, 24]);
      tf.matMul(a, w).dataSync();
      tf.matMul(a, b).dataSync();
      tf.matMul(a, b, true, true).dataSync();
      tf.matMul(a.slice([0, 0, 0], [3, 2, 2]), b.slice([0, 0, 0], [3, 2, 2])).dataSync();
      tf.matMul(tf.ones([2, 24]), w.reshape([24, 20])).dataSync();
    });
  };
  step(); // first use may allocate once (kernel setup)
  const tensors = tf.memory().numTensors, dataIds = backend.numDataIds();
  step();
  step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), dataIds);
  tf.dispose([x, table, ...filters]);
});

test('BatchMatMul on wasm (transposes, batches, broadcasting) matches cpu', async () => {
  // [a shape, b shape, transposeA, transposeB]
  const mm: Array<[number[], number[], boolean, boolean]> = [];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const a = (outer: number[], m: number, k: number) => [...outer, ta ? k : m, ta ? m : k];
      const b = (outer: number[], k: number, n: number) => [...outer, tb ? n : k, tb ? k : n];
      mm.push([a([], 7, 5), b([], 5, 6), ta, tb]);
      mm.push([a([3], 24, 20), b([3], 20, 24), ta, tb]); // per-item XNNPACK
      mm.push([a([3], 4, 3), b([3], 3, 2), ta, tb]); // tiny: built-in loop
      mm.push([a([2, 3], 24, 20), b([], 20, 24), ta, tb]); // b broadcast (folded if !ta)
      mm.push([a([1], 24, 20), b([2, 3], 20, 24), ta, tb]); // a broadcast
      mm.push([a([2, 1], 24, 20), b([1, 3], 20, 24), ta, tb]); // both broadcast
    }
  }
  // The reference broadcasts explicitly: the cpu kernel gets [2, 1] x [1, 3] batches wrong.
  const run = (broadcast: boolean) => mm.map(([as, bs, ta, tb], i) => tf.tidy(() => {
    let a = tf.tensor(values(size(as), 500 + i), as);
    let b = tf.tensor(values(size(bs), 600 + i), bs);
    if (broadcast) {
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(as.slice(0, -2), bs.slice(0, -2));
      a = tf.broadcastTo(a, [...outer, ...as.slice(-2)]);
      b = tf.broadcastTo(b, [...outer, ...bs.slice(-2)]);
    }
    return tf.matMul(a, b, ta, tb).dataSync();
  }));
  await initBackend('cpu');
  const ref = run(true);
  await initBackend('wasm');
  const got = run(false);
  mm.forEach((c, i) => assert.ok(relErr(got[i], ref[i]) < 1e-5, `matMul ${JSON.stringify(c)}: ${relErr(got[i], ref[i])}`));
});

test('one tensor given to XNNPACK as a right operand under two shapes stays correct', async () => {
  const run = () => tf.tidy(() => {
    const w = tf.tensor2d(values(24, 41), [4, 6]);
    const a = tf.tensor2d(values(12, 42), [3, 4]);
    const c = tf.tensor2d(values(24, 43), [3, 8]);
    const first = tf.matMul(a, w).dataSync();
    const second = tf.matMul(c, w.reshape([8, 3])).dataSync(); // same data id, other [k, n]
    return [first, second];
  });
  await initBackend('cpu');
  const ref = run();
  await initBackend('wasm');
  const got = run();
  assert.ok(relErr(got[0], ref[0]) < 1e-5);
  assert.ok(relErr(got[1], ref[1]) < 1e-5);
});

test('dense and attention gradients on wasm match cpu', async () => {
  const B = 3, T = 9, D = 16, H = 2;
  const grads = () => tf.tidy(() => {
    const x = tf.tensor3d(values(B * T * D, 71), [B, T, D]);
    const wq = tf.tensor2d(values(D * D, 72), [D, D]).mul(0.3);
    const wk = tf.tensor2d(values(D * D, 73), [D, D]).mul(0.3);
    const wv = tf.tensor2d(values(D * D, 74), [D, D]).mul(0.3);
    const f = (xx: tf.Tensor, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
      const heads = (w: tf.Tensor) => tf.matMul(xx.reshape([B * T, D]), w).reshape([B, T, H, D / H]).transpose([0, 2, 1, 3]);
      const att = tf.softmax(tf.matMul(heads(q), heads(k), false, true).div(Math.sqrt(D / H)));
      return tf.matMul(att, heads(v)).square().sum();
    };
    return tf.grads(f)([x, wq, wk, wv]).map((g) => g.dataSync());
  });
  await initBackend('cpu');
  const ref = grads();
  await initBackend('wasm');
  const got = grads();
  got.forEach((g, i) => assert.ok(relErr(g, ref[i]) < 1e-4, `gradient ${i}: ${relErr(g, ref[i])}`));
});

/** Plain-JS tile, for reference. */
function tileRef(x: number[], shape: number[], reps: number[]): number[] {
  const outShape = shape.map((d, i) => d * reps[i]);
  const out = new Array<number>(size(outShape));
  for (let o = 0; o < out.length; o++) {
    let rest = o, src = 0, stride = 1;
    const coords: number[] = [];
    for (let i = outShape.length - 1; i >= 0; i--) {
      coords[i] = rest % outShape[i];
      rest = Math.floor(rest / outShape[i]);
    }
    for (let i = shape.length - 1; i >= 0; i--) {
      src += (coords[i] % shape[i]) * stride;
      stride *= shape[i];
    }
    out[o] = x[src];
  }
  return out;
}

const tileCases: Array<[number[], number[]]> = [
  [[5], [3]], [[2, 3], [1, 4]], [[2, 3], [3, 1]], [[1, 1, 6], [2, 5, 1]], [[3, 4, 1], [1, 1, 5]],
  [[2, 1, 3, 2], [2, 3, 1, 2]], [[2, 2, 1, 2, 3], [1, 2, 3, 1, 2]], [[2, 3], [1, 1]], [[0, 3], [2, 2]],
];

test('Tile on wasm matches a plain tile (float32 and int32)', async () => {
  await initBackend('wasm');
  tileCases.forEach(([shape, reps], i) => {
    const x = values(size(shape), 800 + i).map((v) => Math.round(v * 100) | 0);
    for (const dtype of ['float32', 'int32'] as const) {
      const got = tf.tidy(() => tf.tile(tf.tensor(x, shape, dtype), reps).dataSync());
      assert.deepEqual(Array.from(got), tileRef(x, shape, reps), `tile ${shape} by ${reps} (${dtype})`);
    }
  });
});

test('the Tile gradient sums dy over the repetitions, on wasm and cpu', async () => {
  for (const backend of ['cpu', 'wasm']) {
    await initBackend(backend);
    tileCases.filter(([shape]) => size(shape) > 0).forEach(([shape, reps], i) => {
      const outShape = shape.map((d, k) => d * reps[k]);
      const up = values(size(outShape), 900 + i);
      // d/dx sum(tile(x) * up): each x element collects the up values of its copies.
      const index = tileRef(Array.from({ length: size(shape) }, (_, k) => k), shape, reps);
      const want = new Array<number>(size(shape)).fill(0);
      index.forEach((src, o) => { want[src] += up[o]; });
      const got = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.tile(x, reps).mul(tf.tensor(up, outShape)).sum())(
        tf.tensor(values(size(shape), 1000 + i), shape)).dataSync());
      assert.ok(relErr(got, want) < 1e-5, `${backend}: tile gradient ${shape} by ${reps}`);
    });
  }
});
