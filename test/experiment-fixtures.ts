/**
 * A finished experiment folder written without training: the smoke grid of an experiment with,
 * for every cell, the files a real run leaves (metrics.json, analysis.json, cell.json) holding
 * plausible numbers. For tests of the report and of its readers (validation, fuzzing), which need
 * many folders quickly; the files' shapes are the contracts' (src/contracts.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Analysis, CellRecord, ExperimentManifest, Metrics } from '../src/contracts.js';
import { getExperiment } from '../src/experiments/index.js';
import { chooseData, gridCells } from '../src/experiments/experiment.js';
import { getFamily } from '../src/models/index.js';

/** Write the folder of `name`'s smoke preset into `dir` (on the data `dataOptions` choose), every cell finished; returns the cell ids. */
export function fakeExperiment(dir: string, name = 'sgemm-norms', dataOptions: Parameters<typeof chooseData>[1] = {}): string[] {
  const exp = getExperiment(name);
  const data = chooseData(exp, dataOptions);
  const cells = gridCells(exp, 'smoke', data);
  const manifest: ExperimentManifest = { experiment: exp.name, preset: 'smoke', data, cells: cells.map((c) => c.id) };
  fs.mkdirSync(path.join(dir, 'cells'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify(manifest, null, 2));
  cells.forEach((cell, i) => {
    const folder = path.join(dir, 'cells', cell.id);
    fs.mkdirSync(folder, { recursive: true });
    const blocks = getFamily(cell.config.model).blockLayers(cell.config.arch, cell.config.depth).length;
    const epochs = Array.from({ length: cell.config.epochs }, (_, e) => ({
      epoch: e + 1, trainLoss: 1 / (e + 1), testLoss: 0.5 / (e + 1) + i * 0.01, testError: 0.5 / (e + 1) + i * 0.01, seconds: 0.1 + e * 0.01, lr: cell.config.lr,
    }));
    const last = epochs[epochs.length - 1];
    const metrics: Metrics = {
      config: cell.config, task: 'regression', params: 1000, backend: 'cpu', engine: 'tfjs',
      data: { source: 'fixture', nTrain: 1200, nTest: 300, inputShape: [14], outputs: 1 },
      epochs, best: { epoch: last.epoch, testError: last.testError }, meanEpochSeconds: 0.1,
    };
    const glonet = cell.config.arch === 'glonet';
    const analysis: Analysis = {
      samples: 300,
      blockNorms: Array.from({ length: blocks }, (_, b) => ({ block: b + 1, mean: 1 / (b + 1), std: 0.1 / (b + 1) })),
      ...(glonet ? { truncation: Array.from({ length: blocks }, (_, b) => ({ blocks: b + 1, testError: 1 / (b + 1), testLoss: 1 / (b + 1) })) } : {}),
      effectiveDepth: {
        byError: glonet ? Math.min(3, blocks) : null, normShare: { share: 0.95, blocks: Math.min(2, blocks) }, byNorm: blocks,
        tolerance: 0.05, toleranceKind: 'relative', definitions: { byError: 'fixture' },
      },
    };
    const record: CellRecord = { id: cell.id, analyzeSeconds: 0.2, load: { start: 1, end: 1.5, cpus: 2 }, host: 'fixture-host', finishedAt: '2026-01-01T00:00:00.000Z' };
    fs.writeFileSync(path.join(folder, 'metrics.json'), JSON.stringify(metrics, null, 2));
    fs.writeFileSync(path.join(folder, 'analysis.json'), JSON.stringify(analysis, null, 2));
    fs.writeFileSync(path.join(folder, 'cell.json'), JSON.stringify(record, null, 2));
  });
  return cells.map((c) => c.id);
}
