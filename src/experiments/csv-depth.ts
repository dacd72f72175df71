/**
 * `csv-depth`: the sgemm-depth grid and claims on the user's own CSV (`--data FILE --target COL
 * [--drop COLS]`): does depth resilience hold on my data? The paper's numbers beside ours are
 * SGEMM's, for reference. Every preset trains on all of the CSV's rows: its size is the user's.
 */
import type { Experiment, Grid, PresetName } from './experiment.js';
import { DEPTH_CLAIMS, DEPTH_PRESETS } from './sgemm-depth.js';

const allRows = (g: Grid): Grid => {
  const { subset: _subset, ...rest } = g;
  return { ...rest, archs: rest.archs.map(({ subset: _s, ...a }) => a) };
};
const PRESETS = Object.fromEntries(Object.entries(DEPTH_PRESETS).map(([k, g]) => [k, allRows(g)])) as Record<PresetName, Grid>;

export const csvDepth: Experiment = {
  name: 'csv-depth',
  title: 'Depth resilience on your CSV',
  paperRef: 'Tables 1 and 2 (SGEMM), on your data',
  tests: 'the sgemm-depth questions on your own CSV (--data FILE --target COL): is GloNet\'s error flat across depth, do the baselines collapse?',
  model: 'mlp',
  presets: PRESETS,
  datasets: ['csv'],
  claims: DEPTH_CLAIMS,
  charts: [{ kind: 'error-vs-depth' }, { kind: 'epoch-time-vs-depth' }, { kind: 'learning-curves' }],
};
