/**
 * The fused ResNet20 engine (native addon, oneDNN), every arch (glonet, glonet-bn, vanilla,
 * vanilla-nobn, resnetv2, resnetv2-nobn; glonet also with its norm-free options: Scaled Weight
 * Standardization, block scales, fixed block centers) and both optimizers (momentum SGD, Adam), against the same model in
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
import { RESNET20_ARCHS, type ResNet20Arch } from '../src/models/resnet20.js';
import { familyDefaults } from '../src/models/index.js';
import { loadModel } from '../src/model-io.js';
import { TfjsStepper } from '../src/engines/tfjs.js';
import type { StepperOptions } from '../src/engines/types.js';
import { createFusedResNet20, fusedCnnInfo } from '../src/engines/cnn/fused-native-cnn.js';
import { createCnnEngine, fusedCnnApplies } from '../src/engines/cnn/adapter.js';
import { FusedStepper, readLayers, type LayerArrays } from '../src/engines/fused-stepper.js';
import { createStepper } from '../src/engines/select.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { tmpDir } from './helpers.js';
import { assertClose, assertRelClose } from './fixtures.js';
import {
  assertLayersClose, assertLayersCloseExcept, batches, cifarShaped, engineNormFree, markIllConditioned, mnist, mnist14, options,
  prepareWeights, randomImages, registerFastCpuFilterGradient, removeReluTies, specOf, tfGradients, tfModel, tfPredict,
  type Data,
} from './cnn-fixtures.js';
import type { OptimizerName } from '../src/vocabulary.js';
import { evaluate } from '../src/scoring.js';
import type { ModelMetadata } from '../src/model-metadata.js';
import type { NormFreeOptions } from '../src/vocabulary.js';

await initBackend('cpu');
registerFastCpuFilterGradient();

const info = fusedCnnInfo();
const skip = info.available ? false : `fused CNN engine unavailable: ${info.reason}`;
const BASELINES = RESNET20_ARCHS.filter((a) => a !== 'glonet');

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
  normFree?: NormFreeOptions;
}

/** A norm-free variant's name in test titles ('glonet +ws +scale 1 +center'). */
const variantName = (arch: string, nf: NormFreeOptions = {}) =>
  `${arch}${nf.weightStd ? ' +ws' : ''}${nf.blockScale ? ` +scale ${nf.blockScale}` : ''}${nf.centerBlocks ? ' +center' : ''}`;

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
  // GloNet's norm-free options, alone and together (random centers, scales and gains).
  { name: 'depth 20, random 32x32x3, 20 rows, chunks of 8', arch: 'glonet', depth: 20, data: () => cifarShaped(20, 6), chunk: 8, threads: 2, normFree: { weightStd: true, blockScale: '1', centerBlocks: true } },
  // Not with zero biases: a standardized (zero-mean) stem kernel over a saturated patch of a digit
  // gives 0 up to rounding, and with zero biases block 1's ReLU then sits on that rounding (a tie
  // removeReluTies cannot see, as its magnitude is rounding too).
  { name: 'depth 8, MNIST, 24 rows', arch: 'glonet', depth: 8, data: () => mnist(24), chunk: 16, threads: 2, normFree: { weightStd: true } },
  { name: 'depth 8, MNIST, 12 rows, chunks of 8', arch: 'glonet', depth: 8, data: () => mnist(12), chunk: 8, threads: 2, normFree: { blockScale: '1/L', centerBlocks: true } },
  { name: 'depth 8, MNIST, 3 rows, one thread', arch: 'glonet', depth: 8, data: () => mnist(3), chunk: 16, threads: 1, normFree: { blockScale: '1' } },
];

for (const c of GRADIENT_CASES) {
  test(`${variantName(c.arch, c.normFree)}: gradients, loss and predictions match TF.js: ${c.name}`, { skip }, () => {
    const d = c.data();
    const classes = c.classes ?? 10;
    const model = tfModel(c.arch, c.depth, d.shape, classes, 5e-5, c.normFree);
    const w = prepareWeights(model, c.arch, c.depth, d, c.depth, { zeroBiases: c.zeroBiases, tieFree: c.arch === 'glonet', normFree: c.normFree });
    const names = specOf(c.arch, c.depth, d, classes, c.normFree).map((l) => l.name);
    const expected = tfPredict(model, d);
    const ref = tfGradients(model, names, d, classes);
    for (const convAlgorithm of ALGORITHMS) {
      const fused = createFusedResNet20(options(c.arch, d, c.depth, { chunkRows: c.chunk, threads: c.threads, convAlgorithm, classes, normFree: engineNormFree(c.normFree) }), w);
      assert.equal(fused.threads, c.threads);
      assert.deepEqual(fused.layers.map((l) => l.name), names);
      assertLayersClose(fused.gradients(d.x, d.y, d.rows), ref.grads, names, 1e-4, `${convAlgorithm}: grad`);
      assertRelClose(fused.evaluate(d.x, d.y, d.rows), ref.loss, 1e-5, `${convAlgorithm}: loss with L2`);
      assertClose(fused.predict(d.x, d.rows), expected, 1e-5, `${convAlgorithm}: logits`, { nonZeroReference: true });
      // gradients(), evaluate() and predict() change nothing (the moving statistics included).
      fused.getWeights().forEach((arrays, i) => arrays.forEach((a, j) => assert.deepEqual(a, w[i][j], `${names[i]}[${j}]`)));
      fused.dispose();
    }
    model.dispose();
  });
}

// ----- training trajectories -----


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
const TRAJECTORY_VARIANTS: Array<{ arch: ResNet20Arch; normFree?: NormFreeOptions }> = [
  ...RESNET20_ARCHS.map((arch) => ({ arch })),
  { arch: 'glonet', normFree: { weightStd: true } },
  { arch: 'glonet', normFree: { blockScale: '1', centerBlocks: true } },
];

for (const { arch, normFree } of TRAJECTORY_VARIANTS) {
  for (const optimizer of ['sgd', 'adam'] as const) {
    const freeRunning = arch === 'glonet';
    test(`${variantName(arch, normFree)}, ${optimizer}: 20-step losses, weights and moving statistics match TfjsStepper (depth 8, MNIST at 14x14, batches of 8, ragged 4${freeRunning ? ', free-running' : ''})`, { skip }, (t) => {
      const d = mnist14(20);
      const depth = 8;
      const model = tfModel(arch, depth, d.shape, 10, 5e-5, normFree);
      const w = prepareWeights(model, arch, depth, d, 3, { normFree });
      const spec = specOf(arch, depth, d, 10, normFree);
      const names = spec.map((l) => l.name);
      const lr = TRAJECTORY_LR[optimizer];
      const so: StepperOptions = { task: 'classification', outputs: 10, inputShape: d.shape, optimizer, lr, momentum: 0.9, l2: 5e-5 };
      const reference = new TfjsStepper(model, so);
      const engines = ALGORITHMS.map((convAlgorithm) => createFusedResNet20(options(arch, d, depth, { optimizer, lr, chunkRows: 4, convAlgorithm, normFree: engineNormFree(normFree) }), w));
      const trainable = (a: LayerArrays) => a.map((arrays, i) => arrays.slice(0, spec[i].trainable));
      // The block convs (block_1 .. block_6n) and their biases, array 1 of each.
      const convs = names.flatMap((n, i) => (/^block_\d+$/.test(n) ? [i] : []));
      const biases = () => convs.map((i) => (model.getLayer(names[i]).getWeights()[1].dataSync() as Float32Array).slice());
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
              convs.forEach((i, k) => ew[i][1].forEach((v, c) => { ew[i][1][c] = Math.fround(v + (after[k][c] - before[k][c])); }));
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

const THREAD_VARIANTS: Array<{ arch: ResNet20Arch; normFree?: NormFreeOptions }> = [
  { arch: 'glonet' }, { arch: 'resnetv2' }, { arch: 'glonet-bn' }, { arch: 'glonet', normFree: { weightStd: true, blockScale: '1/L', centerBlocks: true } },
];

for (const { arch, normFree } of THREAD_VARIANTS) {
  test(`${variantName(arch, normFree)}: 1 and 2 threads give bit-identical results; another chunk size gives the same loss (1e-5) and gradients (1e-4)`, { skip }, () => {
    const d = cifarShaped(40, 5);
    const depth = 8;
    const model = tfModel(arch, depth, d.shape, 10, 5e-5, normFree);
    const w = prepareWeights(model, arch, depth, d, 5, { normFree });
    const names = specOf(arch, depth, d, 10, normFree).map((l) => l.name);
    model.dispose();
    const nf = engineNormFree(normFree);
    const run = (threads: number, chunkRows: number) => {
      const m = createFusedResNet20(options(arch, d, depth, { threads, chunkRows, lr: 0.02, normFree: nf }), w);
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
      const m = createFusedResNet20(options(arch, d, depth, { chunkRows, normFree: nf }), w);
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
  assertClose(stepper.predict(d.x, d.rows), tfPredict(model, d), 1e-5, 'model after syncToModel', { nonZeroReference: true });
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
