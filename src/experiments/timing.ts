/**
 * How long an experiment takes, as measured rather than typed: `glonet experiment list` reads the
 * results.json of the last recorded quick run of each experiment (experiments/measured/
 * NAME.quick.json in the package, copied there by scripts/run-experiments.mjs) and prints its
 * compute time with the machine, date and load it ran under; likewise the paper preset's where a
 * run of it was recorded (NAME.paper.json). Otherwise the paper preset's time is extrapolated from
 * the longest recorded run below it (the long preset's cells where NAME.long.json exists: they
 * ran on the paper's data size, usually on a quieter machine; else the quick cells): an epoch's
 * seconds scale with depth and with training rows,
 * taken from the measured cell of the same architecture at the nearest depth, plus the measured
 * cells' mean cost besides their epochs (data, analysis, report).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentCell, ExperimentResults } from '../contracts.js';
import { packageRoot } from '../paths.js';
import { chooseData, gridCells, type Experiment } from './experiment.js';

/** Training rows of the default data sets when the paper preset takes all of them (80% of the examples; CIFAR-10 and Fashion-MNIST their train files). */
const TRAIN_ROWS: Record<string, number> = { sgemm: 193280, mnist: 8000, 'fashion-mnist': 60000, cifar10: 50000 };

function measuredFile(name: string, preset = 'quick'): string {
  return path.join(packageRoot(), 'experiments', 'measured', `${name}.${preset}.json`);
}

function measured(name: string, preset: 'quick' | 'long' | 'paper'): ExperimentResults | null {
  const file = measuredFile(name, preset);
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ExperimentResults;
  } catch {
    return null;
  }
}

function hours(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  return seconds < 5400 ? `${(seconds / 60).toFixed(0)} min` : `${(seconds / 3600).toFixed(1)} h`;
}

/**
 * Estimated seconds of a preset (the paper's by default) from measured cells, and the
 * architectures it could not estimate (none of their cells measured).
 */
export function estimatePaperSeconds(exp: Experiment, measured: ExperimentCell[], preset: 'long' | 'paper' = 'paper'): { seconds: number; unmeasured: string[] } | null {
  const data = chooseData(exp, exp.datasets[0] === 'csv' ? { data: 'your.csv', target: 'y' } : {});
  const rowsOf = (subset: number | undefined) => (subset != null ? Math.round(subset * 0.8) : TRAIN_ROWS[data.dataset]);
  // What a cell costs besides its epochs (data loading, analysis, its report), as measured.
  const overheads = measured.map((c) => c.seconds - c.epochs * c.meanEpochSeconds).filter((x) => Number.isFinite(x) && x > 0);
  const overhead = overheads.length ? overheads.reduce((a, b) => a + b, 0) / overheads.length : 0;
  let seconds = 0;
  const unmeasured = new Set<string>();
  for (const cell of gridCells(exp, preset, data)) {
    const same = measured.filter((c) => c.arch === cell.config.arch && c.nTrain > 0 && c.meanEpochSeconds > 0);
    const rows = rowsOf(cell.config.subset);
    if (rows == null) return null;
    if (same.length === 0) {
      unmeasured.add(cell.config.arch);
      continue;
    }
    const d = cell.config.depth;
    const q = same.reduce((a, b) => (Math.abs(Math.log(b.depth / d)) < Math.abs(Math.log(a.depth / d)) ? b : a));
    seconds += cell.config.epochs * q.meanEpochSeconds * (d / q.depth) * (rows / q.nTrain) + overhead;
  }
  return { seconds, unmeasured: [...unmeasured] };
}

/** One preset's measured time: compute seconds, date, machine, load and engines of a recorded run. */
function measuredLine(preset: string, r: ExperimentResults): string {
  const loads = r.cells.map((c) => c.load?.mean).filter((x): x is number => x != null);
  const load = loads.length ? `, load ${(loads.reduce((s, x) => s + x, 0) / loads.length).toFixed(1)}` : '';
  const incomplete = r.missing.length + r.failed.length ? ` (${r.missing.length + r.failed.length} cells unfinished, so more)` : '';
  // A run on the user's own file: its time holds for that file's size only.
  const first = r.cells[0];
  const rows = first ? first.nTrain + (first.nTest ?? 0) : 0;
  const onFile = r.data.data ? ` on ${path.basename(r.data.data)} (${rows.toLocaleString('en-US')} rows; the time scales with your file's rows)` : '';
  return `${preset}: ${hours(r.cellSeconds)}${incomplete}${onFile}, measured ${r.writtenAt.slice(0, 10)} on ${r.machine.cpus} cores (${r.machine.cpuModel}${load}; engines ${[...new Set(r.cells.map((c) => c.engine))].join(', ')})`;
}

/**
 * A preset's line in `list`: its measured time where a run of it was recorded, else an estimate
 * from the cells of `base` (the longest recorded run below it; `cells` names them in the line).
 */
function longerLine(exp: Experiment, preset: 'long' | 'paper', base: { cells: string; run: ExperimentResults } | null): string {
  const run = measured(exp.name, preset);
  if (run) return measuredLine(preset, run);
  if (!base) return `${preset}: no estimate without a measured quick run`;
  const est = estimatePaperSeconds(exp, base.run.cells, preset);
  if (est == null) return `${preset}: depends on your CSV's rows (the sgemm-depth estimate scales with them)`;
  if (est.unmeasured.length === exp.presets[preset]!.archs.length) return `${preset}: no estimate (no architecture of its grid was measured)`;
  return `${preset}: ${est.unmeasured.length ? 'at least ' : 'about '}${hours(est.seconds)} on the same machine and engines (extrapolated from the ${base.cells}: epoch time x depth x training rows, plus analysis)` +
    (est.unmeasured.length ? `, not counting ${est.unmeasured.join(', ')} (not measured)` : '');
}

/**
 * The cells the paper preset's estimate starts from: the long preset's where one was recorded
 * (the paper's data size, a quieter machine), with the quick cells of any architecture the long
 * run did not train; else the quick cells.
 */
export function estimateBase(long: ExperimentResults | null, quick: ExperimentResults | null): { cells: string; run: ExperimentResults } | null {
  if (!long || long.cells.length === 0) return quick && { cells: 'quick cells', run: quick };
  const archs = new Set(long.cells.map((c) => c.arch));
  const extra = (quick?.cells ?? []).filter((c) => !archs.has(c.arch));
  if (extra.length === 0) return { cells: 'long cells', run: long };
  return { cells: `long cells (quick cells for ${[...new Set(extra.map((c) => c.arch))].join(', ')})`, run: { ...long, cells: [...long.cells, ...extra] } };
}

/** The lines `list` prints: the measured quick time, then the long preset's (where it has one) and the paper preset's, measured or estimated. */
export function presetTimings(exp: Experiment): string[] {
  const quick = measured(exp.name, 'quick');
  return [
    quick ? measuredLine('quick', quick) : 'quick: not measured yet (node scripts/run-experiments.mjs records it)',
    ...(exp.presets.long ? [longerLine(exp, 'long', quick && { cells: 'quick cells', run: quick })] : []),
    longerLine(exp, 'paper', estimateBase(measured(exp.name, 'long'), quick)),
  ];
}
