/** `glonet experiment list | run NAME | report DIR`: parsing and printing only (src/experiments does the work). */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { BACKENDS } from '../backend/index.js';
import { EXPERIMENTS, getExperiment } from '../experiments/index.js';
import { gridCells, chooseData, presetsOf, PRESETS, type PresetName } from '../experiments/experiment.js';
import { resolveShard } from '../experiments/shard.js';
import { runExperiment } from '../experiments/runner.js';
import { writeExperimentReport } from '../experiments/report.js';
import { presetTimings } from '../experiments/timing.js';
import type { ExperimentResults } from '../contracts.js';
import { list, positiveInt, shard } from './parse.js';
import { datasetNames } from '../data/registry.js';
import { addTableOptions } from './train.js';
import { GlonetError } from '../errors.js';
import { LIMITS } from '../limits.js';

/** Cells of `experiment run` failed: a runtime failure (exit code 1) naming them. */
class CellsFailedError extends GlonetError {
  override name = 'CellsFailedError';
  override readonly kind = 'runtime';
}

function claimsTable(r: ExperimentResults): string[] {
  return r.claims.map((c) => `  ${c.verdict.padEnd(12)} ${c.text}\n               paper: ${c.paper}\n               ours:  ${c.ours}`);
}

function listCommand(): Command {
  return new Command('list')
    .description('every experiment: the claim it tests, its cells per preset, the measured time of its quick preset and the measured or estimated times of its longer ones')
    .action(() => {
      const lines: string[] = [];
      for (const exp of EXPERIMENTS) {
        const data = chooseData(exp, exp.datasets[0] === 'csv' ? { data: 'your.csv', target: 'y' } : {});
        const cells = presetsOf(exp).map((p) => `${p} ${gridCells(exp, p, data).length}`).join(', ');
        lines.push(`${exp.name}  (the paper's ${exp.paperRef})`, `  tests: ${exp.tests}`, `  cells: ${cells}`, ...presetTimings(exp).map((l) => `  ${l}`), '');
      }
      process.stdout.write(lines.join('\n'));
    });
}

interface RunCliOptions {
  preset: PresetName;
  out?: string;
  shard?: { index: number; count: number };
  shardCount?: number;
  seeds?: number;
  dataset?: string;
  data?: string;
  target?: string;
  drop?: string[];
  backend?: string;
  fast: 'auto' | 'off';
  task?: 'classification' | 'regression';
  categorical?: string[];
  missing?: 'impute' | 'refuse';
  maxClasses?: number;
  maxLevels?: number;
}

function runCommand(): Command {
  const cmd = new Command('run')
    .description('run an experiment\'s cells (each a run folder under DIR/cells/: train + analyze), skipping finished ones, then write the report')
    .argument('<name>', `experiment: ${EXPERIMENTS.map((e) => e.name).join(', ')}`)
    .addOption(new Option('--preset <p>', 'smoke: each experiment under a minute (for tests); quick: every experiment together, about 15 minutes on 2 cores (experiment list prints the measured times); long (cnn, vit): all of Fashion-MNIST, hours; paper: the paper\'s grids and epochs').choices(PRESETS).default('quick'))
    .option('--out <dir>', 'experiment folder (default runs/NAME-PRESET); shards and reruns share it')
    .option('--shard <I/N>', 'run the cells whose index is I-1 modulo N (default: from SLURM_ARRAY_TASK_* or JOB_COMPLETION_INDEX)', shard)
    .option('--shard-count <n>', 'Kubernetes Indexed Jobs: the number of shards (the Job\'s completions; or set GLONET_SHARD_COUNT)', positiveInt)
    .option('--seeds <k>', `seeds per cell, at most ${LIMITS.seeds.max} (default: the preset's)`, positiveInt)
    .addOption(new Option('--dataset <name>', 'data set, for the experiments that take several (cnn, vit: fashion-mnist, cifar10, mnist)').choices(datasetNames()))
    .option('--data <path>', 'data location: the SGEMM CSV (sgemm-*), a folder of MNIST IDX files (mnist-*), a CIFAR-10 folder (cnn, vit), your CSV (csv-depth)')
    .option('--target <col>', 'csv-depth: the column to predict')
    .option('--drop <cols>', 'csv-depth: columns to leave out, comma-separated (repeatable)', list)
    .addOption(new Option('--backend <name>', 'TF.js backend (default: the fastest that loads)').choices(BACKENDS))
    .addOption(new Option('--fast <mode>', 'fused training engines: auto where they apply, off forces plain TF.js').choices(['auto', 'off']).default('auto'));
  return addTableOptions(cmd)
    .action(async (name: string, o: RunCliOptions) => {
      const exp = getExperiment(name);
      const t0 = performance.now();
      const out = o.out ?? path.join('runs', `${name}-${o.preset}`);
      const r = await runExperiment(exp, {
        preset: o.preset, out, seeds: o.seeds, backend: o.backend, fast: o.fast,
        shard: resolveShard(o.shard, o.shardCount),
        data: {
          dataset: o.dataset, data: o.data != null ? path.resolve(o.data) : undefined, target: o.target, drop: o.drop,
          task: o.task, categorical: o.categorical, missing: o.missing, maxClasses: o.maxClasses, maxLevels: o.maxLevels,
        },
      });
      const lines = [
        '', `${exp.name} --preset ${o.preset}: ${r.ran} cells run, ${r.skipped} finished earlier, ${r.failed} failed; ${((performance.now() - t0) / 60000).toFixed(1)} min`,
        ...claimsTable(r.results),
      ];
      if (r.results.missing.length) lines.push(`  missing cells: ${r.results.missing.map((m) => m.id).join(', ')}`);
      if (r.busyCells.length) lines.push(`  being run by another process, left to it: ${r.busyCells.join(', ')}`);
      lines.push(`report: ${path.resolve(out, 'REPORT.md')} and report.html`);
      process.stdout.write(lines.join('\n') + '\n');
      // A scheduler must see a shard with a failed cell as failed.
      if (r.failed > 0) {
        throw new CellsFailedError(`${r.failed} of ${r.ran + r.failed} cells run here failed: ${r.failedCells.join(', ')} (each error is in ${path.join(out, 'cells', 'ID', 'failed.json')} and REPORT.md); rerun the same command to retry them`);
      }
    });
}

function reportCommand(): Command {
  return new Command('report')
    .description('gather the cells of an experiment folder (from one machine or many) into DIR/results.json, DIR/REPORT.md and DIR/report.html')
    .argument('<dir>', 'experiment folder')
    .action(async (dir: string) => {
      const r = await writeExperimentReport(dir);
      const lines = [`${r.experiment} --preset ${r.preset}: ${r.cells.length} cells finished`, ...claimsTable(r)];
      if (r.missing.length) lines.push(`missing cells: ${r.missing.map((m) => `${m.id}${m.interruptedAfterEpoch != null ? ` (interrupted after epoch ${m.interruptedAfterEpoch})` : ''}`).join(', ')}`);
      if (r.failed.length) lines.push(`failed cells: ${r.failed.map((f) => `${f.id} (${f.error})`).join('; ')}`);
      lines.push(`wrote ${path.join(dir, 'results.json')}, REPORT.md and report.html`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}

export function experimentCommand(): Command {
  const cmd = new Command('experiment').description('re-measure the paper\'s claims: list the experiments, run one (resumable, shardable), report a folder');
  for (const sub of [listCommand(), runCommand(), reportCommand()]) cmd.addCommand(sub.exitOverride());
  return cmd;
}
