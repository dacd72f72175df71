import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { GloNet, GloNetShapeError, glonet, gloNetOutputShape } from '../src/layers/index.js';
import { buildMlp } from '../src/models/mlp.js';
import { loadModel, saveModel } from '../src/model-io.js';
import { ROOT, relErr, runNode, tmpDir } from './helpers.js';

await initBackend('cpu');

/** Dense + ReLU in plain JavaScript, from the layer's weights (an independent computation). */
function denseJs(x: number[][], layer: tf.layers.Layer, relu: boolean): number[][] {
  const [k, b] = layer.getWeights().map((w) => w.arraySync() as number[][] | number[]);
  const K = k as number[][];
  const B = b as number[];
  return x.map((row) => B.map((bj, j) => {
    let s = bj;
    for (let i = 0; i < row.length; i++) s += row[i] * K[i][j];
    return relu ? Math.max(0, s) : s;
  }));
}

test('GloNet output equals the sum of the block outputs computed independently', () => {
  const blocks = [0, 1, 2, 3].map((i) => tf.layers.dense({ units: 5, activation: 'relu', name: `b${i}`, kernelInitializer: tf.initializers.glorotNormal({ seed: i }), biasInitializer: tf.initializers.randomNormal({ seed: 10 + i }) }));
  const stem = tf.layers.dense({ units: 5, name: 'stem', kernelInitializer: tf.initializers.glorotNormal({ seed: 99 }) });
  const head = tf.layers.dense({ units: 1, name: 'head', kernelInitializer: tf.initializers.glorotNormal({ seed: 98 }) });
  const model = glonet({ inputShape: [3], stem, blocks, head });
  const xs = [[0.5, -1, 2], [1, 1, 1], [-2, 0.3, 0.1]];
  let h = denseJs(xs, stem, false);
  const sum = xs.map(() => new Array(5).fill(0));
  for (const b of blocks) {
    h = denseJs(h, b, true);
    h.forEach((row, r) => row.forEach((v, j) => (sum[r][j] += v)));
  }
  const expected = denseJs(sum, head, false).map((r) => r[0]);
  const got = tf.tidy(() => (model.predict(tf.tensor2d(xs)) as tf.Tensor).dataSync());
  assert.ok(relErr(got, expected) < 1e-5, `${got} vs ${expected}`);
  // The layer itself: sum of the inputs.
  const layerOut = tf.tidy(() => (new GloNet().apply([tf.tensor2d([[1, 2]]), tf.tensor2d([[3, 4]]), tf.tensor2d([[5, 6]])]) as tf.Tensor).arraySync());
  assert.deepEqual(layerOut, [[9, 12]]);
});

test('GloNet zero-pads smaller last dimensions and rejects other mismatches with the shapes named', () => {
  const out = tf.tidy(() => (new GloNet().apply([tf.tensor2d([[1, 2]]), tf.tensor2d([[10, 20, 30, 40]])]) as tf.Tensor).arraySync());
  assert.deepEqual(out, [[11, 22, 30, 40]]);
  assert.deepEqual(gloNetOutputShape([[null, 8, 8, 16], [null, 8, 8, 64]]), [null, 8, 8, 64]);
  assert.throws(() => gloNetOutputShape([[null, 8, 8, 16], [null, 4, 4, 16]]), (e: Error) => e instanceof GloNetShapeError && /\[null, 4, 4, 16\]/.test(e.message) && /\[null, 8, 8, 16\]/.test(e.message));
  assert.throws(() => gloNetOutputShape([[null, 16], [null, 4, 16]]), /same rank/);
  const a = tf.input({ shape: [4, 3] });
  const b = tf.input({ shape: [5, 3] });
  assert.throws(() => new GloNet().apply([a, b]), /only the last dimension may differ/);
});

test('glonet() accepts functions as blocks and embeds', () => {
  const model = glonet({
    inputShape: [6, 6, 1],
    blocks: [
      (x) => tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x) as tf.SymbolicTensor,
      (x) => tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x) as tf.SymbolicTensor,
    ],
    embed: (x) => tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor,
    head: tf.layers.dense({ units: 3 }),
  });
  assert.deepEqual(model.getLayer('glonet').outputShape, [null, 4]);
  assert.deepEqual(model.outputs[0].shape, [null, 3]);
});

test('a saved GloNet MLP loads in a fresh process and predicts identically', async () => {
  const model = buildMlp({ arch: 'glonet', depth: 6, inputShape: [14], outputs: 1, seed: 3 });
  const dir = path.join(tmpDir(), 'model');
  await saveModel(model, dir, { model: 'mlp', arch: 'glonet', depth: 6, task: 'regression', inputShape: [14], outputs: 1, blockLayers: [] });
  const x = Array.from({ length: 4 }, (_, r) => Array.from({ length: 14 }, (_, c) => Math.sin(r * 14 + c)));
  const expected = Array.from(tf.tidy(() => (model.predict(tf.tensor2d(x)) as tf.Tensor).dataSync()));
  // Same process.
  const { model: again } = await loadModel(dir);
  const same = tf.tidy(() => (again.predict(tf.tensor2d(x)) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from(same), expected);
  // A fresh process that imports @tensorflow/tfjs and the package, then tf.loadLayersModel.
  const out = runNode(`
    import * as tf from '@tensorflow/tfjs';
    import { fileSystem } from ${JSON.stringify(path.join(ROOT, 'dist/src/index.js'))};
    await tf.setBackend('cpu');
    const m = await tf.loadLayersModel(fileSystem(${JSON.stringify(dir)}));
    const y = m.predict(tf.tensor2d(${JSON.stringify(x)}));
    console.log(JSON.stringify(Array.from(y.dataSync())));
  `);
  assert.deepEqual(JSON.parse(out), expected);
});
