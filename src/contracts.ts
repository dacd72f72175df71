/**
 * The JSON files glonet writes, as one set of types: `metrics.json` (training, rewritten after
 * every epoch), `analysis.json` (`glonet analyze`). Writers produce these types; readers
 * (the report, analysis, experiments) read them with `readJson` from ./io.ts. Field meanings are
 * documented here and in docs/architecture.md.
 */
import type { RunConfig } from './vocabulary.js';
import type { EngineName } from './vocabulary.js';
import type { Task } from './vocabulary.js';
import type { DataFingerprint } from './data/fingerprint.js';

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
    /** Classification: the class names, in output order (when the data set has them). */
    classes?: string[];
    /**
     * The test error of the best constant guess made from the training rows (the training mean:
     * MSE on the standardized target; the most frequent training class: 1 - its share of the test
     * rows): what a model that learned nothing scores.
     */
    constantError?: number;
    /** What the loader decided that the user should hear (rows or columns left out), one line each. */
    notes?: string[];
    /**
     * The files the data were read from, each with its size and SHA-256 (absent in runs of older
     * glonet versions): later commands refuse data that are not the same.
     */
    fingerprint?: DataFingerprint;
  };
  /**
   * Classification: the test set's confusion matrix after the last epoch, `matrix[t][p]` the test
   * rows of true class t predicted as class p (classes as in `data.classes`).
   */
  confusion?: {
    /** The epoch it was measured after. */
    epoch: number;
    /** Rows: true class; columns: predicted class. */
    matrix: number[][];
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

/**
 * One block's effect on the model's output, GloNet models with a linear head only: how much it
 * writes into the prediction and how much test error it removes when it joins the sum.
 */
export interface BlockEffect {
  /** The block, 1-based. */
  block: number;
  /** Mean over test samples and outputs of |x_l K| (K the head's kernel): the block's additive contribution. */
  contribution: number;
  /** Test error of the first block-1 blocks minus that of the first block blocks (0 blocks = the head's bias alone). */
  errorRemoved: number;
}

/** The effective depths of a model, each with its definition stated in `definitions`. */
export interface EffectiveDepth {
  /** Smallest k whose test error is within the tolerance of the full model's (GloNet only). */
  byError: number | null;
  /** Smallest k whose first k blocks hold `share` of the summed mean L1 block norm. */
  normShare: {
    /** The share of the summed norm asked for (0.95). */
    share: number;
    /** The smallest k that holds it. */
    blocks: number;
  };
  /** Last block whose mean norm is at least 1% of the largest block's (a tail detector: scattered small blocks move it). */
  byNorm: number;
  /** The tolerance of `byError`, of kind `toleranceKind`. */
  tolerance: number;
  /** 'relative' (MSE: err_k <= err_L * (1 + tolerance)) or 'accuracy-points' (acc_k >= acc_L - tolerance). */
  toleranceKind: 'relative' | 'accuracy-points';
  /** Each field above in words, as computed. */
  definitions: Record<string, string>;
}

/** `analysis.json`, written by `glonet analyze` (and {@link analyzeModel}). */
export interface Analysis {
  /** Test samples the norms and contributions were computed on. */
  samples: number;
  /** Every block's output norm statistics, block 1 first (the paper's Fig. 4). */
  blockNorms: BlockNorm[];
  /** GloNet models only: test error for every k = 1..L. */
  truncation?: TruncationPoint[];
  /** How many blocks the model really uses, by three measures, each defined in `definitions`. */
  effectiveDepth: EffectiveDepth;
  /** GloNet models with a linear head: each block's contribution beside the error it removes. */
  blockEffects?: BlockEffect[];
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
type ReadNumber = number | null | string;

/** Counters that every writer writes as integers (epoch and block numbers, sample indices). */
type Counter = 'epoch' | 'block' | 'blocks' | 'index' | 'predictedClass';

/**
 * A contract as a tolerant reader sees it: JSON writes NaN and Infinity as null, other writers
 * may write numbers as strings or leave fields out, and a run config may carry keys of other
 * versions. Counters stay integers.
 */
type AsRead<T> = T extends number
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

// ---------------------------------------------------------------------------------------------
// Experiments (`glonet experiment`): DIR/experiment.json, DIR/cells/<id>/cell.json, DIR/results.json

/** `DIR/experiment.json`: what `glonet experiment run` was asked, so `report` knows every cell it expects. */
export interface ExperimentManifest {
  experiment: string;
  preset: string;
  /** Seeds per cell when `--seeds` overrode the preset's. */
  seeds?: number;
  /** The data the cells train on (the command's data options, resolved; the CSV options when given). */
  data: { dataset: string; data?: string; target?: string; drop?: string[] } & Partial<Pick<RunConfig, 'task' | 'categorical' | 'missing' | 'maxClasses' | 'maxLevels'>>;
  /** Every cell's id, in the stable order of the grid. */
  cells: string[];
}

/** `DIR/cells/<id>/cell.json`: written last, so its presence marks a finished cell. */
export interface CellRecord {
  id: string;
  /** Seconds `glonet analyze` took on the cell (training time is in metrics.json). */
  analyzeSeconds: number;
  /** The 1-minute load average when the cell started and when it finished, and the cores. */
  load: { start: number; end: number; cpus: number };
  host: string;
  finishedAt: string;
}

/** One cell of results.json: a finished run folder, summarized. */
export interface ExperimentCell {
  id: string;
  model: string;
  arch: string;
  depth: number;
  seed: number;
  dataset: string;
  nTrain: number;
  /** Test examples (absent in results written before it was recorded). */
  nTest?: number;
  /** The test error of the best constant guess from the training rows (metrics.json's data.constantError). */
  constantError?: number;
  epochs: number;
  /** The best test error over epochs (MSE, or 1 - accuracy); null when no epoch was finite. */
  bestTestError: number | null;
  bestTestAccuracy?: number;
  bestEpoch: number | null;
  meanEpochSeconds: number;
  /**
   * Seconds of the first epochs and of the last ones (the mean of up to three each, the very first
   * epoch left out as warm-up), so that a slowdown during a run shows (a subnormal-float drift, a
   * machine that got busy): absent for runs of fewer than three epochs.
   */
  epochDrift?: { first: number; last: number };
  /** Training plus analysis, in seconds, as measured on the machine that ran the cell. */
  seconds: number;
  engine: string;
  backend: string;
  /** Present when training stopped on a NaN or infinite loss. */
  diverged?: { epoch: number };
  /** The analysis' effective depths (null when the cell has no analysis). */
  effectiveDepth: EffectiveDepth | null;
  /** The 1-minute load average over the cell (mean of start and end) and the machine's cores. */
  load?: { mean: number; cpus: number };
}

export type Verdict = 'holds' | 'partly' | 'fails' | 'not-measured';

export interface ClaimResult {
  id: string;
  /** The claim, in words. */
  text: string;
  /** What the paper reports for it (its numbers). */
  paper: string;
  /** What we measured. */
  ours: string;
  verdict: Verdict;
  /** The rule that turned our numbers into the verdict, as the code applies it. */
  rule: string;
  /** Present (true) when the verdict rests on wall-clock times, which differ between runs and machines. */
  timed?: boolean;
}

/** `DIR/results.json`: every finished cell, the missing and failed ones by id, the claims. */
export interface ExperimentResults {
  experiment: string;
  preset: string;
  glonetVersion: string;
  machine: { host: string; cpus: number; cpuModel: string; memoryGiB: number; platform: string; node: string };
  /** When the report was written (ISO 8601). */
  writtenAt: string;
  data: ExperimentManifest['data'];
  cells: ExperimentCell[];
  /** Cells of the grid with no finished run folder yet; `interrupted` gives the last finished epoch. */
  missing: Array<{ id: string; interruptedAfterEpoch?: number }>;
  /** Cells whose run failed with an error (not a divergence), with the error. */
  failed: Array<{ id: string; error: string }>;
  claims: ClaimResult[];
  /** Sum of the finished cells' seconds: the compute time of the grid on the machines that ran it. */
  cellSeconds: number;
}
