#!/usr/bin/env node
/**
 * Runs a preset of the experiments one after the other and records what the docs show and
 * `glonet experiment list` prints:
 *   OUT/NAME/                              each experiment's folder (rerun the command to resume)
 *   experiments/measured/NAME.PRESET.json  its results.json (cell times, machine, date, load); not
 *                                          with --dataset or --tag (those are other runs than the
 *                                          list's)
 *   docs/results/NAME[-TAG].PRESET/        with --publish: its REPORT.md, results.json and charts/;
 *                                          then docs/results.md's tables are rewritten from them
 *                                          (scripts/results-page.mjs)
 *   OUT/SUMMARY.md                         the claims table of all of them, wall time, machine, load
 *
 *   node scripts/run-experiments.mjs [--preset quick|paper|long] [--out runs/PRESET]
 *       [--only sgemm-depth,mnist-depth] [--dataset fashion-mnist] [--tag TAG] [--publish]
 *
 * Experiments without the preset (only some have `long`) are left out with a line. csv-depth runs
 * on a CSV made from SGEMM (every 10th row for quick, every row for paper; the first run's time in
 * ms as the target, not its logarithm), written to OUT/sgemm-run1.csv.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const preset = opt('--preset', 'quick');
const dataset = opt('--dataset', null);
const tag = opt('--tag', dataset);
const publish = args.includes('--publish');
const out = path.resolve(opt('--out', path.join(ROOT, 'runs', tag ? `${preset}-${tag}` : preset)));
const { EXPERIMENTS } = await import(path.join(ROOT, 'dist', 'src', 'experiments', 'index.js'));
const only = opt('--only', null)?.split(',');
const names = EXPERIMENTS.filter((e) => (!only || only.includes(e.name)) && (!dataset || e.datasets.includes(dataset))).map((e) => e.name);
const skipped = EXPERIMENTS.filter((e) => names.includes(e.name) && !e.presets[preset]).map((e) => e.name);
for (const n of skipped) console.log(`${n}: has no ${preset} preset; left out`);
const run = names.filter((n) => !skipped.includes(n));
fs.mkdirSync(out, { recursive: true });

function csvForCsvDepth() {
  const file = path.join(out, 'sgemm-run1.csv');
  if (!fs.existsSync(file)) {
    const every = preset === 'quick' ? 10 : 1;
    const lines = zlib.gunzipSync(fs.readFileSync(path.join(ROOT, 'data', 'sgemm', 'sgemm_product.csv.gz'))).toString('utf8').trim().split('\n');
    fs.writeFileSync(file, [lines[0], ...lines.slice(1).filter((_, i) => i % every === 0)].join('\n') + '\n');
  }
  return ['--data', file, '--target', 'Run1 (ms)', '--drop', 'Run2 (ms),Run3 (ms),Run4 (ms)'];
}

const loads = [];
const sampler = setInterval(() => loads.push(os.loadavg()[0]), 15000);
const walls = {};
const t0 = Date.now();
for (const name of run) {
  const extra = name === 'csv-depth' ? csvForCsvDepth() : dataset ? ['--dataset', dataset] : [];
  const dir = path.join(out, name);
  const cmd = [path.join(ROOT, 'bin', 'glonet.js'), 'experiment', 'run', name, '--preset', preset, '--out', dir, ...extra];
  console.log(`\n=== ${name}: node ${cmd.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
  const t = Date.now();
  const code = await new Promise((resolve) => spawn(process.execPath, cmd, { stdio: 'inherit' }).on('exit', resolve));
  walls[name] = (Date.now() - t) / 1000;
  if (code !== 0) console.log(`${name} exited with ${code}`);
  const results = path.join(dir, 'results.json');
  if (!fs.existsSync(results)) continue;
  if (!tag) {
    const dest = path.join(ROOT, 'experiments', 'measured', `${name}.${preset}.json`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(results, dest);
  }
  if (publish) {
    const pub = path.join(ROOT, 'docs', 'results', `${name}${tag ? `-${tag}` : ''}.${preset}`);
    fs.rmSync(pub, { recursive: true, force: true });
    fs.mkdirSync(path.join(pub, 'charts'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'REPORT.md'), path.join(pub, 'REPORT.md'));
    fs.copyFileSync(results, path.join(pub, 'results.json'));
    for (const f of fs.existsSync(path.join(dir, 'charts')) ? fs.readdirSync(path.join(dir, 'charts')) : []) {
      fs.copyFileSync(path.join(dir, 'charts', f), path.join(pub, 'charts', f));
    }
  }
}
clearInterval(sampler);
const total = (Date.now() - t0) / 1000;

const cpus = os.cpus();
const mean = (v) => (v.length ? v.reduce((s, x) => s + x, 0) / v.length : os.loadavg()[0]);
const { claimsTableMarkdown } = await import(path.join(ROOT, 'dist', 'src', 'experiments', 'report.js'));
const results = run.map((n) => path.join(out, n, 'results.json')).filter((f) => fs.existsSync(f)).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const md = [
  `${preset} preset of ${run.join(', ')}${dataset ? ` on ${dataset}` : ''}, run ${new Date().toISOString().slice(0, 10)} ` +
    `on ${cpus.length} cores (${cpus[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}: ` +
    `${(total / 60).toFixed(1)} min wall time (${run.map((n) => `${n} ${(walls[n] / 60).toFixed(1)}`).join(', ')}), mean 1-minute load ${mean(loads).toFixed(1)}. ` +
    `Command: \`node scripts/run-experiments.mjs ${args.join(' ')}\`.`,
  '',
  claimsTableMarkdown(results),
].join('\n');
fs.writeFileSync(path.join(out, 'SUMMARY.md'), md);
if (publish) {
  // docs/results.md's tables come from the published folders.
  await new Promise((resolve) => spawn(process.execPath, [path.join(ROOT, 'scripts', 'results-page.mjs')], { stdio: 'inherit' }).on('exit', resolve));
}
console.log('\n' + md);
