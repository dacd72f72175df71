/**
 * A few training steps of each model family agree between the cpu backend (TF.js's reference
 * kernels) and wasm (XNNPACK plus the training kernels glonet adds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel } from '../src/models/index.js';
import { TfjsStepper } from '../src/engines/tfjs.js';
import { loadImageDataset } from '../src/data/images.js';
import { familyDefaults } from '../src/models/index.js';

const mnist = loadImageDataset('mnist', { subset: 100, seed: 1 });

async function losses(backend: 'cpu' | 'wasm', model: string, arch: string, depth: number, width: number, weights: Float32Array[] | null): Promise<{ losses: number[]; weights: Float32Array[] }> {
  await initBackend(backend);
  const ds = { inputShape: mnist.inputShape, outputs: 10, task: 'classification' as const };
  const d = familyDefaults(model as 'mlp');
  const built = buildModel({ model, arch, depth, width, l2: d.l2, seed: 5 }, ds);
  if (weights) built.model.setWeights(weights.map((w, i) => tf.tensor(w, built.model.getWeights()[i].shape)));
  const initial = built.model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
  const stepper = new TfjsStepper(built.model, { task: 'classification', outputs: 10, inputShape: mnist.inputShape, optimizer: d.optimizer, lr: model === 'resnet20' ? 0.01 : d.lr, momentum: d.momentum, l2: d.l2 });
  // TF.js's cpu conv filter gradient is slow (seconds per image at 28x28): small batches for CNNs.
  const ROWS = model === 'resnet20' ? 2 : 8;
  const steps = model === 'resnet20' ? 2 : 3;
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    out.push(stepper.step(mnist.xTrain.subarray(s * ROWS * 784, (s + 1) * ROWS * 784), mnist.yTrain.subarray(s * ROWS, (s + 1) * ROWS), ROWS));
  }
  stepper.dispose();
  built.model.dispose();
  return { losses: out, weights: initial };
}

for (const [model, arch, depth, width] of [['mlp', 'glonet', 6, 16], ['mlp', 'resnetv2', 6, 16], ['resnet20', 'glonet', 20, 16], ['resnet20', 'resnetv2', 20, 16], ['vit', 'glonet', 2, 32], ['vit', 'plain', 2, 32]] as const) {
  test(`${model}/${arch}: training steps agree on cpu and wasm within 1e-4`, async () => {
    const cpu = await losses('cpu', model, arch, depth, width, null);
    const wasm = await losses('wasm', model, arch, depth, width, cpu.weights);
    cpu.losses.forEach((l, i) => {
      assert.ok(Number.isFinite(l));
      assert.ok(Math.abs(l - wasm.losses[i]) <= 1e-4 * Math.max(1, Math.abs(l)), `step ${i + 1}: cpu ${l} vs wasm ${wasm.losses[i]}`);
    });
  });
}
