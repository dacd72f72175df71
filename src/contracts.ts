/**
 * The JSON files glonet writes, as one set of types: `metrics.json` (training, rewritten after
 * every epoch), `analysis.json` (`glonet analyze`). Writers produce these types; readers
 * (the report, analysis, experiments) read them with `readJson` from ./io.ts. Field meanings are
 * documented here and in docs/architecture.md.
 */
import type { Task } from './data/dataset.js';
import type { EngineName } from './engines/types.js';
import type { RunConfig } from './train/config.js';

// ---------------------------------------------------------------------------------------------
// metrics.json

/** One epoch of a run, as `metrics.json` records it. */
export interface EpochMetrics {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean training objective over the epoch's batches: data loss + L2 penalty, as Keras reports. */
  trainLoss: number;
  /** Mean data loss on the test set (MSE or cross-entropy, no penalty). */
  testLoss: number;
  /** MSE (regression) or 1 - accuracy (classification). */
  testError: number;
  /** Classification only: test accuracy in [0, 1]. */
  testAccuracy?: number;
  /** Wall-clock seconds of the epoch's training (evaluation excluded). */
  seconds: number;
  /** The learning rate of the epoch (schedules change it). */
  lr?: number;
}

/** `metrics.json`: a run's settings and its per-epoch results, rewritten after every epoch. */
export interface Metrics {
  /** The run's full configuration (every option, defaults filled in). */
  config: RunConfig;
  /** 'regression' or 'classification'. */
  task: Task;
  /** Trainable parameters of the model. */
  params: number;
  /** The TF.js backend the run used ('tensorflow', 'wasm' or 'cpu'). */
  backend: string;
  /** Which engine trained the run (src/engines/types.ts). */
  engine?: EngineName;
  /** The data set: where it came from, the split sizes, one example's shape, the outputs. */
  data?: {
    /** A file path or a package name. */
    source: string;
    /** Training examples. */
    nTrain: number;
    /** Test examples. */
    nTest: number;
    /** Shape of one example, without the batch dimension. */
    inputShape: number[];
    /** Classes (classification) or 1 (regression). */
    outputs: number;
  };
  /** Every epoch so far, in order. */
  epochs: EpochMetrics[];
  /** The epoch with the lowest test error (the paper reports the best test error over epochs). */
  best: {
    /** The epoch's number. */
    epoch: number;
    /** Its test error. */
    testError: number;
  } | null;
  /** Mean of the epochs' `seconds`. */
  meanEpochSeconds: number;
  /** Present when training stopped early because the loss became NaN or infinite. */
  diverged?: {
    /** The epoch it happened in. */
    epoch: number;
    /** The 0-based batch within that epoch. */
    batch: number;
    /** What was seen, for the user. */
    message: string;
  };
  /** Present for truncated models: how many blocks were kept, and from which run. */
  truncatedFrom?: {
    /** The run folder of the full model. */
    dir: string;
    /** Blocks kept. */
    blocks: number;
    /** Blocks of the full model. */
    of: number;
  };
}

// ---------------------------------------------------------------------------------------------
// analysis.json

/** Mean and standard deviation over test samples of each sample's L1 block-output norm. */
export interface BlockNorm {
  /** 1-based block number. */
  block: number;
  /** Mean over the samples. */
  mean: number;
  /** Standard deviation over the samples. */
  std: number;
}

/** The model that sums only the first `blocks` block outputs, on the test set. */
export interface TruncationPoint {
  /** k: the number of leading blocks summed. */
  blocks: number;
  /** MSE (regression) or 1 - accuracy (classification). */
  testError: number;
  /** Classification only: accuracy in [0, 1]. */
  testAccuracy?: number;
  /** Mean data loss (MSE or cross-entropy). */
  testLoss: number;
}

/** One test sample's prediction split into per-block contributions through a linear head. */
export interface ContributionSample {
  /** The sample's row in the test set. */
  index: number;
  /** Its target (standardized regression value, or class index). */
  target: number;
  /** The model's outputs (regression value, or logits). */
  prediction: number[];
  /** Classification only: the arg-max class. */
  predictedClass?: number;
  /** [block][output] */
  blocks: number[][];
}

/** `analysis.json`, written by `glonet analyze` (and {@link analyzeModel}). */
export interface Analysis {
  /** Test samples the norms and contributions were computed on. */
  samples: number;
  /** Every block's output norm statistics, block 1 first (the paper's Fig. 4). */
  blockNorms: BlockNorm[];
  /** GloNet models only: test error for every k = 1..L. */
  truncation?: TruncationPoint[];
  /** How many blocks the model really uses, by two measures. */
  effectiveDepth: {
    /** Smallest k whose test error is within the tolerance of the full model's (GloNet only). */
    byError: number | null;
    /** Last block whose mean norm is at least 1% of the largest block's. */
    byNorm: number;
    /** The tolerance `byError` used (see `toleranceKind`). */
    tolerance: number;
    /** 'relative' (MSE: err_k <= err_L * (1 + tolerance)) or 'accuracy-points' (acc_k >= acc_L - tolerance). */
    toleranceKind: 'relative' | 'accuracy-points';
  };
  /** GloNet models with a linear head: a few test samples split into per-block contributions. */
  contributions?: {
    /** 'regression' or 'classification'. */
    task: Task;
    /** The head's bias, one value per output. */
    bias: number[];
    /** The explained samples. */
    samples: ContributionSample[];
  };
}

// ---------------------------------------------------------------------------------------------
// Reading tolerantly

/** A number as JSON may carry it: null for NaN and Infinity, a string from other writers. */
export type ReadNumber = number | null | string;

/** Counters that every writer writes as integers (epoch and block numbers, sample indices). */
type Counter = 'epoch' | 'block' | 'blocks' | 'index' | 'predictedClass';

/**
 * A contract as a tolerant reader sees it: JSON writes NaN and Infinity as null, other writers
 * may write numbers as strings or leave fields out, and a run config may carry keys of other
 * versions. Counters stay integers.
 */
export type AsRead<T> = T extends number
  ? ReadNumber
  : T extends Array<infer U>
    ? Array<AsRead<U>>
    : T extends object
      ? { [K in keyof T as K extends Counter ? K : never]: T[K] } & { [K in keyof T as K extends Counter ? never : K]?: AsRead<T[K]> }
      : T;

export type MetricsAsRead = Omit<AsRead<Metrics>, 'config' | 'task' | 'epochs' | 'engine'> & {
  config: Record<string, unknown>;
  task: Task;
  epochs: Array<AsRead<EpochMetrics>>;
  engine?: string;
};
export type AnalysisAsRead = Omit<AsRead<Analysis>, 'contributions'> & {
  /** When present, the bias and every sample's prediction and blocks are too. */
  contributions?: {
    task?: Task;
    bias: ReadNumber[];
    samples: Array<Omit<AsRead<ContributionSample>, 'prediction' | 'blocks'> & { prediction: ReadNumber[]; blocks: ReadNumber[][] }>;
  } | null;
};
