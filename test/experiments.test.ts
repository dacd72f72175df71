import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawn, spawnSync } from 'node:child_process';
import type { ExperimentCell, ExperimentResults, Verdict } from '../src/contracts.js';
import { EXPERIMENTS, getExperiment } from '../src/experiments/index.js';
import { runExperiment } from '../src/experiments/runner.js';
import { inShard, resolveShard } from '../src/experiments/shard.js';
import { epochDrift } from '../src/experiments/results.js';
import { estimateBase, estimatePaperSeconds, presetTimings } from '../src/experiments/timing.js';
import { gridCells, type Experiment } from '../src/experiments/experiment.js';
import { sgemmPath } from '../src/data/tabular.js';
import { BIN, ROOT, runCli, tmpDir } from './helpers.js';

const VERDICTS: Verdict[] = ['holds', 'partly', 'fails', 'not-measured'];
const quiet = () => {};
const readResults = (dir: string): ExperimentResults => JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));

/** The cells with what varies between machines and runs (timings, load) left out. */
function numbers(r: ExperimentResults): unknown[] {
  return r.cells.map(({ seconds: _s, meanEpochSeconds: _m, epochDrift: _d, load: _l, ...rest }) => rest);
}

/** A real CSV for csv-depth: every 100th SGEMM row, the first run time as the target. */
function sgemmCsv(): string {
  const lines = zlib.gunzipSync(fs.readFileSync(sgemmPath())).toString('utf8').trim().split('\n');
  const file = path.join(tmpDir(), 'sgemm-rows.csv');
  fs.writeFileSync(file, [lines[0], ...lines.slice(1).filter((_, i) => i % 100 === 0)].join('\n') + '\n');
  return file;
}

const smokeDirs = new Map<string, string>();

test('every experiment runs at the smoke preset and reports its claims, cells and charts', async () => {
  const csv = sgemmCsv();
  for (const exp of EXPERIMENTS) {
    const out = tmpDir(`glonet-exp-${exp.name}-`);
    const data = exp.datasets[0] === 'csv' ? { data: csv, target: 'Run1 (ms)', drop: ['Run2 (ms)', 'Run3 (ms)', 'Run4 (ms)'] } : {};
    const r = await runExperiment(exp, { preset: 'smoke', out, data, log: quiet });
    smokeDirs.set(exp.name, out);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'experiment.json'), 'utf8'));
    assert.equal(r.failed, 0, exp.name);
    assert.deepEqual(r.results.missing, [], exp.name);
    assert.equal(r.results.cells.length, manifest.cells.length, exp.name);
    assert.deepEqual(r.results.cells.map((c) => c.id), manifest.cells, `${exp.name}: cells in the grid's order`);
    const results = readResults(out);
    assert.equal(results.experiment, exp.name);
    assert.equal(results.preset, 'smoke');
    assert.equal(results.claims.length, exp.claims.length);
    for (const c of results.claims) {
      assert.ok(VERDICTS.includes(c.verdict), `${exp.name} ${c.id}: ${c.verdict}`);
      for (const k of ['id', 'text', 'paper', 'ours', 'rule'] as const) assert.ok(c[k].length > 0, `${exp.name} ${c.id}.${k}`);
    }
    for (const c of results.cells) {
      for (const f of ['metrics.json', 'analysis.json', 'report.html', 'cell.json']) assert.ok(fs.existsSync(path.join(out, 'cells', c.id, f)), `${c.id}/${f}`);
      assert.ok(c.effectiveDepth != null && c.effectiveDepth.normShare.blocks >= 1, c.id);
      assert.ok(c.seconds > 0 && c.nTrain > 0, c.id);
    }
    const md = fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8');
    assert.match(md, /## Claims/);
    for (const c of results.claims) assert.ok(md.includes(c.text) && md.includes(c.rule), `${exp.name}: REPORT.md has ${c.id} and its rule`);
    // REPORT.md shows its charts as SVG files beside it.
    const linked = [...md.matchAll(/!\[[^\]]*\]\((charts\/[^)]+\.svg)\)/g)].map((m) => m[1]);
    assert.ok(linked.length >= 1, `${exp.name}: REPORT.md links its charts`);
    for (const f of linked) assert.match(fs.readFileSync(path.join(out, f), 'utf8'), /^<svg[^>]*xmlns=/, `${exp.name}: ${f} is an SVG file`);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg/, `${exp.name}: charts`);
    assert.doesNotMatch(html, /could not be drawn/, `${exp.name}: every chart draws`);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/)/i, 'self-contained');
  }
});

test('shards 1/2 (flag) and 2/2 (Slurm array variables) in one folder: report names the missing cells, then equals an unsharded run', () => {
  const whole = smokeDirs.get('sgemm-depth');
  assert.ok(whole, 'the smoke test ran first');
  const out = tmpDir('glonet-exp-shards-');
  const first = runCli(['experiment', 'run', 'sgemm-depth', '--preset', 'smoke', '--out', out, '--shard', '1/2']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /shard 1\/2 \(--shard\) runs 5/);
  const ids: string[] = JSON.parse(fs.readFileSync(path.join(out, 'experiment.json'), 'utf8')).cells;
  const second = ids.filter((_, i) => i % 2 === 1);
  const report = runCli(['experiment', 'report', out]);
  assert.equal(report.code, 0, report.stderr);
  assert.equal(readResults(out).missing.map((m) => m.id).join(), second.join());
  for (const id of second) {
    assert.ok(report.stdout.includes(id), `report names the missing cell ${id}`);
    assert.ok(fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8').includes(`- ${id} (not started)`));
  }
  const env = { ...process.env, SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '2' };
  const slurm = spawnSyncCli(['experiment', 'run', 'sgemm-depth', '--preset', 'smoke', '--out', out], env);
  assert.equal(slurm.code, 0, slurm.stderr);
  assert.match(slurm.stdout, /shard 2\/2 \(Slurm array task 1\) runs 5/);
  const merged = readResults(out);
  assert.deepEqual(merged.missing, []);
  assert.deepEqual(numbers(merged), numbers(readResults(whole)));
  // Verdicts on wall-clock times (timed claims) differ between any two runs; the rest must not.
  const untimed = (r: ExperimentResults) => r.claims.map((c) => (c.timed ? `${c.id}: timed` : `${c.id}: ${c.verdict}`));
  assert.deepEqual(untimed(merged), untimed(readResults(whole)));
});

/** The CLI with its own environment (a Slurm array task's variables). */
function spawnSyncCli(args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('a run killed mid-cell and rerun with the same arguments ends with the numbers of an uninterrupted run', async () => {
  const whole = smokeDirs.get('mnist-truncation');
  assert.ok(whole, 'the smoke test ran first');
  const out = tmpDir('glonet-exp-kill-');
  const args = [BIN, 'experiment', 'run', 'mnist-truncation', '--preset', 'smoke', '--out', out];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'ignore' });
  const firstMetrics = path.join(out, 'cells', 'mlp-glonet-d10-s0', 'metrics.json');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Kill as soon as the first cell has finished its first epoch (of two).
  for (;;) {
    if (fs.existsSync(firstMetrics)) {
      try {
        if (JSON.parse(fs.readFileSync(firstMetrics, 'utf8')).epochs.length >= 1) break;
      } catch { /* being replaced: read again */ }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(!fs.existsSync(path.join(out, 'cells', 'mlp-glonet-d10-s1', 'cell.json')), 'killed before the last cell finished');
  assert.ok(!fs.existsSync(path.join(out, 'results.json')), 'killed before the report');
  const rerun = runCli(['experiment', 'run', 'mnist-truncation', '--preset', 'smoke', '--out', out]);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.deepEqual(numbers(readResults(out)), numbers(readResults(whole)));
});

test('a rerun skips finished cells; another grid in the same folder is refused in one line', () => {
  const dir = smokeDirs.get('mnist-truncation')!;
  const again = runCli(['experiment', 'run', 'mnist-truncation', '--preset', 'smoke', '--out', dir]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /0 cells run, 2 finished earlier, 0 failed/);
  const other = runCli(['experiment', 'run', 'mnist-truncation', '--preset', 'smoke', '--seeds', '3', '--out', dir]);
  assert.equal(other.code, 2);
  assert.match(other.stderr.split('\n')[0], /holds a run of mnist-truncation --preset smoke with cells 2 cells .*another --out/);
  const wrong = runCli(['experiment', 'run', 'sgemm-depth', '--out', dir]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /holds a run of mnist-truncation/);
  const unknown = runCli(['experiment', 'run', 'nosuch']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^glonet: unknown experiment 'nosuch': expected one of sgemm-depth, /);
  const noCsv = runCli(['experiment', 'run', 'csv-depth', '--out', tmpDir()]);
  assert.equal(noCsv.code, 2);
  assert.match(noCsv.stderr, /--data and --target: csv-depth trains on your CSV file/);
  const notFolder = runCli(['experiment', 'report', tmpDir()]);
  assert.equal(notFolder.code, 2);
  assert.match(notFolder.stderr, /not an experiment folder \(no experiment\.json\)/);
});

test('experiment list: every experiment, its claim and its cells per preset', () => {
  const r = runCli(['experiment', 'list']);
  assert.equal(r.code, 0, r.stderr);
  for (const exp of EXPERIMENTS) {
    assert.ok(r.stdout.includes(exp.name) && r.stdout.includes(exp.tests), exp.name);
  }
  assert.match(r.stdout, /sgemm-depth .*\n.*\n {2}cells: smoke 10, quick 21, paper 29/);
  // The long preset is the image experiments' only: all of Fashion-MNIST.
  assert.match(r.stdout, /\ncnn .*\n.*\n {2}cells: smoke \d+, quick \d+, long \d+, paper \d+\n(.*\n)? {2}long: /);
  assert.match(r.stdout, /quick: /);
  const none = runCli(['experiment', 'run', 'sgemm-depth', '--preset', 'long', '--out', path.join(tmpDir(), 'x')]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--preset long: sgemm-depth has the presets smoke, quick, paper/);
});

test('shards from the flag, Slurm arrays and Kubernetes Indexed Jobs; every cell in exactly one shard', () => {
  assert.deepEqual(resolveShard({ index: 2, count: 3 }, undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '9' }), { index: 2, count: 3, source: '--shard' });
  assert.deepEqual(resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_COUNT: '4' }), { index: 3, count: 4, source: 'Slurm array task 7' });
  assert.deepEqual(resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '0', GLONET_SHARD_COUNT: '3' }), { index: 1, count: 3, source: 'Kubernetes completion index 0' });
  assert.deepEqual(resolveShard(undefined, 4, { JOB_COMPLETION_INDEX: '3' }), { index: 4, count: 4, source: 'Kubernetes completion index 3' });
  assert.equal(resolveShard(undefined, undefined, {}), null);
  assert.throws(() => resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '1' }), /--shard-count N or set GLONET_SHARD_COUNT/);
  assert.throws(() => resolveShard(undefined, 2, { JOB_COMPLETION_INDEX: '2' }), /not below the shard count 2/);
  assert.throws(() => resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '9', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '4' }), /outside the array/);
  assert.throws(() => resolveShard(undefined, 3, {}), /--shard-count applies to Kubernetes Indexed Jobs/);
  for (const count of [1, 2, 3, 7]) {
    for (let i = 0; i < 29; i++) {
      const owners = Array.from({ length: count }, (_, s) => inShard(i, { index: s + 1, count, source: '' })).filter(Boolean);
      assert.equal(owners.length, 1);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Claim rules on made-up cells

function cell(arch: string, depth: number, o: Partial<ExperimentCell> = {}): ExperimentCell {
  return {
    id: `${arch}-${depth}-${o.seed ?? 0}`, model: 'mlp', arch, depth, seed: 0, dataset: 'sgemm', nTrain: 100, epochs: 10,
    bestTestError: 0.02, bestEpoch: 10, meanEpochSeconds: 1, seconds: 0, engine: 'fused-native', backend: 'wasm', effectiveDepth: null, ...o,
  };
}
const acc = (arch: string, depth: number, percent: number, seed = 0) => cell(arch, depth, { seed, bestTestError: 1 - percent / 100, bestTestAccuracy: percent / 100 });
const ed = (normBlocks: number, byError: number | null) => ({ byError, normShare: { share: 0.95, blocks: normBlocks }, byNorm: normBlocks, tolerance: 0.005, toleranceKind: 'accuracy-points' as const, definitions: {} });
function verdict(exp: Experiment, id: string, cells: ExperimentCell[]): Verdict {
  const claim = exp.claims.find((c) => c.id === id);
  assert.ok(claim, id);
  return claim.judge(cells).verdict;
}

test('claim rules fed made-up cells give the expected verdicts', () => {
  const sg = getExperiment('sgemm-depth');
  const errs = (arch: string, values: Record<number, number>) => Object.entries(values).map(([d, e]) => cell(arch, Number(d), { bestTestError: e }));
  assert.equal(verdict(sg, 'glonet-depth-flat', errs('glonet', { 10: 0.020, 100: 0.022, 1000: 0.021 })), 'holds');
  assert.equal(verdict(sg, 'glonet-depth-flat', errs('glonet', { 10: 0.020, 100: 0.030 })), 'partly');
  assert.equal(verdict(sg, 'glonet-depth-flat', errs('glonet', { 10: 0.020, 100: 0.050 })), 'fails');
  assert.equal(verdict(sg, 'glonet-depth-flat', errs('glonet', { 10: 0.020 })), 'not-measured');
  // Seeds are averaged: 0.02 and 0.03 at depth 100 is 0.025, 1.25x.
  assert.equal(verdict(sg, 'glonet-depth-flat', [...errs('glonet', { 10: 0.02, 100: 0.02 }), cell('glonet', 100, { seed: 1, bestTestError: 0.03 })]), 'holds');
  const vanilla = (v: Record<number, number>, nobn: Record<number, number>) => [...errs('vanilla', v), ...errs('vanilla-nobn', nobn)];
  assert.equal(verdict(sg, 'vanilla-collapse', vanilla({ 10: 0.02, 50: 1.9, 100: 2.7 }, { 10: 0.02, 50: 2.6, 100: 2.6 })), 'holds');
  assert.equal(verdict(sg, 'vanilla-collapse', vanilla({ 10: 0.02, 24: 1.0, 50: 1.9 }, { 10: 0.02, 50: 2.6 })), 'partly');
  assert.equal(verdict(sg, 'vanilla-collapse', vanilla({ 10: 0.02, 50: 0.1 }, { 10: 0.02, 50: 0.9 })), 'partly');
  assert.equal(verdict(sg, 'vanilla-collapse', vanilla({ 10: 0.02, 100: 0.03 }, { 10: 0.02, 100: 0.04 })), 'fails');
  assert.equal(verdict(sg, 'vanilla-collapse', vanilla({ 10: 0.02, 24: 0.03 }, {})), 'not-measured');
  // A cell that diverged before any finite epoch counts as collapsed.
  assert.equal(verdict(sg, 'vanilla-collapse', [cell('vanilla', 10), cell('vanilla', 100, { bestTestError: null })]), 'holds');
  assert.equal(verdict(sg, 'resnetv2-nobn-degrades', errs('resnetv2-nobn', { 10: 0.024, 100: 0.033, 200: 0.189 })), 'holds');
  assert.equal(verdict(sg, 'resnetv2-nobn-degrades', errs('resnetv2-nobn', { 10: 0.024, 100: 0.026 })), 'partly');
  assert.equal(verdict(sg, 'resnetv2-nobn-degrades', errs('resnetv2-nobn', { 10: 0.024, 100: 0.024 })), 'fails');
  // GloNet against ResNetv2: within the paper's margin (1.17) up to 100 blocks, ahead from 200.
  const versus = (g: Record<number, number>, r: Record<number, number>) => [...errs('glonet', g), ...errs('resnetv2', r)];
  assert.equal(verdict(sg, 'glonet-vs-resnetv2', versus({ 10: 0.021, 100: 0.022, 1000: 0.022 }, { 10: 0.018, 100: 0.019, 1000: 0.048 })), 'holds');
  assert.equal(verdict(sg, 'glonet-vs-resnetv2', versus({ 10: 0.0109, 100: 0.0102, 1000: 0.0101 }, { 10: 0.0067, 100: 0.0049, 1000: 0.0077 })), 'fails');
  assert.equal(verdict(sg, 'glonet-vs-resnetv2', versus({ 10: 0.021, 1000: 0.03 }, { 10: 0.02, 1000: 0.02 })), 'partly');
  assert.equal(verdict(sg, 'glonet-vs-resnetv2', versus({ 10: 0.021 }, { 24: 0.02 })), 'not-measured');
  assert.match(sg.claims.find((c) => c.id === 'glonet-vs-resnetv2')!.paper, /at most 1\.17 up to 100 blocks; d200 0\.78, d600 0\.55, d1000 0\.46/);
  const timed = (g: number, r: number, engines: [string, string] = ['fused-native', 'fused-native']) =>
    [cell('glonet', 100, { meanEpochSeconds: g, engine: engines[0] }), cell('resnetv2', 100, { meanEpochSeconds: r, engine: engines[1] })];
  assert.equal(verdict(sg, 'epoch-time', timed(0.5, 1)), 'holds');
  assert.equal(verdict(sg, 'epoch-time', timed(0.9, 1)), 'partly');
  assert.equal(verdict(sg, 'epoch-time', timed(1.2, 1)), 'fails');
  // Epochs over different numbers of rows do not compare (their time is not proportional to the rows).
  const unequal = [cell('glonet', 100, { meanEpochSeconds: 2.5, nTrain: 500 }), cell('resnetv2', 100, { meanEpochSeconds: 1, nTrain: 100 })];
  assert.equal(verdict(sg, 'epoch-time', unequal), 'not-measured');
  assert.match(sg.claims.find((c) => c.id === 'epoch-time')!.judge(unequal).ours, /not on the same training rows \(GloNet \/ ResNetv2: 500 \/ 100\)/);
  assert.equal(verdict(sg, 'epoch-time', timed(0.1, 10, ['fused-native', 'tfjs'])), 'not-measured');
  assert.match(sg.claims.find((c) => c.id === 'epoch-time')!.judge(timed(0.1, 10, ['fused-native', 'tfjs'])).ours, /not on one engine \(GloNet \/ ResNetv2: fused-native \/ tfjs\)/);

  const norms = getExperiment('sgemm-norms');
  const regulated = (blocks: number) => [cell('glonet', 100, { effectiveDepth: ed(blocks, 98) })];
  assert.equal(verdict(norms, 'glonet-self-regulates-sgemm', regulated(12)), 'holds');
  assert.equal(verdict(norms, 'glonet-self-regulates-sgemm', regulated(40)), 'partly');
  assert.equal(verdict(norms, 'glonet-self-regulates-sgemm', regulated(80)), 'fails');
  assert.equal(verdict(norms, 'glonet-self-regulates-sgemm', [cell('glonet', 100)]), 'not-measured');
  // Judged at the figure's depth: a 6-block GloNet using all its blocks says nothing about 100.
  assert.equal(verdict(norms, 'glonet-self-regulates-sgemm', [...regulated(12), cell('glonet', 6, { effectiveDepth: ed(6, 6) })]), 'holds');
  assert.equal(verdict(norms, 'glonet-self-regulates-sgemm', [cell('glonet', 6, { effectiveDepth: ed(6, 6) }), cell('glonet', 8, { effectiveDepth: ed(1, 1) })]), 'holds');

  // BN tampers with self-regulation: glonet-bn against glonet, norm share and blocks for the error.
  const pair = (g: [number, number], b: [number, number], depth = 100) =>
    [cell('glonet', depth, { effectiveDepth: ed(...g) }), cell('glonet-bn', depth, { effectiveDepth: ed(...b) })];
  assert.equal(verdict(norms, 'bn-tampers-sgemm', pair([12, 40], [90, 95])), 'holds');
  assert.equal(verdict(norms, 'bn-tampers-sgemm', pair([12, 60], [90, 95])), 'partly');
  assert.equal(verdict(norms, 'bn-tampers-sgemm', pair([12, 60], [20, 95])), 'fails');
  assert.equal(verdict(norms, 'bn-tampers-sgemm', [cell('glonet', 100, { effectiveDepth: ed(12, 40) })]), 'not-measured');
  // Seeds are averaged; another depth is used only when both archs lack the claim's.
  assert.equal(verdict(norms, 'bn-tampers-sgemm', pair([12, 40], [30, 95])), 'holds');
  assert.equal(verdict(norms, 'bn-tampers-sgemm', [...pair([12, 40], [30, 95]), cell('glonet-bn', 100, { seed: 1, effectiveDepth: ed(10, 95) })]), 'partly');
  assert.equal(verdict(norms, 'bn-tampers-sgemm', pair([3, 4], [8, 8], 8)), 'holds');

  const mnist = getExperiment('mnist-depth');
  assert.equal(verdict(mnist, 'glonet-mnist-flat', [acc('glonet', 6, 97.0), acc('glonet', 200, 96.5)]), 'holds');
  assert.equal(verdict(mnist, 'glonet-mnist-flat', [acc('glonet', 6, 97.0), acc('glonet', 200, 95.0)]), 'partly');
  assert.equal(verdict(mnist, 'glonet-mnist-flat', [acc('glonet', 6, 97.0), acc('glonet', 200, 90.0)]), 'fails');
  const base = (r: number, v: number) => [acc('resnetv2', 24, 97), acc('resnetv2', 200, r), acc('vanilla', 24, 97), acc('vanilla', 200, v)];
  assert.equal(verdict(mnist, 'baselines-mnist-decline', base(60, 11)), 'holds');
  assert.equal(verdict(mnist, 'baselines-mnist-decline', base(96.5, 11)), 'partly');
  assert.equal(verdict(mnist, 'baselines-mnist-decline', base(96.5, 96)), 'fails');
  assert.equal(verdict(mnist, 'baselines-mnist-decline', [acc('resnetv2', 24, 97)]), 'not-measured');

  const trunc = getExperiment('mnist-truncation');
  const keep = (...k: number[]) => k.map((b, seed) => cell('glonet', 50, { seed, effectiveDepth: ed(4, b) }));
  assert.equal(verdict(trunc, 'glonet-truncation', keep(6, 8, 10)), 'holds');
  assert.equal(verdict(trunc, 'glonet-truncation', keep(20, 30)), 'partly');
  assert.equal(verdict(trunc, 'glonet-truncation', keep(40, 45)), 'fails');

  const cnn = getExperiment('cnn');
  assert.equal(verdict(cnn, 'cnn-parity', [acc('glonet', 20, 91.08), acc('resnetv2', 20, 91.12)]), 'holds');
  assert.equal(verdict(cnn, 'cnn-parity', [acc('glonet', 20, 89), acc('resnetv2', 20, 91)]), 'partly');
  assert.equal(verdict(cnn, 'cnn-parity', [acc('glonet', 20, 80), acc('resnetv2', 20, 91)]), 'fails');
  assert.equal(verdict(cnn, 'cnn-parity', [acc('glonet', 20, 80)]), 'not-measured');

  const vit = getExperiment('vit');
  const enc = (g: number[], p: number[]) => [4, 5, 6].flatMap((d, i) => [acc('glonet', d, g[i]), acc('plain', d, p[i])]);
  assert.equal(verdict(vit, 'vit-glonet-matches', enc([70.9, 72.7, 72.9], [70.7, 70.9, 72.5])), 'holds');
  assert.equal(verdict(vit, 'vit-glonet-matches', enc([60, 72.7, 72.9], [70.7, 70.9, 72.5])), 'partly');
  assert.equal(verdict(vit, 'vit-glonet-matches', enc([60, 60, 60], [70.7, 70.9, 72.5])), 'fails');

  // csv-depth judges a numeric target with the sgemm-depth rules (a target of classes by accuracy: tables.test.ts).
  const csvClaims = getExperiment('csv-depth').claims;
  assert.deepEqual(csvClaims.map((c) => c.id), sg.claims.map((c) => c.id));
  for (const c of csvClaims) {
    const s = sg.claims.find((x) => x.id === c.id)!;
    assert.ok(c.rule.includes(s.rule), `${c.id}: the MSE rule is stated`);
    for (const cells of [[cell('glonet', 10, { bestTestError: 0.02 }), cell('glonet', 100, { bestTestError: 0.05 })], [cell('vanilla', 50, { bestTestError: 0.9 })]]) {
      assert.deepEqual(c.judge(cells), s.judge(cells), `${c.id}: the same verdict on MSE cells`);
    }
  }
});

test('the paper preset\'s time is extrapolated from measured cells: epoch time x depth x training rows', () => {
  const trunc = getExperiment('mnist-truncation');
  // The paper grid: 3 seeds of a 50-block GloNet for 200 epochs on the 8,000 bundled training digits.
  assert.deepEqual(estimatePaperSeconds(trunc, [cell('glonet', 50, { meanEpochSeconds: 0.1, nTrain: 8000 })]), { seconds: 60, unmeasured: [] });
  // A measured cell that took 5 s besides its 10 epochs of 0.1 s: 5 s more per paper cell.
  assert.ok(Math.abs(estimatePaperSeconds(trunc, [cell('glonet', 50, { meanEpochSeconds: 0.1, nTrain: 8000, seconds: 6 })])!.seconds - 75) < 1e-9);
  // Measured at 10 blocks on 4,000 rows: 5x the depth, 2x the rows.
  assert.equal(estimatePaperSeconds(trunc, [cell('glonet', 10, { meanEpochSeconds: 0.1, nTrain: 4000 })])!.seconds, 600);
  const sg = estimatePaperSeconds(getExperiment('sgemm-depth'), [cell('glonet', 100, { meanEpochSeconds: 1, nTrain: 38400 })])!;
  assert.deepEqual(sg.unmeasured, ['vanilla', 'vanilla-nobn', 'resnetv2', 'resnetv2-nobn']);
  // GloNet's paper depths sum to 1984 blocks, 200 epochs each, on 193,280 training rows.
  assert.ok(Math.abs(sg.seconds - 200 * 1984 / 100 * 193280 / 38400) < 1e-6, String(sg.seconds));
});

test('the paper estimate starts from the long run where one was recorded, with quick cells only for the archs it lacks', () => {
  const run = (preset: string, cells: ExperimentCell[]) => ({ preset, cells } as unknown as ExperimentResults);
  const quick = run('quick', [cell('glonet', 4, { meanEpochSeconds: 9 }), cell('glonet-bn', 4, { meanEpochSeconds: 9 })]);
  const long = run('long', [cell('glonet', 4, { meanEpochSeconds: 1 }), cell('plain', 4, { meanEpochSeconds: 1 })]);
  assert.equal(estimateBase(null, quick)!.cells, 'quick cells');
  assert.equal(estimateBase(long, null)!.run, long);
  const mixed = estimateBase(long, quick)!;
  assert.equal(mixed.cells, 'long cells (quick cells for glonet-bn)');
  assert.deepEqual(mixed.run.cells.map((c) => [c.arch, c.meanEpochSeconds]), [['glonet', 1], ['plain', 1], ['glonet-bn', 9]]);
  assert.equal(estimateBase(run('long', []), quick)!.cells, 'quick cells');
  // The packaged vit measurements: the long run (full Fashion-MNIST) is what the paper line extrapolates.
  const line = presetTimings(getExperiment('vit')).find((l) => l.startsWith('paper:'))!;
  assert.match(line, /extrapolated from the long cells/);
});

test('grids: stable cell ids in order, per-architecture budgets, csv-depth on all of the user\'s rows', () => {
  const sg = gridCells(getExperiment('sgemm-depth'), 'quick', { dataset: 'sgemm' });
  assert.deepEqual(sg.slice(0, 4).map((c) => c.id), ['mlp-glonet-d10-s0', 'mlp-glonet-d10-s1', 'mlp-glonet-d10-s2', 'mlp-glonet-d50-s0']);
  for (const c of sg) {
    const glonet = c.config.arch === 'glonet';
    assert.equal(c.config.epochs, glonet ? 200 : 40, c.id);
    assert.equal(c.config.subset, glonet ? undefined : 48000, c.id);
    assert.equal(c.config.lr, 0.01, `${c.id}: the family protocol`);
  }
  const csv = gridCells(getExperiment('csv-depth'), 'quick', { dataset: 'csv', data: 'x.csv', target: 'y' });
  assert.equal(csv.length, sg.length);
  assert.ok(csv.every((c) => c.config.subset === undefined && c.config.dataset === 'csv' && c.config.target === 'y'));
  assert.equal(gridCells(getExperiment('mnist-depth'), 'quick', { dataset: 'mnist' }, { seeds: 1 }).length, 16, '--seeds overrides the preset');
});


test('results record the first and the last epochs\' seconds, so a slowdown during a run shows', () => {
  assert.deepEqual(epochDrift([2, 0.25, 0.25, 0.25, 0.3, 0.5, 0.5, 0.5]), { epochDrift: { first: 0.25, last: 0.5 } });
  // Short runs: as many as there are, the first epoch (warm-up) always left out.
  assert.deepEqual(epochDrift([2, 0.25, 0.5]), { epochDrift: { first: 0.25, last: 0.5 } });
  assert.deepEqual(epochDrift([2, 0.2]), {});
});

test('the report\'s rerun command names the data it ran on, quoted for a shell', async () => {
  const { fakeExperiment } = await import('./experiment-fixtures.js');
  const { writeExperimentReport } = await import('../src/experiments/report.js');
  const reproduce = async (name: string, data: Parameters<typeof fakeExperiment>[2]): Promise<string> => {
    const dir = tmpDir();
    fakeExperiment(dir, name, data);
    await writeExperimentReport(dir);
    const line = fs.readFileSync(path.join(dir, 'REPORT.md'), 'utf8').split('\n').find((l) => l.startsWith('Reproduce: '));
    assert.ok(line, 'REPORT.md has a Reproduce line');
    return line;
  };
  assert.equal(await reproduce('mnist-depth', { dataset: 'mnist' }), 'Reproduce: `glonet experiment run mnist-depth --preset smoke --out DIR`');
  assert.equal(await reproduce('mnist-depth', { dataset: 'fashion-mnist' }), 'Reproduce: `glonet experiment run mnist-depth --preset smoke --dataset fashion-mnist --out DIR`');
  assert.equal(
    await reproduce('csv-depth', { data: 'my runs.csv', target: 'Run1 (ms)', drop: ['Run2 (ms)', 'Run3 (ms)'], task: 'regression' }),
    "Reproduce: `glonet experiment run csv-depth --preset smoke --data 'my runs.csv' --target 'Run1 (ms)' --drop 'Run2 (ms),Run3 (ms)' --task regression --out DIR`",
  );
  assert.match(await reproduce('csv-depth', { data: "it's.csv", target: 'y' }), /--data 'it'\\''s\.csv' --target y /);
});
