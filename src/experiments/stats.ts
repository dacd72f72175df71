/**
 * Summaries the claim rules share: a metric of the cells of one architecture, grouped by depth,
 * as the mean over seeds with its spread, and the words the rules print.
 */
import type { ExperimentCell } from '../contracts.js';

export interface Summary {
  depth: number;
  mean: number;
  min: number;
  max: number;
  n: number;
}

/** A cell's number for a claim: its best test error (Infinity when no epoch was finite). */
export const bestError = (c: ExperimentCell): number => c.bestTestError ?? Infinity;

/** A cell's best test accuracy, in percent (0 when no epoch was finite). */
export const bestAccuracy = (c: ExperimentCell): number => (c.bestTestAccuracy ?? 0) * 100;

/** The cells of `arch`, grouped by depth (ascending): mean, min, max over seeds of `metric`. */
export function byDepth(cells: ExperimentCell[], arch: string, metric: (c: ExperimentCell) => number): Summary[] {
  const groups = new Map<number, number[]>();
  for (const c of cells) {
    if (c.arch !== arch) continue;
    groups.set(c.depth, [...(groups.get(c.depth) ?? []), metric(c)]);
  }
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([depth, v]) => ({
    depth,
    mean: v.reduce((s, x) => s + x, 0) / v.length,
    min: Math.min(...v),
    max: Math.max(...v),
    n: v.length,
  }));
}

/** A number for a claim's text: 3 significant digits, 'none' for Infinity (no finite epoch). */
export function num(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return 'none';
  if (v !== 0 && (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}

/** "0.141 (0.139-0.143, 2 seeds)" or "0.141" for one seed. */
export function meanSpread(s: Summary, digits = 3): string {
  return s.n > 1 ? `${num(s.mean, digits)} (${num(s.min, digits)}-${num(s.max, digits)}, ${s.n} seeds)` : num(s.mean, digits);
}

/** "d10 0.141, d100 0.140": one value per depth. */
export function perDepth(list: Summary[], digits = 3): string {
  return list.map((s) => `d${s.depth} ${meanSpread(s, digits)}`).join(', ');
}

/** At every depth both architectures reached: their mean best accuracies and the gap (first minus second), in points. */
export function accuracyGaps(cells: ExperimentCell[], arch: string, baseline: string): Array<{ depth: number; a: Summary; b: Summary; gap: number }> {
  const a = byDepth(cells, arch, bestAccuracy);
  const b = byDepth(cells, baseline, bestAccuracy);
  return a.flatMap((s) => b.filter((x) => x.depth === s.depth).map((x) => ({ depth: s.depth, a: s, b: x, gap: s.mean - x.mean })));
}
