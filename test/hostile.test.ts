/**
 * Hostile users, second round (issue 20): one test per class of failure the probe found. `glonet`
 * runs as a child process with a time box wherever a regression would hang (a read of /dev/zero or
 * a FIFO, a build of a model of a billion layers); every problem must end in one line on stderr,
 * exit code 2 for bad input and 1 for runtime failures, no stack trace, files left as they were.
 *
 *   unbounded reads    /dev/zero links and FIFOs in every position of a run folder, a checkpoint,
 *                      an experiment folder, a data folder, --input and a site folder; a gzip bomb;
 *                      a sparse file announced in a manifest
 *   hangs and limits   --depth, --width, --seeds beyond their limits; signals during a long build
 *                      and during the last epoch
 *   silent results     a run folder read from another folder, data changed after training,
 *                      --resume with other columns, raw pixels given to an image model
 *   experiments        exit codes of failed cells; report validation of every file it reads
 *   two writers        train and train, stale and foreign locks, two experiment runs on one folder
 *   messages           the crashes and misleading lines of the probe
 *   the library        runTraining's checks; the GloNet layer and the wasm backend
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { BIN, ROOT, runCli, tmpDir } from './helpers.js';
import { fakeExperiment } from './experiment-fixtures.js';
import { GlonetError } from '../src/errors.js';
import { runTraining } from '../src/train/run.js';
import { RunConfigError } from '../src/train/options.js';
import { familyDefaults } from '../src/models/index.js';
import { initBackend } from '../src/backend/index.js';
import { GloNet, GloNetShapeError } from '../src/layers/glonet.js';
import { readIdx } from '../src/data/idx.js';
import { fileSystem } from '../src/model-io.js';
import { getExperiment } from '../src/experiments/index.js';
import { chooseData, gridCells } from '../src/experiments/experiment.js';
import type { RunConfig } from '../src/vocabulary.js';

type Result = { code: number; stdout: string; stderr: string };

/** A time box for commands that would hang if the fix regressed. */
const BOX = { timeout: 90_000 };

/** Exit code `code`, exactly one line on stderr matching `pattern`, no stack trace. */
function oneLine(r: Result, code: number, pattern: RegExp, what = ''): void {
  assert.notEqual(r.code, -1, `${what}: still running after ${BOX.timeout / 1000} s (killed): ${r.stderr}`);
  assert.equal(r.code, code, `${what}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `${what}: one line: ${r.stderr}`);
  assert.match(r.stderr, pattern, what);
}

/** Every file under `dir` with its SHA-256 (links and FIFOs by what they are), to show a command touched nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) out[f] = `-> ${fs.readlinkSync(p)}`;
    else if (st.isFile()) out[f] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    else if (!st.isDirectory()) out[f] = 'special';
  }
  return out;
}

let W: string;
let csv: string;
let run: string;
const T = (data = csv) => ['--dataset', 'csv', '--data', data, '--target', 'y', '--depth', '4', '--batch-size', '64', '--epochs', '2', '--no-report'];

function writeCsv(file: string, rows = 200, f = (i: number) => [i % 17, (i * 7) % 13, (i * 3) % 5, (i % 17) * 0.3 - ((i * 7) % 13) * 0.2 + ((i * 3) % 5)]): string {
  fs.writeFileSync(file, ['a,b,c,y', ...Array.from({ length: rows }, (_, i) => f(i).join(','))].join('\n') + '\n');
  return file;
}

/** A copy of the trained run, to damage. */
function copyRun(name: string): string {
  const d = path.join(W, name);
  fs.cpSync(run, d, { recursive: true });
  return d;
}

/** Replace `file` by a symbolic link to /dev/zero or by a FIFO. */
function hostile(file: string, kind: 'zero' | 'fifo'): void {
  fs.rmSync(file, { force: true });
  if (kind === 'zero') fs.symlinkSync('/dev/zero', file);
  else assert.equal(spawnSync('mkfifo', [file]).status, 0, 'mkfifo');
}
const HOSTILE = { zero: /leads outside its folder .* \(a symbolic link to \/dev\/zero\)|is a device \(\/dev\/zero\), not a regular file/, fifo: /is a named pipe, not a regular file/ };

/** A small MNIST-style IDX folder (40 training and 10 test images of 4x4 pixels). */
function idxFolder(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = (name: string, magic: number, dims: number[], fill: (i: number) => number) => {
    const h = Buffer.alloc(4 + 4 * dims.length);
    h.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
    const n = dims.reduce((a, b) => a * b, 1);
    fs.writeFileSync(path.join(dir, name), Buffer.concat([h, Buffer.from(Array.from({ length: n }, (_, i) => fill(i)))]));
  };
  file('train-images-idx3-ubyte', 0x803, [40, 4, 4], (i) => (i * 37) % 256);
  file('train-labels-idx1-ubyte', 0x801, [40], (i) => i % 10);
  file('t10k-images-idx3-ubyte', 0x803, [10, 4, 4], (i) => (i * 11) % 256);
  file('t10k-labels-idx1-ubyte', 0x801, [10], (i) => i % 10);
  return dir;
}

before(() => {
  W = tmpDir('glonet-hostile-');
  csv = writeCsv(path.join(W, 'data.csv'));
  run = path.join(W, 'run');
  const r = runCli(['train', ...T(), '--out', run]);
  assert.equal(r.code, 0, r.stderr);
  const a = runCli(['analyze', run]);
  assert.equal(a.code, 0, a.stderr);
  fs.writeFileSync(path.join(W, 'rows.json'), JSON.stringify([{ a: 1, b: 2, c: 3 }]));
});

// ---------------------------------------------------------------------------------------------
// Unbounded reads: every position a user-supplied folder has.

test('run folders: /dev/zero links and FIFOs as metrics.json, analysis.json, model.json or any checkpoint file end in one line, in time, touching nothing', { timeout: 1_200_000 }, () => {
  const rows = path.join(W, 'rows.json');
  for (const kind of ['zero', 'fifo'] as const) {
    // metrics.json: every command that opens a run.
    const m = copyRun(`metrics-${kind}`);
    hostile(path.join(m, 'metrics.json'), kind);
    let snap = snapshot(m);
    oneLine(runCli(['analyze', m], BOX), 2, HOSTILE[kind], `analyze, metrics.json ${kind}`);
    oneLine(runCli(['predict', m, '--input', rows], BOX), 2, HOSTILE[kind], `predict, metrics.json ${kind}`);
    assert.deepEqual(snapshot(m), snap);
    // model/model.json.
    const mj = copyRun(`model-${kind}`);
    hostile(path.join(mj, 'model', 'model.json'), kind);
    snap = snapshot(mj);
    oneLine(runCli(['predict', mj, '--input', rows], BOX), 2, HOSTILE[kind], `predict, model.json ${kind}`);
    assert.deepEqual(snapshot(mj), snap);
    // analysis.json, which glonet web ships with the page.
    const an = copyRun(`analysis-${kind}`);
    hostile(path.join(an, 'analysis.json'), kind);
    oneLine(runCli(['web', an, '--out', path.join(W, `site-${kind}`), '--backend', 'cpu'], BOX), 2, HOSTILE[kind], `web, analysis.json ${kind}`);
    assert.ok(!fs.existsSync(path.join(W, `site-${kind}`)), 'no site written');
  }
  // Every file of the committed epoch: --resume finds the epoch damaged, reads nothing beyond, refuses in one line.
  const epochDir = (d: string) => path.join(d, 'checkpoint', fs.readdirSync(path.join(d, 'checkpoint')).find((n) => n.startsWith('epoch-'))!);
  const files = ['commit.json', 'state.json', 'metrics.json', 'optimizer.bin', 'model.json', 'weights.bin'];
  for (const [f, kind] of [...files.map((f) => [f, 'zero'] as const), ['commit.json', 'fifo'] as const, ['weights.bin', 'fifo'] as const]) {
    const c = copyRun(`ckpt-${f}-${kind}`);
    hostile(path.join(epochDir(c), f), kind);
    const snap = snapshot(c);
    oneLine(runCli(['train', ...T(), '--epochs', '3', '--out', c, '--resume'], BOX), 2, new RegExp(`has no consistent epoch to resume from \\(epoch 2: .*${f.replace('.', '\\.')}: (${HOSTILE[kind].source})`), `--resume, checkpoint ${f} ${kind}`);
    assert.deepEqual(snapshot(c), snap, `${f}: nothing touched`);
  }
  // A commit.json naming a file outside the epoch folder: never read.
  const out = copyRun('ckpt-entry');
  const commit = path.join(epochDir(out), 'commit.json');
  const record = JSON.parse(fs.readFileSync(commit, 'utf8'));
  record.files[0].name = '../../../../../../../../dev/zero';
  fs.writeFileSync(commit, JSON.stringify(record));
  oneLine(runCli(['train', ...T(), '--epochs', '3', '--out', out, '--resume'], BOX), 2, /commit\.json: lists '\.\.\/\.\.\/.*dev\/zero', which is not a file of an epoch folder/);
});

test('experiment folders: /dev/zero links and FIFOs as experiment.json or a cell\'s metrics.json, analysis.json, cell.json or failed.json: report names the file, in time', { timeout: 600_000 }, () => {
  for (const kind of ['zero', 'fifo'] as const) {
    for (const f of ['experiment.json', 'metrics.json', 'analysis.json', 'cell.json', 'failed.json']) {
      const dir = tmpDir('glonet-hostile-exp-');
      const [first] = fakeExperiment(dir);
      const file = f === 'experiment.json' ? path.join(dir, f) : path.join(dir, 'cells', first, f);
      // failed.json is read for a cell that is not finished.
      if (f === 'failed.json') fs.rmSync(path.join(dir, 'cells', first, 'cell.json'));
      hostile(file, kind);
      oneLine(runCli(['experiment', 'report', dir], BOX), 2, new RegExp(`${f.replace('.', '\\.')}: (${HOSTILE[kind].source})`), `report, ${f} ${kind}`);
      assert.ok(!fs.existsSync(path.join(dir, 'results.json')), 'no results written');
    }
  }
});

test('data folders and inputs: /dev/zero links and FIFOs as an IDX file, a CIFAR-10 batch, the CSV, --input or a site\'s site.json end in one line; a data folder changed after training is refused by analyze', { timeout: 900_000 }, () => {
  const idx = idxFolder(path.join(W, 'idx'));
  const mnist = ['--dataset', 'mnist', '--depth', '2', '--epochs', '1', '--batch-size', '16'];
  for (const kind of ['zero', 'fifo'] as const) {
    for (const name of ['train-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      const d = path.join(W, `idx-${name}-${kind}`);
      fs.cpSync(idx, d, { recursive: true });
      hostile(path.join(d, name), kind);
      oneLine(runCli(['train', ...mnist, '--data', d, '--out', path.join(W, 'never')], BOX), 2, HOSTILE[kind], `IDX ${name} ${kind}`);
    }
    const cifar = path.join(W, `cifar-${kind}`);
    fs.mkdirSync(cifar);
    fs.writeFileSync(path.join(cifar, 'data_batch_1.bin'), Buffer.alloc(3073 * 4));
    hostile(path.join(cifar, 'test_batch.bin'), kind);
    oneLine(runCli(['train', '--model', 'resnet20', '--dataset', 'cifar10', '--data', cifar, '--depth', '20', '--epochs', '1', '--out', path.join(W, 'never')], BOX), 2, /test_batch\.bin: (leads outside|is a device|is a named pipe)/, `CIFAR-10 ${kind}`);
    const c = path.join(W, `csv-${kind}.csv`);
    hostile(c, kind);
    oneLine(runCli(['train', ...T(c), '--out', path.join(W, 'never')], BOX), 2, /not a regular file/, `CSV ${kind}`);
    const input = path.join(W, `input-${kind}.json`);
    hostile(input, kind);
    oneLine(runCli(['predict', run, '--input', input], BOX), 2, /--input: .*(is a device|is a named pipe)/, `--input ${kind}`);
    const site = path.join(W, `site-json-${kind}`);
    fs.mkdirSync(site);
    hostile(path.join(site, 'site.json'), kind);
    oneLine(runCli(['web', run, '--out', site, '--backend', 'cpu'], BOX), 2, /--out: .* already holds files that are not a glonet web site/, `site.json ${kind}`);
  }
  oneLine(runCli(['predict', run, '--input', '/dev/zero'], BOX), 2, /--input: \/dev\/zero: is a device/);
  assert.ok(!fs.existsSync(path.join(W, 'never')), 'no run folder left by runs that could not start');
  // A run trained on an IDX folder whose file is later replaced by a link to /dev/zero: analyze reads none of it.
  const d = path.join(W, 'idx-run-data');
  fs.cpSync(idx, d, { recursive: true });
  const r = runCli(['train', ...mnist, '--data', d, '--out', path.join(W, 'idx-run')]);
  assert.equal(r.code, 0, r.stderr);
  hostile(path.join(d, 't10k-images-idx3-ubyte'), 'zero');
  oneLine(runCli(['analyze', path.join(W, 'idx-run')], BOX), 2, /t10k-images-idx3-ubyte: is a device \(\/dev\/zero\)/);
});

test('sizes known before reading: a gzip IDX that inflates far beyond its header stops at the header\'s size; a manifest announcing a sparse gigabyte is refused unread', () => {
  // A 4-image IDX header followed by 512 MiB of zeros, as gzip members (about 500 KB).
  const file = path.join(W, 'bomb-idx3-ubyte.gz');
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0);
  [4, 4, 4].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const zeros = zlib.gzipSync(Buffer.alloc(8 << 20));
  fs.writeFileSync(file, Buffer.concat([zlib.gzipSync(header), ...Array.from({ length: 64 }, () => zeros)]));
  const rss = process.memoryUsage().rss;
  assert.throws(() => readIdx(file, 'images'), (e: Error) => e instanceof GlonetError && /inflates to more than the 80 bytes its IDX header says/.test(e.message));
  assert.ok(process.memoryUsage().rss - rss < 256 << 20, `memory grew by ${(process.memoryUsage().rss - rss) >> 20} MiB`);

  // A model folder whose manifest lists a sparse 1.6 GB file beside its weights, described as weights.
  const m = copyRun('sparse');
  const mj = path.join(m, 'model', 'model.json');
  const j = JSON.parse(fs.readFileSync(mj, 'utf8'));
  const big = 1_600_000_000;
  fs.writeFileSync(path.join(m, 'model', 'big.bin'), '');
  fs.truncateSync(path.join(m, 'model', 'big.bin'), big);
  j.weightsManifest.push({ paths: ['./big.bin'], weights: [{ name: 'extra', shape: [big / 4], dtype: 'float32' }] });
  fs.writeFileSync(mj, JSON.stringify(j));
  const t0 = performance.now();
  oneLine(runCli(['predict', m, '--input', path.join(W, 'rows.json')], BOX), 2, /model\.json: describes 1\.\d+ GiB of weights or more; a model folder may hold at most 1 GiB/);
  assert.ok(performance.now() - t0 < BOX.timeout);
});

// ---------------------------------------------------------------------------------------------
// Hangs: limits checked before anything is built, signals during long work.

test('limits: --depth, --width and --seeds beyond their limits end at once in one line naming the limit and why', { timeout: 600_000 }, () => {
  const o = path.join(W, 'big');
  oneLine(runCli(['train', ...T(), '--depth', '99999999999', '--out', o], BOX), 2, /--depth: --model mlp: at most 10,000 \(the paper's deepest MLP has 1,000 layers; .*\); got 99,999,999,999/);
  oneLine(runCli(['train', ...T(), '--depth', '20000', '--out', o], BOX), 2, /--depth: --model mlp: at most 10,000 .*got 20,000/);
  oneLine(runCli(['train', ...T(), '--width', '200000', '--out', o], BOX), 2, /--width: --model mlp: at most 4,096 .*got 200,000/);
  oneLine(runCli(['train', ...T(), '--width', '4096', '--depth', '10', '--out', o], BOX), 2, /--depth 10 --width 4096: this --model mlp would have [\d,]+ parameters on these data; at most 50,000,000/);
  oneLine(runCli(['train', ...T(), '--epochs', '1000000', '--out', o], BOX), 2, /--epochs: at most 100,000 \(metrics\.json lists every epoch/);
  oneLine(runCli(['train', ...T(), '--batch-size', '100000', '--out', o], BOX), 2, /--batch-size: at most 65,536/);
  oneLine(runCli(['train', ...T(), '--seed', '99999999999', '--out', o], BOX), 2, /--seed: at most 4,294,967,295 \(the data split and the batch order use 32-bit seeds/);
  oneLine(runCli(['train', '--model', 'vit', '--dataset', 'mnist', '--depth', '64', '--out', o], BOX), 2, /--batch-size 128: a training step of this --depth 64 --width 128 keeps about [\d,]+ floats of activations; at most 268,435,456 .*use --batch-size \d+ or less/);
  oneLine(runCli(['experiment', 'run', 'sgemm-norms', '--preset', 'smoke', '--seeds', '100000000', '--out', path.join(W, 'seeds')], BOX), 2, /--seeds: at most 1,000 \(every seed is another run folder/);
  assert.ok(!fs.existsSync(o) && !fs.existsSync(path.join(W, 'seeds')), 'nothing written');
});

/** Spawn glonet and resolve once a line of its stdout or stderr matches. */
function startCli(args: string[]): { child: ChildProcess; output: () => string; seen: (re: RegExp) => Promise<void>; ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let text = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const onData = (b: Buffer) => {
    text += b.toString();
    for (const w of waiters.splice(0)) (w.re.test(text) ? w.resolve : () => waiters.push(w))();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child, output: () => text, ended,
    seen: (re) => new Promise<void>((resolve, reject) => {
      if (re.test(text)) return resolve();
      waiters.push({ re, resolve });
      void ended.then(() => reject(new Error(`exited before ${re}: ${text}`)));
    }),
  };
}

test('signals: SIGTERM during a long model build ends the process at once; during the only epoch it is never lost (exit 143, not 0)', { timeout: 600_000 }, async () => {
  // A 10,000-block GloNet: building it takes seconds; the signal must not wait for the build and an epoch.
  const deep = startCli(['train', ...T(), '--depth', '10000', '--epochs', '1', '--out', path.join(W, 'deep')]);
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = performance.now();
  deep.child.kill('SIGTERM');
  const end = await deep.ended;
  assert.ok(end.signal === 'SIGTERM' || end.code === 143, `ended by SIGTERM: ${JSON.stringify(end)} ${deep.output()}`);
  assert.ok(performance.now() - t0 < 30_000, `ended ${((performance.now() - t0) / 1000).toFixed(1)} s after the signal`);
  // A run of one epoch signalled once training has started: the signal lands during the epoch, its
  // commit or the report, and the exit code says so in every case.
  const big = writeCsv(path.join(W, 'big.csv'), 20_000);
  const one = startCli(['train', ...T(big), '--depth', '200', '--epochs', '1', '--batch-size', '32', '--out', path.join(W, 'one')]);
  await one.seen(/glonet: training/);
  one.child.kill('SIGTERM');
  const e2 = await one.ended;
  assert.ok(e2.signal === 'SIGTERM' || e2.code === 143, `a SIGTERM is never an exit code 0: ${JSON.stringify(e2)} ${one.output()}`);
  assert.doesNotMatch(one.output(), /\n\s+at /);
});

// ---------------------------------------------------------------------------------------------
// Silent wrong results.

test('a run folder means the same from any folder; data changed since training are refused; --resume refuses other columns before touching a file', { timeout: 600_000 }, () => {
  // From another folder holding a same-named CSV with other numbers: the run's own data are read.
  const elsewhere = path.join(W, 'elsewhere');
  fs.mkdirSync(elsewhere);
  writeCsv(path.join(elsewhere, 'data.csv'), 300, (i) => [i % 5, i % 3, i % 2, i % 7]);
  const a = copyRun('anywhere');
  const here = runCli(['analyze', a]);
  assert.equal(here.code, 0, here.stderr);
  const expected = fs.readFileSync(path.join(a, 'analysis.json'), 'utf8');
  const there = runCli(['analyze', path.relative(elsewhere, a)], { cwd: elsewhere });
  assert.equal(there.code, 0, there.stderr);
  assert.equal(fs.readFileSync(path.join(a, 'analysis.json'), 'utf8'), expected, 'the same analysis from another folder');
  assert.equal(JSON.parse(fs.readFileSync(path.join(a, 'metrics.json'), 'utf8')).config.data, csv, 'the data path is recorded absolute');

  // A run of an older glonet (a relative path, no fingerprint) read from a folder whose same-named CSV differs: refused.
  const old = copyRun('old-style');
  const mf = path.join(old, 'metrics.json');
  const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
  m.config.data = 'data.csv';
  delete m.data.fingerprint;
  fs.writeFileSync(mf, JSON.stringify(m));
  let snap = snapshot(old);
  oneLine(runCli(['analyze', old], { cwd: elsewhere }), 2, /old-style\/metrics\.json: the data .*data\.csv are not the data this model was trained on: .*restore them, or train a new run on these/);
  assert.deepEqual(snapshot(old), snap);

  // Rows appended to the run's CSV: analyze and truncate refuse, naming the file and how it changed.
  const grown = path.join(W, 'grown.csv');
  fs.copyFileSync(csv, grown);
  const g = path.join(W, 'grown-run');
  assert.equal(runCli(['train', ...T(grown), '--out', g]).code, 0);
  fs.appendFileSync(grown, '1,2,3,4\n5,6,7,8\n');
  snap = snapshot(g);
  oneLine(runCli(['analyze', g]), 2, /grown-run\/metrics\.json: the run was trained on .*grown\.csv \(\d+ bytes, SHA-256 [0-9a-f]{12}\.\.\.\), but .*grown\.csv now holds other data/);
  oneLine(runCli(['truncate', g, '--blocks', '2', '--out', path.join(W, 'grown-2')]), 2, /now holds other data/);
  oneLine(runCli(['train', ...T(grown), '--epochs', '3', '--out', g, '--resume']), 2, /--resume: .*grown-run: the run was trained on .*grown\.csv .* now holds other data/);
  assert.deepEqual(snapshot(g), snap);

  // --resume with other columns, target or data: refused before anything is written or printed.
  const c = copyRun('columns');
  fs.writeFileSync(path.join(c, 'analysis.json'), '{"kept": true}');
  snap = snapshot(c);
  for (const [args, pattern] of [
    [['--drop', 'a'], /--resume: .*columns was trained with --drop \[\], not \["a"\] \(other columns would feed the same model\); use the same options or another --out/],
    [['--target', 'c', '--drop', 'y'], /--resume: .*columns was trained with target = "y", not "c"/],
    [['--data', grown], /--resume: .*columns was trained with --data ".*data\.csv", not ".*grown\.csv"/],
  ] as const) {
    const r = runCli(['train', ...T(), '--epochs', '3', '--out', c, '--resume', ...args]);
    oneLine(r, 2, pattern, args.join(' '));
    assert.equal(r.stdout, '', 'nothing printed (no "resuming")');
    assert.deepEqual(snapshot(c), snap, `${args.join(' ')}: nothing touched`);
  }
});

test('predict: raw 0-255 pixels given to an image model are refused, with the scaling it expects', () => {
  const idx = idxFolder(path.join(W, 'idx-predict'));
  const r = runCli(['train', '--dataset', 'mnist', '--data', idx, '--depth', '2', '--epochs', '1', '--out', path.join(W, 'img')]);
  assert.equal(r.code, 0, r.stderr);
  const input = path.join(W, 'pixels.json');
  fs.writeFileSync(input, JSON.stringify([Array.from({ length: 16 }, (_, i) => i * 16)]));
  oneLine(runCli(['predict', path.join(W, 'img'), '--input', input]), 2, /pixels\.json row 1: value 2 \(channel 0\) is 16; an image model takes pixels scaled to \[0, 1\] as in training \(divide bytes 0-255 by 255\)/);
  fs.writeFileSync(input, JSON.stringify([Array.from({ length: 16 }, (_, i) => i / 16)]));
  assert.equal(runCli(['predict', path.join(W, 'img'), '--input', input]).code, 0);
});

// ---------------------------------------------------------------------------------------------
// Experiments: exit codes and validated reports.

test('experiment run exits 1 naming a failed cell (the others finish); experiment report names every bad file and never changes a verdict', { timeout: 900_000 }, () => {
  // A folder of mnist-truncation's smoke grid (2 cells) whose first cell was left broken by hand.
  const dir = tmpDir('glonet-hostile-failed-');
  const exp = getExperiment('mnist-truncation');
  const cells = gridCells(exp, 'smoke', chooseData(exp, {}));
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify({ experiment: exp.name, preset: 'smoke', data: chooseData(exp, {}), cells: cells.map((c) => c.id) }));
  fs.mkdirSync(path.join(dir, 'cells', cells[0].id), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cells', cells[0].id, 'metrics.json'), '{"config": {}}');
  const r = runCli(['experiment', 'run', exp.name, '--preset', 'smoke', '--out', dir]);
  oneLine(r, 1, new RegExp(`1 of 2 cells run here failed: ${cells[0].id} \\(each error is in .*failed\\.json and REPORT\\.md\\); rerun the same command to retry them`));
  assert.ok(fs.existsSync(path.join(dir, 'cells', cells[1].id, 'cell.json')), 'the other cell finished');
  assert.match(fs.readFileSync(path.join(dir, 'REPORT.md'), 'utf8'), new RegExp(`## Failed cells[\\s\\S]*${cells[0].id}`));

  // report: every file it reads is checked, the bad one named; no verdict is written from it.
  const cases: Array<[string, (d: string, ids: string[]) => void, RegExp]> = [
    ['bestTestError "abc"', (d, ids) => edit(path.join(d, 'cells', ids[0], 'metrics.json'), (m) => { m.best.testError = 'abc'; }), /metrics\.json: best\.testError is '"abc"'; expected a finite number of at least 0/],
    ['bestTestError -5', (d, ids) => edit(path.join(d, 'cells', ids[0], 'metrics.json'), (m) => { m.best.testError = -5; }), /metrics\.json: best\.testError is '-5'; expected a finite number of at least 0/],
    ['an epoch\'s testError "abc"', (d, ids) => edit(path.join(d, 'cells', ids[1], 'metrics.json'), (m) => { m.epochs[0].testError = 'abc'; }), /metrics\.json: epochs\[0\]\.testError is '"abc"'/],
    ['cells "abc"', (d) => edit(path.join(d, 'experiment.json'), (m) => { m.cells = 'abc'; }), /experiment\.json: cells is '"abc"'; expected a list/],
    ['a cell id climbing out', (d) => edit(path.join(d, 'experiment.json'), (m) => { m.cells[0] = '../../../runs/base1'; }), /experiment\.json: cells\[0\] is '"\.\.\/\.\.\/\.\.\/runs\/base1"'; expected a cell id/],
    ['a cell listed twice', (d) => edit(path.join(d, 'experiment.json'), (m) => { m.cells[1] = m.cells[0]; }), /experiment\.json: cells\[1\] .* expected an id listed once/],
    ['metrics.json without epochs', (d, ids) => edit(path.join(d, 'cells', ids[0], 'metrics.json'), (m) => { delete m.epochs; }), /metrics\.json: epochs is .*; expected a list/],
    ['cell.json {}', (d, ids) => fs.writeFileSync(path.join(d, 'cells', ids[0], 'cell.json'), '{}'), /cell\.json: id is .*; expected '.*', the cell's own id/],
    ['cell.json null', (d, ids) => fs.writeFileSync(path.join(d, 'cells', ids[0], 'cell.json'), 'null'), /cell\.json: the cell record is 'null'; expected an object/],
    ['analysis.json blocks "x"', (d, ids) => edit(path.join(d, 'cells', ids[0], 'analysis.json'), (a) => { a.effectiveDepth.normShare.blocks = 'x'; }), /analysis\.json: effectiveDepth\.normShare\.blocks is '"x"'; expected an integer/],
    ['a file where a cell\'s folder belongs', (d, ids) => { fs.rmSync(path.join(d, 'cells', ids[0]), { recursive: true }); fs.writeFileSync(path.join(d, 'cells', ids[0]), 'x'); },
      /cells\/[^:]+: is a file, not the cell's folder; remove it/],
  ];
  for (const [what, damage, pattern] of cases) {
    const d = tmpDir('glonet-hostile-report-');
    const ids = fakeExperiment(d);
    damage(d, ids);
    oneLine(runCli(['experiment', 'report', d]), 2, pattern, what);
    assert.ok(!fs.existsSync(path.join(d, 'results.json')), `${what}: no results written`);
  }
  const ok = tmpDir('glonet-hostile-report-');
  fakeExperiment(ok);
  assert.equal(runCli(['experiment', 'report', ok]).code, 0, 'the undamaged fixture reports');
});

function edit(file: string, change: (j: any) => void): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(j);
  fs.writeFileSync(file, JSON.stringify(j));
}

// ---------------------------------------------------------------------------------------------
// Two writers, one folder.

test('one writer per run folder: a second train is refused while the first runs; a lock left by a dead process is taken over, one from another host named', { timeout: 600_000 }, async () => {
  const out = path.join(W, 'shared');
  const first = startCli(['train', ...T(), '--epochs', '2000', '--out', out]);
  await first.seen(/epoch 1\//);
  const second = runCli(['train', ...T(), '--epochs', '2', '--out', out, '--overwrite']);
  first.child.kill('SIGTERM');
  oneLine(second, 1, /--out: .*shared is being written by another glonet process \(glonet train, pid \d+ on this machine, since .*\); wait for it to finish or choose another folder/);
  const end = await first.ended;
  assert.equal(end.code, 143, first.output());
  assert.match(first.output(), /interrupted after epoch \d+; continue with --resume/);
  assert.ok(!fs.existsSync(path.join(out, '.glonet-lock')), 'the first run released its lock');

  // A lock whose process is gone (killed: nothing released it) is taken over.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const lock = (host: string, pid: number) => JSON.stringify({ pid, host, since: '2026-01-01T00:00:00.000Z', purpose: 'glonet train', token: 'abc' });
  fs.writeFileSync(path.join(out, '.glonet-lock'), lock(os.hostname(), Number(dead.stdout)));
  const resumed = runCli(['train', ...T(), '--epochs', String(Number(/after epoch (\d+)/.exec(first.output())![1]) + 1), '--out', out, '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.ok(!fs.existsSync(path.join(out, '.glonet-lock')));
  // A lock from another host cannot be checked from here: refused, naming the host and the file.
  fs.writeFileSync(path.join(out, '.glonet-lock'), lock('node-17.cluster.example', 4242));
  oneLine(runCli(['analyze', out]), 1, /shared is being written by another glonet process \(glonet train, pid 4242 on host node-17\.cluster\.example, since .*\); .*\(if that process is gone, remove .*shared\/\.glonet-lock\)/);
  fs.rmSync(path.join(out, '.glonet-lock'));
});

test('experiment shards on one folder: two runs at once finish every cell once, none failed', { timeout: 900_000 }, async () => {
  const dir = tmpDir('glonet-hostile-shards-');
  const args = ['experiment', 'run', 'mnist-truncation', '--preset', 'smoke', '--seeds', '3', '--out', dir];
  const a = startCli(args);
  await new Promise((r) => setTimeout(r, 300));
  const b = startCli(args);
  const [ea, eb] = await Promise.all([a.ended, b.ended]);
  assert.equal(ea.code, 0, a.output());
  assert.equal(eb.code, 0, b.output());
  const cells = fs.readdirSync(path.join(dir, 'cells'));
  assert.equal(cells.length, 3);
  for (const c of cells) {
    assert.ok(fs.existsSync(path.join(dir, 'cells', c, 'cell.json')), `${c} finished`);
    assert.ok(!fs.existsSync(path.join(dir, 'cells', c, 'failed.json')), `${c} did not fail`);
    assert.ok(!fs.existsSync(path.join(dir, 'cells', c, '.glonet-lock')), `${c} unlocked`);
  }
  const report = runCli(['experiment', 'report', dir]);
  assert.equal(report.code, 0, report.stderr);
  assert.match(report.stdout, /3 cells finished/);
  assert.doesNotMatch(a.output() + b.output(), /ENOENT|internal error/);
});

// ---------------------------------------------------------------------------------------------
// Crashes and messages.

test('the probe\'s crashes and misleading lines: each one line with exit code 2 (bad input) or 1 (runtime), nothing lost', { timeout: 900_000 }, () => {
  const o = path.join(W, 'msg');
  // experiment run into a training run, a file, a cell path that is a file.
  const before = snapshot(run);
  oneLine(runCli(['experiment', 'run', 'sgemm-norms', '--preset', 'smoke', '--out', run]), 2, /--out: .*run holds the files of a training run; an experiment needs a new or empty folder/);
  assert.deepEqual(snapshot(run), before);
  const afile = path.join(W, 'afile');
  fs.writeFileSync(afile, 'keep me');
  oneLine(runCli(['experiment', 'run', 'sgemm-norms', '--preset', 'smoke', '--out', afile]), 2, /--out: .*afile is a file; expected a folder for the experiment/);
  const withFile = tmpDir('glonet-hostile-cellfile-');
  const ids = fakeExperiment(withFile);
  fs.rmSync(path.join(withFile, 'cells', ids[0]), { recursive: true });
  fs.writeFileSync(path.join(withFile, 'cells', ids[0]), 'not a folder');
  oneLine(runCli(['experiment', 'run', 'sgemm-norms', '--preset', 'smoke', '--out', withFile]), 2, new RegExp(`cells/${ids[0]}: is a file, not the cell's folder`));
  oneLine(runCli(['experiment', 'run', 'sgemm-norms', '--preset', 'smoke', '--shard', '1/3', '--shard-count', '5', '--out', path.join(W, 'sh')]), 2, /--shard-count 5: --shard 1\/3 already says the number of shards/);
  // --out at the root, on a file system that cannot be written.
  oneLine(runCli(['train', ...T(), '--out', '/']), 2, /--out: \/ is the root of the file system/);
  oneLine(runCli(['train', ...T(), '--out', '/proc/glonet-run'], BOX), 2, /--out: cannot make the folder \/proc\/glonet-run \(the file system there takes no new folders\); choose a folder you can write to/);
  oneLine(runCli(['experiment', 'run', 'sgemm-norms', '--preset', 'smoke', '--out', '/proc/glonet-exp'], BOX), 2, /--out: cannot make the folder \/proc\/glonet-exp/);
  // Bad numbers: hexadecimal, momentum that grows without bound, a port beyond 65535.
  oneLine(runCli(['train', ...T(), '--lr', '0x10', '--out', o]), 2, /--lr <x>.*expected a positive number in decimal .*got '0x10'/);
  oneLine(runCli(['train', ...T(), '--optimizer', 'sgd', '--momentum', '5', '--out', o]), 2, /--momentum <x>.*from 0 up to \(not including\) 1/);
  oneLine(runCli(['web', run, '--port', '65536']), 2, /--port <p>.*expected a port from 0 to 65535/);
  oneLine(runCli(['train', '--model', 'resnet20', '--dataset', 'cifar10', '--data', afile, '--depth', '20', '--out', o]), 2, /--data: .*afile is a file; CIFAR-10 is read from a folder holding data_batch_1\.bin/);
  assert.ok(!fs.existsSync(o));

  // --resume with another engine: refused before "resuming" is printed or analysis.json deleted.
  const e = copyRun('engine');
  const metrics = JSON.parse(fs.readFileSync(path.join(e, 'metrics.json'), 'utf8'));
  if (metrics.engine !== 'tfjs') {
    const snap = snapshot(e);
    const r = runCli(['train', ...T(), '--epochs', '3', '--fast', 'off', '--out', e, '--resume']);
    oneLine(r, 2, new RegExp(`--resume: .*engine was trained with the ${metrics.engine} engine, this run uses tfjs; pass the same --fast setting`));
    assert.doesNotMatch(r.stdout, /resuming/);
    assert.deepEqual(snapshot(e), snap, 'analysis.json and everything else kept');
  }
  // A run that diverged in its first epoch: the hint does not send the user to --resume.
  const div = path.join(W, 'diverged');
  const d1 = runCli(['train', ...T(), '--lr', '1e30', '--out', div]);
  oneLine(d1, 1, /training diverged/);
  oneLine(runCli(['train', ...T(), '--out', div]), 2, /--out: .*diverged already holds a run that diverged in epoch 1; it has no epoch to resume from: replace it with --overwrite, or choose another --out/);
  assert.equal(runCli(['train', ...T(), '--out', div, '--overwrite']).code, 0);

  // web --out over an earlier site keeps the files the user added (a CNAME).
  const site = path.join(W, 'site');
  assert.equal(runCli(['web', run, '--out', site, '--backend', 'cpu']).code, 0);
  fs.writeFileSync(path.join(site, 'CNAME'), 'glonet.example.org\n');
  fs.mkdirSync(path.join(site, 'extra'));
  fs.writeFileSync(path.join(site, 'extra', 'notes.md'), 'mine');
  assert.equal(runCli(['web', run, '--out', site, '--backend', 'cpu']).code, 0);
  assert.equal(fs.readFileSync(path.join(site, 'CNAME'), 'utf8'), 'glonet.example.org\n');
  assert.equal(fs.readFileSync(path.join(site, 'extra', 'notes.md'), 'utf8'), 'mine');
  assert.match(fs.readFileSync(path.join(site, 'index.html'), 'utf8'), /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self' 'wasm-unsafe-eval';/);
});

// ---------------------------------------------------------------------------------------------
// The library.

test('the library: runTraining checks its options as the CLI does (GlonetError, one line, nothing written); the GloNet layer refuses a width that would break the wasm backend, which keeps working', async () => {
  const base: RunConfig = { ...familyDefaults('mlp'), model: 'mlp', arch: 'glonet', dataset: 'csv', data: csv, target: 'y', depth: 2, epochs: 1, seed: 0, augment: false, backend: 'cpu', fast: 'off' };
  const quiet = { log: () => {} };
  for (const [change, pattern] of [
    [{ seed: -1 }, /^--seed: expected a non-negative integer, got -1$/],
    [{ seed: 1.5 }, /^--seed: expected a non-negative integer, got 1\.5$/],
    [{ batchSize: NaN }, /^--batch-size: expected a positive integer, got NaN$/],
    [{ optimizer: 'bogus' }, /^--optimizer: expected one of adam, sgd, got 'bogus'$/],
    [{ lr: 0 }, /^--lr: expected a positive number, got 0$/],
    [{ momentum: 5 }, /^--momentum: expected a number from 0 up to \(not including\) 1/],
    [{ epochs: 1e9 }, /^--epochs: at most 100,000/],
    [{ depth: 1e11 }, /^--depth: --model mlp: at most 10,000/],
    [{ width: 1e9 }, /^--width: --model mlp: at most 4,096/],
    [{ augment: 'yes' }, /^--augment: expected true or false/],
    [{ schedule: 'cosine' }, /^--schedule: expected one of constant, step, got 'cosine'$/],
  ] as Array<[Partial<Record<keyof RunConfig, unknown>>, RegExp]>) {
    const out = path.join(W, 'lib-never');
    await assert.rejects(runTraining({ ...base, ...change } as RunConfig, out, quiet), (e: Error) =>
      e instanceof GlonetError && e.kind === 'input' && pattern.test(e.message) && !e.message.includes('\n'), JSON.stringify(change));
    assert.ok(!fs.existsSync(out), `${JSON.stringify(change)}: nothing written`);
  }
  await assert.rejects(runTraining({ ...base, seed: -1 }, path.join(W, 'lib-never'), quiet), RunConfigError);

  await initBackend('wasm');
  const sum = (layer: GloNet) => (layer.apply([tf.ones([2, 3]), tf.ones([2, 5])]) as tf.Tensor);
  assert.throws(() => new GloNet({ width: 1e9 }), (e: Error) => e instanceof GloNetShapeError && /GloNet layer: width: at most 1,048,576/.test(e.message));
  assert.throws(() => new GloNet({ width: -1 }), GloNetShapeError);
  // A width within the limit on a batch whose padded sum would not fit: refused before the backend allocates it.
  const wide = new GloNet({ width: 2 ** 20 });
  assert.throws(() => wide.apply([tf.ones([300, 3]), tf.ones([300, 5])]), (e: Error) => e instanceof GloNetShapeError && /the sum would be of shape \[300, 1048576\]/.test(e.message));
  // The wasm backend still computes: padding and sums are right.
  const s = sum(new GloNet({}));
  assert.deepEqual(Array.from(s.dataSync()), [2, 2, 2, 1, 1, 2, 2, 2, 1, 1]);
  assert.deepEqual(Array.from(tf.pad(tf.ones([1, 2]), [[0, 0], [0, 2]]).dataSync()), [1, 1, 0, 0]);
  // A model.json declaring such a layer is refused as a file (one line), the backend intact.
  const mj = path.join(W, 'wide-model');
  fs.mkdirSync(mj);
  fs.writeFileSync(path.join(mj, 'model.json'), JSON.stringify({
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'GloNet', config: { name: 'g', width: 1e9, batch_input_shape: [null, 3] } }] } },
    weightsManifest: [{ paths: [], weights: [] }],
  }));
  await assert.rejects(tf.loadLayersModel(fileSystem(mj)), (e: Error) => /width: at most 1,048,576/.test(e.message));
  assert.deepEqual(Array.from(tf.pad(tf.ones([1, 2]), [[0, 0], [0, 1]]).dataSync()), [1, 1, 0]);
  await initBackend('cpu');
});
