/**
 * The learning rate of an epoch under a run's schedule (src/vocabulary.ts names the schedules), and
 * the linear warm-up on top of it, step by step (`--warmup`).
 */
import type { RunConfig } from '../vocabulary.js';

/**
 * Steps of linear warm-up for a run with `batchesPerEpoch` steps an epoch: `warmup` epochs'
 * worth, rounded, at least 1 when warm-up is on; 0 without warm-up.
 */
export function warmupSteps(cfg: Pick<RunConfig, 'warmup'>, batchesPerEpoch: number): number {
  const w = cfg.warmup ?? 0;
  return w > 0 ? Math.max(1, Math.round(w * batchesPerEpoch)) : 0;
}

/** The learning rate's factor at 1-based step t of a run with `steps` warm-up steps: t / steps, then 1. */
export function warmupFactor(t: number, steps: number): number {
  return t < steps ? t / steps : 1;
}

/** Learning rate at a 1-based epoch under the run's schedule (before warm-up, which is per step). */
export function learningRateAt(cfg: Pick<RunConfig, 'lr' | 'schedule' | 'epochs'>, epoch: number): number {
  if (cfg.schedule === 'constant') return cfg.lr;
  const quarter = Math.max(1, Math.floor(cfg.epochs / 4));
  return cfg.lr * Math.pow(0.1, Math.min(3, Math.floor((epoch - 1) / quarter)));
}
