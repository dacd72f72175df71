/**
 * The fused ViT engine (native/src/vit, in the glonet_fused addon), both archs (glonet, plain),
 * against the same model in TF.js Layers on the wasm backend (glonet's default; the cpu backend's
 * batched matrix products make the same checks take minutes): every gradient against
 * tf.variableGrads of (mean softmax cross-entropy + model.calculateLosses()), the loss and the
 * logits; 20-step Adam trajectories (losses and weights) against TfjsStepper; each at 1 and 2
 * threads (bit-identical to each other) and with each kernel set (AVX-512, AVX2, portable, as
 * far as the CPU has them). Then the optimizer state, input checks, the engine's selection, the
 * stepper, and whole runs through runTraining (the saved model reproduces the engine's test
 * error in TF.js; resume is exact).
 *
 * Data: the real bundled MNIST digits at 28x28x1, and the same digits at the CIFAR-10 shape
 * 32x32x3 (padded by 2 pixels, three differently scaled channels). The models are small (2
 * encoders, width 32 or 36) so that TF.js's reference takes seconds; every code path of the
 * engine is the same at width 128 (width 36 with 4 heads exercises the kernels' ragged vector
 * tails, mlpDim 2048 the authors' feed-forward width).
 *
 * The key projection's bias has no effect on the model: it adds q . bk to every score of a
 * query's row, and softmax does not change when a row is shifted. Its gradient is zero up to
 * rounding in both implementations (about 1e-10 here, against 1e-3 for the query bias), so it is
 * checked to be that, not compared element by element; and Adam, which divides a gradient by its
 * own magnitude, moves it by about the learning rate in directions set by rounding, so the
 * trajectories compare every other weight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildViT, VIT_ARCHS, type VitArch } from '../src/models/vit.js';
import { familyDefaults } from '../src/models/index.js';
import { loadModel } from '../src/model-io.js';
import type { ModelMetadata } from '../src/model-metadata.js';
import { TfjsStepper } from '../src/engines/tfjs.js';
import type { StepperOptions } from '../src/engines/types.js';
import { createFusedVit, fusedVitInfo, vitLayers, type FusedVit, type FusedVitOptions, type VitShape } from '../src/engines/vit/fused-native-vit.js';
import { createVitEngine, fusedVitApplies } from '../src/engines/vit/adapter.js';
import { FusedStepper, readLayers, type LayerArrays } from '../src/engines/fused-stepper.js';
import { createStepper } from '../src/engines/select.js';
import { runTraining } from '../src/train/run.js';
import { evaluate } from '../src/scoring.js';
import { createProgress } from '../src/train/progress.js';
import { Rng } from '../src/random.js';
import { tmpDir } from './helpers.js';
import { assertBitwise, assertClose, assertRelClose, randn } from './fixtures.js';
import { batches, mnist, setLayer, tfGradients, tfPredict, type Data } from './cnn-fixtures.js';

await initBackend('wasm');

const info = fusedVitInfo();
const skip = info.available ? false : `fused ViT engine unavailable: ${info.reason}`;

// ----- fixtures -----

/** The first MNIST digits at the CIFAR-10 shape: padded to 32x32, channels x, 1 - x, x / 2. */
function digitsRgb32(rows: number): Data {
  const d = mnist(rows);
  const x = new Float32Array(rows * 32 * 32 * 3);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < 28; i++) {
      for (let j = 0; j < 28; j++) {
        const v = d.x[r * 784 + i * 28 + j];
        const o = ((r * 32 + i + 2) * 32 + j + 2) * 3;
        x[o] = v;
        x[o + 1] = 1 - v;
        x[o + 2] = v / 2;
      }
    }
  }
  return { shape: [32, 32, 3], x, y: d.y, rows };
}

const DATA = { 28: mnist, 32: digitsRgb32 } as const;
type Size = keyof typeof DATA;

function shapeOf(arch: VitArch, d: Data, o: { width?: number; mlpDim?: number; depth?: number } = {}): VitShape {
  const width = o.width ?? 32;
  return { arch, inputShape: d.shape, classes: 10, depth: o.depth ?? 2, width, heads: 4, mlpDim: o.mlpDim ?? 48, patch: 4, lnEpsilon: 1e-5 };
}

const L2 = 1e-3;

/** The family's TF.js model of this shape, with every bias, LayerNorm, class token and position moved off its initial value. */
function tfModel(s: VitShape, seed: number): tf.LayersModel {
  const model = buildViT({ arch: s.arch, depth: s.depth, width: s.width, inputShape: s.inputShape, outputs: s.classes, seed, l2: L2, mlpDim: s.mlpDim, heads: s.heads });
  const rng = new Rng(seed);
  for (const l of vitLayers(s)) {
    const values = model.getLayer(l.name).getWeights().map((t) => (t.dataSync() as Float32Array).slice());
    const isLn = l.name.endsWith('_ln1') || /^encoder_\d+$/.test(l.name);
    setLayer(model, l.name, values.map((a, j) => {
      if (l.kernels[j]) return a;
      if (isLn && j === 0) return randn(rng, a.length, 0.2, 1); // gamma around 1
      return randn(rng, a.length, 0.05, 0).map((v, k) => v + a[k]);
    }));
  }
  return model;
}

const names = (s: VitShape) => vitLayers(s).map((l) => l.name);
/** Whether array j of layer `name` is the key projection's bias (see the file comment). */
const isKeyBias = (name: string, j: number) => name.endsWith('_attn') && j === 3;

/** Every gradient within `rtol` of TF.js's, the key biases checked to be zero up to rounding. */
function assertGradientsClose(actual: LayerArrays, expected: LayerArrays, layerNames: string[], rtol: number, what: string): void {
  actual.forEach((arrays, i) => arrays.forEach((a, j) => {
    const name = `${what}: ${layerNames[i]}[${j}]`;
    if (!isKeyBias(layerNames[i], j)) return assertClose(a, expected[i][j], rtol, name, { nonZeroReference: true });
    // Against the query bias's gradient (array 1 of the same layer).
    const scale = Math.max(...expected[i][1].map(Math.abs));
    for (const g of [a, expected[i][j]]) assert.ok(Math.max(...g.map(Math.abs)) <= 1e-5 * scale, `${name}: key-bias gradient not zero up to rounding`);
  }));
}

function options(s: VitShape, extra: Partial<FusedVitOptions> = {}): FusedVitOptions {
  return { ...s, l2: L2, lr: 1e-3, ...extra };
}

/** The kernel sets to check: the default, and on x86 CPUs the slower ones too. */
const KERNEL_SETS = (['auto', 'avx2', 'portable'] as const).filter((k) => k === 'auto' || (info.kernels !== 'portable' && (k === 'portable' || info.kernels === 'avx512')));

// ----- gradients, loss, predictions -----

interface GradientCase { arch: VitArch; size: Size; rows: number; chunk: number; width?: number; mlpDim?: number; depth?: number }

const GRADIENT_CASES: GradientCase[] = [
  // 20 digits in chunks of 8: two full chunks and a ragged one of 4.
  { arch: 'glonet', size: 28, rows: 20, chunk: 8 },
  { arch: 'plain', size: 28, rows: 20, chunk: 8 },
  // Width 36 (head width 9): ragged vector tails everywhere; the authors' feed-forward width.
  { arch: 'glonet', size: 32, rows: 10, chunk: 3, width: 36, mlpDim: 2048 },
  { arch: 'plain', size: 32, rows: 10, chunk: 4 },
  // One encoder: the first is the last (which keeps only the class-token rows).
  { arch: 'glonet', size: 28, rows: 6, chunk: 4, depth: 1 },
];

for (const c of GRADIENT_CASES) {
  const label = `${c.arch}, depth ${c.depth ?? 2}, ${c.size}x${c.size}x${c.size === 28 ? 1 : 3}, ${c.rows} digits, chunks of ${c.chunk}, width ${c.width ?? 32}, mlpDim ${c.mlpDim ?? 48}`;
  test(`${label}: gradients, loss and logits match TF.js at 1 and 2 threads (bit-identical), every kernel set`, { skip }, () => {
    const d = DATA[c.size](c.rows);
    const s = shapeOf(c.arch, d, c);
    const model = tfModel(s, 7);
    const ln = names(s);
    const w = readLayers(model, ln);
    const expected = tfPredict(model, d);
    const ref = tfGradients(model, ln, d, 10);
    for (const kernels of KERNEL_SETS) {
      const results = [1, 2].map((threads) => {
        const e = createFusedVit(options(s, { threads, chunkImages: c.chunk, kernels }), w);
        assert.equal(e.threads, threads);
        assert.deepEqual(e.layers.map((l) => l.name), ln);
        const r = { g: e.gradients(d.x, d.y, d.rows), loss: e.evaluate(d.x, d.y, d.rows), logits: e.predict(d.x, d.rows), kernels: e.kernels };
        // gradients(), evaluate() and predict() change nothing.
        e.getWeights().forEach((arrays, i) => arrays.forEach((a, j) => assertBitwise(a, w[i][j], `${ln[i]}[${j}]`)));
        e.dispose();
        return r;
      });
      const what = `${results[0].kernels} kernels`;
      assertGradientsClose(results[0].g, ref.grads, ln, 1e-4, `${what}: grad`);
      assertRelClose(results[0].loss, ref.loss, 1e-5, `${what}: loss with L2`);
      assertClose(results[0].logits, expected, 1e-5, `${what}: logits`, { nonZeroReference: true });
      results[1].g.forEach((arrays, i) => arrays.forEach((a, j) => assertBitwise(a, results[0].g[i][j], `${what}, 2 threads: ${ln[i]}[${j}]`)));
      assert.equal(results[1].loss, results[0].loss);
      assertBitwise(results[1].logits, results[0].logits, `${what}, 2 threads: logits`);
    }
    model.dispose();
  });
}

// ----- training trajectories -----

/*
 * 20 Adam steps (lr 1e-3, L2 1e-3) on 20 digits in batches of 8 (8, 8, 4, ...), both sides
 * running free from the same weights: every step's loss within 1e-4, and every weight after 20
 * steps within 1e-4 of its tensor's scale, except the key biases (file comment). The engine runs
 * at 1 and 2 threads, which must agree bit for bit.
 */
for (const arch of VIT_ARCHS) {
  for (const size of [28, 32] as const) {
    test(`${arch}, ${size}x${size}: 20-step Adam losses and weights match TfjsStepper; 1 and 2 threads bit-identical`, { skip }, () => {
      const d = DATA[size](20);
      const s = shapeOf(arch, d);
      const model = tfModel(s, 3);
      const ln = names(s);
      const w = readLayers(model, ln);
      const lr = 1e-3;
      const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer: 'adam', lr, momentum: 0, l2: L2 };
      const reference = new TfjsStepper(model, so);
      const engines = [1, 2].map((threads) => createFusedVit(options(s, { lr, threads, chunkImages: 4 }), w));
      const expected: number[] = [];
      const actual: number[][] = engines.map(() => []);
      for (const b of batches(d, 20, 8)) {
        expected.push(reference.step(b.x, b.y, b.rows));
        engines.forEach((e, k) => actual[k].push(e.step(b.x, b.y, b.rows)));
      }
      // The reference trains: the last pass over the 20 digits has a lower loss than the first.
      const pass = (i: number) => (8 * expected[i] + 8 * expected[i + 1] + 4 * expected[i + 2]) / 20;
      assert.ok(pass(17) < pass(0) - 0.05, `the reference trains: ${expected.map((l) => l.toFixed(3)).join(' ')}`);
      actual[0].forEach((a, i) => assertRelClose(a, expected[i], 1e-4, `step ${i + 1} loss`));
      assert.deepEqual(actual[1], actual[0], '2 threads: losses');
      const tfWeights = readLayers(model, ln);
      const mine = engines[0].getWeights();
      mine.forEach((arrays, i) => arrays.forEach((a, j) => {
        if (!isKeyBias(ln[i], j)) assertClose(a, tfWeights[i][j], 1e-4, `after 20 steps: ${ln[i]}[${j}]`, { nonZeroReference: true });
      }));
      engines[1].getWeights().forEach((arrays, i) => arrays.forEach((a, j) => assertBitwise(a, mine[i][j], `2 threads: ${ln[i]}[${j}]`)));
      assert.equal(engines[0].getOptimizerState().step, 20);
      reference.dispose();
      engines.forEach((e) => e.dispose());
      model.dispose();
    });
  }
}

// ----- threads, chunks, state -----

test('glonet: 1, 2 and 3 threads, fixed or adaptive, give bit-identical weights; another chunk size the same gradients (1e-4)', { skip }, () => {
  const d = mnist(40);
  const s = shapeOf('glonet', d);
  const model = tfModel(s, 5);
  const w = readLayers(model, names(s));
  model.dispose();
  const run = (o: Partial<FusedVitOptions>) => {
    const e = createFusedVit(options(s, { chunkImages: 4, ...o }), w);
    const losses = Array.from({ length: 3 }, () => e.step(d.x, d.y, d.rows));
    const weights = e.getWeights();
    e.dispose();
    return { losses, weights };
  };
  const one = run({ threads: 1 });
  for (const o of [{ threads: 2 }, { threads: 3 }, { threads: 2, adaptive: true }]) {
    const other = run(o);
    assert.deepEqual(other.losses, one.losses, JSON.stringify(o));
    other.weights.forEach((arrays, i) => arrays.forEach((a, j) => assertBitwise(a, one.weights[i][j], `${JSON.stringify(o)}: ${i}/${j}`)));
  }
  const grads = (chunkImages: number) => {
    const e = createFusedVit(options(s, { chunkImages }), w);
    const out = { loss: e.evaluate(d.x, d.y, d.rows), g: e.gradients(d.x, d.y, d.rows) };
    e.dispose();
    return out;
  };
  const by4 = grads(4);
  const by16 = grads(16);
  assertRelClose(by16.loss, by4.loss, 1e-5, 'chunk 16 loss');
  assertGradientsClose(by16.g, by4.g, names(s), 1e-4, 'chunk 16 gradients');
});

test('plain: weights and optimizer state round-trip (3 + 3 steps equal 6); setLearningRate', { skip }, () => {
  const d = mnist(24);
  const s = shapeOf('plain', d);
  const model = tfModel(s, 9);
  const w = readLayers(model, names(s));
  model.dispose();
  const o = options(s, { chunkImages: 8 });
  const straight = createFusedVit(o, w);
  for (let k = 0; k < 6; k++) straight.step(d.x, d.y, d.rows);
  const first = createFusedVit(o, w);
  for (let k = 0; k < 3; k++) first.step(d.x, d.y, d.rows);
  const state = first.getOptimizerState();
  assert.equal(state.step, 3);
  const second = createFusedVit(o, first.getWeights());
  second.setOptimizerState(state);
  for (let k = 0; k < 3; k++) second.step(d.x, d.y, d.rows);
  assert.deepEqual(second.getWeights(), straight.getWeights());
  assert.equal(second.getOptimizerState().step, 6);
  // Adam's first step has size lr * sign(g) (up to epsilon): a tenth of the rate, a tenth of the step.
  const moved = (e: FusedVit) => e.getWeights().reduce((acc, arrays, i) => acc + arrays.reduce((t, a, j) => t + a.reduce((u, v, k) => u + Math.abs(v - w[i][j][k]), 0), 0), 0);
  const slow = createFusedVit(o, w);
  slow.setLearningRate(o.lr / 10);
  slow.step(d.x, d.y, d.rows);
  const fast = createFusedVit(o, w);
  fast.step(d.x, d.y, d.rows);
  assertRelClose(moved(slow), moved(fast) / 10, 2e-3, 'a tenth of the learning rate, a tenth of the first step');
  for (const e of [straight, first, second, slow, fast]) e.dispose();
});

test('input validation and dispose', { skip }, () => {
  const d = mnist(4);
  const s = shapeOf('glonet', d);
  const model = tfModel(s, 1);
  const w = readLayers(model, names(s));
  model.dispose();
  const e = createFusedVit(options(s), w);
  assert.throws(() => e.step(d.x, Float32Array.of(0, 1, 10, 2), 4), /label 10 at row 2/);
  assert.throws(() => e.step(d.x, d.y, 5), /x must be a Float32Array/);
  assert.throws(() => e.setWeights(w.slice(1)), /expected 14 layers, got 13/);
  assert.throws(() => e.setWeights([...w.slice(0, -1), [w[w.length - 1][0], new Float32Array(3)]]), /head\[1\] has 3 values/);
  assert.throws(() => e.setOptimizerState({ step: 1, m: w, v: w.slice(1) }), /optimizer state 'v'/);
  assert.throws(() => createFusedVit({ ...options(s), heads: 5 }, w), /width 32 must be divisible by heads 5/);
  assert.throws(() => createFusedVit({ ...options(s), patch: 5 }, w), /not divisible into 5x5 patches/);
  assert.throws(() => createFusedVit({ ...options(s), arch: 'vanilla' as VitArch }, w), /arch must be 'glonet' or 'plain'/);
  assert.throws(() => createFusedVit({ ...options(s), kernels: 'sse' as 'auto' }, w), /kernels must be/);
  assert.throws(() => createFusedVit(options({ ...s, depth: 3 }), w), /initial weights: expected 19 layers/);
  e.dispose();
  assert.throws(() => e.step(d.x, d.y, 4), /disposed/);
});

// ----- selection, the stepper, whole runs -----

const META = (arch: string, depth: number, shape: number[]): ModelMetadata => ({
  model: 'vit', arch, depth, task: 'classification', inputShape: shape, outputs: 10, blockLayers: [],
});

test('fusedVitApplies: both ViT archs with Adam, when the engine is available; not SGD, other families, truncated models', () => {
  for (const arch of VIT_ARCHS) {
    const meta = META(arch, 4, [32, 32, 3]);
    assert.equal(fusedVitApplies(meta, { optimizer: 'adam' }), info.available, arch);
    assert.equal(fusedVitApplies(meta, { optimizer: 'sgd' }), false);
    assert.equal(fusedVitApplies({ ...meta, model: 'resnet20' }, { optimizer: 'adam' }), false);
    assert.equal(fusedVitApplies({ ...meta, truncatedFrom: { blocks: 2, of: 4 } }, { optimizer: 'adam' }), false);
  }
});

test('FusedStepper on the ViT engine: trains, writes weights back to the model, checkpoints, leaks no tensors', { skip }, async () => {
  const d = mnist(24);
  const s = shapeOf('glonet', d);
  const model = tfModel(s, 11);
  const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer: 'adam', lr: 1e-3, momentum: 0, l2: L2 };
  const tensors0 = tf.memory().numTensors;
  const stepper = createStepper(model, META('glonet', 2, d.shape), so, 'auto');
  assert.equal(stepper.engine, 'fused-native-vit');
  const off = createStepper(model, META('glonet', 2, d.shape), so, 'off');
  assert.equal(off.engine, 'tfjs');
  off.dispose();
  const losses = Array.from({ length: 4 }, () => stepper.step(d.x, d.y, d.rows));
  assert.ok(losses[3] < losses[0], `trains: ${losses.join(', ')}`);
  stepper.syncToModel();
  assertClose(stepper.predict(d.x, d.rows), tfPredict(model, d), 1e-5, 'model after syncToModel', { nonZeroReference: true });
  const state = await stepper.getOptimizerState();
  assert.equal(state[0].name, 'step');
  assert.equal(state[0].values[0], 4);
  assert.ok(state.some((a) => a.name === 'v/encoder_2_attn/7'), 'slots for every array');
  assert.equal(tf.memory().numTensors, tensors0, 'no tensors leaked');
  const resumed = new FusedStepper(model, createVitEngine(model, META('glonet', 2, d.shape), so));
  await resumed.setOptimizerState(state);
  assert.equal(resumed.step(d.x, d.y, d.rows), stepper.step(d.x, d.y, d.rows));
  stepper.dispose();
  resumed.dispose();
  assert.equal(tf.memory().numTensors, tensors0, 'no tensors leaked');
  model.dispose();
});

const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };

for (const arch of VIT_ARCHS) {
  test(`${arch}: a run through runTraining at the family's defaults trains on the engine; its saved model reproduces the test error in TF.js; resume is exact`, { skip }, async () => {
    const cfg = {
      model: 'vit', arch, dataset: 'mnist' as const, depth: 2, ...familyDefaults('vit', arch),
      epochs: 2, batchSize: 32, seed: 3, subset: 150, augment: false, backend: 'cpu', fast: 'auto' as const,
    };
    const dir = tmpDir();
    const r = await runTraining(cfg, dir, quiet);
    assert.equal(r.metrics.engine, 'fused-native-vit');
    const { model, meta } = await loadModel(path.join(dir, 'model'));
    const ds = r.dataset;
    const tfError = evaluate((x, rows) => tfPredict(model, { shape: ds.inputShape as [number, number, number], x, y: new Float32Array(rows), rows }), ds, ds.xTest, ds.yTest, ds.nTest).error;
    assert.equal(tfError, r.metrics.epochs[1].testError, 'test error of the saved model in TF.js');
    const stepper = createStepper(model, meta, { task: 'classification', outputs: 10, inputShape: ds.inputShape, optimizer: cfg.optimizer, lr: cfg.lr, momentum: cfg.momentum, l2: cfg.l2 }, 'auto');
    assert.equal(stepper.engine, 'fused-native-vit');
    stepper.dispose();
    model.dispose();
    const part = tmpDir();
    await runTraining({ ...cfg, epochs: 1 }, part, quiet);
    const resumed = await runTraining(cfg, part, { ...quiet, resume: true });
    assert.deepEqual(resumed.metrics.epochs.map((e) => [e.trainLoss, e.testLoss]), r.metrics.epochs.map((e) => [e.trainLoss, e.testLoss]));
  });
}
