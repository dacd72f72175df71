/** The learning rate of an epoch under a run's schedule (src/vocabulary.ts names the schedules). */
import type { RunConfig } from '../vocabulary.js';

/** Learning rate at a 1-based epoch under the run's schedule. */
export function learningRateAt(cfg: Pick<RunConfig, 'lr' | 'schedule' | 'epochs'>, epoch: number): number {
  if (cfg.schedule === 'constant') return cfg.lr;
  const quarter = Math.max(1, Math.floor(cfg.epochs / 4));
  return cfg.lr * Math.pow(0.1, Math.min(3, Math.floor((epoch - 1) / quarter)));
}
