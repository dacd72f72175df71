/**
 * `mnist-truncation`: the paper's Fig. 6a. A 50-block GloNet MLP on MNIST, and the accuracy of
 * the same trained model when it keeps only its first k blocks (no retraining).
 */
import type { ExperimentCell } from '../contracts.js';
import type { Experiment } from './experiment.js';
import { num } from './stats.js';

// The paper, Fig. 6a: "removing up to 42 blocks did not significantly impact accuracy";
// "performance plateaus after block eight".
const PAPER_KEEP = 8;
/** At most this many blocks needed (mean over seeds) for the claim to hold; up to half of them for partly. */
const KEEP_HOLDS = 8;
const KEEP_PARTLY_FRACTION = 0.5;

function judge(cells: ExperimentCell[]) {
  const g = cells.filter((c) => c.arch === 'glonet' && c.effectiveDepth?.byError != null);
  if (g.length === 0) return { verdict: 'not-measured' as const, ours: 'no analyzed GloNet cell' };
  const keep = g.map((c) => c.effectiveDepth!.byError!);
  const mean = keep.reduce((s, k) => s + k, 0) / keep.length;
  const depth = Math.max(...g.map((c) => c.depth));
  const tol = g[0].effectiveDepth!.tolerance * 100;
  const verdict = mean <= KEEP_HOLDS ? 'holds' : mean <= KEEP_PARTLY_FRACTION * depth ? 'partly' : 'fails';
  return {
    verdict,
    ours: `blocks needed to stay within ${num(tol)} accuracy points of all ${depth}: ${keep.join(', ')} (seeds 0-${keep.length - 1}; mean ${num(mean)}), so ${num(depth - mean)} of ${depth} can be dropped`,
  } as const;
}

export const mnistTruncation: Experiment = {
  name: 'mnist-truncation',
  title: 'Truncating a trained 50-block GloNet on MNIST',
  paperRef: 'Fig. 6a',
  tests: 'up to 42 of a 50-block GloNet\'s blocks can be dropped after training with no significant loss of accuracy',
  model: 'mlp',
  presets: {
    smoke: { archs: [{ arch: 'glonet', depths: [10] }], epochs: 2, seeds: 2, subset: 1000, samples: 200 },
    quick: { archs: [{ arch: 'glonet', depths: [50] }], epochs: 200, seeds: 3 },
    paper: { archs: [{ arch: 'glonet', depths: [50] }], epochs: 200, seeds: 3, samples: 5000 },
  },
  datasets: ['mnist'],
  claims: [{
    id: 'glonet-truncation',
    text: 'Up to 42 of 50 blocks can be dropped with no significant loss',
    paper: `Fig. 6a: accuracy plateaus after block ${PAPER_KEEP} of 50, 200 epochs`,
    rule: `byError of each seed (the fewest blocks within the analysis' tolerance of the full model's accuracy, 0.5 points by default); holds if the mean over seeds is at most ${KEEP_HOLDS}, partly if at most ${KEEP_PARTLY_FRACTION * 100}% of the blocks, fails otherwise`,
    judge,
  }],
  charts: [{ kind: 'truncation' }, { kind: 'norms' }],
};
