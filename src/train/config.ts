/** A training run's settings: what `glonet train` accepts and what metrics.json records. */

export const MODELS = ['mlp', 'resnet20', 'vit'] as const;
export type ModelFamily = (typeof MODELS)[number];
export const DATASETS = ['sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASETS)[number];

export type OptimizerName = 'adam' | 'sgd';

export interface RunConfig {
  model: ModelFamily;
  arch: string;
  dataset: DatasetName;
  data?: string;
  target?: string;
  drop?: string[];
  depth: number;
  width: number;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerName;
  lr: number;
  /** SGD momentum (ignored by Adam). */
  momentum: number;
  /** L2 coefficient on kernels: penalty = l2 * sum(w^2). */
  l2: number;
  /** Learning-rate schedule: 'constant', or 'step' (x0.1 at every quarter of the epochs). */
  schedule: 'constant' | 'step';
  seed: number;
  subset?: number;
  augment: boolean;
  backend: string;
  /** Fast path for GloNet MLPs: 'auto' uses the fused engine when it applies, 'off' never. */
  fast: 'auto' | 'off';
}

/** The paper's protocol for each family (reference-notes.md, issue texts). */
export function familyDefaults(model: ModelFamily): Pick<RunConfig, 'width' | 'epochs' | 'batchSize' | 'optimizer' | 'lr' | 'momentum' | 'l2' | 'schedule'> {
  switch (model) {
    case 'mlp':
      return { width: 16, epochs: 200, batchSize: 1024, optimizer: 'adam', lr: 0.01, momentum: 0, l2: 1e-5, schedule: 'constant' };
    case 'resnet20':
      // SGD lr 0.1, momentum 0.9, weight decay 1e-4 (= L2 coefficient 5e-5 on sum(w^2)), x0.1 every quarter.
      return { width: 16, epochs: 200, batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, l2: 5e-5, schedule: 'step' };
    case 'vit':
      return { width: 128, epochs: 200, batchSize: 128, optimizer: 'adam', lr: 1e-4, momentum: 0, l2: 0, schedule: 'constant' };
  }
}

/** Learning rate at a 1-based epoch under the run's schedule. */
export function learningRateAt(cfg: Pick<RunConfig, 'lr' | 'schedule' | 'epochs'>, epoch: number): number {
  if (cfg.schedule === 'constant') return cfg.lr;
  const quarter = Math.max(1, Math.floor(cfg.epochs / 4));
  return cfg.lr * Math.pow(0.1, Math.min(3, Math.floor((epoch - 1) / quarter)));
}
