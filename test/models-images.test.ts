import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildResNet20, resnet20BlockLayers, RESNET20_ARCHS, type ResNet20Arch } from '../src/models/resnet20.js';
import { buildViT, vitBlockLayers } from '../src/models/vit.js';
import { buildModel, ModelConfigError } from '../src/models/index.js';
import { MultiHeadSelfAttention } from '../src/layers/index.js';
import { loadModel, saveModel } from '../src/model-io.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { ROOT, relErr, runNode, tmpDir } from './helpers.js';
import type { RunConfig } from '../src/vocabulary.js';

await initBackend('cpu');

const quiet = { progress: createProgress({ quiet: true }), log: () => {}, report: false };
// The shared folder sits beside the repository (on developer machines and in CI).
const PEER = process.env.GLONET_PYTORCH_PEER ?? path.join(ROOT, '..', 'shared', 'peers', 'pytorch_peer.py');

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const trainableCount = (m: tf.LayersModel) => m.trainableWeights.reduce((a, w) => a + size(w.shape as number[]), 0);
const nonTrainableCount = (m: tf.LayersModel) => m.nonTrainableWeights.reduce((a, w) => a + size(w.shape as number[]), 0);

/** Deterministic pseudo-random values in [0, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

/** Dense layer applied in plain JavaScript from the layer's weights. */
function denseJs(rows: number[][], layer: tf.layers.Layer): number[][] {
  const [k, b] = layer.getWeights().map((w) => w.arraySync()) as [number[][], number[]];
  return rows.map((r) => b.map((bj, j) => r.reduce((s, v, i) => s + v * k[i][j], bj)));
}

/**
 * Parameter counts of the PyTorch peer's CNN class (the exact architecture mirrored), for each
 * arch and two-conv blocks per stage; null when torch is missing.
 */
function peerCnnParams(blocks: number[], inChannels: number): Record<string, number> | null {
  if (!fs.existsSync(PEER)) return null;
  const script = [
    'import importlib.util, json',
    `spec = importlib.util.spec_from_file_location("peer", ${JSON.stringify(PEER)})`,
    'peer = importlib.util.module_from_spec(spec); spec.loader.exec_module(peer)',
    'out = {}',
    // glonet-bn is glonet's: the peer has no class for it (normfree.test.ts counts it by hand).
    `for arch in ${JSON.stringify(RESNET20_ARCHS.filter((a) => a !== 'glonet-bn'))}:`,
    `    for n in ${JSON.stringify(blocks)}:`,
    `        out[f"{arch}/{n}"] = sum(p.numel() for p in peer.CNN(arch, n, 10, in_ch=${inChannels}).parameters())`,
    'print(json.dumps(out))',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

test('ResNet20 parameter counts match the PyTorch peer, BN moving statistics accounted for', (t) => {
  // Hand count, depth 20, 32x32x3, 10 classes (conv 3x3 kernels: 9 * in * out):
  //   glonet: stem 3*9*16 = 432 (no bias, as in the peer); convs with biases:
  //     stage 1: 6 * (16*9*16 + 16) = 13,920; stage 2: (16*9*32 + 32) + 5 * (32*9*32 + 32) = 50,880;
  //     stage 3: (32*9*64 + 64) + 5 * (64*9*64 + 64) = 203,136; head 64*10 + 10 = 650  -> 269,018.
  //     The peer also builds two 1x1 shortcut convs (16*32 + 32*64 = 2,560) that glonet and
  //     vanilla never use; PyTorch counts them, this model does not create them -> peer 271,578.
  //   resnetv2: convs without biases 432 + 13,824 + 50,688 + 202,752 = 267,696; shortcuts 2,560;
  //     head 650; BN gamma and beta on 6*16 + (16 + 5*32) + (32 + 5*64) = 624 block channels plus
  //     the final BN's 64 = 688 channels = 1,376 -> 272,282. TF.js countParams() also counts BN's
  //     moving mean and variance (+1,376).
  const unusedShortcuts = 16 * 32 + 32 * 64;
  const hand: Record<string, number> = { 'glonet/3': 271578, 'resnetv2/3': 272282 };
  const peer = peerCnnParams([3, 5], 3);
  if (!peer) t.diagnostic('torch or the peer is unavailable: comparing with the hand counts only');
  const expected = peer ?? hand;
  if (peer) for (const k of Object.keys(hand)) assert.equal(peer[k], hand[k], `peer ${k}`);
  for (const [key, peerParams] of Object.entries(expected)) {
    const [arch, n] = key.split('/') as [ResNet20Arch, string];
    const depth = 6 * Number(n) + 2;
    const m = buildResNet20({ arch, depth, inputShape: [32, 32, 3], outputs: 10 });
    const unused = arch === 'glonet' || arch.startsWith('vanilla') ? unusedShortcuts : 0;
    assert.equal(trainableCount(m), peerParams - unused, `${arch} depth ${depth}: trainable parameters`);
    const bnChannels = arch === 'vanilla' || arch === 'resnetv2' ? 624 + 64 + (Number(n) - 3) * 2 * (16 + 32 + 64) : 0;
    assert.equal(nonTrainableCount(m), 2 * bnChannels, `${arch} depth ${depth}: BN moving mean and variance`);
    assert.equal(m.countParams(), peerParams - unused + 2 * bnChannels);
    assert.equal(resnet20BlockLayers(arch, depth).length, arch === 'glonet' ? 6 * Number(n) : 3 * Number(n));
    for (const name of resnet20BlockLayers(arch, depth)) assert.ok(m.getLayer(name), `${arch}: block layer ${name}`);
  }
  // The MNIST shape: 1 input channel changes only the stem (16*9 = 144 weights).
  const peer1 = peerCnnParams([3], 1);
  const m1 = buildResNet20({ arch: 'glonet', depth: 20, inputShape: [28, 28, 1], outputs: 10 });
  assert.equal(trainableCount(m1), (peer1?.['glonet/3'] ?? 271578 - 288) - unusedShortcuts);
});

test('ResNet20 shapes on 28x28x1 (28 -> 14 -> 7) and 32x32x3 (32 -> 16 -> 8)', () => {
  for (const [shape, sides] of [[[28, 28, 1], [28, 14, 7]], [[32, 32, 3], [32, 16, 8]]] as const) {
    const g = buildResNet20({ arch: 'glonet', depth: 20, inputShape: [...shape], outputs: 10 });
    assert.deepEqual(g.outputs[0].shape, [null, 10]);
    assert.deepEqual(g.getLayer('block_6').outputShape, [null, sides[0], sides[0], 16]);
    assert.deepEqual(g.getLayer('block_7').outputShape, [null, sides[1], sides[1], 32]);
    assert.deepEqual(g.getLayer('block_18').outputShape, [null, sides[2], sides[2], 64]);
    assert.deepEqual(g.getLayer('block_7_pool').outputShape, [null, 32]);
    assert.deepEqual(g.getLayer('glonet').outputShape, [null, 64]);
    const r = buildResNet20({ arch: 'resnetv2', depth: 20, inputShape: [...shape], outputs: 10 });
    assert.deepEqual(r.getLayer('block_4').outputShape, [null, sides[1], sides[1], 32]);
    assert.deepEqual(r.getLayer('block_9').outputShape, [null, sides[2], sides[2], 64]);
    assert.ok(r.getLayer('block_4_shortcut') && r.getLayer('block_7_shortcut'));
    assert.throws(() => r.getLayer('block_2_shortcut'));
  }
});

test('invalid depths and archs are ModelConfigErrors that list the valid values', () => {
  const img = { inputShape: [28, 28, 1], outputs: 10, task: 'classification' as const };
  for (const depth of [18, 21, 0, 200]) {
    assert.throws(() => buildResNet20({ arch: 'glonet', depth, inputShape: [28, 28, 1], outputs: 10 }),
      (e: Error) => e instanceof ModelConfigError && /--depth/.test(e.message) && /20, 32, 44, 56, 110/.test(e.message) && e.message.includes(String(depth)));
  }
  assert.throws(() => buildModel({ model: 'resnet20', arch: 'resnet', depth: 20, width: 16, l2: 0, seed: 0 }, img),
    (e: Error) => e instanceof ModelConfigError && /glonet, glonet-bn, resnetv2, resnetv2-nobn, vanilla, vanilla-nobn/.test(e.message) && /'resnet'/.test(e.message));
  assert.throws(() => buildModel({ model: 'resnet20', arch: 'glonet', depth: 20, width: 16, l2: 0, seed: 0 }, { inputShape: [14], outputs: 1, task: 'regression' }),
    (e: Error) => e instanceof ModelConfigError && /images/.test(e.message));
  assert.throws(() => buildModel({ model: 'vit', arch: 'vanilla', depth: 4, width: 128, l2: 0, seed: 0 }, img),
    (e: Error) => e instanceof ModelConfigError && /glonet, plain/.test(e.message) && /'vanilla'/.test(e.message));
  assert.throws(() => buildViT({ arch: 'plain', depth: 0, inputShape: [28, 28, 1], outputs: 10 }), (e: Error) => e instanceof ModelConfigError && /--depth/.test(e.message));
  assert.throws(() => buildViT({ arch: 'plain', depth: 2, width: 30, inputShape: [28, 28, 1], outputs: 10 }), (e: Error) => e instanceof ModelConfigError && /divisible by its 4 attention heads/.test(e.message));
  assert.throws(() => buildViT({ arch: 'plain', depth: 2, inputShape: [30, 30, 1], outputs: 10 }), (e: Error) => e instanceof ModelConfigError && /4x4 patches/.test(e.message));
  // Both families are registered.
  assert.equal(buildModel({ model: 'resnet20', arch: 'vanilla', depth: 20, width: 16, l2: 0, seed: 0 }, img).meta.blockLayers.length, 9);
  assert.deepEqual(buildModel({ model: 'vit', arch: 'glonet', depth: 2, width: 16, l2: 0, seed: 0 }, img).meta.blockLayers, ['encoder_1_cls', 'encoder_2_cls']);
});

test('GloNet-ResNet20 output = head(sum of the zero-padded pooled block outputs), computed independently', () => {
  const m = buildResNet20({ arch: 'glonet', depth: 20, inputShape: [32, 32, 3], outputs: 10, seed: 11 });
  // The GloNet layer reads exactly the pooled block outputs, in order.
  const blockLayers = resnet20BlockLayers('glonet', 20);
  const inbound = m.getLayer('glonet').inboundNodes[0].inboundLayers.map((l) => l.name);
  assert.deepEqual(inbound, blockLayers);
  // A separate model from the same layers exposes the raw conv block outputs; pooling, padding,
  // summing and the head are then done in plain JavaScript.
  const convs = blockLayers.map((n) => n.replace(/_pool$/, ''));
  const probe = tf.model({ inputs: m.inputs, outputs: convs.map((n) => m.getLayer(n).output as tf.SymbolicTensor) });
  const n = 2;
  const x = tf.tensor(values(n * 32 * 32 * 3, 5), [n, 32, 32, 3]);
  const maps = (probe.predict(x) as tf.Tensor[]).map((t) => t.arraySync() as number[][][][]);
  const sum = Array.from({ length: n }, () => new Array(64).fill(0));
  for (const map of maps) {
    for (let b = 0; b < n; b++) {
      const hw = map[b].length * map[b][0].length;
      map[b].forEach((row) => row.forEach((pix) => pix.forEach((v, c) => (sum[b][c] += v / hw))));
    }
  }
  const expected = denseJs(sum, m.getLayer('head')).flat();
  const got = Array.from((m.predict(x) as tf.Tensor).dataSync());
  assert.ok(relErr(got, expected) < 1e-4, `${got} vs ${expected}`);
});

test('multi-head self-attention matches a plain JavaScript computation', () => {
  const [batch, tokens, width, heads] = [2, 5, 8, 2];
  const layer = new MultiHeadSelfAttention({ heads, seed: 3 });
  const xv = values(batch * tokens * width, 9).map((v) => 2 * v - 1);
  const x = tf.tensor(xv, [batch, tokens, width]);
  // Non-zero biases so they are checked too.
  layer.apply(x);
  layer.setWeights(layer.getWeights().map((w, i) => (w.rank === 1 ? tf.tensor(values(width, 100 + i).map((v) => v - 0.5)) : w)));
  const W = Object.fromEntries(layer.weights.map((w) => [w.originalName.split('/').pop()!, w.read().arraySync()])) as Record<string, number[][] & number[]>;
  const got = Array.from((layer.apply(x) as tf.Tensor).dataSync());
  const X = x.arraySync() as number[][][];
  const proj = (rows: number[][], p: string) => denseJsWeights(rows, W[`${p}_kernel`] as number[][], W[`${p}_bias`] as number[]);
  const dh = width / heads;
  const expected: number[] = [];
  for (const seq of X) {
    const [q, k, v] = ['q', 'k', 'v'].map((p) => proj(seq, p));
    const merged = seq.map(() => new Array(width).fill(0));
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tokens; i++) {
        const s = Array.from({ length: tokens }, (_, j) => {
          let d = 0;
          for (let c = h * dh; c < (h + 1) * dh; c++) d += q[i][c] * k[j][c];
          return d / Math.sqrt(dh);
        });
        const mx = Math.max(...s);
        const e = s.map((z) => Math.exp(z - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < tokens; j++) for (let c = h * dh; c < (h + 1) * dh; c++) merged[i][c] += (e[j] / z) * v[j][c];
      }
    }
    expected.push(...proj(merged, 'o').flat());
  }
  assert.ok(relErr(got, expected) < 1e-5, `${got.slice(0, 4)} vs ${expected.slice(0, 4)}`);
});

function denseJsWeights(rows: number[][], k: number[][], b: number[]): number[][] {
  return rows.map((r) => b.map((bj, j) => r.reduce((s, v, i) => s + v * k[i][j], bj)));
}

test('ViT shapes; GloNet-ViT head reads the sum of the encoders\' class-token rows; plain reads the last', () => {
  const g = buildViT({ arch: 'glonet', depth: 3, width: 16, inputShape: [28, 28, 1], outputs: 10, seed: 4 });
  assert.deepEqual(g.getLayer('patches').outputShape, [null, 49, 16]);
  assert.deepEqual(g.getLayer('class_token').outputShape, [null, 50, 16]);
  assert.deepEqual(g.getLayer('encoder_3').outputShape, [null, 50, 16]);
  assert.deepEqual(g.getLayer('encoder_3_cls').outputShape, [null, 16]);
  assert.deepEqual(g.getLayer('glonet').outputShape, [null, 16]);
  assert.deepEqual(g.outputs[0].shape, [null, 10]);
  assert.equal(g.getLayer('encoder_1_ffn1').getConfig().units, 32, 'feed-forward width defaults to 2 x width');
  const c = buildViT({ arch: 'plain', depth: 1, width: 16, inputShape: [32, 32, 3], outputs: 10, mlpDim: 20 });
  assert.deepEqual(c.getLayer('patches').outputShape, [null, 64, 48]);
  assert.deepEqual(c.getLayer('position_embed').outputShape, [null, 65, 16]);
  assert.equal(c.getLayer('encoder_1_ffn1').getConfig().units, 20);

  // Patches are 4x4 tiles in row-major order: token 8 is the tile at row 1, column 1.
  const img = tf.tensor(values(28 * 28, 21), [1, 28, 28, 1]);
  const patches = (tf.model({ inputs: g.inputs, outputs: g.getLayer('patches').output as tf.SymbolicTensor }).predict(img) as tf.Tensor).arraySync() as number[][][];
  const pix = img.arraySync() as number[][][][];
  const tile = [];
  for (let r = 4; r < 8; r++) for (let col = 4; col < 8; col++) tile.push(pix[0][r][col][0]);
  assert.deepEqual(patches[0][8], tile);

  const n = 3;
  const x = tf.tensor(values(n * 28 * 28, 8), [n, 28, 28, 1]);
  for (const [model, arch] of [[g, 'glonet'], [buildViT({ arch: 'plain', depth: 3, width: 16, inputShape: [28, 28, 1], outputs: 10, seed: 4 }), 'plain']] as const) {
    const seqs = (tf.model({ inputs: model.inputs, outputs: [1, 2, 3].map((l) => model.getLayer(`encoder_${l}`).output as tf.SymbolicTensor) })
      .predict(x) as tf.Tensor[]).map((t) => t.arraySync() as number[][][]);
    const headIn = Array.from({ length: n }, (_, b) => arch === 'glonet'
      ? seqs.reduce((acc, s) => acc.map((v, j) => v + s[b][0][j]), new Array(16).fill(0))
      : seqs[2][b][0]);
    const expected = denseJs(headIn, model.getLayer('head')).flat();
    const got = Array.from((model.predict(x) as tf.Tensor).dataSync());
    assert.ok(relErr(got, expected) < 1e-5, `${arch}: ${got.slice(0, 3)} vs ${expected.slice(0, 3)}`);
  }
  assert.deepEqual(vitBlockLayers('glonet', 2), ['encoder_1_cls', 'encoder_2_cls']);
  assert.deepEqual(vitBlockLayers('plain', 2), ['encoder_1', 'encoder_2']);
  // Same seed, same weights; another seed, other weights.
  const w = (m: tf.LayersModel) => m.getWeights().map((t) => Array.from(t.dataSync()));
  const again = buildViT({ arch: 'glonet', depth: 3, width: 16, inputShape: [28, 28, 1], outputs: 10, seed: 4 });
  assert.deepEqual(w(again), w(g));
  assert.notDeepEqual(w(buildViT({ arch: 'glonet', depth: 3, width: 16, inputShape: [28, 28, 1], outputs: 10, seed: 5 })), w(g));
});

test('saved ViTs and GloNet-ResNet20s load in a fresh process and predict identically', async () => {
  const root = tmpDir();
  const models = [
    { dir: path.join(root, 'vit'), model: buildViT({ arch: 'glonet', depth: 2, width: 16, inputShape: [28, 28, 1], outputs: 10, seed: 2, l2: 1e-4 }), meta: { model: 'vit', arch: 'glonet', depth: 2, blockLayers: vitBlockLayers('glonet', 2) } },
    { dir: path.join(root, 'vit-plain'), model: buildViT({ arch: 'plain', depth: 1, width: 8, heads: 2, inputShape: [28, 28, 1], outputs: 10, seed: 3 }), meta: { model: 'vit', arch: 'plain', depth: 1, blockLayers: vitBlockLayers('plain', 1) } },
    { dir: path.join(root, 'resnet'), model: buildResNet20({ arch: 'glonet', depth: 20, inputShape: [28, 28, 1], outputs: 10, seed: 2 }), meta: { model: 'resnet20', arch: 'glonet', depth: 20, blockLayers: resnet20BlockLayers('glonet', 20) } },
  ];
  const xv = values(2 * 28 * 28, 13);
  const expected: number[][] = [];
  for (const { dir, model, meta } of models) {
    await saveModel(model, dir, { ...meta, task: 'classification', inputShape: [28, 28, 1], outputs: 10 });
    expected.push(Array.from(tf.tidy(() => (model.predict(tf.tensor(xv, [2, 28, 28, 1])) as tf.Tensor).dataSync())));
    const { model: same, meta: loadedMeta } = await loadModel(dir);
    assert.deepEqual(loadedMeta.blockLayers, meta.blockLayers);
    assert.deepEqual(Array.from(tf.tidy(() => (same.predict(tf.tensor(xv, [2, 28, 28, 1])) as tf.Tensor).dataSync())), expected.at(-1));
  }
  const out = runNode(`
    import * as tf from '@tensorflow/tfjs';
    import { fileSystem } from ${JSON.stringify(path.join(ROOT, 'dist/src/index.js'))};
    await tf.setBackend('cpu');
    const x = tf.tensor(${JSON.stringify(xv)}, [2, 28, 28, 1]);
    const out = [];
    for (const dir of ${JSON.stringify(models.map((m) => m.dir))}) {
      const m = await tf.loadLayersModel(fileSystem(dir));
      out.push(Array.from(m.predict(x).dataSync()));
    }
    console.log(JSON.stringify(out));
  `);
  assert.deepEqual(JSON.parse(out), expected);
});

function imageRun(over: Partial<RunConfig> & Pick<RunConfig, 'model' | 'arch' | 'depth'>): RunConfig {
  return { dataset: 'mnist', ...familyDefaults(over.model), epochs: 1, batchSize: 16, schedule: 'constant', seed: 1, subset: 100, augment: false, backend: 'cpu', fast: 'off', ...over };
}

test('runTraining trains a tiny ViT on cpu and writes a loadable model', async () => {
  const dir = tmpDir();
  // The family's defaults (Adam, l2 = 0: no regularization loss at all) with a larger lr.
  const r = await runTraining(imageRun({ model: 'vit', arch: 'glonet', depth: 1, width: 16, lr: 1e-3 }), dir, quiet);
  assert.equal(r.metrics.epochs.length, 1);
  assert.ok(Number.isFinite(r.metrics.epochs[0].trainLoss));
  assert.equal(r.metrics.params, r.model.countParams());
  const { meta } = await loadModel(path.join(dir, 'model'));
  assert.deepEqual(meta.blockLayers, ['encoder_1_cls']);
});

/** Whether conv gradients work on wasm (the kernels this package adds); the reason when not. */
async function wasmConvGradients(): Promise<string | null> {
  try {
    await initBackend('wasm');
  } catch (e) {
    return `the wasm backend does not load (${(e as Error).message})`;
  }
  try {
    const g = tf.tidy(() => {
      const x = tf.tensor(values(2 * 6 * 6 * 2, 1), [2, 6, 6, 2]);
      const w = tf.tensor(values(3 * 3 * 2 * 3, 2), [3, 3, 2, 3]);
      return Array.from(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same').sum())([x, w])[1].dataSync());
    });
    if (!g.every(Number.isFinite)) return 'conv2d filter gradients on wasm are not finite';
    return null;
  } catch (e) {
    return `conv2d gradients are not available on wasm yet (${(e as Error).message})`;
  }
}

// The real trainings below run on wasm: TF.js's cpu backend computes Conv2DBackpropFilter with a
// per-element TensorBuffer.get loop (~40x slower than its forward conv; a ResNet20 step on a batch
// of 32 MNIST digits takes minutes), and its small matmul/softmax kernels make a learning ViT run
// take minutes too.
test('GloNet-ResNet20 learns MNIST on wasm (needs conv gradients on wasm)', async (t: TestContext) => {
  const why = await wasmConvGradients();
  if (why) {
    await initBackend('cpu');
    t.skip(why);
    return;
  }
  const started = Date.now();
  // 800 training digits, 4 epochs of batch 16 (200 steps). Adam 1e-3 for this tiny budget: without
  // BN the GloNet-ResNet20 leaves the chance plateau late, at a seed-dependent step; the peer's
  // PyTorch model on the same digits reaches 0.17-0.7 after 3 epochs and 0.55-0.76 after 4
  // (4 seeds); SGD 0.05 reaches only 0.2-0.3 after 3.
  const r = await runTraining(imageRun({ model: 'resnet20', arch: 'glonet', depth: 20, epochs: 4, subset: 1000, optimizer: 'adam', lr: 1e-3, backend: 'wasm' }), tmpDir(), quiet);
  const acc = Math.max(...r.metrics.epochs.map((e) => e.testAccuracy ?? 0));
  t.diagnostic(`resnet20/glonet depth 20: test accuracy by epoch ${r.metrics.epochs.map((e) => e.testAccuracy).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(acc > 0.3, `test accuracy ${acc}`);
  assert.equal(r.meta.blockLayers.length, 18);
  await initBackend('cpu');
});

test('GloNet-ViT learns MNIST on wasm', async (t: TestContext) => {
  try {
    await initBackend('wasm');
  } catch (e) {
    t.skip(`the wasm backend does not load (${(e as Error).message})`);
    return;
  }
  const started = Date.now();
  const r = await runTraining(imageRun({ model: 'vit', arch: 'glonet', depth: 2, width: 64, epochs: 4, subset: 1000, lr: 1e-3, backend: 'wasm' }), tmpDir(), quiet);
  const acc = Math.max(...r.metrics.epochs.map((e) => e.testAccuracy ?? 0));
  t.diagnostic(`vit/glonet depth 2 width 64: test accuracy by epoch ${r.metrics.epochs.map((e) => e.testAccuracy).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(acc > 0.35, `test accuracy ${acc}`);
  await initBackend('cpu');
});
