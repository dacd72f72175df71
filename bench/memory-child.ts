/**
 * Run in a child process by bench.ts: (1) peak resident memory while training a 1000-block GloNet
 * MLP at batch 1024 on SGEMM with `runTraining` (the real pipeline); (2) tf.memory().numTensors
 * after epoch 1 and after epoch 20 of a plain TF.js training run. Prints one JSON line.
 */
import * as tf from '@tensorflow/tfjs';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../src/vocabulary.js';

const quick = process.argv.includes('--quick');
const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };
const base = (over: Partial<RunConfig>): RunConfig => ({
  model: 'mlp', arch: 'glonet', dataset: 'sgemm', depth: 10, ...familyDefaults('mlp'), epochs: 1, seed: 0,
  augment: false, backend: 'wasm', fast: 'auto', ...over,
});

const dir = mkdtempSync(path.join(tmpdir(), 'glonet-bench-'));
await runTraining(base({ depth: 1000, epochs: 1, subset: quick ? 20000 : undefined }), path.join(dir, 'deep'), quiet);
const maxRssMB = process.resourceUsage().maxRSS / 1024;
const counts: number[] = [];
await runTraining(base({ depth: 10, epochs: 20, subset: 4000, fast: 'off' }), path.join(dir, 'tensors'), {
  ...quiet, onEpoch: (m) => { if (m.epoch === 1 || m.epoch === 20) counts.push(tf.memory().numTensors); },
});
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ maxRssMB, tensors: counts }));
