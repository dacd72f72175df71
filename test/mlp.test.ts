import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/backend/index.js';
import { buildMlp, MLP_ARCHS } from '../src/models/mlp.js';
import { ModelConfigError } from '../src/models/family.js';

await initBackend('cpu');

test('glonet, vanilla-nobn and resnetv2-nobn have identical parameter counts at equal depth', () => {
  for (const depth of [2, 10, 24]) {
    const counts = (['glonet', 'vanilla-nobn', 'resnetv2-nobn'] as const).map((arch) => buildMlp({ arch, depth, inputShape: [14], outputs: 1 }).countParams());
    // stem 14*16+16, depth blocks of 16*16+16, head 16+1
    const expected = 14 * 16 + 16 + depth * (16 * 16 + 16) + 16 + 1;
    assert.deepEqual(counts, [expected, expected, expected], `depth ${depth}`);
  }
  // BN adds 4 parameters per unit per BN layer (2 trainable, 2 moving statistics).
  const bn = buildMlp({ arch: 'resnetv2', depth: 10, inputShape: [14], outputs: 1 }).countParams();
  assert.equal(bn, 14 * 16 + 16 + 10 * (16 * 16 + 16) + 17 + 10 * 4 * 16);
});

test('every architecture builds and predicts the right shape; images are flattened', () => {
  for (const arch of MLP_ARCHS) {
    const m = buildMlp({ arch, depth: 4, inputShape: [28, 28, 1], outputs: 10 });
    assert.deepEqual(m.outputs[0].shape, [null, 10], arch);
  }
});

test('odd depth for two-layer-block archs and bad names are clear errors', () => {
  assert.throws(() => buildMlp({ arch: 'resnetv2', depth: 7, inputShape: [14], outputs: 1 }), (e: Error) => e instanceof ModelConfigError && /must be even; got 7/.test(e.message));
  assert.throws(() => buildMlp({ arch: 'nope' as never, depth: 4, inputShape: [14], outputs: 1 }), /--arch: expected one of glonet/);
  assert.throws(() => buildMlp({ arch: 'glonet', depth: 0, inputShape: [14], outputs: 1 }), /--depth/);
});

test('He-normal kernels with the seed, zero biases: same seed same weights', () => {
  const a = buildMlp({ arch: 'glonet', depth: 3, inputShape: [14], outputs: 1, seed: 5 }).getWeights().map((w) => Array.from(w.dataSync()));
  const b = buildMlp({ arch: 'glonet', depth: 3, inputShape: [14], outputs: 1, seed: 5 }).getWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(a, b);
  const m = buildMlp({ arch: 'glonet', depth: 3, inputShape: [14], outputs: 1, seed: 5 });
  const k = m.getLayer('block_1').getWeights()[0].dataSync();
  const std = Math.sqrt(Array.from(k).reduce((s, v) => s + v * v, 0) / k.length);
  assert.ok(std > 0.2 && std < 0.5, `He-normal std for fan-in 16 is about 0.35 (truncated), got ${std}`);
  assert.ok(m.getLayer('block_1').getWeights()[1].dataSync().every((v) => v === 0));
});
