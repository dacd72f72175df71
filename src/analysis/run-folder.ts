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
import { loadDataset } from '../data/index.js';
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
  const metrics = readJson<Metrics>(metricsFile, 'metrics');
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
 * The run's data, loaded exactly as training loaded it (same options, same seed, same split); a
 * table the model has an encoding for goes through that encoding, not a new fit.
 */
export function runDataset(run: RunFolder): Promise<Dataset> {
  const c = run.metrics.config;
  return loadDataset({
    dataset: c.dataset, data: c.data, target: c.target, drop: c.drop, seed: c.seed, subset: c.subset,
    task: c.task, categorical: c.categorical, missing: c.missing, maxClasses: c.maxClasses, maxLevels: c.maxLevels,
    ...(run.meta.encoding ? { encoding: run.meta.encoding } : {}),
  });
}
