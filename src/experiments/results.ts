/**
 * Gathering an experiment folder into `results.json`: every cell the manifest names, finished
 * (summarized from its metrics.json, analysis.json and cell.json), failed (with its error) or
 * missing (with the epoch an interrupted cell reached); then the claims judged on the finished
 * cells. Works on whatever cells exist, from one machine or many.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Analysis, CellRecord, ExperimentCell, ExperimentResults, Metrics } from '../contracts.js';
import { ExperimentFileError, readCellAnalysis, readCellFailure, readCellMetrics, readCellRecord } from './cell-files.js';
import { VERSION } from '../version.js';
import { judgeClaim } from './experiment.js';
import { cellDir, cellDoneFile, cellFailedFile, readManifest } from './folder.js';
import { getExperiment } from './index.js';

/** A finished cell's files, for the charts. */
export interface CellFiles {
  metrics: Metrics;
  analysis: Analysis | null;
}

/** The mean seconds of the first and of the last epochs (up to three each, after the first): ExperimentCell.epochDrift. */
export function epochDrift(seconds: number[]): { epochDrift?: { first: number; last: number } } {
  const timed = seconds.slice(1);
  if (timed.length < 2) return {};
  const n = Math.min(3, Math.floor(timed.length / 2));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { epochDrift: { first: mean(timed.slice(0, n)), last: mean(timed.slice(-n)) } };
}

function cellSummary(id: string, m: Metrics, a: Analysis | null, rec: CellRecord): ExperimentCell {
  const best = m.best ? m.epochs.find((e) => e.epoch === m.best!.epoch) : undefined;
  const trainSeconds = m.epochs.reduce((s, e) => s + e.seconds, 0);
  return {
    id,
    model: m.config.model,
    arch: m.config.arch,
    depth: m.config.depth,
    seed: m.config.seed,
    dataset: m.config.dataset,
    nTrain: m.data?.nTrain ?? 0,
    ...(m.data?.nTest != null ? { nTest: m.data.nTest } : {}),
    ...(m.data?.constantError != null ? { constantError: m.data.constantError } : {}),
    epochs: m.epochs.length,
    bestTestError: m.best?.testError ?? null,
    ...(best?.testAccuracy != null ? { bestTestAccuracy: best.testAccuracy } : {}),
    bestEpoch: m.best?.epoch ?? null,
    meanEpochSeconds: m.meanEpochSeconds,
    ...epochDrift(m.epochs.map((e) => e.seconds)),
    seconds: trainSeconds + rec.analyzeSeconds,
    engine: m.engine ?? 'tfjs',
    backend: m.backend,
    ...(m.diverged ? { diverged: { epoch: m.diverged.epoch } } : {}),
    effectiveDepth: a?.effectiveDepth ?? null,
    load: { mean: (rec.load.start + rec.load.end) / 2, cpus: rec.load.cpus },
  };
}

function machine(): ExperimentResults['machine'] {
  const cpus = os.cpus();
  return {
    host: os.hostname(), cpus: cpus.length, cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.arch()}`, node: process.version,
  };
}

export function gatherResults(dir: string): { results: ExperimentResults; files: Map<string, CellFiles> } {
  const manifest = readManifest(dir);
  const exp = getExperiment(manifest.experiment);
  const cells: ExperimentCell[] = [];
  const files = new Map<string, CellFiles>();
  const missing: ExperimentResults['missing'] = [];
  const failed: ExperimentResults['failed'] = [];
  for (const id of manifest.cells) {
    const folder = cellDir(dir, id);
    const metricsFile = path.join(folder, 'metrics.json');
    // A file (or a link) where the cell's folder belongs is named, not counted as a missing cell.
    const st = fs.lstatSync(folder, { throwIfNoEntry: false });
    if (st && !st.isDirectory() && !(st.isSymbolicLink() && fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory())) {
      throw new ExperimentFileError(`${folder}: is ${st.isSymbolicLink() ? 'a link' : 'a file'}, not the cell's folder; remove it (experiment run then trains the cell)`);
    }
    if (fs.existsSync(cellDoneFile(dir, id))) {
      const m = readCellMetrics(dir, metricsFile, true);
      const analysisFile = path.join(folder, 'analysis.json');
      const a = fs.existsSync(analysisFile) ? readCellAnalysis(dir, analysisFile, m.config.depth) : null;
      cells.push(cellSummary(id, m, a, readCellRecord(dir, cellDoneFile(dir, id), id)));
      files.set(id, { metrics: m, analysis: a });
    } else if (fs.existsSync(cellFailedFile(dir, id))) {
      failed.push({ id, error: readCellFailure(dir, cellFailedFile(dir, id)) });
    } else if (fs.existsSync(metricsFile)) {
      const m = readCellMetrics(dir, metricsFile, false);
      missing.push({ id, interruptedAfterEpoch: m.epochs.length });
    } else {
      missing.push({ id });
    }
  }
  const results: ExperimentResults = {
    experiment: exp.name,
    preset: manifest.preset,
    glonetVersion: VERSION,
    machine: machine(),
    writtenAt: new Date().toISOString(),
    data: manifest.data,
    cells,
    missing,
    failed,
    claims: exp.claims.map((c) => judgeClaim(c, cells)),
    cellSeconds: cells.reduce((s, c) => s + c.seconds, 0),
  };
  return { results, files };
}
