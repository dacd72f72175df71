/** Summaries kept in metrics.json (the contract itself is src/contracts.ts). */
import type { EpochMetrics, Metrics } from '../contracts.js';

export function summarize(epochs: EpochMetrics[]): Pick<Metrics, 'best' | 'meanEpochSeconds'> {
  let best: Metrics['best'] = null;
  for (const e of epochs) {
    if (Number.isFinite(e.testError) && (best == null || e.testError < best.testError)) best = { epoch: e.epoch, testError: e.testError };
  }
  const mean = epochs.length ? epochs.reduce((s, e) => s + e.seconds, 0) / epochs.length : 0;
  return { best, meanEpochSeconds: mean };
}
