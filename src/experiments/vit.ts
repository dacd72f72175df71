/**
 * `vit`: ViT against GloNet-ViT with 4, 5 and 6 encoders (the paper's Fig. 6b), on Fashion-MNIST
 * by default and on CIFAR-10 with --data.
 */
import type { ExperimentCell } from '../contracts.js';
import type { Experiment } from './experiment.js';
import { accuracyGaps, meanSpread, num } from './stats.js';

// The paper, Fig. 6b and its text: best CIFAR-10 accuracies after training plateaus (~500 epochs).
const PAPER: Record<number, { plain: number; glonet: number }> = { 4: { plain: 0.707, glonet: 0.709 }, 5: { plain: 0.709, glonet: 0.727 }, 6: { plain: 0.725, glonet: 0.729 } };
/** GloNet-ViT matches ViT at an encoder count when it is at most this many points below it. */
const MATCH_POINTS = 1;

function judge(cells: ExperimentCell[]) {
  const pairs = accuracyGaps(cells, 'glonet', 'plain');
  if (pairs.length === 0) return { verdict: 'not-measured' as const, ours: 'no encoder count has both a ViT and a GloNet-ViT cell' };
  const matched = pairs.filter((x) => x.gap >= -MATCH_POINTS).length;
  const verdict = matched === pairs.length ? 'holds' : matched > 0 ? 'partly' : 'fails';
  return {
    verdict,
    ours: pairs.map((x) => `${x.depth} encoders: GloNet-ViT ${meanSpread(x.a)}% vs ViT ${meanSpread(x.b)}% (${num(x.gap, 2)} points)`).join('; '),
  } as const;
}

export const vit: Experiment = {
  name: 'vit',
  title: 'ViT against GloNet-ViT',
  paperRef: 'Fig. 6b',
  tests: 'GloNet-ViT matches or beats ViT with 4, 5 and 6 encoders (the paper: 0.709/0.727/0.729 vs 0.707/0.709/0.725 on CIFAR-10)',
  model: 'vit',
  presets: {
    smoke: { archs: ['plain', 'glonet'].map((arch) => ({ arch, depths: [1, 2] })), epochs: 1, seeds: 1, subset: 100, samples: 20, protocol: { width: 16 } },
    // On the fused ViT engine: all three encoder counts, three seeds, 5,000 Fashion-MNIST training
    // images (833 test) for 6 epochs, at the family's defaults (Adam 1e-3 after one epoch of
    // warm-up): long enough for both ViTs to learn, so that a gap between them means something.
    quick: { archs: ['plain', 'glonet'].map((arch) => ({ arch, depths: [4, 5, 6] })), epochs: 6, seeds: 3, subset: 5000, samples: 300 },
    // All of Fashion-MNIST (60,000 training, 10,000 test images), two seeds, 10 epochs at the
    // defaults: one long session on two cores.
    long: { archs: ['plain', 'glonet'].map((arch) => ({ arch, depths: [4, 5, 6] })), epochs: 10, seeds: 2, samples: 5000 },
    paper: { archs: ['plain', 'glonet'].map((arch) => ({ arch, depths: [4, 5, 6] })), epochs: 500, seeds: 1, samples: 5000 },
  },
  datasets: ['fashion-mnist', 'cifar10', 'mnist'],
  dataWith: 'cifar10',
  claims: [{
    id: 'vit-glonet-matches',
    text: 'GloNet-ViT matches or beats ViT at every encoder count',
    paper: `CIFAR-10, best accuracy, ViT / GloNet-ViT: ${Object.entries(PAPER).map(([d, v]) => `${d} encoders ${v.plain} / ${v.glonet}`).join(', ')}`,
    rule: `best test accuracy, mean over seeds, at each encoder count; an encoder count matches when GloNet-ViT is at most ${MATCH_POINTS} point below ViT; holds if all match, partly if some, fails if none`,
    judge,
  }],
  charts: [{ kind: 'error-vs-depth' }, { kind: 'learning-curves' }],
};
