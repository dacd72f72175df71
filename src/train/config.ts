/** A training run's settings: what `glonet train` accepts and what metrics.json records. */
import type { Protocol } from '../models/family.js';
import type { HeadInit } from '../models/init.js';

export const DATASETS = ['sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASETS)[number];

export type { OptimizerName } from '../engines/types.js';

export interface RunConfig extends Protocol {
  /** A registered model family (src/models/index.ts): 'mlp', 'resnet20', 'vit'. */
  model: string;
  arch: string;
  dataset: DatasetName;
  data?: string;
  target?: string;
  drop?: string[];
  depth: number;
  seed: number;
  subset?: number;
  augment: boolean;
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
