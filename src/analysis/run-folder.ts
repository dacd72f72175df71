/** Reading a run folder written by `glonet train`: its metrics, model and data. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { readJson } from '../io.js';
import { loadModel, type ModelMetadata } from '../model-io.js';
import type { Metrics } from '../contracts.js';
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/dataset.js';
import { AnalysisError } from './blocks.js';

export interface RunFolder {
  dir: string;
  metrics: Metrics;
  model: tf.LayersModel;
  meta: ModelMetadata;
}

export async function openRun(dir: string): Promise<RunFolder> {
  if (!fs.existsSync(dir)) throw new AnalysisError(`${dir}: no such run folder`);
  const metricsFile = path.join(dir, 'metrics.json');
  if (!fs.existsSync(metricsFile)) throw new AnalysisError(`${dir}: not a run folder (no metrics.json; train one with glonet train --out ${dir})`);
  const metrics = readJson<Metrics>(metricsFile, 'metrics');
  if (!fs.existsSync(path.join(dir, 'model', 'model.json'))) {
    throw new AnalysisError(`${dir}: no trained model in model/ (did training stop before the first epoch finished?)`);
  }
  const { model, meta } = await loadModel(path.join(dir, 'model'));
  return { dir, metrics, model, meta };
}

/** The run's data, loaded exactly as training loaded it (same options, same seed, same split). */
export function runDataset(run: RunFolder): Promise<Dataset> {
  const c = run.metrics.config;
  return loadDataset({ dataset: c.dataset, data: c.data, target: c.target, drop: c.drop, seed: c.seed, subset: c.subset });
}
