/**
 * `npm run bench:sustained [-- --quick]`: does an engine keep its speed through a whole run?
 *
 * On Intel cores a subnormal float costs about a hundred cycles an operation, and networks
 * without batch normalization make them within a few epochs: before the engines flushed them
 * (native/src/common/float_mode.h), a 100-block GloNet went from 0.25 to 3.5 s an epoch at epoch 9
 * and a 1000-block ResNetv2 slowed down after epoch 120. This bench trains the runs that showed
 * it, as `glonet train` does (real data, the engine it picks), and compares the mean seconds of
 * the first epochs (2-4; the first is warm-up) with the last three. Goal: last / first at most 1.2
 * everywhere. It prints the CPU model and the load average, and writes bench/sustained.json.
 * A full run takes about 15 minutes on two cores (the 1000-block ResNetv2 needs 150 epochs to
 * show its drift); `--quick` runs shorter versions (minutes) that show the early drift only.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { epochDrift } from '../src/experiments/results.js';
import { writeJsonAtomic } from '../src/io.js';
import type { RunConfig } from '../src/vocabulary.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const quick = process.argv.includes('--quick');
const GOAL = 1.2;

interface Case {
  name: string;
  cfg: Partial<RunConfig> & Pick<RunConfig, 'model' | 'arch' | 'depth' | 'dataset'>;
  epochs: number;
  quickEpochs: number;
}

const CASES: Case[] = [
  { name: 'GloNet MLP, 10 blocks, SGEMM (all rows)', cfg: { model: 'mlp', arch: 'glonet', depth: 10, dataset: 'sgemm' }, epochs: 40, quickEpochs: 20 },
  { name: 'GloNet MLP, 100 blocks, SGEMM (all rows)', cfg: { model: 'mlp', arch: 'glonet', depth: 100, dataset: 'sgemm' }, epochs: 30, quickEpochs: 15 },
  { name: 'vanilla-nobn MLP, 24 layers, SGEMM (all rows)', cfg: { model: 'mlp', arch: 'vanilla-nobn', depth: 24, dataset: 'sgemm' }, epochs: 40, quickEpochs: 20 },
  { name: 'ResNetv2 MLP (BN), 1000 layers, SGEMM (all rows)', cfg: { model: 'mlp', arch: 'resnetv2', depth: 1000, dataset: 'sgemm' }, epochs: 150, quickEpochs: 8 },
  {
    name: 'GloNet-ResNet20, Fashion-MNIST (10,000 images)',
    cfg: { model: 'resnet20', arch: 'glonet', depth: 20, dataset: 'fashion-mnist', subset: 10000 }, epochs: 10, quickEpochs: 4,
  },
];

async function main(): Promise<void> {
  await initBackend('wasm');
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  process.stderr.write(`glonet sustained-speed bench${quick ? ' (quick)' : ''}: ${cpu}, ${os.availableParallelism()} cores\n`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'glonet-sustained-'));
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (const c of CASES) {
      const epochs = quick ? c.quickEpochs : c.epochs;
      const d = familyDefaults(c.cfg.model, c.cfg.arch);
      const cfg: RunConfig = { ...d, seed: 0, augment: false, backend: 'wasm', fast: 'auto', ...c.cfg, epochs };
      const dir = path.join(work, c.name.replace(/[^a-z0-9]+/gi, '-'));
      const load = os.loadavg()[0];
      const t0 = performance.now();
      const r = await runTraining(cfg, dir, { progress: createProgress({ quiet: true }), log: () => {} });
      const seconds = r.metrics.epochs.map((e) => e.seconds);
      const drift = epochDrift(seconds).epochDrift;
      const ratio = drift ? drift.last / drift.first : null;
      const row = {
        case: c.name, engine: r.metrics.engine, epochs, firstSeconds: drift?.first ?? null, lastSeconds: drift?.last ?? null,
        ratio, met: ratio != null && ratio <= GOAL, wallSeconds: (performance.now() - t0) / 1000, loadStart: load, loadEnd: os.loadavg()[0],
        epochSeconds: seconds,
      };
      rows.push(row);
      process.stderr.write(`  ${c.name} (${row.engine}): first ${drift?.first.toFixed(3)} s, last ${drift?.last.toFixed(3)} s, last/first ${ratio?.toFixed(2)} (load ${load.toFixed(2)})\n`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const f = (v: unknown, d = 3) => (typeof v === 'number' ? v.toFixed(d) : '-');
  const table = ['| run | engine | epochs | s / epoch, epochs 2-4 | s / epoch, last 3 | last / first | goal <= 1.2 | load at start |', '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.case} | ${r.engine} | ${r.epochs} | ${f(r.firstSeconds)} | ${f(r.lastSeconds)} | ${f(r.ratio, 2)} | ${r.met ? 'yes' : 'NO'} | ${f(r.loadStart, 2)} |`)].join('\n');
  process.stdout.write(`\n${table}\n\nCPU: ${cpu}; ${os.availableParallelism()} cores; Node ${process.version}\n`);
  writeJsonAtomic(path.join(ROOT, 'bench', 'sustained.json'), { date: new Date().toISOString(), quick, cpu, cores: os.availableParallelism(), goal: GOAL, rows, table });
  process.stdout.write(`wrote ${path.join('bench', 'sustained.json')}\n`);
}

main().catch((e) => {
  process.stderr.write(`sustained bench failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
