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
import { analyzeModel } from './analyze.js';
import { openRun, runDataset } from './run-folder.js';
import { withFolderLock } from '../folder-lock.js';
import { truncateModel } from './truncate.js';
import { evaluate } from '../scoring.js';

export async function analyzeRun(dir: string, o: { samples?: number; tolerance?: number; backend?: string; report?: boolean }): Promise<Analysis> {
  await initBackend(o.backend);
  const run = await openRun(dir);
  // The run folder is written (analysis.json, report.html): by one process at a time.
  return withFolderLock(dir, { purpose: 'glonet analyze' }, () => analyzeOpened(run, dir, o));
}

async function analyzeOpened(run: Awaited<ReturnType<typeof openRun>>, dir: string, o: { samples?: number; tolerance?: number; report?: boolean }): Promise<Analysis> {
  const ds = await runDataset(run);
  const analysis = analyzeModel(run.model, run.meta, ds, { samples: o.samples, tolerance: o.tolerance });
  run.model.dispose();
  writeJsonAtomic(path.join(dir, 'analysis.json'), analysis);
  if (o.report !== false) {
    const { writeReport } = await import('../report/report.js');
    await writeReport(dir);
  }
  return analysis;
}

/**
 * The analysis in words a user acts on: where the signal sits (the norm share, named), how many
 * blocks the error needs (byError), what the blocks in between do (their contribution through the
 * head beside the error they remove), and the command that slims the model.
 */
export function describeAnalysis(a: Analysis, metrics: Metrics, dir = 'DIR'): string[] {
  const lines: string[] = [];
  const L = a.blockNorms.length;
  const ed = a.effectiveDepth;
  const share = ed.normShare;
  const pct = `${(share.share * 100).toFixed(0)}%`;
  lines.push(`signal: ${pct} of the summed block norm (${a.samples} test samples) sits in the first ${share.blocks} of ${L} blocks; the last block above 1% of the largest norm is block ${ed.byNorm}`);
  if (!a.truncation || ed.byError == null) return lines;
  const cls = metrics.task === 'classification';
  const full = a.truncation[L - 1];
  const at = (k: number) => a.truncation![k - 1];
  const err = (p: typeof full) => (cls ? `accuracy ${((p.testAccuracy ?? 0) * 100).toFixed(2)}%` : `test MSE ${p.testError.toPrecision(3)}`);
  const cost = (p: typeof full) => (cls
    ? `${(((full.testAccuracy ?? 0) - (p.testAccuracy ?? 0)) * 100).toFixed(2)} points below all ${L}`
    : `${(p.testError / full.testError).toFixed(1)}x the full model's`);
  const tol = ed.toleranceKind === 'relative' ? `within ${(ed.tolerance * 100).toFixed(0)}% of` : `within ${(ed.tolerance * 100).toFixed(1)} accuracy points of`;
  const first = (k: number) => `the first ${k === 1 ? 'block' : `${k} blocks`}`;
  const kept = at(ed.byError);
  const better = cls ? (kept.testAccuracy ?? 0) > (full.testAccuracy ?? 0) : kept.testError < full.testError;
  lines.push(`error: ${first(ed.byError)} ${better ? `already ${ed.byError === 1 ? 'does' : 'do'} better than all ${L} (${err(kept)} against ${err(full)}): the later blocks cost error` : `${ed.byError === 1 ? 'keeps' : 'keep'} ${err(kept)}, ${tol} all ${L} (${err(full)})`}` +
    (share.blocks < ed.byError ? `; ${first(share.blocks)} alone give ${err(at(share.blocks))}, ${cost(at(share.blocks))}` : ''));
  const effects = a.blockEffects;
  if (effects && share.blocks < L) {
    const rest = effects.slice(share.blocks);
    const max = Math.max(...rest.map((e) => e.contribution));
    const removed = rest.reduce((s, e) => s + e.errorRemoved, 0);
    const removedText = cls ? `${(removed * 100).toFixed(2)} accuracy points` : `${removed.toPrecision(3)} of test MSE`;
    lines.push(`the ${rest.length} blocks after block ${share.blocks} each add at most ${max.toPrecision(2)} to a prediction (block 1: ${effects[0].contribution.toPrecision(2)}; mean |x_l K|), ` +
      `and together they ${removed >= 0 ? 'remove' : 'add'} ${removedText.replace(/^-/, '')}: judge a block by the error it removes, not by its norm`);
  }
  if (ed.byError < L) lines.push(`to slim it: glonet truncate ${dir} --blocks ${ed.byError} --out ${dir}-${ed.byError} (or pick k from the truncation curve in report.html)`);
  else lines.push(`every block is needed to stay ${tol} the full model's error; the truncation curve in report.html shows what fewer blocks cost`);
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
  const last = run.metrics.epochs[run.metrics.epochs.length - 1];
  const epoch = { epoch: last?.epoch ?? 0, trainLoss: train.loss, testLoss: test.loss, testError: test.error, ...(test.accuracy != null ? { testAccuracy: test.accuracy } : {}), seconds: 0 };
  const metrics: Metrics = {
    ...run.metrics, params: t.model.countParams(), backend,
    epochs: [epoch], best: { epoch: epoch.epoch, testError: test.error }, meanEpochSeconds: 0,
    truncatedFrom: { dir: path.resolve(dir), blocks, of: t.meta.truncatedFrom!.of },
  };
  delete metrics.diverged;
  // One writer of --out: checked again under the lock, as another process may have written it meanwhile.
  await withFolderLock(out, { purpose: 'glonet truncate', option: '--out' }, async () => {
    if (!o.overwrite) refuseIfHoldsRun(out, '--out', 'replace it with --overwrite, or choose another --out');
    if (o.overwrite) clearRunFolder(out);
    await saveModel(t.model, path.join(out, 'model'), t.meta);
    writeJsonAtomic(path.join(out, 'metrics.json'), metrics);
  });
  return { metrics, fullParams: run.model.countParams() };
}
