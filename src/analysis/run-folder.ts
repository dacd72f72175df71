/**
 * Reading a run folder written by `glonet train` or `glonet truncate`: its metrics, model and data.
 * A folder whose model/ and metrics.json belong to different epochs (a run stopped while
 * publishing an epoch) is refused with the way to repair it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { readJson } from '../io.js';
import { loadModel } from '../model-io.js';
import type { Metrics } from '../contracts.js';
import { DataError, loadDataset } from '../data/index.js';
import { fingerprintMismatch, isFingerprint } from '../data/fingerprint.js';
import { shown, shownList } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { AnalysisError } from './blocks.js';
import type { ModelMetadata } from '../model-metadata.js';

interface RunFolder {
  dir: string;
  metrics: Metrics;
  model: tf.LayersModel;
  meta: ModelMetadata;
}

/** What is missing from metrics.json for analysis to use it, or undefined. */
function metricsProblem(m: Metrics): string | undefined {
  if (typeof m !== 'object' || m === null) return 'expected a JSON object';
  if (typeof m.config !== 'object' || m.config === null || typeof m.config.dataset !== 'string') return 'no config with the run\'s dataset';
  if (!Array.isArray(m.epochs) || !m.epochs.every((e) => typeof e === 'object' && e !== null && Number.isInteger(e.epoch))) return 'epochs must be a list of {epoch, ...}';
  if (m.task !== 'regression' && m.task !== 'classification') return 'task must be regression or classification';
  return undefined;
}

export async function openRun(dir: string): Promise<RunFolder> {
  if (!fs.existsSync(dir)) throw new AnalysisError(`${dir}: no such run folder`);
  const metricsFile = path.join(dir, 'metrics.json');
  if (!fs.existsSync(metricsFile)) throw new AnalysisError(`${dir}: not a run folder (no metrics.json; train one with glonet train --out ${dir})`);
  const metrics = readJson<Metrics>(metricsFile, 'metrics', { within: dir });
  const problem = metricsProblem(metrics);
  if (problem) throw new AnalysisError(`${metricsFile}: not the metrics of a glonet run (${problem})`);
  if (!fs.existsSync(path.join(dir, 'model', 'model.json'))) {
    throw new AnalysisError(`${dir}: no trained model in model/ (did training stop before the first epoch finished? glonet train --resume with the run's options repairs a run stopped while saving)`);
  }
  const { model, meta } = await loadModel(path.join(dir, 'model'));
  const last = metrics.epochs[metrics.epochs.length - 1]?.epoch;
  if (meta.epoch != null && last != null && meta.epoch !== last) {
    throw new AnalysisError(`${dir}: model/ holds epoch ${meta.epoch} but metrics.json ends at epoch ${last} (the run was stopped while saving an epoch); glonet train --resume with the run's options repairs it`);
  }
  return { dir, metrics, model, meta };
}

/**
 * Where the run's data are: an absolute path as recorded; a relative one (written by glonet before
 * paths were recorded absolute) relative to the run folder when it is there, else to the current
 * folder, and in both cases checked against what the model was trained on.
 */
function dataPath(run: RunFolder): string | undefined {
  const d = run.metrics.config.data;
  if (d == null || path.isAbsolute(d)) return d;
  const inRun = path.resolve(run.dir, d);
  return fs.existsSync(inRun) ? inRun : path.resolve(d);
}

const sameNumbers = (a: readonly number[] | undefined, b: readonly number[] | undefined): boolean =>
  (a ?? []).length === (b ?? []).length && (a ?? []).every((v, i) => Math.abs(v - b![i]) <= 1e-9 * Math.max(1, Math.abs(v)));

/** How the loaded data differ from what the model was trained on (columns, standardization, split), or undefined. */
function dataMismatch(run: RunFolder, ds: Dataset): string | undefined {
  const was = run.meta.standardization;
  const now = ds.standardization;
  if (was && now) {
    if (JSON.stringify(was.featureNames) !== JSON.stringify(now.featureNames)) {
      return `the model was trained on the columns ${shownList(was.featureNames, 8)}, the data now give ${shownList(now.featureNames, 8)}`;
    }
    if ((was.target?.name ?? null) !== (now.target?.name ?? null)) return `the model predicts ${shown(was.target?.name ?? 'classes')}, the data now give ${shown(now.target?.name ?? 'classes')}`;
    if (!sameNumbers(was.mean, now.mean) || !sameNumbers(was.std, now.std) ||
      !sameNumbers([was.target?.mean ?? 0, was.target?.std ?? 1], [now.target?.mean ?? 0, now.target?.std ?? 1])) {
      return 'the training rows\' means and standard deviations are not the ones the model was trained with (rows were added, removed or changed)';
    }
  }
  const d = run.metrics.data;
  if (d && (d.nTrain !== ds.nTrain || d.nTest !== ds.nTest)) {
    return `the run was trained on ${d.nTrain} training and ${d.nTest} test examples, the data now give ${ds.nTrain} and ${ds.nTest}`;
  }
  if (JSON.stringify(run.meta.inputShape) !== JSON.stringify(ds.inputShape)) {
    return `the model takes examples of shape [${run.meta.inputShape}], the data now give [${ds.inputShape}]`;
  }
  return undefined;
}

/**
 * The run's data, loaded exactly as training loaded it (same options, same seed, same split), and
 * refused when they are not the data the model was trained on: the files' sizes and checksums
 * recorded in metrics.json, then the columns, their standardization and the split.
 */
export async function runDataset(run: RunFolder): Promise<Dataset> {
  const c = run.metrics.config;
  // A table the model has an encoding for goes through that encoding, not a new fit.
  const o = {
    dataset: c.dataset, data: dataPath(run), target: c.target, drop: c.drop, seed: c.seed, subset: c.subset,
    task: c.task, categorical: c.categorical, missing: c.missing, maxClasses: c.maxClasses, maxLevels: c.maxLevels,
    ...(run.meta.encoding ? { encoding: run.meta.encoding } : {}),
  };
  const metricsFile = path.join(run.dir, 'metrics.json');
  const fingerprint = run.metrics.data?.fingerprint;
  if (isFingerprint(fingerprint)) {
    const changed = fingerprintMismatch(fingerprint, o);
    if (changed) throw new DataError(`${metricsFile}: ${changed}; the model's analysis needs the data it was trained on: restore them, or train a new run on these`);
  }
  const ds = await loadDataset(o);
  const problem = dataMismatch(run, ds);
  if (problem) {
    throw new DataError(`${metricsFile}: the data ${o.data ?? c.dataset} are not the data this model was trained on: ${problem}; restore them, or train a new run on these`);
  }
  return ds;
}
