/** A training run's settings: what `glonet train` accepts and what metrics.json records. */
import type { Protocol } from '../models/family.js';
import type { HeadInit } from '../models/init.js';

/** The data sets `glonet train --dataset` accepts. */
export const DATASETS = ['sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'] as const;
/** A data set `glonet train --dataset` accepts: 'sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'. */
export type DatasetName = (typeof DATASETS)[number];

export type { OptimizerName } from '../engines/types.js';

/** Every setting of a training run (the options of `glonet train`, defaults filled in). */
export interface RunConfig extends Protocol {
  /** A registered model family (src/models/index.ts): 'mlp', 'resnet20', 'vit'. */
  model: string;
  /** One of the family's architectures. */
  arch: string;
  /** The data set. */
  dataset: DatasetName;
  /** A file or folder to read the data set from instead of its default. */
  data?: string;
  /** csv: the target column. */
  target?: string;
  /** csv: columns to ignore. */
  drop?: string[];
  /** The depth in the family's sense. */
  depth: number;
  /** Seed of the data split, the initializers and the batch order. */
  seed: number;
  /** Train and test on a seeded random subset of this many examples. */
  subset?: number;
  /** Images: random flips and 4-pixel crops while training. */
  augment: boolean;
  /** 'auto' (the fastest that loads), 'tensorflow', 'wasm' or 'cpu'. */
  backend: string;
  /** Fused training engines: 'auto' uses one when it applies (src/engines/select.ts), 'off' never. */
  fast: 'auto' | 'off';
  /** GloNet heads: 'scaled' or 'zero' instead of the paper's initialization (absent = 'paper'). */
  headInit?: HeadInit;
}

/** Learning rate at a 1-based epoch under the run's schedule. */
export function learningRateAt(cfg: Pick<RunConfig, 'lr' | 'schedule' | 'epochs'>, epoch: number): number {
  if (cfg.schedule === 'constant') return cfg.lr;
  const quarter = Math.max(1, Math.floor(cfg.epochs / 4));
  return cfg.lr * Math.pow(0.1, Math.min(3, Math.floor((epoch - 1) / quarter)));
}
