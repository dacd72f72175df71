/**
 * --head-init: only the GloNet head's kernel changes (scaled = the paper's kernel / L, zero = 0),
 * every other weight stays the paper's, and the baselines refuse it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel, ModelConfigError } from '../src/models/index.js';
import { runCli } from './helpers.js';
import type { HeadInit } from '../src/vocabulary.js';

await initBackend('cpu');

const data = {
  mlp: { inputShape: [14], outputs: 1, task: 'regression' as const },
  resnet20: { inputShape: [8, 8, 1], outputs: 10, task: 'classification' as const },
  vit: { inputShape: [8, 8, 1], outputs: 10, task: 'classification' as const },
};
const cases = [['mlp', 12, 12], ['resnet20', 20, 18], ['vit', 3, 3]] as const;

function weights(model: string, depth: number, headInit: HeadInit): Map<string, Float32Array> {
  const { model: m } = buildModel({ model, arch: 'glonet', depth, width: 16, l2: 0, seed: 4, headInit }, data[model as keyof typeof data]);
  const out = new Map(m.weights.map((w) => [w.originalName, (w.read().dataSync() as Float32Array).slice()]));
  m.dispose();
  return out;
}

for (const [model, depth, blocks] of cases) {
  test(`${model}: --head-init scaled divides the paper's head kernel by the ${blocks} blocks, zero zeroes it, nothing else changes`, () => {
    const paper = weights(model, depth, 'paper');
    const scaled = weights(model, depth, 'scaled');
    const zero = weights(model, depth, 'zero');
    const head = [...paper.keys()].find((k) => k.startsWith('head/') && k.endsWith('kernel'))!;
    for (const [name, values] of paper) {
      if (name === head) continue;
      assert.deepEqual(scaled.get(name), values, name);
      assert.deepEqual(zero.get(name), values, name);
    }
    const p = paper.get(head)!;
    const s = scaled.get(head)!;
    assert.ok(p.some((v) => v !== 0));
    // Drawn from the same seeded distribution with 1/L of the spread: equal up to float rounding.
    p.forEach((v, i) => assert.ok(Math.abs(s[i] - v / blocks) <= 1e-6 * Math.abs(v) + 1e-9, `${head}[${i}]: ${s[i]} vs ${v / blocks}`));
    assert.ok(zero.get(head)!.every((v) => v === 0));
  });
}

test('--head-init other than paper is an error for the baselines, naming the option', () => {
  assert.throws(() => buildModel({ model: 'mlp', arch: 'vanilla', depth: 4, width: 16, l2: 0, seed: 1, headInit: 'zero' }, data.mlp),
    (e: Error) => e instanceof ModelConfigError && /--head-init zero: applies to a GloNet \(--arch glonet or glonet-bn/.test(e.message));
  const r = runCli(['train', '--model', 'mlp', '--arch', 'resnetv2', '--depth', '4', '--head-init', 'scaled', '--out', 'test-output/never']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--head-init scaled: applies to a GloNet \(--arch glonet or glonet-bn/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  tf.disposeVariables();
});
