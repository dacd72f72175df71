#!/usr/bin/env node
/**
 * Runs the quick preset of every experiment, one after the other, and records what
 * docs/experiments.md ("The quick preset, measured") shows and `glonet experiment list` prints:
 *   OUT/NAME/                         each experiment's folder (rerun to resume)
 *   experiments/measured/NAME.quick.json   its results.json (cell times, machine, date, load)
 *   OUT/SUMMARY.md                    the claims table of all experiments, wall time, machine, load
 *
 *   node scripts/quick-experiments.mjs [--out runs/quick] [--only sgemm-depth,mnist-depth]
 *
 * csv-depth runs on a CSV made from SGEMM (every 10th row, the first run's time in ms as the
 * target, not its logarithm), written to OUT/sgemm-run1.csv.
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
const out = path.resolve(opt('--out', path.join(ROOT, 'runs', 'quick')));
const { EXPERIMENTS } = await import(path.join(ROOT, 'dist', 'src', 'experiments', 'index.js'));
const only = opt('--only', null)?.split(',');
const names = EXPERIMENTS.map((e) => e.name).filter((n) => !only || only.includes(n));
fs.mkdirSync(out, { recursive: true });

function csvForCsvDepth() {
  const file = path.join(out, 'sgemm-run1.csv');
  if (!fs.existsSync(file)) {
    const lines = zlib.gunzipSync(fs.readFileSync(path.join(ROOT, 'data', 'sgemm', 'sgemm_product.csv.gz'))).toString('utf8').trim().split('\n');
    fs.writeFileSync(file, [lines[0], ...lines.slice(1).filter((_, i) => i % 10 === 0)].join('\n') + '\n');
  }
  return ['--data', file, '--target', 'Run1 (ms)', '--drop', 'Run2 (ms),Run3 (ms),Run4 (ms)'];
}

const loads = [];
const sampler = setInterval(() => loads.push(os.loadavg()[0]), 15000);
const walls = {};
const t0 = Date.now();
for (const name of names) {
  const extra = name === 'csv-depth' ? csvForCsvDepth() : [];
  const cmd = [path.join(ROOT, 'bin', 'glonet.js'), 'experiment', 'run', name, '--preset', 'quick', '--out', path.join(out, name), ...extra];
  console.log(`\n=== ${name}: node ${cmd.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
  const t = Date.now();
  const code = await new Promise((resolve) => spawn(process.execPath, cmd, { stdio: 'inherit' }).on('exit', resolve));
  walls[name] = (Date.now() - t) / 1000;
  if (code !== 0) console.log(`${name} exited with ${code}`);
  const results = path.join(out, name, 'results.json');
  if (fs.existsSync(results)) {
    const dest = path.join(ROOT, 'experiments', 'measured', `${name}.quick.json`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(results, dest);
  }
}
clearInterval(sampler);
const total = (Date.now() - t0) / 1000;

const cpus = os.cpus();
const mean = (v) => (v.length ? v.reduce((s, x) => s + x, 0) / v.length : os.loadavg()[0]);
const { claimsTableMarkdown } = await import(path.join(ROOT, 'dist', 'src', 'experiments', 'report.js'));
const results = names.map((n) => path.join(out, n, 'results.json')).filter((f) => fs.existsSync(f)).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const md = [
  `Quick preset of ${names.length === EXPERIMENTS.length ? 'every experiment' : names.join(', ')}, run ${new Date().toISOString().slice(0, 10)} ` +
    `on ${cpus.length} cores (${cpus[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}: ` +
    `${(total / 60).toFixed(1)} min wall time (${names.map((n) => `${n} ${(walls[n] / 60).toFixed(1)}`).join(', ')}), mean 1-minute load ${mean(loads).toFixed(1)}. ` +
    'Command: `node scripts/quick-experiments.mjs`.',
  '',
  claimsTableMarkdown(results),
].join('\n');
fs.writeFileSync(path.join(out, 'SUMMARY.md'), md);
console.log('\n' + md);
