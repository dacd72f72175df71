/** `glonet demo`: the main job on the bundled SGEMM data, in a few minutes on two cores. */
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { BACKENDS } from '../backend/index.js';
import { familyDefaults } from '../models/index.js';
import { checkWritableFolder, refuseIfHoldsRun } from '../out-folder.js';
import { withFolderLock } from '../folder-lock.js';
import { trainStoppably } from './train.js';
import { analyzeRun, describeAnalysis } from '../analysis/run.js';
import { positiveInt } from './parse.js';
import { fastPathInfo } from '../engines/select.js';
import type { RunConfig } from '../vocabulary.js';

/**
 * The demo's size: the paper's Fig. 4 setting (100 blocks) for 100 epochs with the native fused
 * engine (about 1.5 minutes on two cores); a smaller run when only the portable JavaScript engine is
 * available, so the demo still finishes within about 3 minutes.
 */
function demoSize(): { depth: number; epochs: number } {
  return fastPathInfo().engine === 'native' ? { depth: 100, epochs: 100 } : { depth: 50, epochs: 10 };
}

function demoConfig(o: { epochs?: number; depth?: number; backend?: string; subset?: number }): RunConfig {
  const d = familyDefaults('mlp');
  return {
    model: 'mlp', arch: 'glonet', dataset: 'sgemm',
    depth: o.depth ?? demoSize().depth,
    width: d.width, epochs: o.epochs ?? demoSize().epochs, batchSize: d.batchSize, optimizer: d.optimizer,
    lr: d.lr, momentum: d.momentum, l2: d.l2, schedule: d.schedule, seed: 0,
    ...(o.subset != null ? { subset: o.subset } : {}),
    augment: false, backend: o.backend ?? 'auto', fast: 'auto',
  };
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('train a 100-block GloNet MLP on the bundled SGEMM data (100 epochs; 50 blocks and 10 epochs without the native engine), analyze it and write a report: a few minutes on two cores')
    .option('--out <dir>', 'run folder', path.join('runs', 'demo'))
    .option('--epochs <e>', 'epochs (default 100, or 10 without the native engine)', positiveInt)
    .option('--depth <n>', 'GloNet blocks (default 100, or 50 without the native engine)', positiveInt)
    .option('--subset <n>', 'use a seeded subset of n SGEMM rows (default: all 241,600)', positiveInt)
    .addOption(new Option('--backend <name>', 'TF.js backend (default: the fastest that loads)').choices(BACKENDS))
    .option('--overwrite', 'replace the run --out holds (an earlier demo)')
    .action(async (o: { out: string; epochs?: number; depth?: number; subset?: number; backend?: string; overwrite?: boolean }) => {
      const t0 = performance.now();
      const cfg = demoConfig(o);
      if (!o.overwrite) refuseIfHoldsRun(o.out, '--out', 'replace it with glonet demo --overwrite, or choose another --out');
      checkWritableFolder(o.out, '--out');
      // One writer from the first epoch to the analysis (training and analysis take the same lock again).
      const { result, analysis } = await withFolderLock(o.out, { purpose: 'glonet demo', option: '--out' }, async () => {
        const r = await trainStoppably(cfg, o.out, { overwrite: o.overwrite });
        r.model.dispose();
        return { result: r, analysis: await analyzeRun(o.out, { backend: r.metrics.backend, report: true }) };
      });
      const m = result.metrics;
      const seconds = (performance.now() - t0) / 1000;
      const lines = [
        '',
        `GloNet demo: ${cfg.depth} blocks of ${cfg.width} units on SGEMM (${result.dataset.nTrain} train / ${result.dataset.nTest} test rows)`,
        `  best test MSE ${m.best?.testError.toFixed(4)} at epoch ${m.best?.epoch} (standardized ln run time; the paper reports about 0.02)`,
        `  ${m.meanEpochSeconds.toFixed(2)} s per epoch with backend ${m.backend}, engine ${m.engine}; ${seconds.toFixed(0)} s in all`,
        ...describeAnalysis(analysis, m, o.out).map((l) => `  ${l}`),
        `  run folder: ${path.resolve(o.out)}`,
        `  report: ${path.resolve(o.out, 'report.html')} (learning curves, block norms, truncation curve, per-block contributions)`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
