import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { analyzeModel, effectiveDepthByNorm, effectiveDepthByNormShare } from '../src/analysis/analyze.js';
import { explain } from '../src/analysis/explain.js';
import { truncateModel } from '../src/analysis/truncate.js';
import { buildMlp } from '../src/models/mlp.js';
import { ROOT, runCli, runNode, tmpDir } from './helpers.js';
import type { RunConfig } from '../src/vocabulary.js';
import { evaluate } from '../src/scoring.js';

await initBackend('cpu');
const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };

function cfg(over: Partial<RunConfig> = {}): RunConfig {
  return { model: 'mlp', arch: 'glonet', dataset: 'sgemm', depth: 8, ...familyDefaults('mlp'), epochs: 3, batchSize: 256, seed: 3, subset: 3000, augment: false, backend: 'cpu', fast: 'off', ...over };
}

const dir = tmpDir();
const run = await runTraining(cfg(), dir, quiet);
const ds = run.dataset;
const predictWith = (m: tf.LayersModel) => (x: Float32Array, rows: number) =>
  tf.tidy(() => (m.predict(tf.tensor(x, [rows, 14])) as tf.Tensor).dataSync() as Float32Array).slice();

test('block norms equal a direct computation of each block output\'s L1 norm', () => {
  const a = analyzeModel(run.model, run.meta, ds, { samples: 300 });
  assert.equal(a.samples, 300);
  assert.equal(a.blockNorms.length, 8);
  // Direct: apply stem and blocks layer by layer with the trained kernels in JavaScript.
  const w = (name: string) => run.model.getLayer(name).getWeights().map((t) => t.dataSync());
  const [sk, sb] = w('stem');
  for (let l = 1; l <= 8; l++) {
    const norms: number[] = [];
    for (let r = 0; r < 300; r++) {
      let h = Array.from({ length: 16 }, (_, j) => { let s = sb[j]; for (let i = 0; i < 14; i++) s += ds.xTest[r * 14 + i] * sk[i * 16 + j]; return s; });
      for (let b = 1; b <= l; b++) {
        const [k, bias] = w(`block_${b}`);
        h = Array.from({ length: 16 }, (_, j) => { let s = bias[j]; for (let i = 0; i < 16; i++) s += h[i] * k[i * 16 + j]; return Math.max(0, s); });
      }
      norms.push(h.reduce((s, v) => s + Math.abs(v), 0));
    }
    const mean = norms.reduce((s, v) => s + v, 0) / norms.length;
    const std = Math.sqrt(norms.reduce((s, v) => s + (v - mean) ** 2, 0) / norms.length);
    const got = a.blockNorms[l - 1];
    assert.equal(got.block, l);
    assert.ok(Math.abs(got.mean - mean) <= 1e-4 * Math.max(1, mean), `block ${l} mean ${got.mean} vs ${mean}`);
    assert.ok(Math.abs(got.std - std) <= 1e-3 * Math.max(1, std), `block ${l} std ${got.std} vs ${std}`);
  }
});

test('truncation at every k equals an explicitly built k-block model\'s test error; k = L matches metrics.json', () => {
  const a = analyzeModel(run.model, run.meta, ds, { samples: 200 });
  const curve = a.truncation!;
  assert.equal(curve.length, 8);
  for (let k = 1; k <= 8; k++) {
    const m = buildMlp({ arch: 'glonet', depth: k, inputShape: [14], outputs: 1 });
    for (const name of ['stem', 'head', ...Array.from({ length: k }, (_, i) => `block_${i + 1}`)]) m.getLayer(name).setWeights(run.model.getLayer(name).getWeights());
    const e = evaluate(predictWith(m), ds, ds.xTest, ds.yTest, ds.nTest);
    assert.ok(Math.abs(curve[k - 1].testError - e.error) <= 1e-5 * e.error, `k=${k}: ${curve[k - 1].testError} vs ${e.error}`);
    m.dispose();
  }
  const last = run.metrics.epochs[run.metrics.epochs.length - 1].testError;
  assert.ok(Math.abs(curve[7].testError - last) <= 1e-6 * last, `${curve[7].testError} vs ${last}`);
  const ed = a.effectiveDepth;
  assert.ok(ed.byError! >= 1 && ed.byError! <= 8);
  assert.ok(curve[ed.byError! - 1].testError <= curve[7].testError * 1.05);
  if (ed.byError! > 1) assert.ok(curve[ed.byError! - 2].testError > curve[7].testError * 1.05);
  assert.equal(effectiveDepthByNorm([{ block: 1, mean: 10, std: 0 }, { block: 2, mean: 0.2, std: 0 }, { block: 3, mean: 0.05, std: 0 }]), 2);
  // 10 + 5 + 3 + 1 = 19 = 95% of 20: the first four blocks hold the share.
  const norms = [10, 5, 3, 1, 1].map((mean, i) => ({ block: i + 1, mean, std: 0 }));
  assert.equal(effectiveDepthByNormShare(norms, 0.95), 4);
  assert.equal(effectiveDepthByNormShare(norms, 0.5), 1);
  assert.equal(a.effectiveDepth.normShare.share, 0.95);
  assert.equal(a.effectiveDepth.normShare.blocks, effectiveDepthByNormShare(a.blockNorms));
  for (const k of ['byError', 'normShare', 'byNorm', 'blockEffects']) assert.ok(a.effectiveDepth.definitions[k].length > 20, k);
});

test('block effects: each block\'s mean |x_l K| as explain() computes it, beside the error it removes', () => {
  const n = 200;
  const a = analyzeModel(run.model, run.meta, ds, { samples: n, explainSamples: 0 });
  const effects = a.blockEffects!;
  assert.equal(effects.length, 8);
  const x = tf.tensor(ds.xTest.subarray(0, n * 14), [n, 14]);
  const e = explain(run.model, run.meta, x);
  x.dispose();
  for (let l = 0; l < 8; l++) {
    let s = 0;
    for (let r = 0; r < n; r++) s += Math.abs(e.contributions[r * 8 + l]);
    assert.ok(Math.abs(effects[l].contribution - s / n) <= 1e-4 * Math.max(1e-3, s / n), `block ${l + 1}: ${effects[l].contribution} vs ${s / n}`);
  }
  // The removed errors telescope: the head's bias alone, minus the full model.
  let biasOnly = 0;
  for (let i = 0; i < ds.nTest; i++) biasOnly += (e.bias[0] - ds.yTest[i]) ** 2;
  biasOnly /= ds.nTest;
  const removed = effects.reduce((t, b) => t + b.errorRemoved, 0);
  const full = a.truncation![7].testError;
  assert.ok(Math.abs(removed - (biasOnly - full)) <= 1e-6 * biasOnly, `${removed} vs ${biasOnly - full}`);
  assert.ok(Math.abs(effects[3].errorRemoved - (a.truncation![2].testError - a.truncation![3].testError)) < 1e-12);
});

test('per-block contributions plus the bias equal the prediction within 1e-4', () => {
  const x = tf.tensor(ds.xTest.subarray(0, 50 * 14), [50, 14]);
  const e = explain(run.model, run.meta, x);
  x.dispose();
  assert.equal(e.blocks, 8);
  for (let r = 0; r < 50; r++) {
    let s = e.bias[0];
    for (let l = 0; l < 8; l++) s += e.contributions[r * 8 + l];
    assert.ok(Math.abs(s - e.prediction[r]) < 1e-4, `row ${r}: ${s} vs ${e.prediction[r]}`);
  }
  const a = analyzeModel(run.model, run.meta, ds, { samples: 100, explainSamples: 3 });
  assert.equal(a.contributions!.samples.length, 3);
  for (const smp of a.contributions!.samples) {
    const s = smp.blocks.reduce((t, b) => t + b[0], a.contributions!.bias[0]);
    assert.ok(Math.abs(s - smp.prediction[0]) < 1e-4);
  }
});

test('baselines get block norms but no truncation curve', async () => {
  const base = await runTraining(cfg({ arch: 'resnetv2', depth: 4, epochs: 1 }), tmpDir(), quiet);
  const a = analyzeModel(base.model, base.meta, base.dataset, { samples: 100 });
  assert.equal(a.blockNorms.length, 2);
  assert.equal(a.truncation, undefined);
  assert.equal(a.effectiveDepth.byError, null);
  assert.throws(() => truncateModel(base.model, base.meta, 1), /only GloNet models can be truncated/);
});

test('glonet truncate: K-block model loads in a fresh process, predicts identically, its error is truncation[K-1]', async () => {
  const r = runCli(['analyze', dir, '--samples', '500', '--backend', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /signal: 95% of the summed block norm \(500 test samples\) sits in the first \d+ of 8 blocks/);
  assert.match(r.stdout, /error: the first (block|\d+ blocks) (keeps? test MSE \S+, within 5% of all 8|already (does|do) better than all 8)/);
  const analysis = JSON.parse(fs.readFileSync(path.join(dir, 'analysis.json'), 'utf8'));
  assert.equal(analysis.samples, 500);
  const out = path.join(tmpDir(), 't3');
  const t = runCli(['truncate', dir, '--blocks', '3', '--out', out, '--backend', 'cpu']);
  assert.equal(t.code, 0, t.stderr);
  const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
  assert.deepEqual(m.truncatedFrom.blocks, 3);
  assert.ok(Math.abs(m.epochs[0].testError - analysis.truncation[2].testError) <= 1e-6 * analysis.truncation[2].testError);
  assert.equal(m.params, 14 * 16 + 16 + 3 * 272 + 17);
  const { model: small } = truncateModel(run.model, run.meta, 3);
  const x = Array.from({ length: 5 }, (_, i) => Array.from(ds.xTest.subarray(i * 14, i * 14 + 14)));
  const expected = Array.from(tf.tidy(() => (small.predict(tf.tensor2d(x)) as tf.Tensor).dataSync()));
  const fresh = runNode(`
    import * as tf from '@tensorflow/tfjs';
    import { fileSystem } from ${JSON.stringify(path.join(ROOT, 'dist/src/index.js'))};
    await tf.setBackend('cpu');
    const m = await tf.loadLayersModel(fileSystem(${JSON.stringify(path.join(out, 'model'))}));
    console.log(JSON.stringify({ y: Array.from(m.predict(tf.tensor2d(${JSON.stringify(x)})).dataSync()), layers: m.layers.map((l) => l.name) }));
  `);
  const got = JSON.parse(fresh);
  assert.ok(got.y.every((v: number, i: number) => Math.abs(v - expected[i]) < 1e-6));
  assert.ok(!got.layers.includes('block_4'), 'blocks after K are not in the truncated model');
  for (const bad of ['0', '9']) {
    const e = runCli(['truncate', dir, '--blocks', bad, '--out', path.join(tmpDir(), 'x'), '--backend', 'cpu']);
    assert.equal(e.code, 2);
    assert.match(e.stderr, bad === '0' ? /--blocks <k>.*expected a positive integer/ : /--blocks: expected an integer from 1 to 8 \(the model's blocks\), got 9/);
  }
  // The report now has the analysis charts.
  assert.match(fs.readFileSync(path.join(dir, 'report.html'), 'utf8'), /[Tt]runcation/);
});

test('glonet predict: CSV rows and JSON, --explain contributions sum to the prediction', () => {
  const tmp = tmpDir();
  const csv = path.join(tmp, 'rows.csv');
  // Raw SGEMM rows with the timing columns still present (ignored) and the columns reordered.
  fs.writeFileSync(csv, 'Run1 (ms),SB,SA,STRN,STRM,VWN,VWM,KWI,NDIMB,MDIMA,NDIMC,MDIMC,KWG,NWG,MWG\n115.26,0,0,0,0,1,1,2,8,8,8,8,16,16,16\n78.13,1,0,0,0,1,1,2,8,8,8,8,16,16,16\n');
  const r = runCli(['predict', dir, '--input', csv, '--explain', '--backend', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.equal(row.explanation.blocks.length, 8);
    const s = row.explanation.blocks.reduce((a: number, b: number) => a + b, row.explanation.bias);
    assert.ok(Math.abs(s - row.prediction) < 1e-4, `${s} vs ${row.prediction}`);
    assert.ok(row.prediction > 2 && row.prediction < 8, `ln(ms) in a plausible range: ${row.prediction}`);
  }
  const json = path.join(tmp, 'rows.json');
  const names = ['MWG', 'NWG', 'KWG', 'MDIMC', 'NDIMC', 'MDIMA', 'NDIMB', 'KWI', 'VWM', 'VWN', 'STRM', 'STRN', 'SA', 'SB'];
  const obj = Object.fromEntries(names.map((n) => [n, 0]));
  Object.assign(obj, { MWG: 16, NWG: 16, KWG: 16, MDIMC: 8, NDIMC: 8, MDIMA: 8, NDIMB: 8, KWI: 2, VWM: 1, VWN: 1 });
  fs.writeFileSync(json, JSON.stringify([obj]));
  const j = runCli(['predict', dir, '--input', json, '--backend', 'cpu']);
  assert.equal(j.code, 0, j.stderr);
  assert.ok(Math.abs(JSON.parse(j.stdout)[0].prediction - rows[0].prediction) < 1e-5);
  const c = runCli(['predict', dir, '--input', csv, '--format', 'csv', '--explain', '--backend', 'cpu']);
  assert.match(c.stdout.split('\n')[0], /^row,prediction,bias,block_1,.*block_8$/);
  const bad = path.join(tmp, 'bad.csv');
  fs.writeFileSync(bad, 'MWG,NWG\n1,2\n');
  const e = runCli(['predict', dir, '--input', bad, '--backend', 'cpu']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /bad\.csv: missing columns 'KWG', .*expected the training columns 'MWG', 'NWG'/);
});

test('analysis, truncation and explanations work on GloNet-ResNet20 and GloNet-ViT (narrow first blocks padded)', async () => {
  await initBackend('wasm');
  const { loadImageDataset } = await import('../src/data/images.js');
  const { buildModel } = await import('../src/models/index.js');
  const mnist = loadImageDataset('mnist', { subset: 150, seed: 2 });
  for (const [family, depth, width] of [['resnet20', 20, 16], ['vit', 3, 32]] as const) {
    const { model, meta } = buildModel({ model: family, arch: 'glonet', depth, width, l2: 0, seed: 1 }, mnist);
    const a = analyzeModel(model, meta, mnist, { samples: 30, explainSamples: 2 });
    const L = meta.blockLayers.length;
    assert.equal(a.truncation!.length, L);
    for (const k of [1, 3, L]) {
      const t = truncateModel(model, meta, k).model;
      const predict = (x: Float32Array, rows: number) => tf.tidy(() => (t.predict(tf.tensor(x, [rows, 28, 28, 1])) as tf.Tensor).dataSync() as Float32Array).slice();
      const e = evaluate(predict, mnist, mnist.xTest, mnist.yTest, mnist.nTest);
      assert.ok(Math.abs(e.loss - a.truncation![k - 1].testLoss) <= 1e-4 * Math.max(1, e.loss), `${family} k=${k}: ${e.loss} vs ${a.truncation![k - 1].testLoss}`);
    }
    for (const smp of a.contributions!.samples) {
      const c = smp.predictedClass!;
      const s = smp.blocks.reduce((t, b) => t + b[c], a.contributions!.bias[c]);
      assert.ok(Math.abs(s - smp.prediction[c]) < 1e-4, `${family}: ${s} vs ${smp.prediction[c]}`);
    }
  }
  await initBackend('cpu');
});
