import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tmpDir } from './helpers.js';

function oneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const first = r.stderr.split('\n')[0];
  assert.match(first, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('--help works for every command', () => {
  for (const args of [['--help'], ['train', '--help'], ['demo', '--help']]) {
    const r = runCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: glonet/);
  }
  assert.match(runCli(['train', '--help']).stdout, /--depth <n>/);
});

test('unknown options and bad values: one-line error, exit code 2', () => {
  oneLineError(runCli(['train', '--depth', '4', '--out', tmpDir(), '--bogus']), /unknown option '--bogus'/);
  oneLineError(runCli(['train', '--depth', 'ten', '--out', tmpDir()]), /--depth <n>.*expected a positive integer, got 'ten'/);
  oneLineError(runCli(['train', '--depth', '4', '--lr', '-1', '--out', tmpDir()]), /--lr <x>.*expected a positive number/);
  oneLineError(runCli(['train', '--depth', '4', '--model', 'cnn', '--out', tmpDir()]), /--model <family>.*Allowed choices are mlp, resnet20, vit/);
  oneLineError(runCli(['train', '--depth', '4']), /required option '--out <dir>'/);
  oneLineError(runCli(['train', '--arch', 'resnetv2', '--depth', '5', '--subset', '100', '--epochs', '1', '--out', tmpDir()]), /glonet: --depth: resnetv2 .* must be even; got 5/);
  oneLineError(runCli(['train', '--arch', 'nope', '--depth', '4', '--subset', '100', '--out', tmpDir()]), /glonet: --arch: expected one of glonet, glonet-bn, vanilla/);
  oneLineError(runCli(['train', '--dataset', 'csv', '--depth', '4', '--out', tmpDir()]), /--data: --dataset csv needs --data PATH/);
  oneLineError(runCli(['nosuchcommand']), /unknown command 'nosuchcommand'/);
  oneLineError(runCli(['train', '--depth', '4', '--subset', '5', '--out', tmpDir()]), /--subset: expected an integer of at least 10/);
});

test('glonet train on a CSV: a column of words is one-hot encoded, --drop leaves it out', () => {
  const dir = tmpDir();
  const csv = path.join(dir, 'data.csv');
  const lines = ['a;b;kind;y'];
  for (let i = 0; i < 200; i++) lines.push(`${i % 13};${(i * 7) % 11};k${i % 3};${(i % 13) * 0.5 - ((i * 7) % 11)}`);
  fs.writeFileSync(csv, lines.join('\n'));
  const inputs = (run: string) => JSON.parse(fs.readFileSync(path.join(dir, run, 'metrics.json'), 'utf8')).data.inputShape;
  const w = runCli(['train', '--dataset', 'csv', '--data', csv, '--target', 'y', '--depth', '4', '--epochs', '1', '--batch-size', '32', '--backend', 'cpu', '--no-report', '--out', path.join(dir, 'with')]);
  assert.equal(w.code, 0, w.stderr);
  assert.deepEqual(inputs('with'), [5], 'a, b and one input per level k0, k1, k2');
  const r = runCli(['train', '--dataset', 'csv', '--data', csv, '--target', 'y', '--drop', 'kind', '--depth', '4', '--epochs', '2', '--batch-size', '32', '--backend', 'cpu', '--out', path.join(dir, 'run')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /backend cpu/);
  assert.match(r.stdout, /epoch 2\/2 .*test MSE/);
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'metrics.json'), 'utf8'));
  assert.equal(m.config.target, 'y');
  assert.deepEqual(m.config.drop, ['kind']);
  assert.deepEqual(inputs('run'), [2]);
  assert.ok(fs.existsSync(path.join(dir, 'run', 'report.html')));
});
