/** The metrics.json contract (DESIGN.md). */
import type { RunConfig } from './config.js';
import type { Task } from '../data/dataset.js';

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
  lr?: number;
}

export interface Metrics {
  config: RunConfig;
  task: Task;
  params: number;
  backend: string;
  /** Which training path ran: 'tfjs' (plain TF.js layers) or 'fused-native' / 'fused-js'. */
  engine?: string;
  data?: { source: string; nTrain: number; nTest: number; inputShape: number[]; outputs: number };
  epochs: EpochMetrics[];
  best: { epoch: number; testError: number } | null;
  meanEpochSeconds: number;
  /** Present when training stopped early because the loss became NaN or infinite. */
  diverged?: { epoch: number; batch: number; message: string };
  /** Present for truncated models: how many blocks were kept, and from which run. */
  truncatedFrom?: { dir: string; blocks: number; of: number };
}

export function summarize(epochs: EpochMetrics[]): Pick<Metrics, 'best' | 'meanEpochSeconds'> {
  let best: Metrics['best'] = null;
  for (const e of epochs) {
    if (Number.isFinite(e.testError) && (best == null || e.testError < best.testError)) best = { epoch: e.epoch, testError: e.testError };
  }
  const mean = epochs.length ? epochs.reduce((s, e) => s + e.seconds, 0) / epochs.length : 0;
  return { best, meanEpochSeconds: mean };
}
