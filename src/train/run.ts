/**
 * One training run, end to end: data, model, training, and the run folder:
 *   DIR/checkpoint/epoch-NNNNNN/  the last committed epoch: model, optimizer state, metrics (./checkpoint.ts)
 *   DIR/model/                    that epoch's TF.js model (model.json + weights.bin), published from it
 *   DIR/metrics.json              the metrics contract (src/contracts.ts), published from it
 * Each epoch is one commit, so a crash at any moment leaves the last committed epoch complete;
 * `resume` goes on from it and the result is bit for bit the run that was never interrupted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { activeBackend, initBackend } from '../backend/index.js';
import { loadDataset } from '../data/index.js';
import { getDataset } from '../data/registry.js';
import type { Dataset } from '../data/dataset.js';
import { augmentBatch } from '../data/augment.js';
import { buildModel } from '../models/index.js';
import { writeJsonAtomic, writing } from '../io.js';
import { GlonetError, OutFolderError, WriteFailedError } from '../errors.js';
import { checkWritableFolder, clearRunFolder, isSameOrInside, refuseIfHoldsRun, removeLeftovers, runEntries, RUN_ENTRIES } from '../out-folder.js';
import type { EpochMetrics, Metrics } from '../contracts.js';
import { summarize } from './metrics.js';
import { createProgress, type Progress } from './progress.js';
import { createStepper } from '../engines/select.js';
import type { NamedArray, StepperOptions } from '../engines/types.js';
import { DivergedError, trainLoop } from './trainer.js';
import { commitEpoch, hasOldCheckpoint, lastConsistentEpoch, publishEpoch, pruneEpochs, readEpoch, type CommittedEpoch } from './checkpoint.js';
import { learningRateAt, warmupSteps } from './schedule.js';
import type { RunConfig } from '../vocabulary.js';
import type { ModelMetadata } from '../model-metadata.js';

/** What a finished run leaves in memory (the same is in its folder). */
export interface RunResult {
  /** The run's `metrics.json`. */
  metrics: Metrics;
  /** The run folder. */
  dir: string;
  /** The trained model (the last epoch's weights). */
  model: tf.LayersModel;
  /** Its glonet metadata. */
  meta: ModelMetadata;
  /** The data set it was trained and tested on. */
  dataset: Dataset;
}

/** How {@link runTraining} runs and reports. */
export interface RunOptions {
  /**
   * Continue the run in `dir` from its last consistent epoch (going back past damaged ones, and
   * saying so). A folder with nothing to resume (absent, empty, or left by a run killed before its
   * first epoch finished) starts a new run; a finished run trains nothing more. So a caller can
   * pass `resume: true` for a folder that is new, half done or finished and never be asked.
   */
  resume?: boolean;
  /**
   * Replace the run `dir` holds. Without it a folder holding a run is refused (OutFolderError).
   * With `resume`, the run is replaced only when it has no consistent epoch to resume from.
   */
  overwrite?: boolean;
  /** Aborting stops training before the next batch: the epoch in progress is dropped (InterruptedError). */
  signal?: AbortSignal;
  /** Where progress goes (default: a progress bar on a terminal, epoch lines otherwise). */
  progress?: Progress;
  /** Where messages go (default: standard output). */
  log?: (line: string) => void;
  /** Called after each epoch's files are committed and published. */
  onEpoch?: (m: EpochMetrics) => void;
}

/** Options that must match for --resume to continue a run. */
const RESUME_KEYS: Array<keyof RunConfig> = ['model', 'arch', 'dataset', 'data', 'target', 'task', 'categorical', 'missing', 'maxClasses', 'maxLevels', 'depth', 'width', 'batchSize', 'optimizer', 'lr', 'momentum', 'l2', 'schedule', 'warmup', 'seed', 'subset', 'augment', 'headInit'];

/**
 * The test error of the best constant guess from the training rows: the training mean (0 on the
 * standardized target: the test MSE is the mean square of the test targets), or the most frequent
 * training class (1 - its share of the test rows).
 */
function constantGuessError(ds: Dataset): number {
  if (ds.task === 'regression') {
    let s = 0;
    for (let i = 0; i < ds.nTest; i++) s += ds.yTest[i] * ds.yTest[i];
    return s / ds.nTest;
  }
  const counts = new Array<number>(ds.outputs).fill(0);
  for (let i = 0; i < ds.nTrain; i++) counts[ds.yTrain[i]]++;
  const majority = counts.indexOf(Math.max(...counts));
  let hits = 0;
  for (let i = 0; i < ds.nTest; i++) if (ds.yTest[i] === majority) hits++;
  return 1 - hits / ds.nTest;
}

/** A run that cannot go as asked (for example `--resume` with settings that differ from the run's). */
export class RunError extends GlonetError {
  /** 'RunError'. */
  override name = 'RunError';
}

function isTruncated(dir: string): boolean {
  try {
    return Boolean(JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8'))?.truncatedFrom);
  } catch {
    return false;
  }
}

/** Decide what to do with the folder: resume from a committed epoch, start anew, or refuse. */
function planRun(dir: string, opts: RunOptions, log: (l: string) => void): { from?: CommittedEpoch } {
  if (!fs.existsSync(dir)) {
    if (opts.resume) log(`--resume: ${dir} does not exist yet; starting a new run`);
    return {};
  }
  if (isTruncated(dir) && !opts.overwrite) {
    throw new OutFolderError(`${opts.resume ? '--resume' : '--out'}: ${dir} holds a truncated model (made by glonet truncate), which cannot be trained further; choose another --out, or replace it with --overwrite`);
  }
  if (opts.resume) {
    const { found, damaged } = lastConsistentEpoch(dir);
    if (found) {
      if (damaged.length) log(`--resume: ${damaged.map((d) => `epoch ${d.epoch} is incomplete (${d.problem})`).join('; ')}; going back to epoch ${found.epoch}, the last consistent one`);
      return { from: found };
    }
    if (runEntries(dir).length === 0) {
      log(`--resume: nothing to resume in ${dir}; starting a new run`);
      return {};
    }
    const reason = damaged.length ? damaged.map((d) => `epoch ${d.epoch}: ${d.problem}`).join('; ')
      : hasOldCheckpoint(dir) ? 'its checkpoint/ was written by an older glonet and cannot be verified'
        : 'no epoch was committed';
    if (opts.overwrite) {
      log(`--resume: ${dir} has no consistent epoch to resume from (${reason}); starting a new run over it (--overwrite)`);
      return {};
    }
    throw new OutFolderError(`--resume: ${dir} has no consistent epoch to resume from (${reason}); start the run again with --overwrite`);
  }
  if (!opts.overwrite) refuseIfHoldsRun(dir, '--out', 'continue it with --resume, replace it with --overwrite, or choose another --out');
  return {};
}

/**
 * Trains a model as `glonet train` does: loads the data, builds the model (or resumes it), picks
 * the engine, and after every epoch commits `dir/model/`, the checkpoint and `dir/metrics.json`.
 *
 * @throws {@link RunError} for settings that cannot run; {@link OutFolderError} for a folder it
 * must not write; {@link DataError} and {@link ModelConfigError} for bad data and model options.
 */
export async function runTraining(cfg: RunConfig, dir: string, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  checkWritableFolder(dir, '--out');
  if (cfg.data && RUN_ENTRIES.some((e) => isSameOrInside(cfg.data!, path.join(dir, e)))) {
    throw new OutFolderError(`--out: the data ${cfg.data} lies among the run folder's own files in ${dir}; the run would overwrite its own source`);
  }
  if (cfg.augment && getDataset(cfg.dataset).kind !== 'images') {
    throw new RunError(`--augment: random flips and crops apply to images; ${cfg.dataset} is a table`);
  }
  const plan = planRun(dir, opts, log);
  const backend = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend);
  const ds = await loadDataset({ ...cfg, drop: cfg.drop });
  for (const note of ds.notes ?? []) log(`${ds.source}: ${note}`);
  const constantError = constantGuessError(ds);

  let model: tf.LayersModel;
  let meta: ModelMetadata;
  let epochs: EpochMetrics[] = [];
  let resumeSlots: { engine: string; slots: NamedArray[] } | undefined;
  let confusion: Metrics['confusion'];
  if (plan.from) {
    const saved = await readEpoch(plan.from);
    for (const k of RESUME_KEYS) {
      if (JSON.stringify(saved.metrics.config[k]) !== JSON.stringify(cfg[k])) {
        throw new RunError(`--resume: ${dir} was trained with ${k} = ${JSON.stringify(saved.metrics.config[k])}, not ${JSON.stringify(cfg[k])}; use the same options or another --out`);
      }
    }
    ({ model, meta } = saved);
    epochs = saved.metrics.epochs;
    confusion = saved.metrics.confusion;
    resumeSlots = { engine: saved.state.engine, slots: saved.slots };
    // The public files and the checkpoint folder become this epoch's alone.
    await publishEpoch(dir, plan.from);
    writing(dir, () => pruneEpochs(dir, plan.from!));
    removeLeftovers(dir);
    if (plan.from.epoch < cfg.epochs) {
      writing(dir, () => fs.rmSync(path.join(dir, 'analysis.json'), { force: true }));
      log(`resuming ${dir} after epoch ${plan.from.epoch}`);
    } else {
      log(`${dir} already has ${plan.from.epoch} epochs (--epochs ${cfg.epochs}); nothing left to train`);
    }
  } else {
    ({ model, meta } = buildModel(cfg, ds));
    meta.standardization = ds.standardization;
    meta.classNames = ds.classNames;
    if (ds.encoding) meta.encoding = ds.encoding;
    // Whatever was there goes only now, when the new run's data and model are known to be good.
    if (opts.overwrite) clearRunFolder(dir);
    else removeLeftovers(dir);
    writing(dir, () => fs.mkdirSync(dir, { recursive: true }));
  }

  const stepperOpts: StepperOptions = { task: ds.task, outputs: ds.outputs, inputShape: ds.inputShape, optimizer: cfg.optimizer, lr: cfg.lr, momentum: cfg.momentum, l2: cfg.l2 };
  const stepper = createStepper(model, meta, stepperOpts, cfg.fast);
  if (resumeSlots) {
    if (resumeSlots.engine.startsWith('fused') !== stepper.engine.startsWith('fused')) {
      stepper.dispose();
      throw new RunError(`--resume: ${dir} was trained with the ${resumeSlots.engine} engine, this run uses ${stepper.engine}; pass the same --fast setting`);
    }
    await stepper.setOptimizerState(resumeSlots.slots);
  }

  const params = model.countParams();
  log(`glonet: training ${cfg.model}/${cfg.arch} depth ${cfg.depth} (${params} parameters) on ${ds.name} ` +
    `(${ds.nTrain} train / ${ds.nTest} test) with backend ${activeBackend()}, engine ${stepper.engine}`);

  const metricsOf = (): Metrics => ({
    config: cfg, task: ds.task, params, backend, engine: stepper.engine,
    data: {
      source: ds.source, nTrain: ds.nTrain, nTest: ds.nTest, inputShape: ds.inputShape, outputs: ds.outputs,
      ...(ds.classNames ? { classes: ds.classNames } : {}), constantError,
      ...(ds.notes?.length ? { notes: ds.notes } : {}),
    },
    epochs, ...summarize(epochs), ...(confusion ? { confusion } : {}),
  });
  const [h, w, c] = ds.inputShape;
  const augment = cfg.augment && ds.inputShape.length === 3
    ? (x: Float32Array, rows: number, rng: import('../random.js').Rng) => augmentBatch(x, rows, h, w, c, rng)
    : undefined;
  const progress = opts.progress ?? createProgress({ log });
  let committedEpoch = plan.from?.epoch ?? 0;
  try {
    await trainLoop(stepper, ds, {
      startEpoch: epochs.length + 1,
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      seed: cfg.seed,
      lrAt: (e) => learningRateAt(cfg, e),
      warmupSteps: warmupSteps(cfg, Math.ceil(ds.nTrain / Math.min(cfg.batchSize, ds.nTrain))),
      augment,
      progress,
      shouldStop: () => opts.signal?.aborted === true,
      onEpoch: async (m, test) => {
        epochs.push(m);
        if (test.confusion) confusion = { epoch: m.epoch, matrix: test.confusion };
        meta.epoch = m.epoch;
        const committed = await commitEpoch(dir, m.epoch, { model, meta, engine: stepper.engine, slots: await stepper.getOptimizerState(), metrics: metricsOf() });
        committedEpoch = m.epoch;
        await publishEpoch(dir, committed);
        writing(dir, () => pruneEpochs(dir, committed));
        opts.onEpoch?.(m);
      },
    });
  } catch (e) {
    stepper.dispose();
    const kept = committedEpoch > 0 ? `${dir} keeps epoch ${committedEpoch}; continue with --resume once that is fixed` : 'no epoch was saved';
    if (e instanceof WriteFailedError) throw new WriteFailedError(`${e.message}; ${kept}`);
    if (e instanceof DivergedError) {
      writeJsonAtomic(path.join(dir, 'metrics.json'), { ...metricsOf(), diverged: { epoch: e.epoch, batch: e.batch, message: e.message } });
    }
    throw e;
  }
  stepper.dispose();
  return { metrics: metricsOf(), dir, model, meta, dataset: ds };
}
