/**
 * One consistent commit per epoch, from the user's side: `glonet train` child processes are killed
 * (SIGKILL at seeded random moments, SIGINT, SIGTERM, and SIGKILL right before each file-system
 * step of an epoch's commit), then resumed; wherever the kill landed, every committed epoch folder
 * is complete, nothing is left behind after the resume, and the final weights are byte for byte
 * those of a run never interrupted. The library's `resume: true` handles new, half-done and
 * finished folders alike, and goes back past a damaged epoch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Rng } from '../src/random.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { epochFolderName, lastConsistentEpoch } from '../src/train/checkpoint.js';
import { tempNamePid } from '../src/io.js';
import { OutFolderError } from '../src/errors.js';
import type { Metrics } from '../src/contracts.js';
import type { RunConfig } from '../src/vocabulary.js';
import { BIN, ROOT, runCli, tmpDir } from './helpers.js';

const quiet = { progress: createProgress({ quiet: true }), log: () => {} };

/** A regression CSV small enough that an epoch takes milliseconds: the commits dominate. */
function dataCsv(dir: string, rows = 1200): string {
  const file = path.join(dir, 'data.csv');
  const lines = ['a,b,c,y'];
  for (let i = 0; i < rows; i++) {
    const a = (i * 7) % 19, b = (i * 13) % 11, c = (i * 5) % 3;
    lines.push(`${a},${b},${c},${(a * 0.3 - b * 0.2 + c + Math.sin(i)).toFixed(4)}`);
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const trainArgs = (csv: string, out: string, epochs: number) => ['train', '--dataset', 'csv', '--data', csv, '--target', 'y', '--depth', '6', '--batch-size', '32', '--epochs', String(epochs), '--no-report', '--out', out];

/** Every file under `dir` whose name is a temporary name of src/io.ts or of an epoch commit. */
function leftovers(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => tempNamePid(path.basename(f)) !== undefined);
}

const epochsWithoutTime = (m: Metrics) => m.epochs.map(({ seconds: _s, ...rest }) => rest);
const readMetrics = (dir: string): Metrics => JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8'));

/** What must hold in a run folder right after a kill, wherever it landed. */
function assertCommittedIntact(dir: string, where: string): number {
  if (!fs.existsSync(dir)) return 0;
  const { found, damaged } = lastConsistentEpoch(dir);
  assert.deepEqual(damaged, [], `${where}: every epoch folder is complete`);
  if (fs.existsSync(path.join(dir, 'metrics.json'))) {
    const published = readMetrics(dir).epochs.length;
    assert.ok(found && (published === found.epoch || published === found.epoch - 1), `${where}: metrics.json holds epoch ${published}, the commit is epoch ${found?.epoch}`);
  }
  return found?.epoch ?? 0;
}

/** The final state after the resume: nothing left behind, one epoch folder, the reference's bytes. */
function assertSameAsReference(dir: string, ref: string, epochs: number, where: string): void {
  assert.deepEqual(leftovers(dir), [], `${where}: no temporary files`);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'checkpoint')), [epochFolderName(epochs)], `${where}: one epoch folder`);
  assert.ok(fs.readFileSync(path.join(dir, 'model', 'weights.bin')).equals(fs.readFileSync(path.join(ref, 'model', 'weights.bin'))), `${where}: final weights equal byte for byte`);
  assert.deepEqual(epochsWithoutTime(readMetrics(dir)), epochsWithoutTime(readMetrics(ref)), `${where}: same metrics`);
}

/** Start `glonet train`; resolves when it ends. `onLine` sees its stdout line by line. */
function startTrain(args: string[], onLine: (line: string, child: ReturnType<typeof spawn>) => void = () => {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) onLine(l, child);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout })));
}

test('SIGKILL, SIGINT and SIGTERM at seeded random moments: resumed runs end bit-identical to an uninterrupted one', async () => {
  const dir = tmpDir();
  // Epochs long enough (9,600 training rows) that a kill lands in the epoch after the one a line
  // reports: stdout reaches the test in chunks several epochs late when epochs take a few ms.
  const csv = dataCsv(dir, 12000);
  const EPOCHS = 40;
  const ref = path.join(dir, 'ref');
  const r = runCli(trainArgs(csv, ref, EPOCHS));
  assert.equal(r.code, 0, r.stderr);

  const out = path.join(dir, 'killed');
  const rng = new Rng(12);
  const kills: NodeJS.Signals[] = ['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGINT', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGKILL'];
  const interrupted: NodeJS.Signals[] = [];
  let finished = false;
  for (const [i, sig] of kills.entries()) {
    if (finished) break;
    // A seeded moment inside the training that is left: 0-3 ms after the run reports its k-th
    // epoch, k in the first quarter of what is left (so every kill leaves room for the next), so
    // in the next epoch or in a commit. (Fixed delays after the
    // start missed the whole run on a fast machine, where 10 epochs took 72 ms.)
    const left = EPOCHS - (fs.existsSync(out) ? (lastConsistentEpoch(out).found?.epoch ?? 0) : 0);
    const after = 1 + Math.floor(rng.next() * Math.max(1, Math.floor((left - 1) / 4)));
    const delay = Math.floor(rng.next() * 4);
    let seen = 0;
    const res = await startTrain([...trainArgs(csv, out, EPOCHS), '--resume'], (line, child) => {
      if (line.startsWith('epoch ') && ++seen === after) setTimeout(() => child.kill(sig), delay);
    });
    const where = `kill ${i + 1} (${sig} ${delay} ms after epoch ${after} of this run)`;
    const committed = assertCommittedIntact(out, where);
    if (res.code === 0 || (res.signal === sig && sig !== 'SIGKILL')) {
      // Ended, or stopped by the signal after training had ended (the handler is gone by then).
      assert.equal(committed, EPOCHS, `${where}: the run had finished: ${res.stderr}`);
      finished = true;
      continue;
    }
    interrupted.push(sig);
    if (sig === 'SIGKILL') {
      assert.equal(res.signal, 'SIGKILL', `${where}: ${res.stderr}`);
    } else {
      // Asked to stop: the epoch in progress is dropped, every committed one kept, one line.
      assert.equal(res.code, sig === 'SIGINT' ? 130 : 143, `${where}: ${res.stderr}`);
      assert.equal(res.stderr, committed > 0 ? `glonet: interrupted after epoch ${committed}; continue with --resume\n`
        : 'glonet: interrupted before the first epoch finished; nothing was saved, run the command again to start\n', where);
      assert.deepEqual(leftovers(out), [], `${where}: a clean stop leaves nothing behind`);
    }
  }
  // The test means something only if the signals landed: SIGKILL at least twice, and a graceful stop.
  assert.ok(interrupted.filter((s) => s === 'SIGKILL').length >= 2, `runs interrupted: ${interrupted.join(', ') || 'none'}`);
  assert.ok(interrupted.some((s) => s !== 'SIGKILL'), `no SIGINT or SIGTERM landed during training: ${interrupted.join(', ')}`);
  const last = runCli([...trainArgs(csv, out, EPOCHS), '--resume']);
  assert.equal(last.code, 0, last.stderr);
  assertSameAsReference(out, ref, EPOCHS, 'after the kills');
});

/**
 * A child running the CLI with the file system's writing calls counted: it kills itself with
 * SIGKILL right before call number KILL_AT (0: never), and logs each call when LOG is set.
 */
const KILL_CHILD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const [killAt, log, ...args] = process.argv.slice(2);
const append = fs.appendFileSync;
let n = 0;
let inside = false;
for (const name of ['writeFileSync', 'renameSync', 'rmSync', 'mkdirSync', 'copyFileSync', 'unlinkSync', 'rmdirSync', 'writeSync', 'fsyncSync', 'openSync']) {
  const orig = fs[name];
  fs[name] = function (...a) {
    if (inside || (name === 'openSync' && !/[wa]/.test(String(a[1] ?? 'r')))) return orig.apply(this, a);
    n++;
    inside = true;
    if (log) append(log, n + ' ' + name + ' ' + a[0] + '\\n');
    inside = false;
    if (n === Number(killAt)) process.kill(process.pid, 'SIGKILL');
    return orig.apply(this, a);
  };
}
syncBuiltinESMExports();
const { main } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'cli', 'index.js'))});
process.exitCode = await main(['node', 'glonet', ...args]);
`;

test('SIGKILL right before each file-system step of an epoch\'s commit: the resume ends bit-identical', async () => {
  const dir = tmpDir();
  const csv = dataCsv(dir, 300);
  const script = path.join(dir, 'kill-child.mjs');
  fs.writeFileSync(script, KILL_CHILD);
  const EPOCHS = 3;
  // The cpu backend starts fastest; the fused engine trains either way.
  const child = (killAt: number, out: string, log = '') => spawnSync(process.execPath, [script, String(killAt), log, ...trainArgs(csv, out, EPOCHS), '--backend', 'cpu'], { cwd: ROOT, encoding: 'utf8' });
  const ref = path.join(dir, 'ref');
  const log = path.join(dir, 'steps.log');
  assert.equal(child(0, ref, log).status, 0);
  const steps = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => {
    const [n, op, target] = l.split(' ');
    return { n: Number(n), op, target };
  });
  // Epoch 2's commit and publication: from its temporary folder to the start of epoch 3's.
  const from = steps.find((s) => s.target.includes(`.${epochFolderName(2)}.tmp`))!.n;
  const to = steps.find((s) => s.target.includes(`.${epochFolderName(3)}.tmp`))!.n;
  const window = steps.filter((s) => s.n >= from && s.n < to);
  // Every step that moves or removes something, and the first byte written of each file.
  const points = window.filter((s, i) => ['renameSync', 'rmSync', 'copyFileSync'].includes(s.op) || (s.op === 'writeSync' && window[i - 1]?.op !== 'writeSync'));
  assert.ok(points.length >= 10, `${points.length} kill points in the commit of epoch 2`);
  const cfg = readMetrics(ref).config as RunConfig;
  process.stdout.write(`# ${points.length} kill points: ${points.map((p) => `${p.n} ${p.op}`).join(', ')}\n`);
  for (const p of points) {
    const out = path.join(dir, `k${p.n}`);
    const killed = child(p.n, out);
    const where = `killed before step ${p.n} (${p.op} ${path.relative(out, p.target)})`;
    assert.equal(killed.signal, 'SIGKILL', `${where}: ${killed.stderr}`);
    const committed = assertCommittedIntact(out, where);
    assert.ok(committed === 1 || committed === 2, `${where}: epoch ${committed} committed`);
    await runTraining(cfg, out, { ...quiet, resume: true });
    assertSameAsReference(out, ref, EPOCHS, where);
  }
});

function libraryCfg(csv: string, over: Partial<RunConfig> = {}): RunConfig {
  return { model: 'mlp', arch: 'glonet', dataset: 'csv', data: csv, target: 'y', depth: 4, width: 16, epochs: 4, batchSize: 32, optimizer: 'adam', lr: 0.01, momentum: 0.9, l2: 1e-5, schedule: 'constant', seed: 3, augment: false, backend: 'cpu', fast: 'off', ...over };
}

/** A fresh folder with a 300-row CSV and the uninterrupted 4-epoch run on it (`whole`), the reference. */
async function uninterrupted(): Promise<{ dir: string; csv: string; whole: string }> {
  const dir = tmpDir();
  const csv = dataCsv(dir, 300);
  const whole = path.join(dir, 'whole');
  await runTraining(libraryCfg(csv), whole, quiet);
  return { dir, csv, whole };
}

test('resume: true takes a folder that is new, half done or finished, without asking; the TF.js engine resumes bit for bit', async () => {
  const { dir, csv, whole } = await uninterrupted();
  const cell = path.join(dir, 'cell');
  await runTraining(libraryCfg(csv, { epochs: 2 }), cell, { ...quiet, resume: true });      // new
  const lines: string[] = [];
  await runTraining(libraryCfg(csv), cell, { ...quiet, log: (l) => lines.push(l), resume: true }); // half done
  assert.ok(lines.some((l) => /resuming .* after epoch 2/.test(l)), lines.join('\n'));
  assertSameAsReference(cell, whole, 4, 'tfjs engine, resumed after epoch 2');
  const before = fs.readFileSync(path.join(cell, 'model', 'weights.bin'));
  const again = await runTraining(libraryCfg(csv), cell, { ...quiet, resume: true });        // finished
  assert.equal(again.metrics.epochs.length, 4);
  assert.ok(fs.readFileSync(path.join(cell, 'model', 'weights.bin')).equals(before), 'a finished run is not trained again');
  // Without resume (or overwrite) the finished run is refused, and left as it was.
  await assert.rejects(runTraining(libraryCfg(csv), cell, quiet), (e: Error) => e instanceof OutFolderError && /already holds a finished run \(4 of 4 epochs\)/.test(e.message));
  assertSameAsReference(cell, whole, 4, 'after the refusal');
});

test('a damaged newest epoch: --resume goes back to the last consistent one and says so; none at all: refused unless --overwrite', async () => {
  const { dir, csv, whole } = await uninterrupted();
  const run = path.join(dir, 'run');
  await runTraining(libraryCfg(csv, { epochs: 2 }), run, quiet);
  // An epoch 3 folder whose weights were damaged after the commit (a disk error, a bad copy).
  const e2 = path.join(run, 'checkpoint', epochFolderName(2));
  const e3 = path.join(run, 'checkpoint', epochFolderName(3));
  fs.cpSync(e2, e3, { recursive: true });
  const commit = JSON.parse(fs.readFileSync(path.join(e3, 'commit.json'), 'utf8'));
  commit.epoch = 3;
  fs.writeFileSync(path.join(e3, 'commit.json'), JSON.stringify(commit));
  const w = fs.readFileSync(path.join(e3, 'weights.bin'));
  w[10] ^= 0xff;
  fs.writeFileSync(path.join(e3, 'weights.bin'), w);
  const lines: string[] = [];
  await runTraining(libraryCfg(csv), run, { ...quiet, log: (l) => lines.push(l), resume: true });
  assert.ok(lines.some((l) => /epoch 3 is incomplete \(.*weights\.bin: damaged.*\); going back to epoch 2, the last consistent one/.test(l)), lines.join('\n'));
  assertSameAsReference(run, whole, 4, 'after going back');

  // The only epoch damaged: nothing consistent to resume from.
  const f = path.join(run, 'checkpoint', epochFolderName(4), 'optimizer.bin');
  fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 8));
  const r = runCli(['train', '--dataset', 'csv', '--data', csv, '--target', 'y', '--depth', '4', '--out', run, '--resume']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^glonet: --resume: .*run has no consistent epoch to resume from \(epoch 4: .*optimizer\.bin: damaged.*\); start the run again with --overwrite\n$/);
  await runTraining(libraryCfg(csv), run, { ...quiet, resume: true, overwrite: true });
  assertSameAsReference(run, whole, 4, 'started again with overwrite');
});
