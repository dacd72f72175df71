/**
 * One training run, end to end: data, model, training, and the run folder:
 *   DIR/metrics.json   the metrics contract (src/contracts.ts), rewritten after every epoch
 *   DIR/model/         the TF.js model (model.json + weights.bin) after the last finished epoch
 *   DIR/checkpoint/    optimizer state for --resume
 * Every file is replaced atomically, so a crash or a divergence leaves valid files behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { activeBackend, initBackend } from '../backend/index.js';
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/dataset.js';
import { augmentBatch } from '../data/augment.js';
import { buildModel } from '../models/index.js';
import { loadModel, saveModel, type ModelMetadata } from '../model-io.js';
import { readJson, writeJsonAtomic } from '../io.js';
import { learningRateAt, type RunConfig } from './config.js';
import type { EpochMetrics, Metrics } from '../contracts.js';
import { summarize } from './metrics.js';
import { createProgress, type Progress } from './progress.js';
import { createStepper } from '../engines/select.js';
import type { StepperOptions } from '../engines/types.js';
import { DivergedError, trainLoop } from './trainer.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';

export interface RunResult {
  metrics: Metrics;
  dir: string;
  model: tf.LayersModel;
  meta: ModelMetadata;
  dataset: Dataset;
}

export interface RunOptions {
  resume?: boolean;
  progress?: Progress;
  log?: (line: string) => void;
  /** Called after each epoch's files are written. */
  onEpoch?: (m: EpochMetrics) => void;
}

/** Options that must match for --resume to continue a run. */
const RESUME_KEYS: Array<keyof RunConfig> = ['model', 'arch', 'dataset', 'data', 'target', 'depth', 'width', 'batchSize', 'optimizer', 'lr', 'momentum', 'l2', 'schedule', 'seed', 'subset', 'augment'];

export class RunError extends Error {
  override name = 'RunError';
}

export async function runTraining(cfg: RunConfig, dir: string, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const backend = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend);
  const ds = await loadDataset({ ...cfg, drop: cfg.drop });
  const metricsFile = path.join(dir, 'metrics.json');
  const modelDir = path.join(dir, 'model');
  const ckptDir = path.join(dir, 'checkpoint');

  let model: tf.LayersModel;
  let meta: ModelMetadata;
  let epochs: EpochMetrics[] = [];
  let resumeSlots: ReturnType<typeof loadCheckpoint> | undefined;
  if (opts.resume && fs.existsSync(path.join(ckptDir, 'state.json')) && fs.existsSync(metricsFile)) {
    const prev = readJson<Metrics>(metricsFile, 'metrics');
    for (const k of RESUME_KEYS) {
      if (JSON.stringify(prev.config[k]) !== JSON.stringify(cfg[k])) {
        throw new RunError(`--resume: ${dir} was trained with ${k} = ${JSON.stringify(prev.config[k])}, not ${JSON.stringify(cfg[k])}; use the same options or another --out`);
      }
    }
    resumeSlots = loadCheckpoint(ckptDir);
    epochs = prev.epochs.filter((e) => e.epoch <= resumeSlots!.state.epoch);
    ({ model, meta } = await loadModel(modelDir));
    log(`resuming ${dir} after epoch ${resumeSlots.state.epoch}`);
  } else {
    if (opts.resume) log(`--resume: no checkpoint in ${dir}; starting a new run`);
    ({ model, meta } = buildModel(cfg, ds));
    meta.standardization = ds.standardization;
    meta.classNames = ds.classNames;
    fs.mkdirSync(dir, { recursive: true });
    // A new run replaces whatever an earlier run left here, so nothing stale can be resumed.
    for (const stale of ['metrics.json', 'analysis.json', 'report.html', 'model', 'checkpoint']) {
      fs.rmSync(path.join(dir, stale), { recursive: true, force: true });
    }
  }

  const stepperOpts: StepperOptions = { task: ds.task, outputs: ds.outputs, inputShape: ds.inputShape, optimizer: cfg.optimizer, lr: cfg.lr, momentum: cfg.momentum, l2: cfg.l2 };
  const stepper = createStepper(model, meta, stepperOpts, cfg.fast);
  if (resumeSlots) {
    if (resumeSlots.state.engine.startsWith('fused') !== stepper.engine.startsWith('fused')) {
      throw new RunError(`--resume: ${dir} was trained with the ${resumeSlots.state.engine} engine, this run uses ${stepper.engine}; pass the same --fast setting`);
    }
    await stepper.setOptimizerState(resumeSlots.slots);
  }

  const params = model.countParams();
  log(`glonet: training ${cfg.model}/${cfg.arch} depth ${cfg.depth} (${params} parameters) on ${ds.name} ` +
    `(${ds.nTrain} train / ${ds.nTest} test) with backend ${activeBackend()}, engine ${stepper.engine}`);

  const metricsOf = (): Metrics => ({
    config: cfg, task: ds.task, params, backend, engine: stepper.engine,
    data: { source: ds.source, nTrain: ds.nTrain, nTest: ds.nTest, inputShape: ds.inputShape, outputs: ds.outputs },
    epochs, ...summarize(epochs),
  });
  const [h, w, c] = ds.inputShape;
  const augment = cfg.augment && ds.inputShape.length === 3
    ? (x: Float32Array, rows: number, rng: import('../random.js').Rng) => augmentBatch(x, rows, h, w, c, rng)
    : undefined;
  const progress = opts.progress ?? createProgress({ log });
  try {
    await trainLoop(stepper, ds, {
      startEpoch: epochs.length + 1,
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      seed: cfg.seed,
      lrAt: (e) => learningRateAt(cfg, e),
      augment,
      progress,
      onEpoch: async (m) => {
        epochs.push(m);
        // The model and the optimizer first, metrics.json last: it names what is on disk.
        await saveModel(model, modelDir, meta);
        await saveCheckpoint(ckptDir, m.epoch, stepper.engine, await stepper.getOptimizerState());
        writeJsonAtomic(metricsFile, metricsOf());
        opts.onEpoch?.(m);
      },
    });
  } catch (e) {
    if (e instanceof DivergedError) {
      const metrics = { ...metricsOf(), diverged: { epoch: e.epoch, batch: e.batch, message: e.message } };
      writeJsonAtomic(metricsFile, metrics);
      stepper.dispose();
      throw e;
    }
    stepper.dispose();
    throw e;
  }
  stepper.dispose();
  const metrics = metricsOf();
  writeJsonAtomic(metricsFile, metrics);
  return { metrics, dir, model, meta, dataset: ds };
}
