/**
 * `cnn`: GloNet-ResNet20 against ResNetv2-ResNet20 (the paper's CNN experiment, reported in its
 * text), on Fashion-MNIST by default and on CIFAR-10 with --data, with glonet-bn beside them (BN
 * in GloNet's blocks, where the authors' notebook kept it; no claim of the paper, a row of the
 * report). Each architecture trains with its own family protocol (`glonet train --help` lists
 * them), GloNet-ResNet20 with its defaults' norm-free options.
 */
import type { ExperimentCell } from '../contracts.js';
import type { Experiment } from './experiment.js';
import { accuracyGaps, meanSpread, num } from './stats.js';

// The paper, section 5: ResNet20 against GloNet-ResNet20 on CIFAR-10 after 200 epochs.
const PAPER = { resnetv2: 91.12, glonet: 91.08 };
/** On par: GloNet at most this many accuracy points below ResNetv2 (the mean over seeds). */
const PAR_POINTS = 1;
/** The report's rows: the claim's two, and glonet-bn. */
const ARCHS = ['glonet', 'resnetv2', 'glonet-bn'];
const PARTLY_POINTS = 3;

function judge(cells: ExperimentCell[]) {
  const pairs = accuracyGaps(cells, 'glonet', 'resnetv2');
  if (pairs.length === 0) return { verdict: 'not-measured' as const, ours: 'no depth has both a GloNet and a ResNetv2 cell' };
  const worst = Math.min(...pairs.map((p) => p.gap));
  const verdict = worst >= -PAR_POINTS ? 'holds' : worst >= -PARTLY_POINTS ? 'partly' : 'fails';
  const dataset = cells[0]?.dataset ?? '';
  return {
    verdict,
    ours: pairs.map((p) => `depth ${p.depth} on ${dataset}: GloNet ${meanSpread(p.a)}% vs ResNetv2 ${meanSpread(p.b)}% (${num(p.gap, 2)} points)`).join('; '),
  } as const;
}

export const cnn: Experiment = {
  name: 'cnn',
  title: 'GloNet-ResNet20 against ResNetv2-ResNet20',
  paperRef: 'section 5, CNN (text)',
  tests: 'GloNet-ResNet20 is on par with ResNetv2-ResNet20 (the paper: 91.08% vs 91.12% on CIFAR-10)',
  model: 'resnet20',
  presets: {
    smoke: { archs: ARCHS.map((arch) => ({ arch, depths: [20] })), epochs: 1, seeds: 1, subset: 100, samples: 20 },
    quick: { archs: ARCHS.map((arch) => ({ arch, depths: [20] })), epochs: 10, seeds: 2, subset: 6000, samples: 1200 },
    // All of Fashion-MNIST (60,000 training and the 10,000 official test images), two seeds, 15
    // epochs (the BN networks' steps fall x0.1 at epochs 4, 7 and 10, so their curves flatten), the
    // BN-free baselines beside them: one long session on two cores.
    long: { archs: ['glonet', 'resnetv2', 'vanilla-nobn', 'resnetv2-nobn'].map((arch) => ({ arch, depths: [20] })), epochs: 15, seeds: 2, samples: 5000 },
    paper: { archs: ARCHS.map((arch) => ({ arch, depths: [20] })), epochs: 200, seeds: 1, samples: 5000, augment: true },
  },
  datasets: ['fashion-mnist', 'cifar10', 'mnist'],
  dataWith: 'cifar10',
  claims: [{
    id: 'cnn-parity',
    text: 'GloNet-ResNet20 is on par with ResNetv2-ResNet20',
    paper: `CIFAR-10, 200 epochs: GloNet-ResNet20 ${PAPER.glonet}% vs ResNet20 ${PAPER.resnetv2}%`,
    rule: `best test accuracy, mean over seeds; holds if GloNet is at most ${PAR_POINTS} point below ResNetv2 (or above it), partly if at most ${PARTLY_POINTS} points below, fails otherwise`,
    judge,
  }],
  charts: [{ kind: 'error-vs-depth' }, { kind: 'learning-curves' }, { kind: 'norms' }],
};
