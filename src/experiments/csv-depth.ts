/**
 * `csv-depth`: the sgemm-depth grid and claims on the user's own CSV (`--data FILE --target COL
 * [--drop COLS]`, and the CSV options of `glonet train`): does depth resilience hold on my data?
 * The paper's numbers beside ours are SGEMM's, for reference. Every preset trains on all of the
 * CSV's rows: its size is the user's.
 *
 * A numeric target is judged as SGEMM is, by the test MSE on the standardized target. A target of
 * classes is judged by accuracy, the way mnist-depth judges MNIST: flat within a few accuracy
 * points (or test rows, on a small table), collapsed when a model does no better than always
 * guessing the most frequent training class, degraded by the points lost with depth.
 */
import type { ExperimentCell } from '../contracts.js';
import type { Claim, CorePreset, Experiment, Grid } from './experiment.js';
import { DEPTH_CLAIMS, DEPTH_PRESETS } from './sgemm-depth.js';
import { bestAccuracy, byDepth, num, perDepth, type Summary } from './stats.js';

const allRows = (g: Grid): Grid => {
  const { subset: _subset, ...rest } = g;
  return { ...rest, archs: rest.archs.map(({ subset: _s, ...a }) => a) };
};
const PRESETS = Object.fromEntries(Object.entries(DEPTH_PRESETS).map(([k, g]) => [k, allRows(g)])) as Record<CorePreset, Grid>;

/** GloNet's accuracy is flat when its best and worst depths are within these points (mnist-depth's)... */
const FLAT_HOLDS_POINTS = 1;
const FLAT_PARTLY_POINTS = 3;
/** ...or within this many test rows, on a table whose test rows are worth more than a point each. */
const FLAT_HOLDS_ROWS = 1;
const FLAT_PARTLY_ROWS = 3;
/** A depth collapsed when its mean best accuracy is within this many points of always guessing the most frequent training class. */
const COLLAPSE_MARGIN_POINTS = 1;
const COLLAPSE_FROM = 50;
/** ResNetv2-no-BN degrades when its deepest depth is this many points below its shallowest (partly: PARTLY). */
const DEGRADES_HOLDS_POINTS = 2;
const DEGRADES_PARTLY_POINTS = 0.5;

const isClassification = (cells: ExperimentCell[]): boolean => cells.some((c) => c.bestTestAccuracy != null);
const notMeasured = (ours: string) => ({ verdict: 'not-measured' as const, ours });

/** Points that `rows` test rows are worth (0 when the cells do not say their test size). */
function rowPoints(cells: ExperimentCell[], rows: number): number {
  const n = cells.find((c) => c.nTest != null)?.nTest;
  return n ? (100 * rows) / n : 0;
}

function flatByAccuracy(cells: ExperimentCell[]) {
  const g = byDepth(cells, 'glonet', bestAccuracy);
  if (g.length < 2) return notMeasured('fewer than two GloNet depths finished');
  const spread = Math.max(...g.map((s) => s.mean)) - Math.min(...g.map((s) => s.mean));
  const holds = Math.max(FLAT_HOLDS_POINTS, rowPoints(cells, FLAT_HOLDS_ROWS));
  const partly = Math.max(FLAT_PARTLY_POINTS, rowPoints(cells, FLAT_PARTLY_ROWS));
  const verdict = spread <= holds ? 'holds' : spread <= partly ? 'partly' : 'fails';
  return { verdict, ours: `best - worst ${num(spread, 2)} points (holds within ${num(holds, 2)}); accuracy %: ${perDepth(g)}` } as const;
}

function collapseByAccuracy(cells: ExperimentCell[]) {
  const guess = cells.find((c) => c.constantError != null)?.constantError;
  if (guess == null) return notMeasured('the cells do not record the constant guess\'s error (trained before glonet recorded it)');
  const floor = (1 - guess) * 100 + COLLAPSE_MARGIN_POINTS;
  const archs = ['vanilla', 'vanilla-nobn'].map((arch) => ({ arch, g: byDepth(cells, arch, bestAccuracy) })).filter((a) => a.g.length > 0);
  const deep = archs.flatMap((a) => a.g.filter((s) => s.depth >= COLLAPSE_FROM));
  if (deep.length === 0) return notMeasured(`no vanilla cell at ${COLLAPSE_FROM} blocks or more finished`);
  const collapsed = (s: Summary) => s.mean <= floor;
  const deepCollapsed = deep.filter(collapsed).length;
  const early = archs.flatMap((a) => a.g.filter((s) => s.depth < COLLAPSE_FROM && collapsed(s))).length;
  const verdict = deepCollapsed === deep.length && early === 0 ? 'holds' : deepCollapsed > 0 ? 'partly' : 'fails';
  const ours = `the constant guess scores ${num((1 - guess) * 100)}%; ` + archs.map((a) => `${a.arch} accuracy %: ${perDepth(a.g)}`).join('; ') +
    ` (${deepCollapsed} of ${deep.length} at ${COLLAPSE_FROM}+ collapsed${early ? `, ${early} below ${COLLAPSE_FROM} too` : ''})`;
  return { verdict, ours } as const;
}

function degradesByAccuracy(cells: ExperimentCell[]) {
  const g = byDepth(cells, 'resnetv2-nobn', bestAccuracy);
  if (g.length < 2) return notMeasured('fewer than two ResNetv2-no-BN depths finished');
  const lost = g[0].mean - g[g.length - 1].mean;
  const holds = Math.max(DEGRADES_HOLDS_POINTS, rowPoints(cells, 1));
  const verdict = lost >= holds ? 'holds' : lost >= DEGRADES_PARTLY_POINTS ? 'partly' : 'fails';
  return { verdict, ours: `${num(lost, 2)} points lost from the shallowest to the deepest (holds from ${num(holds, 2)}); accuracy %: ${perDepth(g)}` } as const;
}

/** GloNet against ResNetv2: within this many points (or one test row) up to VERSUS_UP_TO blocks, ahead from twice that. */
const VERSUS_POINTS = 1;
const VERSUS_UP_TO = 100;

function versusResNetByAccuracy(cells: ExperimentCell[]) {
  const g = byDepth(cells, 'glonet', bestAccuracy);
  const r = byDepth(cells, 'resnetv2', bestAccuracy);
  const pairs = g.flatMap((s) => {
    const o = r.find((x) => x.depth === s.depth);
    return o ? [{ depth: s.depth, gap: s.mean - o.mean }] : [];
  });
  if (pairs.length === 0) return notMeasured('no depth has both a GloNet and a ResNetv2 cell');
  const margin = Math.max(VERSUS_POINTS, rowPoints(cells, 1));
  const shallow = pairs.filter((p) => p.depth <= VERSUS_UP_TO);
  const deep = pairs.filter((p) => p.depth > VERSUS_UP_TO);
  const within = shallow.filter((p) => p.gap >= -margin).length;
  const ahead = deep.filter((p) => p.gap > 0).length;
  const list = (ps: typeof pairs) => ps.map((p) => `d${p.depth} ${p.gap >= 0 ? '+' : ''}${num(p.gap, 2)}`).join(', ') || 'none';
  const ours = `GloNet minus ResNetv2 best accuracy, points, up to ${VERSUS_UP_TO} blocks: ${list(shallow)} (${within} of ${shallow.length} within ${num(margin, 2)}); ` +
    `from ${VERSUS_UP_TO * 2}: ${list(deep)} (${ahead} of ${deep.length} ahead)`;
  const verdict = within + ahead === pairs.length ? 'holds' : within + ahead > 0 ? 'partly' : 'fails';
  return { verdict, ours } as const;
}

const BY_ACCURACY: Record<string, { rule: string; judge: Claim['judge'] }> = {
  'glonet-vs-resnetv2': {
    rule: `mean best test accuracy over seeds, GloNet minus ResNetv2 at each depth both reached; holds if every depth up to ${VERSUS_UP_TO} is at most ${VERSUS_POINTS} point (or one test row) below and every deeper one above, partly if some are, fails if none`,
    judge: versusResNetByAccuracy,
  },
  'glonet-depth-flat': {
    rule: `mean best test accuracy over seeds at each depth; holds if the best and worst depths are within ${FLAT_HOLDS_POINTS} point (or ${FLAT_HOLDS_ROWS} test row, when a row is worth more), partly if within ${FLAT_PARTLY_POINTS} points (or ${FLAT_PARTLY_ROWS} rows), fails otherwise`,
    judge: flatByAccuracy,
  },
  'vanilla-collapse': {
    rule: `a depth has collapsed when its mean best test accuracy is within ${COLLAPSE_MARGIN_POINTS} point of always guessing the most frequent training class; holds if every vanilla and vanilla-no-BN depth of ${COLLAPSE_FROM}+ collapsed and none below, partly if some did, fails if none`,
    judge: collapseByAccuracy,
  },
  'resnetv2-nobn-degrades': {
    rule: `mean best test accuracy at the shallowest depth minus the deepest; holds if at least ${DEGRADES_HOLDS_POINTS} points (and one test row), partly if at least ${DEGRADES_PARTLY_POINTS}, fails otherwise`,
    judge: degradesByAccuracy,
  },
};

/** The sgemm-depth claims, judged by the MSE on a numeric target and by accuracy on a target of classes. */
const CLAIMS: Claim[] = DEPTH_CLAIMS.map((c) => {
  const acc = BY_ACCURACY[c.id];
  if (!acc) return c;
  return {
    ...c,
    rule: `a numeric target: ${c.rule}; a target of classes: ${acc.rule}`,
    judge: (cells: ExperimentCell[]) => (isClassification(cells) ? acc.judge(cells) : c.judge(cells)),
  };
});

export const csvDepth: Experiment = {
  name: 'csv-depth',
  title: 'Depth resilience on your CSV',
  paperRef: 'Tables 1 and 2 (SGEMM), on your data',
  tests: 'the sgemm-depth questions on your own CSV (--data FILE --target COL; a numeric target by MSE, classes by accuracy): is GloNet\'s error flat across depth, do the baselines collapse?',
  model: 'mlp',
  presets: PRESETS,
  datasets: ['csv'],
  claims: CLAIMS,
  charts: [{ kind: 'error-vs-depth' }, { kind: 'epoch-time-vs-depth' }, { kind: 'learning-curves' }],
};
