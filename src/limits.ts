/**
 * glonet's upper limits, each with the reason for its value. Options are checked against them
 * before anything is allocated, and files before they are read, so that a typo (`--depth
 * 99999999999`), a hostile file (a symbolic link to /dev/zero, a header announcing a terabyte) or
 * an experiment of a billion cells ends in one line naming the limit, instead of minutes of
 * silence, an exhausted memory or a backend left broken for the rest of the process (the wasm
 * backend's memory is at most 4 GiB, and an allocation that fails there corrupts it).
 *
 * The limits of one model family (its depth and width) are in its record (src/models/*.ts).
 */

/** An upper limit and why it is what it is (both go into the message that enforces it). */
export interface Limit {
  /** The largest value allowed. */
  readonly max: number;
  /** Why, in words that finish the sentence "at most N ...". */
  readonly why: string;
}

/** The limits of a run's options and of the files glonet reads (each a {@link Limit}: its value and why). */
export interface Limits {
  /** Trainable parameters of a model (checked from the architecture before it is built). */
  readonly parameters: Limit;
  /**
   * Floats of the activations one training step keeps for its backward pass: the batch times the
   * values of every layer's output for one example (each family estimates the latter).
   */
  readonly activations: Limit;
  /** Training epochs. */
  readonly epochs: Limit;
  /** Examples per training step. */
  readonly batchSize: Limit;
  /** Seeds per cell of an experiment. */
  readonly seeds: Limit;
  /** Cells of one experiment (every architecture, depth and seed). */
  readonly cells: Limit;
  /** Bytes of a JSON file glonet reads (metrics.json, analysis.json, model.json, experiment.json...). */
  readonly jsonBytes: Limit;
  /** Bytes of the weights of one model folder (every file its manifest lists). */
  readonly weightBytes: Limit;
  /** Bytes of a file given to `glonet predict --input`. */
  readonly inputBytes: Limit;
  /** Bytes of one image data file once decompressed (an IDX file, a CIFAR-10 batch). */
  readonly imageFileBytes: Limit;
}

/** glonet's limits, each with its reason (docs/run-folders.md has them as a table). */
export const LIMITS: Limits = {
  parameters: {
    max: 50_000_000,
    why: 'a model\'s weights, gradients and Adam\'s two moments take 16 bytes per parameter on each engine that holds a copy, and the wasm backend holds at most 4 GiB',
  },
  activations: {
    max: 2 ** 28,
    why: 'one step keeps every layer\'s output for the whole batch to compute its gradients, and 2^28 floats are 1 GiB',
  },
  epochs: { max: 100_000, why: 'metrics.json lists every epoch and is rewritten after each one' },
  batchSize: { max: 65_536, why: 'larger batches need gigabytes of activations in a deep model and train no better' },
  seeds: { max: 1_000, why: 'every seed is another run folder for each cell of the grid' },
  cells: { max: 10_000, why: 'experiment.json lists every cell and each one trains a model for seconds to hours' },
  jsonBytes: {
    max: 64 * 2 ** 20,
    why: 'the largest glonet writes, metrics.json after 100,000 epochs or model.json of 10,000 blocks, is under 20 MB',
  },
  weightBytes: { max: 2 ** 30, why: 'four bytes per weight of a model of at most 50 million parameters is 200 MB' },
  inputBytes: { max: 2 ** 30, why: 'the rows are held in memory to be predicted' },
  imageFileBytes: { max: 2 ** 31 - 1, why: 'the images become float32, four bytes per pixel, held in memory' },
};

/** "1,000,000": a limit as the messages print it. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** "20 MB", "1 GiB": a byte count for messages. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) return `${Number((n / size).toPrecision(3))} ${unit}`;
  }
  return `${n} bytes`;
}

/** The message of a value over its limit: "--depth: at most 10,000 (why); got 20000". */
export function overLimit(what: string, value: number, limit: Limit): string {
  return `${what}: at most ${formatCount(limit.max)} (${limit.why}); got ${Number.isFinite(value) ? formatCount(value) : String(value)}`;
}
