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
import { buildModel, getFamily } from '../models/index.js';
import { makeDirs, readJson, writeJsonAtomic, writing } from '../io.js';
import { GlonetError, OutFolderError, WriteFailedError } from '../errors.js';
import { checkWritableFolder, clearRunFolder, isSameOrInside, refuseIfHoldsRun, removeLeftovers, runEntries, RUN_ENTRIES } from '../out-folder.js';
import type { EpochMetrics, Metrics } from '../contracts.js';
import { summarize } from './metrics.js';
import { createProgress, type Progress } from './progress.js';
import { createStepper } from '../engines/select.js';
import type { NamedArray, StepperOptions } from '../engines/types.js';
import { DivergedError, InterruptedError, trainLoop } from './trainer.js';
import { checkRunSize, validateRunConfig } from './options.js';
import { lockFolder } from '../folder-lock.js';
import { fingerprintData, fingerprintMismatch, isFingerprint } from '../data/fingerprint.js';
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
  /**
   * Aborting stops the run with an InterruptedError: before the next batch during training (the
   * epoch in progress is dropped), or at the next step of the preparation (data, model, engine).
   */
  signal?: AbortSignal;
  /** Where progress goes (default: a progress bar on a terminal, epoch lines otherwise). */
  progress?: Progress;
  /** Where messages go (default: standard output). */
  log?: (line: string) => void;
  /** Called after each epoch's files are committed and published. */
  onEpoch?: (m: EpochMetrics) => void;
  /**
   * Called once the data, model and engine are ready, just before the first batch (the command
   * line arms its Ctrl-C handling there: before it, a signal ends the process at once, which
   * loses nothing the folder does not hold).
   */
  beforeTraining?: () => void;
}

/** Options that must match for --resume to continue a run (`drop` and `data` are compared apart: see resumeMismatch). */
const RESUME_KEYS: Array<keyof RunConfig> = ['model', 'arch', 'dataset', 'target', 'task', 'categorical', 'missing', 'maxClasses', 'maxLevels', 'depth', 'width', 'batchSize', 'optimizer', 'lr', 'momentum', 'l2', 'schedule', 'warmup', 'seed', 'subset', 'augment', 'headInit', 'normFree'];

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
    return Boolean(readJson<{ truncatedFrom?: unknown }>(path.join(dir, 'metrics.json'), 'metrics', { within: dir })?.truncatedFrom);
  } catch {
    return false;
  }
}

/** Decide what to do with the folder: resume from a committed epoch, start anew, or refuse. Reads only. */
function planRun(dir: string, existed: boolean, opts: RunOptions, log: (l: string) => void): { from?: CommittedEpoch } {
  if (!existed) {
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
  if (!opts.overwrite && runEntries(dir).length > 0) {
    // Point to --resume only when there is an epoch it can continue from.
    const resumable = lastConsistentEpoch(dir).found != null;
    refuseIfHoldsRun(dir, '--out', resumable ? 'continue it with --resume, replace it with --overwrite, or choose another --out' : 'it has no epoch to resume from: replace it with --overwrite, or choose another --out');
  }
  return {};
}

const sortedDrop = (d: unknown): string => JSON.stringify(Array.isArray(d) ? [...d].map(String).sort() : []);

/**
 * What differs between the run in the folder and the options asked (the first difference, in
 * words), or undefined: everything that defines the model or its inputs must be the same.
 */
function resumeMismatch(saved: Record<string, unknown>, cfg: RunConfig, given: RunConfig, dir: string): string | undefined {
  const defaults: Partial<Record<keyof RunConfig, unknown>> = { headInit: 'paper' };
  for (const k of RESUME_KEYS) {
    if (JSON.stringify(saved[k] ?? defaults[k] ?? null) !== JSON.stringify(cfg[k] ?? defaults[k] ?? null)) {
      return `was trained with ${k} = ${JSON.stringify(saved[k] ?? null)}, not ${JSON.stringify(cfg[k] ?? null)}`;
    }
  }
  if (sortedDrop(saved.drop) !== sortedDrop(cfg.drop)) {
    return `was trained with --drop ${JSON.stringify(saved.drop ?? [])}, not ${JSON.stringify(cfg.drop ?? [])} (other columns would feed the same model)`;
  }
  // A data path recorded by an older glonet may be relative (to the folder it was trained from).
  const was = typeof saved.data === 'string' ? saved.data : undefined;
  const same = was === cfg.data || was === given.data || (was != null && cfg.data != null && path.resolve(dir, was) === cfg.data);
  if (!same) return `was trained with --data ${JSON.stringify(was ?? null)}, not ${JSON.stringify(cfg.data ?? null)}`;
  return undefined;
}

/**
 * Trains a model as `glonet train` does: checks the options, loads the data, builds the model (or
 * resumes it), picks the engine, and after every epoch commits `dir/model/`, the checkpoint and
 * `dir/metrics.json`. The folder is locked for the run (src/folder-lock.ts): a second writer is refused.
 *
 * @throws {@link RunConfigError} or {@link ModelConfigError} for options out of their type or range;
 * {@link RunError} for settings that cannot run (a --resume that changes the model or its data);
 * {@link OutFolderError} for a folder it must not write; {@link FolderBusyError} when another
 * process writes it; {@link DataError} for bad data.
 */
export async function runTraining(given: RunConfig, dir: string, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  validateRunConfig(given);
  // A data path means the same thing from any folder: it is recorded absolute.
  const cfg: RunConfig = given.data != null ? { ...given, data: path.resolve(given.data) } : given;
  checkWritableFolder(dir, '--out');
  if (cfg.data && RUN_ENTRIES.some((e) => isSameOrInside(cfg.data!, path.join(dir, e)))) {
    throw new OutFolderError(`--out: the data ${cfg.data} lies among the run folder's own files in ${dir}; the run would overwrite its own source`);
  }
  if (cfg.augment && getDataset(cfg.dataset).kind !== 'images') {
    throw new RunError(`--augment: random flips and crops apply to images; ${cfg.dataset} is a table`);
  }
  const existed = fs.existsSync(dir);
  const lock = lockFolder(dir, { purpose: 'glonet train', option: '--out' });
  try {
    return await trainInFolder(cfg, given, dir, existed, opts, log);
  } finally {
    lock.release();
  }
}

async function trainInFolder(cfg: RunConfig, given: RunConfig, dir: string, existed: boolean, opts: RunOptions, log: (l: string) => void): Promise<RunResult> {
  const stopIfAsked = (): void => {
    if (opts.signal?.aborted) throw new InterruptedError(plan.from?.epoch ?? 0);
  };
  const plan = planRun(dir, existed, opts, log);
  // --resume changes nothing unless everything that defines the model and its inputs is the same:
  // checked on the committed epoch's metrics before a file is touched.
  let savedData: Metrics['data'];
  if (plan.from) {
    const saved = readJson<Metrics>(path.join(plan.from.folder, 'metrics.json'), 'checkpoint metrics', { within: dir });
    const config = (saved?.config ?? {}) as unknown as Record<string, unknown>;
    const problem = resumeMismatch(config, cfg, given, dir);
    if (problem) throw new RunError(`--resume: ${dir} ${problem}; use the same options or another --out`);
    savedData = saved.data;
    if (isFingerprint(savedData?.fingerprint)) {
      const changed = fingerprintMismatch(savedData.fingerprint, cfg);
      if (changed) throw new RunError(`--resume: ${dir}: ${changed}; resume with the data the run started on, or start a new run with --overwrite`);
    }
  }
  stopIfAsked();
  const backend = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend);
  stopIfAsked();
  const ds = await loadDataset({ ...cfg, drop: cfg.drop });
  stopIfAsked();
  for (const note of ds.notes ?? []) log(`${ds.source}: ${note}`);
  const constantError = constantGuessError(ds);
  const fingerprint = isFingerprint(savedData?.fingerprint) ? savedData.fingerprint : fingerprintData(cfg);
  if (plan.from && savedData && (savedData.nTrain !== ds.nTrain || savedData.nTest !== ds.nTest || JSON.stringify(savedData.inputShape) !== JSON.stringify(ds.inputShape))) {
    throw new RunError(`--resume: ${dir} was trained on ${savedData.nTrain} training and ${savedData.nTest} test examples of shape [${savedData.inputShape}], these options give ${ds.nTrain} and ${ds.nTest} of shape [${ds.inputShape}]; resume with the same data, or start a new run with --overwrite`);
  }

  let model: tf.LayersModel;
  let meta: ModelMetadata;
  let epochs: EpochMetrics[] = [];
  let resumeSlots: { engine: string; slots: NamedArray[] } | undefined;
  let confusion: Metrics['confusion'];
  if (plan.from) {
    const saved = await readEpoch(plan.from);
    ({ model, meta } = saved);
    epochs = saved.metrics.epochs;
    confusion = saved.metrics.confusion;
    resumeSlots = { engine: saved.state.engine, slots: saved.slots };
  } else {
    checkRunSize(cfg, ds);
    ({ model, meta } = buildModel(cfg, ds));
    getFamily(cfg.model).fitToData?.(model, meta, ds.xTrain, ds.nTrain);
    meta.standardization = ds.standardization;
    meta.classNames = ds.classNames;
    if (ds.encoding) meta.encoding = ds.encoding;
  }
  stopIfAsked();

  const stepperOpts: StepperOptions = { task: ds.task, outputs: ds.outputs, inputShape: ds.inputShape, optimizer: cfg.optimizer, lr: cfg.lr, momentum: cfg.momentum, l2: cfg.l2 };
  const stepper = createStepper(model, meta, stepperOpts, cfg.fast);
  if (resumeSlots) {
    if (resumeSlots.engine.startsWith('fused') !== stepper.engine.startsWith('fused')) {
      stepper.dispose();
      throw new RunError(`--resume: ${dir} was trained with the ${resumeSlots.engine} engine, this run uses ${stepper.engine}; pass the same --fast setting`);
    }
    try {
      await stepper.setOptimizerState(resumeSlots.slots);
    } catch (e) {
      stepper.dispose();
      throw e;
    }
  }

  // Only now, with the data, model and engine known to be good, does the folder change.
  try {
    if (plan.from) {
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
      // Whatever was there goes only now, when the new run's data and model are known to be good.
      if (opts.overwrite) clearRunFolder(dir);
      else removeLeftovers(dir);
      writing(dir, () => makeDirs(dir));
    }
  } catch (e) {
    stepper.dispose();
    throw e;
  }

  const params = model.countParams();
  log(`glonet: training ${cfg.model}/${cfg.arch} depth ${cfg.depth} (${params} parameters) on ${ds.name} ` +
    `(${ds.nTrain} train / ${ds.nTest} test) with backend ${activeBackend()}, engine ${stepper.engine}`);

  const metricsOf = (): Metrics => ({
    config: cfg, task: ds.task, params, backend, engine: stepper.engine,
    data: {
      source: ds.source, nTrain: ds.nTrain, nTest: ds.nTest, inputShape: ds.inputShape, outputs: ds.outputs,
      ...(ds.classNames ? { classes: ds.classNames } : {}), constantError,
      ...(ds.notes?.length ? { notes: ds.notes } : {}), fingerprint,
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
    opts.beforeTraining?.();
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
