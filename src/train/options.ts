/**
 * The checks of a run's configuration, the same for `glonet train`, `glonet experiment` and code
 * calling runTraining: every option of its type and range (src/limits.ts for the upper limits),
 * before anything is read or allocated; then, once the data are loaded and before the model is
 * built, the model's size. Each problem is one line naming the option, what was expected and, for
 * a limit, why.
 */
import { getFamily, ModelConfigError } from '../models/index.js';
import { checkArch, checkDepthWidth, checkHeadInit, checkModelSize } from '../models/family.js';
import { getDataset } from '../data/registry.js';
import { checkSubset, type Dataset } from '../data/dataset.js';
import { BACKENDS } from '../backend/index.js';
import { HEAD_INITS, OPTIMIZERS, SCHEDULES, type RunConfig } from '../vocabulary.js';
import { LIMITS, overLimit, type Limit } from '../limits.js';
import { GlonetError } from '../errors.js';

/** An option of a run that is not of its type or range. Bad input: exit code 2. */
export class RunConfigError extends GlonetError {
  override name = 'RunConfigError';
}

/** The largest seed: the data split and batch order use 32-bit seeds, so larger ones would repeat smaller ones. */
export const SEED_LIMIT: Limit = { max: 2 ** 32 - 1, why: 'the data split and the batch order use 32-bit seeds, so a larger one would repeat a smaller one' };
/** SGD's momentum stays below 1: a step is the gradient times 1 / (1 - momentum), which grows without bound as it nears 1. */
const MOMENTUM_WHY = 'SGD\'s steps grow as 1 / (1 - momentum), without bound at 1 and beyond';

const show = (v: unknown): string => (typeof v === 'string' ? `'${v.slice(0, 60)}'` : typeof v === 'number' ? String(v) : String(JSON.stringify(v) ?? v).slice(0, 60));

function integer(option: string, v: unknown, min: number, limit?: Limit): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    const kind = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
    throw new RunConfigError(`${option}: expected ${kind}, got ${show(v)}`);
  }
  if (limit && v > limit.max) throw new RunConfigError(overLimit(option, v, limit));
  return v;
}

function number(option: string, v: unknown, o: { min: number; above?: boolean; below?: number; why?: string }): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (o.above ? v > o.min : v >= o.min) && (o.below == null || v < o.below);
  if (!ok) {
    const range = o.below != null ? `a number from ${o.min} up to (not including) ${o.below}${o.why ? ` (${o.why})` : ''}` : `a ${o.above ? 'positive' : 'non-negative'} number`;
    throw new RunConfigError(`${option}: expected ${range}, got ${show(v)}`);
  }
  return v as number;
}

function oneOf(option: string, v: unknown, choices: readonly string[]): void {
  if (typeof v !== 'string' || !choices.includes(v)) throw new RunConfigError(`${option}: expected one of ${choices.join(', ')}, got ${show(v)}`);
}

/**
 * Check every option of a run before anything is read or allocated: the family, architecture and
 * data set exist, every number is of its type and within its range and limit.
 *
 * @throws {@link RunConfigError}, {@link ModelConfigError} or DataError naming the option.
 */
export function validateRunConfig(cfg: RunConfig): void {
  if (typeof cfg !== 'object' || cfg === null) throw new RunConfigError('runTraining: expected a run configuration object');
  if (typeof cfg.model !== 'string') throw new ModelConfigError(`--model: expected a model family name, got ${show(cfg.model)}`);
  const family = getFamily(cfg.model);
  if (typeof cfg.arch !== 'string') throw new ModelConfigError(`--arch: expected an architecture name, got ${show(cfg.arch)}`);
  checkArch(family.name, family.archs, cfg.arch);
  if (typeof cfg.dataset !== 'string') throw new RunConfigError(`--dataset: expected a data set name, got ${show(cfg.dataset)}`);
  getDataset(cfg.dataset);
  if (cfg.data != null && (typeof cfg.data !== 'string' || cfg.data === '')) throw new RunConfigError(`--data: expected a path, got ${show(cfg.data)}`);
  if (cfg.target != null && typeof cfg.target !== 'string') throw new RunConfigError(`--target: expected a column name, got ${show(cfg.target)}`);
  if (cfg.drop != null && !(Array.isArray(cfg.drop) && cfg.drop.every((d) => typeof d === 'string'))) {
    throw new RunConfigError(`--drop: expected a list of column names, got ${show(cfg.drop)}`);
  }
  integer('--depth', cfg.depth, 1);
  integer('--width', cfg.width, 1);
  checkDepthWidth(family, { depth: cfg.depth, width: family.limits?.width ? cfg.width : undefined });
  integer('--epochs', cfg.epochs, 1, LIMITS.epochs);
  integer('--batch-size', cfg.batchSize, 1, LIMITS.batchSize);
  oneOf('--optimizer', cfg.optimizer, OPTIMIZERS);
  number('--lr', cfg.lr, { min: 0, above: true });
  number('--momentum', cfg.momentum, { min: 0, below: 1, why: MOMENTUM_WHY });
  number('--l2', cfg.l2, { min: 0 });
  oneOf('--schedule', cfg.schedule, SCHEDULES);
  if (cfg.warmup != null) number('--warmup', cfg.warmup, { min: 0 });
  integer('--seed', cfg.seed, 0, SEED_LIMIT);
  if (cfg.subset != null) {
    integer('--subset', cfg.subset, 1);
    checkSubset(cfg.subset);
  }
  if (typeof cfg.augment !== 'boolean') throw new RunConfigError(`--augment: expected true or false, got ${show(cfg.augment)}`);
  if (cfg.backend !== 'auto') oneOf('--backend', cfg.backend, ['auto', ...BACKENDS]);
  oneOf('--fast', cfg.fast, ['auto', 'off']);
  if (cfg.headInit != null) oneOf('--head-init', cfg.headInit, HEAD_INITS);
  checkHeadInit(cfg.arch, cfg.headInit);
}

/**
 * The model's size on these data (parameters, and the activations of a step on a batch) against
 * src/limits.ts, before the model is built.
 */
export function checkRunSize(cfg: RunConfig, ds: Pick<Dataset, 'inputShape' | 'outputs' | 'task' | 'nTrain'>): void {
  checkModelSize(getFamily(cfg.model), cfg, ds, Math.min(cfg.batchSize, ds.nTrain));
}
