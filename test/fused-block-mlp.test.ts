/**
 * The fused engine of the two-layer-block MLP baselines (vanilla, vanilla-nobn, resnetv2,
 * resnetv2-nobn) and of glonet-bn (one-layer blocks relu(BN(x K + b)), the head on their sum),
 * native addon with AVX2 and portable kernels, and the JavaScript twin, against the
 * same models (src/models/mlp.ts) in plain TF.js Layers (cpu backend): gradients of every
 * trainable array in training mode, 20-step Adam trajectories of TfjsStepper (losses, weights and
 * BN moving statistics), inference-mode predictions, bitwise thread-count independence (native),
 * and runs through runTraining: the saved model reproduces the engine's test error, resume is
 * exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { Rng } from '../src/random.js';
import { buildMlp, mlpBlockLayers, type MlpArch } from '../src/models/mlp.js';
import { familyDefaults } from '../src/models/index.js';
import { createFusedBlockMlp, type FusedBlockMlpOptions } from '../src/engines/mlp/block-mlp.js';
import { createMlpEngine, fusedMlpApplies, mlpEngineLayers } from '../src/engines/mlp/adapter.js';
import { FusedStepper, readLayers, type LayerArrays } from '../src/engines/fused-stepper.js';
import { createStepper } from '../src/engines/select.js';
import { TfjsStepper } from '../src/engines/tfjs.js';
import type { StepperOptions } from '../src/engines/types.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import type { Metrics } from '../src/contracts.js';
import { savedModelTestMse, tmpDir } from './helpers.js';
import { assertBitwise, assertRelClose, ENGINES, nativeSkip, randn, SHAPES, withEngineEnv, type Loss } from './fixtures.js';
import type { RunConfig } from '../src/vocabulary.js';
import type { ModelMetadata } from '../src/model-metadata.js';

await initBackend('cpu');

const ARCHS = ['vanilla', 'vanilla-nobn', 'resnetv2', 'resnetv2-nobn', 'glonet-bn'] as const;

// ----- helpers -----

function makeData(rng: Rng, rows: number, loss: Loss): { x: Float32Array; y: Float32Array } {
  const { nIn, nOut } = SHAPES[loss];
  const x = randn(rng, rows * nIn);
  if (loss === 'mse') return { x, y: randn(rng, rows * nOut) };
  return { x, y: Float32Array.from({ length: rows }, () => rng.int(nOut)) };
}

interface Case {
  model: tf.LayersModel;
  meta: ModelMetadata;
  layers: string[];
  opts: StepperOptions;
}

/**
 * The model `glonet train` builds, with its BN layers moved off their initial values (gamma,
 * beta and the moving statistics random), so that every BN array matters.
 */
function makeCase(arch: MlpArch, depth: number, loss: Loss, seed: number, l2 = 1e-3, width = 16): Case {
  const { nIn, nOut } = SHAPES[loss];
  const model = buildMlp({ arch, depth, width, inputShape: [nIn], outputs: nOut, l2, seed });
  const task = loss === 'mse' ? 'regression' as const : 'classification' as const;
  const meta: ModelMetadata = { model: 'mlp', arch, depth, task, inputShape: [nIn], outputs: nOut, blockLayers: mlpBlockLayers(arch, depth) };
  const layers = mlpEngineLayers(meta);
  const rng = new Rng(seed + 1000);
  for (const name of layers.filter((n) => n.includes('_bn'))) {
    const t = [randn(rng, width, 0.3, 1), randn(rng, width, 0.2), randn(rng, width, 0.3), randn(rng, width, 0.3, 1.2).map(Math.abs)]
      .map((a) => tf.tensor1d(a));
    model.getLayer(name).setWeights(t);
    tf.dispose(t);
  }
  return { model, meta, layers, opts: { task, outputs: nOut, inputShape: [nIn], optimizer: 'adam', lr: 0.01, momentum: 0, l2 } };
}

function engineOptions(c: Case, extra: Partial<FusedBlockMlpOptions>): FusedBlockMlpOptions {
  const arch = c.meta.arch;
  return {
    nIn: c.opts.inputShape[0], width: c.model.getLayer('stem').getWeights()[1].shape[0],
    blocks: arch === 'glonet-bn' ? c.meta.depth : c.meta.depth / 2, sum: arch === 'glonet-bn',
    nOut: c.opts.outputs, loss: c.opts.task === 'regression' ? 'mse' : 'softmax-ce', bn: !arch.endsWith('-nobn'),
    skip: arch.startsWith('resnetv2'), l2: c.opts.l2, lr: c.opts.lr, ...extra,
  };
}

/** Targets as TF.js sees them: values (MSE) or one-hot rows of the integer labels. */
function yTensor(c: Case, y: Float32Array, rows: number): tf.Tensor {
  if (c.opts.task === 'regression') return tf.tensor2d(y.subarray(0, rows * c.opts.outputs), [rows, c.opts.outputs]);
  return tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(y.subarray(0, rows)), 'int32'), c.opts.outputs).toFloat());
}

/** tf.variableGrads of data loss + L2 in training mode: the loss, and per layer its trainable arrays' gradients. */
function tfGradients(c: Case, x: Float32Array, y: Float32Array, rows: number): { loss: number; grads: LayerArrays } {
  const vars = c.model.trainableWeights.map((v) => v.read() as tf.Variable);
  const xt = tf.tensor2d(x, [rows, c.opts.inputShape[0]]);
  const yt = yTensor(c, y, rows);
  const { value, grads } = tf.variableGrads(() => {
    const pred = c.model.apply(xt, { training: true }) as tf.Tensor;
    let total = c.opts.task === 'regression' ? tf.losses.meanSquaredError(yt, pred) : tf.losses.softmaxCrossEntropy(yt, pred);
    for (const r of c.model.calculateLosses()) total = tf.add(total, r);
    return total as tf.Scalar;
  }, vars);
  const out = c.layers.map((name) => c.model.getLayer(name).trainableWeights.map((w) => grads[(w.read() as tf.Variable).name].dataSync() as Float32Array));
  const loss = value.dataSync()[0];
  tf.dispose([value, xt, yt, ...Object.values(grads)]);
  return { loss, grads: out };
}

/**
 * Per layer, every element within `rtol` of the reference relative to its own magnitude plus the
 * layer's largest: a layer's arrays share a scale (the bias gradient of a dense layer followed by
 * BN is zero up to rounding, so only the layer's scale says what its rounding is).
 */
function assertLayersClose(actual: LayerArrays, expected: LayerArrays, rtol: number, names: string[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: layer count`);
  expected.forEach((arrays, i) => {
    let scale = 0;
    for (const a of arrays) for (const e of a) scale = Math.max(scale, Math.abs(e));
    assert.equal(actual[i].length, arrays.length, `${what} ${names[i]}: array count`);
    arrays.forEach((e, j) => {
      const a = actual[i][j];
      assert.equal(a.length, e.length, `${what} ${names[i]}[${j}]: length`);
      for (let k = 0; k < e.length; k++) {
        if (!(Math.abs(a[k] - e[k]) <= rtol * (Math.abs(e[k]) + scale))) {
          assert.fail(`${what} ${names[i]}[${j}][${k}]: ${a[k]} vs ${e[k]} (layer scale ${scale.toExponential(2)})`);
        }
      }
    });
  });
}

// ----- gradients -----

for (const arch of ARCHS) {
  for (const loss of ['mse', 'softmax-ce'] as const) {
    for (const eng of ENGINES) {
      test(`gradients match tf.variableGrads in training mode: ${arch}, ${loss}, ${eng.name}`, { skip: eng.skip }, () => {
        const c = makeCase(arch, 4, loss, 11);
        const rows = 301; // not a multiple of the tile size, of 4, or of the thread count
        const { x, y } = makeData(new Rng(7), rows, loss);
        const initial = readLayers(c.model, c.layers);
        const m = createFusedBlockMlp(engineOptions(c, eng.opts), initial);
        assert.equal(m.engine, eng.opts.engine);
        const ours = m.gradients(x, y, rows);
        const ref = tfGradients(c, x, y, rows);
        assertLayersClose(ours.grads, ref.grads, 1e-4, c.layers, 'gradient');
        assertRelClose(ours.loss, ref.loss, 1e-5, 'training-mode loss with L2');
        // gradients() changes nothing, the BN moving statistics included.
        m.getWeights().forEach((arrays, i) => arrays.forEach((a, j) => assert.deepEqual(a, initial[i][j], `${c.layers[i]}[${j}]`)));
        m.dispose();
        c.model.dispose();
      });
    }
  }
}

test('other widths (5, 8, 32) and batches smaller than a tile', () => {
  for (const [width, rows] of [[5, 45], [8, 3], [32, 70]]) {
    for (const arch of ['resnetv2', 'vanilla-nobn', 'glonet-bn'] as const) {
      const c = makeCase(arch, 2, 'mse', width, 1e-3, width);
      const { x, y } = makeData(new Rng(width), rows, 'mse');
      const ref = tfGradients(c, x, y, rows);
      for (const eng of ENGINES.filter((e) => !e.skip)) {
        const m = createFusedBlockMlp(engineOptions(c, eng.opts), readLayers(c.model, c.layers));
        assertLayersClose(m.gradients(x, y, rows).grads, ref.grads, 1e-4, c.layers, `${eng.name} ${arch} width ${width} rows ${rows}`);
        m.dispose();
      }
      c.model.dispose();
    }
  }
});

test('predict and evaluate use the moving statistics, as model.predict does', () => {
  for (const arch of ARCHS) {
    const c = makeCase(arch, 6, 'softmax-ce', 5, 1e-4);
    const rows = 77;
    const { x, y } = makeData(new Rng(3), rows, 'softmax-ce');
    const expected = tf.tidy(() => (c.model.predict(tf.tensor2d(x, [rows, 40])) as tf.Tensor).dataSync() as Float32Array);
    const l2 = tf.tidy(() => c.model.calculateLosses().reduce((a, b) => a + b.dataSync()[0], 0));
    const lossRef = tf.tidy(() => tf.losses.softmaxCrossEntropy(yTensor(c, y, rows), tf.tensor2d(expected, [rows, 10])).dataSync()[0]);
    for (const eng of ENGINES.filter((e) => !e.skip)) {
      const m = createFusedBlockMlp(engineOptions(c, eng.opts), readLayers(c.model, c.layers));
      const p = m.predict(x, rows);
      for (let i = 0; i < p.length; i++) assert.ok(Math.abs(p[i] - expected[i]) <= 1e-5 * (1 + Math.abs(expected[i])), `${arch} ${eng.name} predict[${i}]: ${p[i]} vs ${expected[i]}`);
      assertRelClose(m.evaluate(x, y, rows), lossRef + l2, 1e-5, `${arch} ${eng.name} evaluate`);
      m.dispose();
    }
    c.model.dispose();
  }
});

// ----- Adam trajectories -----

/** Steps `from` .. `to` of passes over `rows` rows in batches of `batch` (ragged at the end of a pass). */
function trajectory(s: { step(x: Float32Array, y: Float32Array, rows: number): number }, x: Float32Array, y: Float32Array,
  rows: number, c: Case, to: number, batch: number, from = 0): number[] {
  const nIn = c.opts.inputShape[0];
  const per = c.opts.task === 'regression' ? c.opts.outputs : 1;
  const losses: number[] = [];
  for (let i = 0, r0 = 0; i < to; i++) {
    const n = Math.min(batch, rows - r0);
    if (i >= from) losses.push(s.step(x.subarray(r0 * nIn, (r0 + n) * nIn), y.subarray(r0 * per, (r0 + n) * per), n));
    r0 = r0 + n >= rows ? 0 : r0 + n;
  }
  return losses;
}

const TRAJECTORIES: Array<[MlpArch, Loss]> = [...ARCHS.map((a): [MlpArch, Loss] => [a, 'mse']), ['resnetv2', 'softmax-ce'], ['vanilla', 'softmax-ce'], ['glonet-bn', 'softmax-ce']];

for (const [arch, loss] of TRAJECTORIES) {
  for (const eng of ENGINES.slice(0, 2)) {
    test(`20 Adam steps match TfjsStepper (losses, weights, BN moving statistics): ${arch}, ${loss}, ${eng.name}`, { skip: eng.skip }, () =>
      withEngineEnv(eng.opts.engine, () => {
        const ref = makeCase(arch, 4, loss, 21, 1e-4);
        const ours = makeCase(arch, 4, loss, 21, 1e-4);
        const rows = 700;
        const { x, y } = makeData(new Rng(13), rows, loss);
        // Batches of 256: the third batch of every pass is a ragged 188 rows.
        const tfjs = new TfjsStepper(ref.model, ref.opts);
        const fused = new FusedStepper(ours.model, createMlpEngine(ours.model, ours.meta, ours.opts));
        assert.equal(fused.engine, eng.opts.engine === 'js' ? 'fused-js' : 'fused-native');
        // The bias of a dense layer whose only reader is a BN has no effect on the training loss
        // (BN subtracts the batch mean): its gradient is zero up to rounding, which Adam, dividing
        // by the gradient's own scale, turns into steps of about lr in the rounding's direction.
        // Any two implementations move these biases apart (and with them the BN's moving mean).
        // So after every step the reference takes our values of them; everything else is compared.
        // In glonet-bn the stem's only reader is block_1_dense, a linear layer read only by a BN:
        // its bias is inert too.
        const inert = ours.layers.filter((n, i) => (ours.layers[i + 1]?.includes('_bn') && (!arch.startsWith('resnetv2') || n.endsWith('_dense1'))) ||
          (arch === 'glonet-bn' && n === 'stem'));
        assert.equal(inert.length > 0, !arch.endsWith('-nobn'));
        const expected: number[] = [];
        const actual: number[] = [];
        for (let s = 0; s < 20; s++) {
          expected.push(...trajectory(tfjs, x, y, rows, ref, s + 1, 256, s));
          actual.push(...trajectory(fused, x, y, rows, ours, s + 1, 256, s));
          fused.syncToModel();
          for (const name of inert) {
            const [kernel] = ref.model.getLayer(name).getWeights();
            ref.model.getLayer(name).setWeights([kernel, ours.model.getLayer(name).getWeights()[1]]);
          }
        }
        assert.ok(expected[19] < expected[0], 'the reference trains');
        actual.forEach((a, i) => assertRelClose(a, expected[i], 1e-4, `step ${i + 1} loss`));
        assertLayersClose(readLayers(ours.model, ours.layers), readLayers(ref.model, ref.layers), 1e-4, ours.layers, 'weights after 20 steps');
        // The moving statistics: a float32 running average of the batch statistics, which follow
        // TF.js's to their rounding.
        ours.layers.forEach((name) => {
          if (!name.includes('_bn')) return;
          const a = readLayers(ours.model, [name])[0];
          const e = readLayers(ref.model, [name])[0];
          for (const j of [2, 3]) {
            for (let k = 0; k < e[j].length; k++) {
              assert.ok(Math.abs(a[j][k] - e[j][k]) <= 1e-5 * (1 + Math.abs(e[j][k])), `${name} moving ${j === 2 ? 'mean' : 'variance'}[${k}]: ${a[j][k]} vs ${e[j][k]}`);
            }
          }
        });
        tfjs.dispose();
        fused.dispose();
        ref.model.dispose();
        ours.model.dispose();
      }));
  }
}

// ----- determinism -----

// Same initial weights, kernels, options and batches => the same bits, whatever the thread count
// or scheduling: tiles are fixed by the batch, BN statistics are combined in tile order, gradient
// partials and losses in unit order. Ragged batch sizes; tileRows 32 (up to 32 tiles, one unit
// each) and 4 (up to 256 tiles, in fixed runs of consecutive tiles per unit); 4 threads on fewer
// cores adds preemption.
test('native engine is bitwise deterministic: threads 1, 2, 4 and the adaptive default, 20 steps', { skip: nativeSkip }, () => {
  const flat = (a: LayerArrays) => a.flat();
  for (const simd of ['auto', 'portable'] as const) {
    for (const arch of ['resnetv2', 'vanilla', 'resnetv2-nobn', 'glonet-bn'] as const) {
      for (const tileRows of [32, 4]) {
        const c = makeCase(arch, 8, 'mse', 9, 1e-5);
        const initial = readLayers(c.model, c.layers);
        const base = engineOptions(c, { engine: 'native', simd, tileRows, lr: 0.003 });
        c.model.dispose();
        const rows = 1021;
        const { x, y } = makeData(new Rng(9), rows, 'mse');
        const sizes = [1021, 517, 64, 7, 300];
        const run = (threads: number | undefined) => {
          const m = createFusedBlockMlp({ ...base, threads }, initial);
          if (threads != null) assert.equal(m.threads, threads);
          const grads = flat(m.gradients(x, y, rows).grads);
          const losses = new Float64Array(20);
          for (let s = 0; s < 20; s++) {
            const n = sizes[s % sizes.length];
            const r0 = (s * 97) % (rows - n + 1);
            losses[s] = m.step(x.subarray(r0 * 14, (r0 + n) * 14), y.subarray(r0, r0 + n), n);
          }
          const evaluated = new Float64Array([m.evaluate(x, y, rows)]);
          const weights = flat(m.getWeights());
          const state = m.getOptimizerState();
          m.dispose();
          return { grads, losses, evaluated, weights, m: flat(state.m), v: flat(state.v) };
        };
        const one = run(1);
        assert.ok(one.losses.every(Number.isFinite), `${arch}: finite losses`);
        for (const threads of [2, 4, undefined]) {
          const what = `${simd} kernels, ${arch}, tileRows ${tileRows}, threads ${threads ?? 'adaptive'}`;
          const r = run(threads);
          r.grads.forEach((g, i) => assertBitwise(g, one.grads[i], `${what}: gradient ${i}`));
          assertBitwise(r.losses, one.losses, `${what}: step losses`);
          assertBitwise(r.evaluated, one.evaluated, `${what}: evaluate`);
          r.weights.forEach((w, i) => assertBitwise(w, one.weights[i], `${what}: weights ${i}`));
          r.m.forEach((w, i) => assertBitwise(w, one.m[i], `${what}: adam m ${i}`));
          r.v.forEach((w, i) => assertBitwise(w, one.v[i], `${what}: adam v ${i}`));
        }
      }
    }
  }
});

// ----- the engine seam -----

test('every MLP arch trained with Adam runs fused; the layer list; other optimizers run on TF.js', () => {
  for (const arch of ARCHS) {
    const c = makeCase(arch, 4, 'mse', 1);
    assert.ok(fusedMlpApplies(c.meta, { optimizer: 'adam' }), arch);
    assert.ok(!fusedMlpApplies(c.meta, { optimizer: 'sgd' }), arch);
    assert.ok(!fusedMlpApplies({ ...c.meta, truncatedFrom: { blocks: 1, of: 2 } }, { optimizer: 'adam' }), arch);
    const bn = arch.endsWith('-nobn') ? [] : ['bn'];
    const block = (b: number) => [1, 2].flatMap((k) => [...bn.map(() => `block_${b}_bn${k}`), `block_${b}_dense${k}`]);
    const glonetBlock = (b: number) => [`block_${b}_dense`, `block_${b}_bn`];
    assert.deepEqual(c.layers, arch === 'glonet-bn' ? ['stem', ...[1, 2, 3, 4].flatMap(glonetBlock), 'head'] : ['stem', ...block(1), ...block(2), 'head']);
    const s = createStepper(c.model, c.meta, c.opts, 'auto');
    assert.match(s.engine, /^fused-(native|js)$/);
    s.dispose();
    const t = createStepper(c.model, c.meta, { ...c.opts, optimizer: 'sgd' }, 'auto');
    assert.equal(t.engine, 'tfjs');
    t.dispose();
    c.model.dispose();
  }
});

test('weights and optimizer state through FusedStepper: 5 + 5 steps equal 10 steps, bitwise', async () => {
  for (const eng of ENGINES.slice(0, 2).filter((e) => !e.skip)) {
    await withEngineEnv(eng.opts.engine, async () => {
      const rows = 200;
      const { x, y } = makeData(new Rng(12), rows, 'mse');
      const straightCase = makeCase('resnetv2', 4, 'mse', 3);
      const straight = new FusedStepper(straightCase.model, createMlpEngine(straightCase.model, straightCase.meta, straightCase.opts));
      trajectory(straight, x, y, rows, straightCase, 10, 64);
      straight.syncToModel();
      const c = makeCase('resnetv2', 4, 'mse', 3);
      const first = new FusedStepper(c.model, createMlpEngine(c.model, c.meta, c.opts));
      trajectory(first, x, y, rows, c, 5, 64);
      first.syncToModel(); // weights and moving statistics, as after an epoch
      const state = await first.getOptimizerState();
      first.dispose();
      const second = new FusedStepper(c.model, createMlpEngine(c.model, c.meta, c.opts));
      await second.setOptimizerState(state);
      trajectory(second, x, y, rows, c, 10, 64, 5);
      second.syncToModel();
      readLayers(c.model, c.layers).forEach((arrays, i) => arrays.forEach((a, j) =>
        assertBitwise(a, readLayers(straightCase.model, [c.layers[i]])[0][j], `${eng.name} ${c.layers[i]}[${j}]`)));
      assert.throws(() => createMlpEngine(c.model, c.meta, c.opts).setOptimizerState(state.filter((s) => !s.name.startsWith('v/block_1_bn1'))),
        /optimizer slot 'v\/block_1_bn1\/0' is missing/);
      straight.dispose();
      second.dispose();
    });
  }
});

test('bad weights are refused with a message naming the array', () => {
  const c = makeCase('resnetv2', 2, 'mse', 1);
  const w = readLayers(c.model, c.layers);
  const o = engineOptions(c, { engine: 'js' });
  assert.throws(() => createFusedBlockMlp(o, w.slice(1)), /initial weights: expected 6 layers, got 5/);
  assert.throws(() => createFusedBlockMlp(o, w.map((a, i) => (i === 1 ? a.slice(0, 2) : a))), /layer 1 has 2 arrays, expected 4/);
  assert.throws(() => createFusedBlockMlp({ ...o, blocks: 0 }, w), /blocks must be a positive integer/);
  c.model.dispose();
});

// ----- through runTraining -----

const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };
const strip = (m: Metrics) => m.epochs.map(({ seconds: _s, ...rest }) => rest);

for (const [arch, engine] of [['resnetv2', 'auto'], ['vanilla', 'js'], ['glonet-bn', 'auto'], ['glonet-bn', 'js']] as const) {
  test(`runTraining, ${arch} on the ${engine === 'js' ? 'JavaScript' : 'default'} fused engine: the saved TF.js model reproduces its test error; resume is exact`, () =>
    withEngineEnv(engine === 'js' ? 'js' : undefined, async () => {
      const cfg = (over: Partial<RunConfig>): RunConfig => ({
        model: 'mlp', arch, dataset: 'sgemm', depth: 6, ...familyDefaults('mlp'), epochs: 2, batchSize: 256, seed: 7,
        subset: 2000, augment: false, backend: 'cpu', fast: 'auto', ...over,
      });
      const dir = tmpDir();
      const counts: number[] = [];
      const r = await runTraining(cfg({}), dir, { ...quiet, onEpoch: () => counts.push(tf.memory().numTensors) });
      assert.match(r.metrics.engine!, engine === 'js' ? /^fused-js$/ : /^fused-(native|js)$/);
      assert.deepEqual(counts, new Array(2).fill(counts[0]));
      assert.ok(r.metrics.epochs[1].trainLoss < r.metrics.epochs[0].trainLoss, 'it trains');
      const mse = await savedModelTestMse(dir, r);
      const last = r.metrics.epochs[1].testError;
      assert.ok(Math.abs(mse - last) <= 1e-5 * last, `TF.js on the saved model: ${mse}, the engine: ${last}`);
      const part = tmpDir();
      await runTraining(cfg({ epochs: 1 }), part, quiet);
      const resumed = await runTraining(cfg({}), part, { ...quiet, resume: true });
      assert.deepEqual(strip(resumed.metrics), strip(r.metrics));
    }));
}
