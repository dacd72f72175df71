/**
 * `glonet analyze` and `glonet truncate` on a run folder, end to end (the analysis side of what
 * ../train/run.ts is for training): read the run, compute, write its files atomically.
 *   DIR/analysis.json   block norms, truncation curve, effective depth, contributions
 *   DIR/report.html     refreshed with the analysis
 *   OUT/model/, OUT/metrics.json   a truncated model that loads and predicts alone; OUT is never
 *                                  the run itself or inside it, and a run in OUT is replaced only
 *                                  with `overwrite`
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/index.js';
import type { Analysis, Metrics } from '../contracts.js';
import { writeJsonAtomic } from '../io.js';
import { OutFolderError } from '../errors.js';
import { checkWritableFolder, clearRunFolder, isSameOrInside, refuseIfHoldsRun } from '../out-folder.js';
import { saveModel } from '../model-io.js';
import { evaluate } from '../train/trainer.js';
import { analyzeModel } from './analyze.js';
import { openRun, runDataset } from './run-folder.js';
import { truncateModel } from './truncate.js';

export async function analyzeRun(dir: string, o: { samples?: number; tolerance?: number; backend?: string; report?: boolean }): Promise<Analysis> {
  await initBackend(o.backend);
  const run = await openRun(dir);
  const ds = await runDataset(run);
  const analysis = analyzeModel(run.model, run.meta, ds, { samples: o.samples, tolerance: o.tolerance });
  writeJsonAtomic(path.join(dir, 'analysis.json'), analysis);
  if (o.report !== false) {
    const { writeReport } = await import('../report/report.js');
    await writeReport(dir);
  }
  return analysis;
}

export function describeAnalysis(a: Analysis, metrics: Metrics): string[] {
  const lines: string[] = [];
  const L = a.blockNorms.length;
  lines.push(`block norms over ${a.samples} test samples: effective depth by norm ${a.effectiveDepth.byNorm} of ${L} blocks`);
  if (a.truncation && a.effectiveDepth.byError != null) {
    const full = a.truncation[L - 1];
    const at = a.truncation[a.effectiveDepth.byError - 1];
    const tol = a.effectiveDepth.toleranceKind === 'relative' ? `${(a.effectiveDepth.tolerance * 100).toFixed(1)}%` : `${(a.effectiveDepth.tolerance * 100).toFixed(1)} accuracy points`;
    const err = (p: typeof full) => (metrics.task === 'classification' ? `accuracy ${((p.testAccuracy ?? 0) * 100).toFixed(2)}%` : `test MSE ${p.testError.toFixed(4)}`);
    lines.push(`truncation: the first ${a.effectiveDepth.byError} blocks are within ${tol} of all ${L} (${err(at)} vs ${err(full)}); the rest can be dropped with glonet truncate --blocks ${a.effectiveDepth.byError}`);
  }
  return lines;
}

/** Keep the first `blocks` blocks of a trained GloNet run and save it, evaluated, as a run of its own. */
export async function truncateRun(dir: string, blocks: number, out: string, o: { backend?: string; overwrite?: boolean } = {}): Promise<{ metrics: Metrics; fullParams: number }> {
  checkWritableFolder(out, '--out');
  if (isSameOrInside(out, dir)) {
    throw new OutFolderError(`--out: ${out} is ${path.resolve(out) === path.resolve(dir) ? 'the run being truncated' : 'inside the run being truncated'} (${dir}); a run is never written into its own source: choose another --out`);
  }
  if (!o.overwrite) refuseIfHoldsRun(out, '--out', 'replace it with --overwrite, or choose another --out');
  const backend = await initBackend(o.backend);
  const run = await openRun(dir);
  const t = truncateModel(run.model, run.meta, blocks);
  const ds = await runDataset(run);
  const predict = (x: Float32Array, rows: number) =>
    tf.tidy(() => (t.model.predict(tf.tensor(x, [rows, ...ds.inputShape])) as tf.Tensor).dataSync() as Float32Array).slice();
  const test = evaluate(predict, ds, ds.xTest, ds.yTest, ds.nTest);
  const train = evaluate(predict, ds, ds.xTrain, ds.yTrain, ds.nTrain);
  if (o.overwrite) clearRunFolder(out);
  await saveModel(t.model, path.join(out, 'model'), t.meta);
  const last = run.metrics.epochs[run.metrics.epochs.length - 1];
  const epoch = { epoch: last?.epoch ?? 0, trainLoss: train.loss, testLoss: test.loss, testError: test.error, ...(test.accuracy != null ? { testAccuracy: test.accuracy } : {}), seconds: 0 };
  const metrics: Metrics = {
    ...run.metrics, params: t.model.countParams(), backend,
    epochs: [epoch], best: { epoch: epoch.epoch, testError: test.error }, meanEpochSeconds: 0,
    truncatedFrom: { dir: path.resolve(dir), blocks, of: t.meta.truncatedFrom!.of },
  };
  delete metrics.diverged;
  writeJsonAtomic(path.join(out, 'metrics.json'), metrics);
  return { metrics, fullParams: run.model.countParams() };
}
