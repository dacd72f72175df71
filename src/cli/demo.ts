/** `glonet demo`: the main job on the bundled SGEMM data, in a few minutes on two cores. */
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { BACKENDS } from '../backend/index.js';
import { familyDefaults, type RunConfig } from '../train/config.js';
import { runTraining } from '../train/run.js';
import { afterTraining } from './after-training.js';
import { positiveInt } from './parse.js';

export const DEMO = { depth: 48, epochs: 12, subset: undefined as number | undefined };

export function demoConfig(o: { epochs?: number; depth?: number; backend?: string; subset?: number }): RunConfig {
  const d = familyDefaults('mlp');
  return {
    model: 'mlp', arch: 'glonet', dataset: 'sgemm',
    depth: o.depth ?? DEMO.depth,
    width: d.width, epochs: o.epochs ?? DEMO.epochs, batchSize: d.batchSize, optimizer: d.optimizer,
    lr: d.lr, momentum: d.momentum, l2: d.l2, schedule: d.schedule, seed: 0,
    ...(o.subset != null ? { subset: o.subset } : {}),
    augment: false, backend: o.backend ?? 'auto', fast: 'auto',
  };
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(`train a ${DEMO.depth}-block GloNet MLP on the bundled SGEMM data, analyze it and write a report (a few minutes on two cores)`)
    .option('--out <dir>', 'run folder', path.join('runs', 'demo'))
    .option('--epochs <e>', `epochs (default ${DEMO.epochs})`, positiveInt)
    .option('--depth <n>', `GloNet blocks (default ${DEMO.depth})`, positiveInt)
    .option('--subset <n>', 'use a seeded subset of n SGEMM rows (default: all 241,600)', positiveInt)
    .addOption(new Option('--backend <name>', 'TF.js backend (default: the fastest that loads)').choices(BACKENDS))
    .action(async (o: { out: string; epochs?: number; depth?: number; subset?: number; backend?: string }) => {
      const t0 = performance.now();
      const cfg = demoConfig(o);
      const result = await runTraining(cfg, o.out);
      const reportFile = await afterTraining(result, { report: true, analyze: true });
      const m = result.metrics;
      const seconds = (performance.now() - t0) / 1000;
      const lines = [
        '',
        `GloNet demo: ${cfg.depth} blocks of ${cfg.width} units on SGEMM (${result.dataset.nTrain} train / ${result.dataset.nTest} test rows)`,
        `  best test MSE ${m.best?.testError.toFixed(4)} at epoch ${m.best?.epoch} (standardized ln run time; the paper reports about 0.02)`,
        `  ${m.meanEpochSeconds.toFixed(2)} s per epoch with backend ${m.backend}, engine ${m.engine}; ${seconds.toFixed(0)} s in all`,
        `  run folder: ${path.resolve(o.out)}`,
      ];
      if (reportFile) lines.push(`  report: ${path.resolve(reportFile)}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
