/** The training loop: seeded shuffles, mini-batches, evaluation, divergence checks. */
import type { Dataset } from '../data/dataset.js';
import { exampleSize } from '../data/dataset.js';
import { Rng } from '../random.js';
import type { EpochMetrics } from '../contracts.js';
import type { Progress } from './progress.js';
import type { Stepper } from '../engines/types.js';
import { evaluate, type Evaluation } from '../scoring.js';
import { GlonetError } from '../errors.js';
import { warmupFactor } from './schedule.js';

/** The loss became NaN or infinite: training stopped; the files of earlier epochs stay valid. */
export class DivergedError extends GlonetError {
  /** 'DivergedError'. */
  override name = 'DivergedError';
  override readonly kind = 'runtime';
  /**
   * @param epoch the epoch it happened in
   * @param batch the 0-based batch within that epoch
   * @param loss the loss seen (NaN or infinite)
   */
  constructor(readonly epoch: number, readonly batch: number, readonly loss: number) {
    super(`training diverged: the loss became ${loss} at epoch ${epoch}, batch ${batch}; ` +
      'try a smaller --lr (the files written for earlier epochs are kept and valid)');
  }
}

/** Training was asked to stop (SIGINT, SIGTERM, an AbortSignal); `epoch` is the last one saved. */
export class InterruptedError extends GlonetError {
  /** 'InterruptedError'. */
  override name = 'InterruptedError';
  override readonly kind = 'interrupted';
  /** @param epoch the last epoch saved (0: none) */
  constructor(readonly epoch: number) {
    super(epoch > 0
      ? `interrupted after epoch ${epoch}; continue with --resume`
      : 'interrupted before the first epoch finished; nothing was saved, run the command again to start');
  }
}

interface LoopOptions {
  /** First epoch to run (1-based); later than 1 when resuming. */
  startEpoch: number;
  epochs: number;
  batchSize: number;
  seed: number;
  lrAt: (epoch: number) => number;
  /**
   * Steps of linear warm-up (0 or absent: none): the run's step t = 1, 2, ... (counted from the
   * first epoch, so a resumed run continues it) uses lrAt(epoch) * t / warmupSteps until
   * t = warmupSteps.
   */
  warmupSteps?: number;
  /** Per-batch input transform (data augmentation), seeded. */
  augment?: (x: Float32Array, rows: number, rng: Rng) => Float32Array;
  progress: Progress;
  /** Called after every epoch, with the weights synced to the TF.js model, and the epoch's test scores. */
  onEpoch: (m: EpochMetrics, test: Evaluation) => Promise<void>;
  /** Asked before every batch; true stops training with an InterruptedError (the epoch in progress is dropped). */
  shouldStop?: () => boolean;
}

/** How often the loop lets the event loop run (signals, timers) between batches. */
const YIELD_MS = 50;

/** The seed of an epoch's shuffle: independent of earlier epochs, so a resumed run is identical. */
function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(epoch, 0x85ebca6b)) >>> 0;
}

export async function trainLoop(stepper: Stepper, ds: Dataset, opts: LoopOptions): Promise<void> {
  const size = exampleSize(ds);
  const bs = Math.min(opts.batchSize, ds.nTrain);
  const batches = Math.ceil(ds.nTrain / bs);
  const xb = new Float32Array(bs * size);
  const yb = new Float32Array(bs);
  let lastYield = -Infinity;
  for (let epoch = opts.startEpoch; epoch <= opts.epochs; epoch++) {
    const t0 = performance.now();
    const lr = opts.lrAt(epoch);
    const warmup = opts.warmupSteps ?? 0;
    stepper.setLearningRate(lr);
    const rng = new Rng(epochSeed(opts.seed, epoch));
    const order = rng.permutation(ds.nTrain);
    opts.progress.startEpoch(epoch, opts.epochs, batches);
    let lossSum = 0;
    for (let b = 0; b < batches; b++) {
      // Signals (Ctrl-C) are delivered by the event loop, which synchronous steps never reach: yield to it.
      if (performance.now() - lastYield > YIELD_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      if (opts.shouldStop?.()) {
        opts.progress.stop();
        throw new InterruptedError(epoch - 1);
      }
      const start = b * bs;
      const rows = Math.min(bs, ds.nTrain - start);
      // The batch's rows, copied element by element: a subarray per row would allocate 190,000
      // views an epoch on SGEMM, which cost as much as a 10-block GloNet's steps.
      const xs = ds.xTrain;
      for (let i = 0; i < rows; i++) {
        const r = order[start + i];
        const from = r * size;
        const to = i * size;
        for (let j = 0; j < size; j++) xb[to + j] = xs[from + j];
        yb[i] = ds.yTrain[r];
      }
      const x = opts.augment ? opts.augment(xb.subarray(0, rows * size), rows, rng) : xb;
      const t = (epoch - 1) * batches + b + 1; // the run's step, 1-based
      if (t <= warmup) stepper.setLearningRate(lr * warmupFactor(t, warmup));
      const loss = stepper.step(x, yb, rows);
      if (!Number.isFinite(loss)) {
        opts.progress.stop();
        throw new DivergedError(epoch, b + 1, loss);
      }
      lossSum += loss * rows;
      opts.progress.batch(b + 1, loss);
    }
    const test = evaluate((x, rows) => stepper.predict(x, rows), ds, ds.xTest, ds.yTest, ds.nTest);
    if (!Number.isFinite(test.loss)) {
      opts.progress.stop();
      throw new DivergedError(epoch, batches, test.loss);
    }
    stepper.syncToModel();
    const m: EpochMetrics = {
      epoch,
      trainLoss: lossSum / ds.nTrain,
      testLoss: test.loss,
      testError: test.error,
      ...(test.accuracy != null ? { testAccuracy: test.accuracy } : {}),
      seconds: (performance.now() - t0) / 1000,
      lr,
    };
    await opts.onEpoch(m, test);
    opts.progress.endEpoch(m, opts.epochs, ds.task);
  }
}
