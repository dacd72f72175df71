/**
 * The BN-free GloNet options (src/layers/normfree.ts, issue 24) and glonet-bn, in TF.js: Scaled
 * Weight Standardization checked against the definition, GloNet-ResNet20's output with block
 * scales and fixed centers against an independent computation, the centers fitted on training
 * images, parameter counts by hand, one-line errors for options where they do not apply, and
 * models that save, load, analyze and truncate; an MLP GloNet with block scales through
 * runTraining on the fused engine. (The fused engines' gradients and trajectories with these
 * options: fused-cnn.test.ts, fused-mlp.test.ts, fused-block-mlp.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { WSConv2D, WS_RELU_GAMMA, WS_EPSILON } from '../src/layers/normfree.js';
import { buildResNet20, buildResNetOfDepth, CENTER_IMAGES, fitBlockCenters, resnet20BlockLayers } from '../src/models/resnet20.js';
import { buildMlp, mlpBlockLayers } from '../src/models/mlp.js';
import { buildModel, ModelConfigError } from '../src/models/index.js';
import { loadModel, saveModel } from '../src/model-io.js';
import { truncateModel } from '../src/analysis/truncate.js';
import { loadImageDataset } from '../src/data/images.js';
import { ROOT, relErr, runCli, runNode, savedModelTestMse, tmpDir } from './helpers.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import type { RunConfig } from '../src/vocabulary.js';

await initBackend('cpu');

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 2 * (s / 2 ** 32) - 1;
  });
}

const trainable = (m: tf.LayersModel) => m.trainableWeights.reduce((a, w) => a + (w.shape as number[]).reduce((x, y) => x * y, 1), 0);
const frozen = (m: tf.LayersModel) => m.nonTrainableWeights.reduce((a, w) => a + (w.shape as number[]).reduce((x, y) => x * y, 1), 0);

test('WSConv2D: the standardized kernel is gamma * gain * (K - mean) / sqrt(N var + eps) per output channel, and the conv uses it', () => {
  const layer = new WSConv2D({ filters: 5, kernelSize: 3, gamma: WS_RELU_GAMMA, useBias: true, activation: 'relu', seed: 4 });
  const x = tf.tensor4d(values(2 * 6 * 6 * 3, 1), [2, 6, 6, 3]);
  layer.apply(x);
  const gain = values(5, 2).map((v) => 1 + 0.3 * v);
  const bias = values(5, 3).map((v) => 0.1 * v);
  const [kernel] = layer.getWeights();
  layer.setWeights([kernel, tf.tensor1d(bias), tf.tensor1d(gain)]);
  const K = kernel.dataSync() as Float32Array;
  const N = 27;
  const expected = new Float32Array(K.length);
  for (let c = 0; c < 5; c++) {
    let mean = 0;
    for (let i = 0; i < N; i++) mean += K[i * 5 + c] / N;
    let sq = 0;
    for (let i = 0; i < N; i++) sq += (K[i * 5 + c] - mean) ** 2;
    const r = 1 / Math.sqrt(sq + WS_EPSILON);
    for (let i = 0; i < N; i++) expected[i * 5 + c] = WS_RELU_GAMMA * gain[c] * (K[i * 5 + c] - mean) * r;
  }
  const khat = layer.standardizedKernel();
  assert.ok(relErr(Array.from(khat.dataSync()), Array.from(expected)) < 1e-5);
  // Every output channel's standardized kernel has mean 0 and norm gamma * gain (up to epsilon).
  for (let c = 0; c < 5; c++) {
    let s = 0;
    let q = 0;
    for (let i = 0; i < N; i++) {
      s += expected[i * 5 + c];
      q += expected[i * 5 + c] ** 2;
    }
    assert.ok(Math.abs(s) < 1e-5, `channel ${c} mean`);
    assert.ok(Math.abs(Math.sqrt(q) - WS_RELU_GAMMA * gain[c]) < 1e-3 * WS_RELU_GAMMA * gain[c], `channel ${c} norm`);
  }
  const y = layer.apply(x) as tf.Tensor;
  const ref = tf.relu(tf.add(tf.conv2d(x, khat, 1, 'same'), tf.tensor1d(bias)));
  assert.ok(relErr(Array.from(y.dataSync()), Array.from(ref.dataSync())) < 1e-6);
  // The output does not depend on the raw kernel's scale (the layer's point), up to epsilon
  // (1e-4 against N var = 2 here).
  layer.setWeights([tf.mul(kernel, 7), tf.tensor1d(bias), tf.tensor1d(gain)]);
  assert.ok(relErr(Array.from((layer.apply(x) as tf.Tensor).dataSync()), Array.from(ref.dataSync())) < 1e-4);
});

test('GloNet-ResNet20 with block scales and centers: output = head(sum_k scale_k * (pool_k - center_k)), computed independently', () => {
  const m = buildResNetOfDepth({ arch: 'glonet', depth: 8, inputShape: [12, 12, 2], outputs: 4, seed: 3, blockScale: '1/L', centerBlocks: true });
  const blocks = resnet20BlockLayers('glonet', 8, { blockScale: '1/L', centerBlocks: true });
  assert.deepEqual(blocks.slice(0, 2), ['block_1_scale', 'block_2_scale']);
  assert.deepEqual(m.getLayer('glonet').inboundNodes[0].inboundLayers.map((l) => l.name), blocks);
  // Scales start at 1/L; give scales and centers other values.
  assert.equal(m.getLayer('block_3_scale').getWeights()[0].dataSync()[0], Math.fround(1 / 6));
  const scales = values(6, 8).map((v) => 0.5 + v);
  const centers = blocks.map((_, k) => values(m.getLayer(`block_${k + 1}_center`).getWeights()[0].shape[0], 20 + k).map((v) => 0.2 * v));
  blocks.forEach((_, k) => {
    m.getLayer(`block_${k + 1}_scale`).setWeights([tf.tensor1d([scales[k]])]);
    m.getLayer(`block_${k + 1}_center`).setWeights([tf.tensor1d(centers[k])]);
  });
  const x = tf.tensor4d(values(3 * 12 * 12 * 2, 9).map((v) => v + 1), [3, 12, 12, 2]);
  const convs = blocks.map((_, k) => m.getLayer(`block_${k + 1}`).output as tf.SymbolicTensor);
  const maps = (tf.model({ inputs: m.inputs, outputs: convs }).predict(x) as tf.Tensor[]).map((t) => t.arraySync() as number[][][][]);
  const sum = Array.from({ length: 3 }, () => new Array(64).fill(0));
  maps.forEach((map, k) => {
    for (let b = 0; b < 3; b++) {
      const hw = map[b].length * map[b][0].length;
      const pooled = new Array(map[b][0][0].length).fill(0);
      map[b].forEach((row) => row.forEach((pix) => pix.forEach((v, c) => (pooled[c] += v / hw))));
      pooled.forEach((p, c) => (sum[b][c] += scales[k] * (p - centers[k][c])));
    }
  });
  const [hk, hb] = m.getLayer('head').getWeights().map((w) => w.arraySync()) as [number[][], number[]];
  const expected = sum.flatMap((r) => hb.map((bj, j) => r.reduce((s, v, i) => s + v * hk[i][j], bj)));
  assert.ok(relErr(Array.from((m.predict(x) as tf.Tensor).dataSync()), expected) < 1e-4);
});

test('fitBlockCenters: each center is its block\'s mean pooled output over the first training images', () => {
  const ds = loadImageDataset('mnist', { subset: 60 });
  const m = buildResNetOfDepth({ arch: 'glonet', depth: 8, inputShape: ds.inputShape, outputs: 10, seed: 2, centerBlocks: true });
  fitBlockCenters(m, { depth: 8, inputShape: ds.inputShape }, ds.xTrain, ds.nTrain);
  assert.ok(ds.nTrain < CENTER_IMAGES, 'all the training images are used here');
  // The centered outputs (block_k_center) average to zero over those images.
  const centered = tf.model({ inputs: m.inputs, outputs: Array.from({ length: 6 }, (_, k) => m.getLayer(`block_${k + 1}_center`).output as tf.SymbolicTensor) });
  const outs = centered.predict(tf.tensor(ds.xTrain, [ds.nTrain, ...ds.inputShape])) as tf.Tensor[];
  outs.forEach((o, k) => {
    const mean = o.mean(0).dataSync();
    const scale = Math.max(...Array.from(m.getLayer(`block_${k + 1}_center`).getWeights()[0].dataSync(), Math.abs));
    assert.ok(scale > 0, `block ${k + 1}: the center is not zero`);
    for (const v of mean) assert.ok(Math.abs(v) < 1e-5 * (1 + scale), `block ${k + 1}: centered mean ${v}`);
  });
});

test('parameter counts: glonet-bn (ResNet20 and MLP) and the norm-free options, by hand', () => {
  // ResNet20 convs without biases (as the BN baselines): stem 432, stages 13,824 + 50,688 + 202,752;
  // head 650; one BN per block on its input, 6 x 16 + (16 + 5 x 32) + (32 + 5 x 64) = 624 channels.
  const bn = buildResNet20({ arch: 'glonet-bn', depth: 20, inputShape: [32, 32, 3], outputs: 10 });
  assert.equal(trainable(bn), 267696 + 650 + 2 * 624);
  assert.equal(frozen(bn), 2 * 624);
  assert.equal(bn.getLayer('block_7_bn').getWeights()[0].shape[0], 16, 'block 7 normalizes its 16-channel input');
  assert.deepEqual(resnet20BlockLayers('glonet-bn', 20).slice(0, 2), ['block_1_pool', 'block_2_pool']);
  // glonet: 269,018 (models-images.test.ts); weight standardization adds a gain per output channel
  // of every conv (16 + 672), the scales one per block, the centers 672 fixed values.
  const all = buildResNet20({ arch: 'glonet', depth: 20, inputShape: [32, 32, 3], outputs: 10, weightStd: true, blockScale: '1', centerBlocks: true });
  assert.equal(trainable(all), 269018 + 16 + 672 + 18);
  assert.equal(frozen(all), 672);
  // MLP glonet-bn: glonet's weights plus a BN per block (2 trainable and 2 moving values per unit).
  const mlp = buildMlp({ arch: 'glonet-bn', depth: 10, inputShape: [14], outputs: 1 });
  assert.equal(trainable(mlp), 14 * 16 + 16 + 10 * (16 * 16 + 16) + 17 + 10 * 2 * 16);
  assert.equal(frozen(mlp), 10 * 2 * 16);
  assert.deepEqual(mlpBlockLayers('glonet-bn', 3), ['block_1', 'block_2', 'block_3']);
  assert.equal(buildMlp({ arch: 'glonet-bn', depth: 3, inputShape: [14], outputs: 1 }).getLayer('block_2').getClassName(), 'Activation');
});

test('the norm-free options apply to --arch glonet of the families that have them: one-line errors naming the option', () => {
  const img = { inputShape: [28, 28, 1], outputs: 10, task: 'classification' as const };
  const tab = { inputShape: [14], outputs: 1, task: 'regression' as const };
  const base = { depth: 20, width: 16, l2: 0, seed: 0 };
  const refused = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof ModelConfigError && re.test(e.message) && !e.message.includes('\n'));
  refused(() => buildModel({ ...base, model: 'resnet20', arch: 'resnetv2', normFree: { weightStd: true } }, img), /^--weight-std: applies to --arch glonet .*not resnetv2$/);
  refused(() => buildModel({ ...base, model: 'resnet20', arch: 'glonet-bn', normFree: { blockScale: '1' } }, img), /^--block-scale 1: applies to --arch glonet/);
  refused(() => buildModel({ ...base, model: 'mlp', arch: 'glonet', depth: 4, normFree: { centerBlocks: true } }, tab), /^--center-blocks: not available for --model mlp$/);
  refused(() => buildModel({ ...base, model: 'vit', arch: 'glonet', depth: 2, normFree: { weightStd: true } }, img), /^--weight-std: not available for --model vit$/);
  // 'none' and false are the paper's: nothing recorded.
  const plain = buildModel({ ...base, model: 'resnet20', arch: 'glonet', normFree: { blockScale: 'none', weightStd: false } }, img);
  assert.equal(plain.meta.normFree, undefined);
  const on = buildModel({ ...base, model: 'resnet20', arch: 'glonet', normFree: { blockScale: '1', weightStd: true } }, img);
  assert.deepEqual(on.meta.normFree, { blockScale: '1', weightStd: true });
});

test('glonet train: the options reach the run config; misuse is a one-line error with exit code 2', () => {
  const bad = runCli(['train', '--model', 'resnet20', '--arch', 'vanilla', '--depth', '20', '--weight-std', '--out', tmpDir()]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^glonet: --weight-std: applies to --arch glonet \(the GloNet without normalization\), not vanilla\n$/);
  const choice = runCli(['train', '--model', 'resnet20', '--depth', '20', '--block-scale', '2', '--out', tmpDir()]);
  assert.equal(choice.code, 2);
  assert.match(choice.stderr, /--block-scale/);
  const help = runCli(['train', '--help']);
  for (const flag of ['--block-scale', '--weight-std', '--no-weight-std', '--center-blocks', '--no-center-blocks']) assert.ok(help.stdout.includes(flag), flag);
});

test('a GloNet-ResNet20 with every option saves, loads (fresh process), predicts the same, and truncates', async () => {
  const m = buildResNetOfDepth({ arch: 'glonet', depth: 8, inputShape: [28, 28, 1], outputs: 10, seed: 6, weightStd: true, blockScale: '1', centerBlocks: true });
  const meta = {
    model: 'resnet20', arch: 'glonet', depth: 8, task: 'classification' as const, inputShape: [28, 28, 1], outputs: 10,
    blockLayers: resnet20BlockLayers('glonet', 8, { weightStd: true, blockScale: '1', centerBlocks: true }), normFree: { weightStd: true, blockScale: '1' as const, centerBlocks: true },
  };
  m.getLayer('block_2_center').setWeights([tf.tensor1d(values(16, 4))]);
  const dir = path.join(tmpDir(), 'model');
  await saveModel(m, dir, meta);
  const xv = values(2 * 784, 5).map((v) => v + 1);
  const x = tf.tensor4d(xv, [2, 28, 28, 1]);
  const expected = Array.from((m.predict(x) as tf.Tensor).dataSync());
  // A fresh process that imports only the model loader knows the layers.
  const fresh = JSON.parse(runNode(`
    import * as tf from '@tensorflow/tfjs';
    import { loadModel } from ${JSON.stringify(path.join(ROOT, 'dist', 'src', 'model-io.js'))};
    const { model } = await loadModel(${JSON.stringify(dir)});
    const x = tf.tensor4d(${JSON.stringify(Array.from(xv))}, [2, 28, 28, 1]);
    console.log(JSON.stringify(Array.from(model.predict(x).dataSync())));
  `)) as number[];
  assert.ok(relErr(fresh, expected) < 1e-6);
  const loaded = await loadModel(dir);
  assert.deepEqual(loaded.meta.normFree, meta.normFree);
  assert.ok(relErr(Array.from((loaded.model.predict(x) as tf.Tensor).dataSync()), expected) < 1e-6);
  // A truncated model sums the first k (scaled, centered) terms.
  const t = truncateModel(loaded.model, loaded.meta, 2);
  assert.deepEqual(t.meta.blockLayers, ['block_1_scale', 'block_2_scale']);
  assert.deepEqual((t.model.predict(x) as tf.Tensor).shape, [2, 10]);
});

test('MLP GloNet with block scales: runTraining picks the fused engine; the saved model reproduces its test error in TF.js; resume is exact', async () => {
  const cfg = (over: Partial<RunConfig>): RunConfig => ({
    model: 'mlp', arch: 'glonet', dataset: 'sgemm', depth: 6, ...familyDefaults('mlp', 'glonet'), epochs: 2, batchSize: 256, seed: 4,
    subset: 2000, augment: false, backend: 'cpu', fast: 'auto', normFree: { blockScale: '1/L' }, ...over,
  });
  const quiet = { progress: createProgress({ quiet: true }), log: () => {} };
  const dir = tmpDir();
  const r = await runTraining(cfg({}), dir, quiet);
  assert.match(r.metrics.engine ?? '', /^fused-(native|js)$/);
  assert.deepEqual(r.meta.blockLayers.slice(0, 2), ['block_1_scale', 'block_2_scale']);
  // The scales moved from 1/L (written back to the model with the weights).
  const scales = r.meta.blockLayers.map((n) => r.model.getLayer(n).getWeights()[0].dataSync()[0]);
  assert.ok(scales.some((a) => Math.abs(a - 1 / 6) > 1e-4), `scales ${scales.join(', ')}`);
  const mse = await savedModelTestMse(dir, r);
  const last = r.metrics.epochs[1].testError;
  assert.ok(Math.abs(mse - last) <= 1e-5 * last, `TF.js on the saved model: ${mse}, the engine: ${last}`);
  const part = tmpDir();
  await runTraining(cfg({ epochs: 1 }), part, quiet);
  const resumed = await runTraining(cfg({}), part, { ...quiet, resume: true });
  const strip = (m: typeof r.metrics) => m.epochs.map(({ seconds: _s, ...rest }) => rest);
  assert.deepEqual(strip(resumed.metrics), strip(r.metrics));
});
