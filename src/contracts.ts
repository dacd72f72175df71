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

export interface EpochMetrics {
  epoch: number;
  /** Mean training objective over the epoch's batches: data loss + L2 penalty, as Keras reports. */
  trainLoss: number;
  /** Mean data loss on the test set (MSE or cross-entropy, no penalty). */
  testLoss: number;
  /** MSE (regression) or 1 - accuracy (classification). */
  testError: number;
  testAccuracy?: number;
  seconds: number;
  /** The learning rate of the epoch (schedules change it). */
  lr?: number;
}

export interface Metrics {
  config: RunConfig;
  task: Task;
  params: number;
  backend: string;
  /** Which engine trained the run (src/engines/types.ts). */
  engine?: EngineName;
  data?: { source: string; nTrain: number; nTest: number; inputShape: number[]; outputs: number };
  epochs: EpochMetrics[];
  /** The epoch with the lowest test error (the paper reports the best test error over epochs). */
  best: { epoch: number; testError: number } | null;
  meanEpochSeconds: number;
  /** Present when training stopped early because the loss became NaN or infinite. */
  diverged?: { epoch: number; batch: number; message: string };
  /** Present for truncated models: how many blocks were kept, and from which run. */
  truncatedFrom?: { dir: string; blocks: number; of: number };
}

// ---------------------------------------------------------------------------------------------
// analysis.json

/** Mean and standard deviation over test samples of each sample's L1 block-output norm. */
export interface BlockNorm { block: number; mean: number; std: number }

/** The model that sums only the first `blocks` block outputs, on the test set. */
export interface TruncationPoint { blocks: number; testError: number; testAccuracy?: number; testLoss: number }

/** One test sample's prediction split into per-block contributions through a linear head. */
export interface ContributionSample {
  index: number;
  target: number;
  prediction: number[];
  predictedClass?: number;
  /** [block][output] */
  blocks: number[][];
}

export interface Analysis {
  samples: number;
  blockNorms: BlockNorm[];
  /** GloNet models only: test error for every k = 1..L. */
  truncation?: TruncationPoint[];
  effectiveDepth: {
    /** Smallest k whose test error is within the tolerance of the full model's (GloNet only). */
    byError: number | null;
    /** Last block whose mean norm is at least 1% of the largest block's. */
    byNorm: number;
    tolerance: number;
    /** 'relative' (MSE: err_k <= err_L * (1 + tolerance)) or 'accuracy-points' (acc_k >= acc_L - tolerance). */
    toleranceKind: 'relative' | 'accuracy-points';
  };
  contributions?: { task: Task; bias: number[]; samples: ContributionSample[] };
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
