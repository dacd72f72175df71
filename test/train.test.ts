import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { DivergedError } from '../src/train/trainer.js';
import { createProgress } from '../src/train/progress.js';
import type { Metrics } from '../src/contracts.js';
import { savedModelTestMse, tmpDir } from './helpers.js';
import type { RunConfig } from '../src/vocabulary.js';

const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };

function cfg(over: Partial<RunConfig> = {}): RunConfig {
  return { model: 'mlp', arch: 'glonet', dataset: 'sgemm', depth: 6, ...familyDefaults('mlp'), epochs: 3, batchSize: 256, seed: 7, subset: 3000, augment: false, backend: 'cpu', fast: 'off', ...over };
}

const strip = (m: Metrics) => m.epochs.map(({ seconds: _s, ...rest }) => rest);

test('same seed, backend and data give the same metrics; outputs follow the contract', async () => {
  const a = await runTraining(cfg(), tmpDir(), quiet);
  const dir = tmpDir();
  const b = await runTraining(cfg(), dir, quiet);
  assert.deepEqual(strip(a.metrics), strip(b.metrics));
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8')) as Metrics;
  assert.equal(m.task, 'regression');
  assert.equal(m.backend, 'cpu');
  assert.equal(m.params, a.model.countParams());
  assert.equal(m.epochs.length, 3);
  for (const e of m.epochs) for (const k of ['epoch', 'trainLoss', 'testLoss', 'testError', 'seconds'] as const) assert.equal(typeof e[k], 'number');
  assert.equal(m.epochs[2].testError, m.epochs[2].testLoss);
  assert.ok(m.best && m.best.testError === Math.min(...m.epochs.map((e) => e.testError)));
  assert.ok(m.epochs[2].testError < 0.9, `a GloNet learns SGEMM within 3 epochs: ${m.epochs[2].testError}`);
  assert.ok(fs.existsSync(path.join(dir, 'model', 'model.json')) && fs.existsSync(path.join(dir, 'model', 'weights.bin')));
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  const c = await runTraining(cfg({ seed: 8 }), tmpDir(), quiet);
  assert.notDeepEqual(strip(a.metrics), strip(c.metrics));
});

test('the saved weights are the last epoch\'s and reproduce its test error', async () => {
  const dir = tmpDir();
  const r = await runTraining(cfg({ epochs: 2 }), dir, quiet);
  const mse = await savedModelTestMse(dir, r);
  assert.ok(Math.abs(mse - r.metrics.epochs[1].testError) < 1e-5 * Math.max(1, mse), `${mse} vs ${r.metrics.epochs[1].testError}`);
});

test('--resume continues exactly where the run stopped', async () => {
  const whole = await runTraining(cfg({ epochs: 4 }), tmpDir(), quiet);
  const dir = tmpDir();
  await runTraining(cfg({ epochs: 2 }), dir, quiet);
  const resumed = await runTraining(cfg({ epochs: 4 }), dir, { ...quiet, resume: true });
  assert.equal(resumed.metrics.epochs.length, 4);
  // The checkpoint keeps Adam's bias-correction powers as training had them: the same numbers.
  assert.deepEqual(strip(resumed.metrics), strip(whole.metrics));
  await assert.rejects(runTraining(cfg({ epochs: 5, depth: 8 }), dir, { ...quiet, resume: true }), /--resume: .* was trained with depth = 6, not 8/);
});

test('a NaN or infinite loss stops the run with a clear message; earlier files stay valid', async () => {
  const dir = tmpDir();
  await assert.rejects(runTraining(cfg({ lr: 1e9, epochs: 5 }), dir, quiet), (e: Error) => e instanceof DivergedError && /training diverged: the loss became (NaN|Infinity)/.test(e.message) && /--lr/.test(e.message));
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8')) as Metrics;
  assert.ok(m.diverged && m.diverged.epoch >= 1);
  assert.equal(m.epochs.length, m.diverged.epoch - 1);
});

test('a long run does not grow tf.memory().numTensors', async () => {
  const counts: number[] = [];
  await runTraining(cfg({ epochs: 6 }), tmpDir(), { ...quiet, onEpoch: () => counts.push(tf.memory().numTensors) });
  assert.equal(counts.length, 6);
  assert.deepEqual(counts, new Array(6).fill(counts[0]));
});

test('fused engine: the saved TF.js model reproduces the engine\'s test error; resume is exact; no tensor growth', async () => {
  const fast = { fast: 'auto' as const, depth: 12 };
  const dir = tmpDir();
  const counts: number[] = [];
  const r = await runTraining(cfg({ ...fast, epochs: 4 }), dir, { ...quiet, onEpoch: () => counts.push(tf.memory().numTensors) });
  assert.match(r.metrics.engine!, /^fused-(native|js)$/);
  assert.deepEqual(counts, new Array(4).fill(counts[0]));
  const mse = await savedModelTestMse(dir, r);
  const last = r.metrics.epochs[3].testError;
  assert.ok(Math.abs(mse - last) <= 1e-4 * last, `${mse} vs ${last}`);
  const part = tmpDir();
  await runTraining(cfg({ ...fast, epochs: 2 }), part, quiet);
  const resumed = await runTraining(cfg({ ...fast, epochs: 4 }), part, { ...quiet, resume: true });
  resumed.metrics.epochs.forEach((e, i) => assert.ok(Math.abs(e.testError - r.metrics.epochs[i].testError) <= 1e-5 * r.metrics.epochs[i].testError, `epoch ${i + 1}`));
  await assert.rejects(runTraining(cfg({ ...fast, epochs: 5, fast: 'off' }), part, { ...quiet, resume: true }), /--resume: .* fused-.* engine, this run uses tfjs/);
});

test('seed 0 is a real seed; the SGD step schedule changes the optimizer\'s rate', async () => {
  const { buildMlp } = await import('../src/models/mlp.js');
  const w = () => buildMlp({ arch: 'glonet', depth: 2, inputShape: [14], outputs: 1, seed: 0 }).getWeights().map((t) => Array.from(t.dataSync()));
  assert.deepEqual(w(), w());
  const { TfjsStepper } = await import('../src/engines/tfjs.js');
  const m = buildMlp({ arch: 'glonet', depth: 2, inputShape: [14], outputs: 1, seed: 1 });
  const s = new TfjsStepper(m, { task: 'regression', outputs: 1, inputShape: [14], optimizer: 'sgd', lr: 0.1, momentum: 0, l2: 0 });
  const x = new Float32Array(4 * 14).map((_, i) => Math.sin(i));
  const y = new Float32Array(4).fill(1);
  const before = m.getWeights().map((t) => Array.from(t.dataSync()));
  s.setLearningRate(0);
  s.step(x, y, 4);
  assert.deepEqual(m.getWeights().map((t) => Array.from(t.dataSync())), before, 'lr 0 leaves the weights alone');
  s.dispose();
});

test('warm-up (--warmup): the learning rate rises step by step to the schedule\'s over the warm-up steps, a resumed run continues the count, and it reaches the engine', async () => {
  const { trainLoop } = await import('../src/train/trainer.js');
  const { warmupSteps, learningRateAt } = await import('../src/train/schedule.js');
  const { loadDataset } = await import('../src/data/index.js');
  assert.equal(warmupSteps({}, 10), 0);
  assert.equal(warmupSteps({ warmup: 0 }, 10), 0);
  assert.equal(warmupSteps({ warmup: 1.5 }, 3), 5); // 4.5 rounded
  assert.equal(warmupSteps({ warmup: 0.01 }, 3), 1);
  // A stepper that records the learning rate of every step (the step schedule on top).
  const ds = await loadDataset({ dataset: 'sgemm', subset: 100, seed: 1 });
  const run = async (startEpoch: number) => {
    const lrs: number[] = [];
    let lr = NaN;
    const stepper = {
      engine: 'tfjs' as const, step: () => { lrs.push(lr); return 1; }, setLearningRate: (x: number) => { lr = x; },
      predict: (_x: Float32Array, rows: number) => new Float32Array(rows), syncToModel: () => {}, getOptimizerState: async () => [],
      setOptimizerState: async () => {}, dispose: () => {},
    };
    const c = { lr: 0.1, schedule: 'step' as const, epochs: 4, warmup: 1.5 };
    await trainLoop(stepper, ds, {
      startEpoch, epochs: 4, batchSize: 32, seed: 1, lrAt: (e) => learningRateAt(c, e), warmupSteps: warmupSteps(c, 3),
      progress: createProgress({ quiet: true }), onEpoch: async () => {},
    });
    return lrs;
  };
  const f = Math.fround;
  const all = await run(1);
  // 80 training rows in batches of 32: 3 steps an epoch; the step schedule: 0.1, 0.01, 0.001, 0.0001.
  assert.deepEqual(all.map(f), [0.1 / 5, 0.2 / 5, 0.3 / 5, 0.01 * 4 / 5, 0.01, 0.01, 0.001, 0.001, 0.001, 0.0001, 0.0001, 0.0001].map(f));
  assert.deepEqual(await run(2), all.slice(3));
  // Through runTraining on the fused MLP engine: a run with warm-up differs from one without,
  // and records it in its config.
  const plain = await runTraining(cfg({ fast: 'auto', epochs: 2 }), tmpDir(), quiet);
  const warm = await runTraining(cfg({ fast: 'auto', epochs: 2, warmup: 1 }), tmpDir(), quiet);
  assert.equal(warm.metrics.config.warmup, 1);
  assert.notEqual(warm.metrics.epochs[0].trainLoss, plain.metrics.epochs[0].trainLoss);
  plain.model.dispose();
  warm.model.dispose();
});
