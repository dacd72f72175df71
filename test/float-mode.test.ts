/**
 * Subnormal floats (native/src/common/float_mode.h): every thread of every native engine computes
 * with them flushed to zero, and the JavaScript thread that calls in gets its own IEEE arithmetic
 * back after every call. On Intel cores a subnormal costs about a hundred cycles an operation, and
 * BN-free nets make them within a few epochs; these tests are what keeps the engines fast there,
 * without timing anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/backend/index.js';
import { Rng } from '../src/random.js';
import { createFusedMlp, type FusedMlpWeights } from '../src/engines/mlp/glonet-mlp.js';
import { createFusedBlockMlp } from '../src/engines/mlp/block-mlp.js';
import { createFusedResNet20, fusedCnnInfo } from '../src/engines/cnn/fused-native-cnn.js';
import { createFusedVit, fusedVitInfo, vitLayers, type VitShape } from '../src/engines/vit/fused-native-vit.js';
import { buildViT } from '../src/models/vit.js';
import { readLayers } from '../src/engines/fused-stepper.js';
import { nativeSkip, randn } from './fixtures.js';
import { mnist14, prepareWeights, tfModel } from './cnn-fixtures.js';

await initBackend('cpu');

const cnnInfo = fusedCnnInfo();
const cnnSkip = cnnInfo.available ? false : `fused CNN engine unavailable: ${cnnInfo.reason}`;
const vitInfo = fusedVitInfo();
const vitSkip = vitInfo.available ? false : `fused ViT engine unavailable: ${vitInfo.reason}`;

/**
 * Subnormal results of JavaScript's own arithmetic, from values only known at run time (read out
 * of typed arrays), so no compiler folds them: a float32 store, a float64 product and a division.
 */
function jsMakesSubnormals(): void {
  const src = new Float64Array([1e-38, 1e-300, 3]);
  const f32 = new Float32Array(1);
  f32[0] = src[0] / 16; // 6.25e-40: a float32 subnormal
  assert.ok(f32[0] > 0 && f32[0] < 1.2e-38, `float32 subnormal store gave ${f32[0]}`);
  const d = src[1] * 1e-10; // 1e-310: a float64 subnormal
  assert.ok(d > 0 && d < 2.2e-308, `float64 subnormal product gave ${d}`);
  assert.ok(src[1] / 1e12 / src[2] > 0, 'float64 subnormal quotient flushed');
  assert.ok(Math.fround(src[0] * 0.01) > 0, 'Math.fround of a float32 subnormal flushed');
}

function glonetWeights(nIn: number, width: number, depth: number, nOut: number, seed: number): FusedMlpWeights {
  const rng = new Rng(seed);
  const dense = (i: number, o: number) => ({ kernel: randn(rng, i * o, Math.sqrt(2 / i)), bias: new Float32Array(o) });
  return { stem: dense(nIn, width), blocks: Array.from({ length: depth }, () => dense(width, width)), head: dense(width, nOut) };
}

test('JavaScript makes subnormal floats before any engine runs (the reference for the checks below)', () => {
  jsMakesSubnormals();
});

test('fused GloNet MLP engine: every thread computes with subnormals flushed; JavaScript keeps them', { skip: nativeSkip }, () => {
  const rng = new Rng(1);
  const mlp = createFusedMlp({ nIn: 14, width: 16, depth: 10, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01, engine: 'native', threads: 2 },
    glonetWeights(14, 16, 10, 1, 2));
  try {
    const rows = 512;
    const x = randn(rng, rows * 14);
    const y = randn(rng, rows);
    for (let s = 0; s < 3; s++) mlp.step(x, y, rows);
    jsMakesSubnormals();
    const states = mlp.flushStates();
    assert.equal(states.length, 2);
    assert.deepEqual(states, [true, true], 'caller during its last step, then the helper thread');
    mlp.predict(x, rows);
    jsMakesSubnormals();
  } finally {
    mlp.dispose();
  }
});

test('fused GloNet MLP engine: a subnormal activation becomes exactly zero on every thread', { skip: nativeSkip }, () => {
  // Stem outputs of 1e-20 * 1e-20 = 1e-40 (subnormal) for every row; the head's 1e30 would lift
  // anything left of them back to about 1e-10. Flushed, every output is exactly 0 (zero biases).
  const w = 4;
  const weights: FusedMlpWeights = {
    stem: { kernel: new Float32Array(1 * w).fill(1e-20), bias: new Float32Array(w) },
    blocks: Array.from({ length: 3 }, () => ({ kernel: Float32Array.from({ length: w * w }, (_, i) => (i % (w + 1) === 0 ? 1 : 0)), bias: new Float32Array(w) })),
    head: { kernel: new Float32Array(w).fill(1e30), bias: new Float32Array(1) },
  };
  const rows = 1024; // many tiles, so both threads compute some
  const x = new Float32Array(rows).fill(1e-20);
  for (const threads of [1, 2]) {
    const mlp = createFusedMlp({ nIn: 1, width: w, depth: 3, nOut: 1, loss: 'mse', l2: 0, lr: 0.01, engine: 'native', threads }, weights);
    try {
      const out = mlp.predict(x, rows);
      const first = out.findIndex((v) => v !== 0);
      assert.equal(first, -1, `${threads} thread(s): row ${first} of ${rows} gives ${out[first]} (expected exact zeros)`);
    } finally {
      mlp.dispose();
    }
  }
  jsMakesSubnormals();
});

test('fused block MLP engine (the BN baselines): every thread flushes; JavaScript keeps subnormals', { skip: nativeSkip }, () => {
  const rng = new Rng(3);
  const nIn = 14;
  const width = 16;
  const blocks = 2;
  const layer = (i: number, o: number) => [randn(rng, i * o, Math.sqrt(2 / i)), new Float32Array(o)];
  const bn = () => [new Float32Array(width).fill(1), new Float32Array(width), new Float32Array(width), new Float32Array(width).fill(1)];
  const initial = [layer(nIn, width)];
  for (let b = 0; b < 2 * blocks; b++) initial.push(bn(), layer(width, width));
  initial.push(layer(width, 1));
  const eng = createFusedBlockMlp({ nIn, width, blocks, nOut: 1, loss: 'mse', bn: true, skip: true, l2: 1e-5, lr: 0.01, engine: 'native', threads: 2 }, initial);
  try {
    const rows = 512;
    eng.step(randn(rng, rows * nIn), randn(rng, rows), rows);
    jsMakesSubnormals();
    assert.deepEqual(eng.flushStates(), [true, true]);
  } finally {
    eng.dispose();
  }
});

test('fused CNN engine: every thread flushes; JavaScript keeps subnormals', { skip: cnnSkip }, () => {
  assert.equal(cnnInfo.flushSubnormals, true);
  const d = mnist14(32);
  const model = tfModel('glonet', 8, d.shape, 10);
  const initial = prepareWeights(model, 'glonet', 8, d, 5);
  model.dispose();
  const eng = createFusedResNet20({ arch: 'glonet', inputShape: d.shape, classes: 10, blocksPerStage: 1, l2: 5e-5, optimizer: 'adam', lr: 1e-3, threads: 2 }, initial);
  try {
    eng.step(d.x, d.y, d.rows);
    jsMakesSubnormals();
    assert.deepEqual(eng.flushStates(), [true, true]);
    eng.predict(d.x, d.rows);
    jsMakesSubnormals();
  } finally {
    eng.dispose();
  }
});

test('fused ViT engine: every thread flushes; JavaScript keeps subnormals', { skip: vitSkip }, () => {
  assert.equal(vitInfo.flushSubnormals, true);
  const d = mnist14(32);
  const shape: VitShape = { arch: 'glonet', inputShape: d.shape, classes: 10, depth: 2, width: 32, heads: 4, mlpDim: 64, patch: 2, lnEpsilon: 1e-5 };
  const model = buildViT({ ...shape, outputs: 10, patch: 2, seed: 3 });
  const initial = readLayers(model, vitLayers(shape).map((l) => l.name));
  model.dispose();
  const eng = createFusedVit({ ...shape, l2: 1e-4, lr: 1e-3, threads: 2, chunkImages: 4 }, initial);
  try {
    eng.step(d.x, d.y, d.rows);
    jsMakesSubnormals();
    assert.deepEqual(eng.flushStates(), [true, true]);
    eng.predict(d.x, d.rows);
    jsMakesSubnormals();
  } finally {
    eng.dispose();
  }
});
