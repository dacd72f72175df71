/**
 * The words every part of glonet shares about a training run: the task, the optimizers, the
 * learning-rate schedules, the GloNet head initializations, the norm-free options, the engines, a
 * training protocol and a run's full configuration. This module is the bottom floor: it imports nothing, and every
 * option interface elsewhere (a family's build options, an engine's options, the command line's)
 * takes its fields from here rather than declaring them again.
 */

/** What a data set asks for: a real value (MSE) or a class (softmax cross-entropy). */
export type Task = 'regression' | 'classification';

/** The optimizers a run can use: Adam, or SGD with momentum. */
export const OPTIMIZERS = ['adam', 'sgd'] as const;
/** One of {@link OPTIMIZERS}. */
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** Learning-rate schedules: 'constant', or 'step' (x0.1 at every quarter of the epochs). */
export const SCHEDULES = ['constant', 'step'] as const;
/** One of {@link SCHEDULES}. */
export type ScheduleName = (typeof SCHEDULES)[number];

/**
 * How a GloNet head's kernel starts: 'paper' (the family's initializer), 'scaled' (divided by the
 * number of blocks, as the sum of the blocks is that many times larger) or 'zero'.
 */
export const HEAD_INITS = ['paper', 'scaled', 'zero'] as const;
/** One of {@link HEAD_INITS}. */
export type HeadInit = (typeof HEAD_INITS)[number];

/** `--block-scale`: a learnable scalar on each block's contribution to the GloNet sum, initialized at 1 or at 1/L. */
export const BLOCK_SCALES = ['none', '1', '1/L'] as const;
/** One of {@link BLOCK_SCALES}. */
export type BlockScaleInit = (typeof BLOCK_SCALES)[number];

/**
 * Ways to train a GloNet without batch normalization beyond the paper's plain sum (issue 24; the
 * layers are in src/layers/normfree.ts, docs/protocol-notes.md has what each does). All off when
 * absent: the paper's architecture.
 */
export interface NormFreeOptions {
  /** A learnable scalar on each block's contribution to the sum, initialized at 1 or 1/L ('none': no scale). */
  blockScale?: BlockScaleInit;
  /** ResNet20 GloNet: Scaled Weight Standardization of every conv kernel, with a learnable gain per channel. */
  weightStd?: boolean;
  /** ResNet20 GloNet: each block's pooled output minus its mean over training images at initialization (fixed). */
  centerBlocks?: boolean;
}

/** The options that are on, and nothing else (undefined when none is): what run configs and model metadata record. */
export function normFreeOf(o: NormFreeOptions): NormFreeOptions | undefined {
  const on: NormFreeOptions = {
    ...(o.blockScale != null && o.blockScale !== 'none' ? { blockScale: o.blockScale } : {}),
    ...(o.weightStd ? { weightStd: true } : {}),
    ...(o.centerBlocks ? { centerBlocks: true } : {}),
  };
  return Object.keys(on).length ? on : undefined;
}

/**
 * The engines that train, by the name metrics.json, the report and `glonet info` print
 * (src/engines/types.ts says what each is and where it lives).
 */
export const ENGINE_NAMES = ['tfjs', 'fused-native', 'fused-js', 'fused-native-cnn', 'fused-native-vit'] as const;
/** One of {@link ENGINE_NAMES}. */
export type EngineName = (typeof ENGINE_NAMES)[number];

/** A training protocol: the settings `glonet train` uses when an option is not given. */
export interface Protocol {
  /** Units (MLP) or embedding size (ViT). */
  width: number;
  /** Training epochs. */
  epochs: number;
  /** Examples per training step. */
  batchSize: number;
  /** 'adam' or 'sgd'. */
  optimizer: OptimizerName;
  /** Initial learning rate. */
  lr: number;
  /** SGD momentum (ignored by Adam). */
  momentum: number;
  /** L2 coefficient on kernels: penalty l2 * sum(w^2). */
  l2: number;
  /** The learning-rate schedule. */
  schedule: ScheduleName;
  /**
   * Epochs of linear learning-rate warm-up, step by step (absent or 0: none): the first steps, this
   * many epochs' worth, take the schedule's rate times t / (their count) at step t = 1, 2, ...
   * (src/train/schedule.ts).
   */
  warmup?: number;
  /** GloNet heads: the head's initialization when not 'paper' (absent: the paper's). */
  headInit?: HeadInit;
  /** Norm-free options that are on (absent: the paper's plain sum). */
  normFree?: NormFreeOptions;
}

/** Every setting of a training run (the options of `glonet train`, defaults filled in). */
export interface RunConfig extends Protocol {
  /** A registered model family (src/models/index.ts): 'mlp', 'resnet20', 'vit'. */
  model: string;
  /** One of the family's architectures. */
  arch: string;
  /** A registered data set (src/data/registry.ts): 'sgemm', 'csv', 'mnist', 'fashion-mnist', 'cifar10'. */
  dataset: string;
  /** A file or folder to read the data set from instead of its default. */
  data?: string;
  /** csv: the target column. */
  target?: string;
  /** csv: columns to ignore. */
  drop?: string[];
  /** csv: 'classification' for a numeric target of class codes, 'regression' to insist on numbers (absent: from the target's values). */
  task?: Task;
  /** csv: numeric columns to read as categories. */
  categorical?: string[];
  /** csv: 'refuse' makes every missing value an error (absent: missing values are imputed). */
  missing?: 'impute' | 'refuse';
  /** csv: the most classes a target may have (absent: 100). */
  maxClasses?: number;
  /** csv: one-hot levels per categorical column before the rarer share '(other)' (absent: 50). */
  maxLevels?: number;
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
}
