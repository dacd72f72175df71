/**
 * The fused GloNet MLP engines (native addon and portable JavaScript) against the same model in
 * plain TF.js Layers (cpu backend): gradients of every weight, 20-step Adam loss trajectories,
 * predictions, bitwise thread-count independence (native), ragged batches, checkpoints of the
 * optimizer state; with and without block scales (`--block-scale`: a learnable scalar on each
 * block's term of the sum, the BlockScale layer).
 */
import { fastPathInfo } from '../src/engines/mlp/pick-core.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { BlockScale } from '../src/layers/normfree.js';
import { Rng } from '../src/random.js';
import { assertBitwise, assertClose, assertRelClose, ENGINES, info, nativeSkip, randn, SHAPES } from './fixtures.js';
import {
  createFusedMlp, type FusedMlpOptions, type FusedMlpWeights, type FusedLoss,
} from '../src/engines/mlp/glonet-mlp.js';

await initBackend('cpu');


// ----- helpers -----

/** He-normal kernels; small random biases so bias gradients are exercised from a nonzero start. */
function initWeights(o: { nIn: number; width: number; depth: number; nOut: number; blockScale?: boolean }, seed: number): FusedMlpWeights {
  const rng = new Rng(seed);
  const dense = (fanIn: number, units: number) => ({
    kernel: randn(rng, fanIn * units, Math.sqrt(2 / fanIn)),
    bias: randn(rng, units, 0.05),
  });
  return {
    stem: dense(o.nIn, o.width),
    blocks: Array.from({ length: o.depth }, () => dense(o.width, o.width)),
    head: dense(o.width, o.nOut),
    // Scales away from 1 (some negative), so that a wrong factor shows.
    ...(o.blockScale ? { scales: randn(rng, o.depth, 0.5, 0.8) } : {}),
  };
}

function makeData(rng: Rng, rows: number, nIn: number, nOut: number, loss: FusedLoss): { x: Float32Array; y: Float32Array } {
  const x = randn(rng, rows * nIn, 1);
  if (loss === 'mse') return { x, y: randn(rng, rows * nOut, 1) };
  const y = new Float32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = rng.int(nOut);
  return { x, y };
}

function flat(w: FusedMlpWeights): Array<[string, Float32Array]> {
  const out: Array<[string, Float32Array]> = [...(w.scales ? [['scales', w.scales] as [string, Float32Array]] : []), ['stem.kernel', w.stem.kernel], ['stem.bias', w.stem.bias]];
  w.blocks.forEach((b, i) => out.push([`blocks[${i}].kernel`, b.kernel], [`blocks[${i}].bias`, b.bias]));
  out.push(['head.kernel', w.head.kernel], ['head.bias', w.head.bias]);
  return out;
}

/** The same model in plain TF.js Layers, with the given weights (with block scales: BlockScale layers on the sum's terms). */
function tfModel(o: FusedMlpOptions, w: FusedMlpWeights): tf.LayersModel {
  const reg = () => tf.regularizers.l2({ l2: o.l2 });
  const input = tf.input({ shape: [o.nIn] });
  const stem = tf.layers.dense({ units: o.width, kernelRegularizer: reg() });
  let x = stem.apply(input) as tf.SymbolicTensor;
  const blocks: tf.layers.Layer[] = [];
  const scales: tf.layers.Layer[] = [];
  const outs: tf.SymbolicTensor[] = [];
  for (let l = 0; l < o.depth; l++) {
    const b = tf.layers.dense({ units: o.width, activation: 'relu', kernelRegularizer: reg() });
    blocks.push(b);
    x = b.apply(x) as tf.SymbolicTensor;
    if (o.blockScale) {
      const sc = new BlockScale({ init: 1 });
      scales.push(sc);
      outs.push(sc.apply(x) as tf.SymbolicTensor);
    } else {
      outs.push(x);
    }
  }
  const sum = outs.length === 1 ? outs[0] : (tf.layers.add().apply(outs) as tf.SymbolicTensor);
  const head = tf.layers.dense({ units: o.nOut, kernelRegularizer: reg() });
  const model = tf.model({ inputs: input, outputs: head.apply(sum) as tf.SymbolicTensor });
  const set = (layer: tf.layers.Layer, k: Float32Array, b: Float32Array, fanIn: number, units: number) =>
    layer.setWeights([tf.tensor2d(k, [fanIn, units]), tf.tensor1d(b)]);
  set(stem, w.stem.kernel, w.stem.bias, o.nIn, o.width);
  blocks.forEach((b, l) => set(b, w.blocks[l].kernel, w.blocks[l].bias, o.width, o.width));
  set(head, w.head.kernel, w.head.bias, o.width, o.nOut);
  scales.forEach((sc, l) => sc.setWeights([tf.tensor1d([w.scales![l]])]));
  // The trainable variables in flat()'s order (scales first).
  ordered.set(model, [...scales, stem, ...blocks, head].flatMap((layer) => layer.trainableWeights.map((v) => v.read() as tf.Variable)));
  return model;
}

/** tfModel's variables in flat()'s order. */
const ordered = new WeakMap<tf.LayersModel, tf.Variable[]>();

function lossFn(o: FusedMlpOptions): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  if (o.loss === 'mse') return (yTrue, yPred) => tf.losses.meanSquaredError(yTrue, yPred);
  return (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred);
}

/** Targets as TF.js sees them: values (MSE) or one-hot rows of the integer labels (softmax-ce). */
function yTensor(o: FusedMlpOptions, y: Float32Array, rows: number): tf.Tensor {
  if (o.loss === 'mse') return tf.tensor2d(y, [rows, o.nOut]);
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from(y.subarray(0, rows)), 'int32'), o.nOut), 'float32'));
}

/** TF.js gradient of data loss + the layers' L2 penalties, in FusedMlpWeights order. */
function tfGradients(o: FusedMlpOptions, w: FusedMlpWeights, x: Float32Array, y: Float32Array, rows: number):
  { loss: number; grads: Float32Array[] } {
  const model = tfModel(o, w);
  const vars = ordered.get(model)!;
  const xt = tf.tensor2d(x, [rows, o.nIn]);
  const yt = yTensor(o, y, rows);
  const f = lossFn(o);
  const { value, grads } = tf.variableGrads(() => {
    let total = f(yt, model.apply(xt, { training: true }) as tf.Tensor);
    for (const r of model.calculateLosses()) total = tf.add(total, r);
    return total as tf.Scalar;
  }, vars);
  let out = vars.map((v) => grads[v.name].dataSync() as Float32Array);
  // flat() has the scales as one array.
  if (o.blockScale) out = [Float32Array.from(out.slice(0, o.depth), (a) => a[0]), ...out.slice(o.depth)];
  const loss = value.dataSync()[0];
  tf.dispose([value, xt, yt, ...Object.values(grads)]);
  model.dispose();
  return { loss, grads: out };
}

async function tfTrajectory(o: FusedMlpOptions, w: FusedMlpWeights, x: Float32Array, y: Float32Array, rows: number,
  steps: number, batch: number): Promise<number[]> {
  const model = tfModel(o, w);
  model.compile({ optimizer: tf.train.adam(o.lr), loss: lossFn(o) });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const r0 = (s * batch) % rows;
    const n = Math.min(batch, rows - r0);
    const xt = tf.tensor2d(x.subarray(r0 * o.nIn, (r0 + n) * o.nIn), [n, o.nIn]);
    const yt = yTensor(o, y.subarray(r0 * (o.loss === 'mse' ? o.nOut : 1), (r0 + n) * (o.loss === 'mse' ? o.nOut : 1)), n);
    losses.push((await model.trainOnBatch(xt, yt)) as number);
    tf.dispose([xt, yt]);
  }
  model.dispose();
  return losses;
}

function fusedTrajectory(o: FusedMlpOptions, w: FusedMlpWeights, x: Float32Array, y: Float32Array, rows: number,
  steps: number, batch: number): number[] {
  const m = createFusedMlp(o, w);
  const per = o.loss === 'mse' ? o.nOut : 1;
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const r0 = (s * batch) % rows;
    const n = Math.min(batch, rows - r0);
    losses.push(m.step(x.subarray(r0 * o.nIn, (r0 + n) * o.nIn), y.subarray(r0 * per, (r0 + n) * per), n));
  }
  m.dispose();
  return losses;
}

// ----- gradients -----

const GRADIENT_CASES: Array<[FusedLoss, number, boolean]> = [
  ...(['mse', 'softmax-ce'] as const).flatMap((loss) => [1, 3, 12].map((depth): [FusedLoss, number, boolean] => [loss, depth, false])),
  ['mse', 3, true], ['mse', 12, true], ['softmax-ce', 3, true],
];

for (const [loss, depth, blockScale] of GRADIENT_CASES) {
  {
    for (const eng of ENGINES) {
      test(`gradients match tf.variableGrads: ${loss}, depth ${depth}${blockScale ? ', block scales' : ''}, ${eng.name}`, { skip: eng.skip }, () => {
        const o: FusedMlpOptions = {
          ...SHAPES[loss], width: 16, depth, loss, l2: 1e-3, lr: 0.01, blockScale, ...eng.opts,
        };
        const w = initWeights(o, 100 + depth);
        const rows = 301; // not a multiple of the tile size, of 4, or of the thread count
        const { x, y } = makeData(new Rng(7 + depth), rows, o.nIn, o.nOut, loss);
        const ref = tfGradients(o, w, x, y, rows);
        const m = createFusedMlp(o, w);
        assert.equal(m.engine, eng.opts.engine);
        const g = flat(m.gradients(x, y, rows));
        assert.equal(g.length, ref.grads.length);
        g.forEach(([name, a], i) => assertClose(a, ref.grads[i], 1e-4, `grad ${name}`));
        assertRelClose(m.evaluate(x, y, rows), ref.loss, 1e-5, 'loss with L2');
        // gradients() changes nothing.
        flat(m.getWeights()).forEach(([name, a], i) => assert.deepEqual(a, flat(w)[i][1], name));
        m.dispose();
      });
    }
  }
}

test('other widths (5, 8, 32, 40) and the JavaScript engine without code generation', () => {
  for (const width of [5, 8, 32, 40]) {
    for (const loss of ['mse', 'softmax-ce'] as const) {
      const o: FusedMlpOptions = { ...SHAPES[loss], width, depth: 3, loss, l2: 1e-3, lr: 0.01 };
      const w = initWeights(o, width);
      const rows = 45;
      const { x, y } = makeData(new Rng(width), rows, o.nIn, o.nOut, loss);
      const ref = tfGradients(o, w, x, y, rows);
      const variants: Array<[string, Partial<FusedMlpOptions>, boolean]> = [
        ...ENGINES.filter((e) => !e.skip).map((e): [string, Partial<FusedMlpOptions>, boolean] => [e.name, e.opts, false]),
        ['js plain loops', { engine: 'js' }, true],
      ];
      for (const [name, extra, plain] of variants) {
        const saved = process.env.GLONET_JS_CODEGEN;
        if (plain) process.env.GLONET_JS_CODEGEN = '0';
        try {
          const m = createFusedMlp({ ...o, ...extra }, w);
          flat(m.gradients(x, y, rows)).forEach(([t, a], i) => assertClose(a, ref.grads[i], 1e-4, `${name} width ${width} ${loss} ${t}`));
          m.dispose();
        } finally {
          if (saved === undefined) delete process.env.GLONET_JS_CODEGEN;
          else process.env.GLONET_JS_CODEGEN = saved;
        }
      }
    }
  }
});

// ----- Adam trajectories -----

for (const [loss, depth, blockScale] of [['mse', 12, false], ['softmax-ce', 3, false], ['mse', 12, true]] as const) {
  for (const eng of ENGINES.slice(0, 2)) {
    test(`20-step Adam loss trajectory matches model.trainOnBatch: ${loss}, depth ${depth}${blockScale ? ', block scales' : ''}, ${eng.name}`,
      { skip: eng.skip }, async () => {
        const o: FusedMlpOptions = { ...SHAPES[loss], width: 16, depth, loss, l2: 1e-4, lr: 0.01, blockScale, ...eng.opts };
        const w = initWeights(o, 5);
        const rows = 700;
        const { x, y } = makeData(new Rng(11), rows, o.nIn, o.nOut, loss);
        // Batches of 256: the third batch of every pass is a ragged 188 rows.
        const expected = await tfTrajectory(o, w, x, y, rows, 20, 256);
        const actual = fusedTrajectory(o, w, x, y, rows, 20, 256);
        assert.ok(expected[19] < expected[0], 'the reference trains');
        actual.forEach((a, i) => assertRelClose(a, expected[i], 1e-4, `step ${i + 1} loss`));
      });
  }
}

// ----- predictions, threads, ragged batches -----

test('predict matches model.predict, both engines', () => {
  const o: FusedMlpOptions = { nIn: 14, width: 16, depth: 5, nOut: 3, loss: 'mse', l2: 0, lr: 0.01 };
  const w = initWeights(o, 3);
  const rows = 77;
  const { x } = makeData(new Rng(3), rows, o.nIn, o.nOut, 'mse');
  const model = tfModel(o, w);
  const expected = tf.tidy(() => (model.predict(tf.tensor2d(x, [rows, o.nIn])) as tf.Tensor).dataSync() as Float32Array);
  model.dispose();
  for (const eng of ENGINES.filter((e) => !e.skip)) {
    const m = createFusedMlp({ ...o, ...eng.opts }, w);
    assertClose(m.predict(x, rows), expected, 1e-5, `${eng.name} predict`);
    m.dispose();
  }
});

const KERNELS: Array<[string, Partial<FusedMlpOptions>]> = [
  [`${info.simd ?? 'auto'} kernels`, {}],
  ['portable kernels', { simd: 'portable' }],
];

// Same seed, same backend, same data => same bits, whatever the thread count or scheduling:
// tiles are fixed by the batch and their gradients and losses are summed in a fixed order.
// Ragged batch sizes; tileRows 32 (up to 32 tiles, one unit each) and 4 (up to 256 tiles, in
// fixed runs of consecutive tiles per unit); 4 threads on fewer cores adds preemption.
test('native engine is bitwise deterministic: threads 1, 2, 4 and the adaptive default, 20 steps', { skip: nativeSkip }, () => {
  for (const [kname, kopts] of KERNELS) {
    for (const [loss, blockScale] of [['mse', false], ['softmax-ce', false], ['mse', true]] as const) {
      for (const tileRows of [32, 4]) {
        const o: FusedMlpOptions = {
          ...SHAPES[loss], width: 16, depth: 20, loss, l2: 1e-5, lr: 0.01, engine: 'native', tileRows, blockScale, ...kopts,
        };
        const w = initWeights(o, 9);
        const rows = 1021;
        const per = loss === 'mse' ? o.nOut : 1;
        const { x, y } = makeData(new Rng(9), rows, o.nIn, o.nOut, loss);
        const sizes = [1021, 517, 64, 7, 300];
        const run = (threads: number | undefined) => {
          const m = createFusedMlp({ ...o, threads }, w);
          if (threads != null) assert.equal(m.threads, threads);
          const grads = flat(m.gradients(x, y, rows)).map(([, g]) => g);
          const losses = new Float64Array(20);
          for (let s = 0; s < 20; s++) {
            const n = sizes[s % sizes.length];
            const r0 = (s * 97) % (rows - n + 1);
            losses[s] = m.step(x.subarray(r0 * o.nIn, (r0 + n) * o.nIn), y.subarray(r0 * per, (r0 + n) * per), n);
          }
          const evaluated = new Float64Array([m.evaluate(x, y, rows)]);
          const weights = m.getWeights();
          const state = m.getOptimizerState();
          m.dispose();
          return { grads, losses, evaluated, weights, state };
        };
        const one = run(1);
        assert.ok(one.losses[15] < one.losses[0], 'it trains');
        for (const threads of [2, 4, undefined]) {
          const what = `${kname}, ${loss}${blockScale ? ', block scales' : ''}, tileRows ${tileRows}, threads ${threads ?? 'adaptive'}`;
          const r = run(threads);
          r.grads.forEach((g, i) => assertBitwise(g, one.grads[i], `${what}: gradients ${flat(one.weights)[i][0]}`));
          assertBitwise(r.losses, one.losses, `${what}: step losses`);
          assertBitwise(r.evaluated, one.evaluated, `${what}: evaluate`);
          flat(r.weights).forEach(([name, a], i) => assertBitwise(a, flat(one.weights)[i][1], `${what}: ${name}`));
          flat(r.state.m).forEach(([name, a], i) => assertBitwise(a, flat(one.state.m)[i][1], `${what}: adam m ${name}`));
          flat(r.state.v).forEach(([name, a], i) => assertBitwise(a, flat(one.state.v)[i][1], `${what}: adam v ${name}`));
        }
      }
    }
  }
});

test('native engine, default (adaptive) threads: bitwise the trajectory of one thread over 80 steps', { skip: nativeSkip }, () => {
  const o: FusedMlpOptions = { nIn: 14, width: 16, depth: 4, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.003, engine: 'native' };
  const w = initWeights(o, 21);
  const rows = 500;
  const { x, y } = makeData(new Rng(21), rows, o.nIn, 1, 'mse');
  const adaptive = createFusedMlp(o, w); // threads not given: all cores or one, by timing
  const single = createFusedMlp({ ...o, threads: 1 }, w);
  for (let s = 0; s < 80; s++) {
    assert.equal(adaptive.step(x, y, rows), single.step(x, y, rows), `step ${s + 1}`);
  }
  flat(adaptive.getWeights()).forEach(([name, a], i) => assertBitwise(a, flat(single.getWeights())[i][1], name));
  adaptive.dispose();
  single.dispose();
});

test('native engine with threads = 1 is bit-for-bit reproducible; js and native agree', { skip: nativeSkip }, () => {
  const o: FusedMlpOptions = { nIn: 14, width: 16, depth: 8, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01 };
  const w = initWeights(o, 4);
  const rows = 333;
  const { x, y } = makeData(new Rng(4), rows, o.nIn, 1, 'mse');
  const run = (extra: Partial<FusedMlpOptions>) => {
    const m = createFusedMlp({ ...o, ...extra }, w);
    for (let s = 0; s < 5; s++) m.step(x, y, rows);
    const r = m.getWeights();
    m.dispose();
    return r;
  };
  const a = run({ engine: 'native', threads: 1 });
  const b = run({ engine: 'native', threads: 1 });
  flat(a).forEach(([name, t], i) => assert.deepEqual(t, flat(b)[i][1], name));
  const js = run({ engine: 'js' });
  flat(js).forEach(([name, t], i) => assertClose(t, flat(a)[i][1], 1e-4, `js vs native ${name}`));
});

test('ragged batches: any row count, including fewer rows than a tile', () => {
  const o: FusedMlpOptions = { nIn: 14, width: 16, depth: 4, nOut: 1, loss: 'mse', l2: 1e-4, lr: 0.01 };
  const w = initWeights(o, 8);
  for (const rows of [1, 3, 5, 33, 97]) {
    const { x, y } = makeData(new Rng(rows), rows, o.nIn, 1, 'mse');
    const ref = tfGradients(o, w, x, y, rows);
    for (const eng of ENGINES.filter((e) => !e.skip)) {
      const m = createFusedMlp({ ...o, ...eng.opts }, w);
      flat(m.gradients(x, y, rows)).forEach(([name, a], i) => assertClose(a, ref.grads[i], 1e-4, `${eng.name} rows=${rows} ${name}`));
      m.dispose();
    }
  }
});

// ----- state -----

test('weights and optimizer state round-trip: 5 + 5 steps equal 10 steps', () => {
  const o: FusedMlpOptions = { nIn: 14, width: 16, depth: 6, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01, engine: 'js' };
  const w = initWeights(o, 12);
  const rows = 200;
  const { x, y } = makeData(new Rng(12), rows, o.nIn, 1, 'mse');
  for (const eng of ENGINES.filter((e) => !e.skip)) {
    const opts = { ...o, ...eng.opts, threads: 1 };
    const straight = createFusedMlp(opts, w);
    for (let s = 0; s < 10; s++) straight.step(x, y, rows);
    const first = createFusedMlp(opts, w);
    for (let s = 0; s < 5; s++) first.step(x, y, rows);
    const state = first.getOptimizerState();
    assert.equal(state.step, 5);
    const second = createFusedMlp(opts, first.getWeights());
    second.setOptimizerState(state);
    for (let s = 0; s < 5; s++) second.step(x, y, rows);
    flat(second.getWeights()).forEach(([name, a], i) => assert.deepEqual(a, flat(straight.getWeights())[i][1], `${eng.name} ${name}`));
    assert.equal(second.getOptimizerState().step, 10);
    for (const m of [straight, first, second]) m.dispose();
  }
});

test('setLearningRate, setWeights and input validation', () => {
  const o: FusedMlpOptions = { nIn: 4, width: 8, depth: 2, nOut: 3, loss: 'softmax-ce', l2: 0, lr: 0.01, engine: 'js' };
  const w = initWeights(o, 1);
  const m = createFusedMlp(o, w);
  const x = new Float32Array(4 * 2);
  assert.throws(() => m.step(x, new Float32Array([0, 3]), 2), /label 3 at row 1/);
  assert.throws(() => m.step(x, new Float32Array([0, 1]), 3), /x must be a Float32Array/);
  assert.throws(() => m.setWeights({ ...w, blocks: w.blocks.slice(1) }), /expected 2 blocks/);
  assert.throws(() => createFusedMlp({ ...o, depth: 0 }, w), /depth must be a positive integer/);
  m.setLearningRate(0.5);
  m.step(x, new Float32Array([0, 1]), 2);
  m.setWeights(w);
  assert.deepEqual(m.getWeights().head.kernel, w.head.kernel);
  m.dispose();
  assert.throws(() => m.step(x, new Float32Array([0, 1]), 2), /disposed/);
});

test('fastPathInfo reports the engine in use', () => {
  const i = fastPathInfo();
  assert.ok(i.engine === 'native' || i.engine === 'js');
  assert.ok(i.threads >= 1);
  if (i.engine === 'native') assert.match(i.simd ?? '', /^(avx512|avx2-fma|portable)$/);
  else assert.ok(i.reason);
});

// ----- real data -----

function findSgemm(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const c = path.join(dir, 'data', 'sgemm', 'sgemm_product.csv.gz');
    if (fs.existsSync(c)) return c;
    dir = path.dirname(dir);
  }
  return null;
}

const sgemm = findSgemm();

test('2,000 real SGEMM rows: gradients and a 20-step trajectory match TF.js, both engines',
  { skip: sgemm == null ? 'data/sgemm/sgemm_product.csv.gz not found' : false }, async () => {
    const lines = gunzipSync(fs.readFileSync(sgemm!)).toString('utf8').trim().split('\n').slice(1);
    const rows = 2000;
    const stride = Math.floor(lines.length / rows); // spread over the file (it is sorted)
    const nIn = 14;
    const x = new Float32Array(rows * nIn);
    const y = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const v = lines[r * stride].split(',').map(Number);
      for (let j = 0; j < nIn; j++) x[r * nIn + j] = v[j];
      y[r] = Math.log((v[14] + v[15] + v[16] + v[17]) / 4);
    }
    const zscore = (a: Float32Array, cols: number) => {
      for (let j = 0; j < cols; j++) {
        let s = 0, s2 = 0;
        for (let r = 0; r < rows; r++) s += a[r * cols + j];
        const mean = s / rows;
        for (let r = 0; r < rows; r++) s2 += (a[r * cols + j] - mean) ** 2;
        const sd = Math.sqrt(s2 / rows) || 1;
        for (let r = 0; r < rows; r++) a[r * cols + j] = (a[r * cols + j] - mean) / sd;
      }
    };
    zscore(x, nIn);
    zscore(y, 1);
    const o: FusedMlpOptions = { nIn, width: 16, depth: 12, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01 };
    const w = initWeights(o, 2000);
    const ref = tfGradients(o, w, x, y, rows);
    const expected = await tfTrajectory(o, w, x, y, rows, 20, 1024);
    for (const eng of ENGINES.slice(0, 2).filter((e) => !e.skip)) {
      const m = createFusedMlp({ ...o, ...eng.opts }, w);
      flat(m.gradients(x, y, rows)).forEach(([name, a], i) => assertClose(a, ref.grads[i], 1e-4, `${eng.name} ${name}`));
      m.dispose();
      const actual = fusedTrajectory({ ...o, ...eng.opts }, w, x, y, rows, 20, 1024);
      actual.forEach((a, i) => assertRelClose(a, expected[i], 1e-4, `${eng.name} step ${i + 1} loss`));
    }
  });
