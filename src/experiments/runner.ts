/**
 * `glonet experiment run`: the cells of an experiment's preset that belong to this shard, each
 * trained (runTraining) and analyzed (analyzeRun) in its own run folder, then the report.
 *
 * Resumable: a finished cell (cell.json present) is skipped; any other cell is trained with
 * `resume: true`, so an interrupted one continues from its last finished epoch and one that
 * finished training but not its analysis only redoes the analysis. Training is seeded and a resumed
 * epoch replays the same shuffle, so a run killed at any moment and rerun ends with the numbers
 * of an uninterrupted run (the timings differ).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CellRecord, ExperimentManifest, ExperimentResults, Metrics } from '../contracts.js';
import { readJson, writeJsonAtomic } from '../io.js';
import { RunError, runTraining } from '../train/run.js';
import { DivergedError } from '../train/trainer.js';
import { createProgress } from '../train/progress.js';
import { analyzeRun } from '../analysis/run.js';
import { chooseData, ExperimentError, gridCells, type CellSpec, type DataOptions, type Experiment, type PresetName } from './experiment.js';
import { cellDir, cellDoneFile, cellFailedFile, claimFolder } from './folder.js';
import { inShard, type Shard } from './shard.js';
import { writeExperimentReport } from './report.js';

interface RunExperimentOptions {
  preset: PresetName;
  out: string;
  shard?: Shard | null;
  seeds?: number;
  data?: DataOptions;
  backend?: string;
  fast?: 'auto' | 'off';
  log?: (line: string) => void;
}

interface RunExperimentResult {
  results: ExperimentResults;
  ran: number;
  skipped: number;
  failed: number;
}

/** The settings a finished cell must have been trained with to count for this run. */
const SAME_CELL_KEYS = ['model', 'arch', 'dataset', 'data', 'target', 'drop', 'task', 'categorical', 'missing', 'maxClasses', 'maxLevels', 'depth', 'width', 'epochs', 'batchSize', 'optimizer', 'lr', 'momentum', 'l2', 'schedule', 'warmup', 'seed', 'subset', 'augment', 'headInit'] as const;
/** Settings whose absence means their default (runs written before the setting existed). */
const DEFAULTS: Partial<Record<(typeof SAME_CELL_KEYS)[number], unknown>> = { headInit: 'paper' };

function checkFinishedCell(dir: string, cell: CellSpec): void {
  const m = readJson<Metrics>(path.join(cellDir(dir, cell.id), 'metrics.json'), 'metrics');
  for (const k of SAME_CELL_KEYS) {
    if (JSON.stringify(m.config[k] ?? DEFAULTS[k] ?? null) !== JSON.stringify(cell.config[k] ?? DEFAULTS[k] ?? null)) {
      throw new ExperimentError(`${cellDir(dir, cell.id)} was trained with ${k} = ${JSON.stringify(m.config[k])}, this run asks ${JSON.stringify(cell.config[k])}; pass another --out`);
    }
  }
}

async function runCell(dir: string, cell: CellSpec, log: (l: string) => void): Promise<'done' | 'failed'> {
  const folder = cellDir(dir, cell.id);
  const loadStart = os.loadavg()[0];
  fs.rmSync(cellFailedFile(dir, cell.id), { force: true });
  let trained = true;
  try {
    // A folder with metrics.json is a cell that started: resume it (a new cell needs no resume).
    const resume = fs.existsSync(path.join(folder, 'metrics.json'));
    const r = await runTraining(cell.config, folder, { resume, log, progress: createProgress({ log }) });
    r.model.dispose();
  } catch (e) {
    if (e instanceof DivergedError) {
      log(`${cell.id}: ${e.message}`);
      trained = fs.existsSync(path.join(folder, 'model', 'model.json'));
    } else if (e instanceof ExperimentError || e instanceof RunError) {
      throw e;
    } else {
      const error = (e as Error).message ?? String(e);
      writeJsonAtomic(cellFailedFile(dir, cell.id), { id: cell.id, error });
      log(`${cell.id}: failed: ${error}`);
      return 'failed';
    }
  }
  const t0 = performance.now();
  if (trained) {
    const backend = cell.config.backend === 'auto' ? undefined : cell.config.backend;
    await analyzeRun(folder, { samples: cell.samples, backend, report: true });
  }
  const record: CellRecord = {
    id: cell.id,
    analyzeSeconds: (performance.now() - t0) / 1000,
    load: { start: loadStart, end: os.loadavg()[0], cpus: os.cpus().length },
    host: os.hostname(),
    finishedAt: new Date().toISOString(),
  };
  writeJsonAtomic(cellDoneFile(dir, cell.id), record);
  return 'done';
}

export async function runExperiment(exp: Experiment, o: RunExperimentOptions): Promise<RunExperimentResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const data = chooseData(exp, o.data ?? {});
  const cells = gridCells(exp, o.preset, data, { seeds: o.seeds, backend: o.backend, fast: o.fast });
  const manifest: ExperimentManifest = {
    experiment: exp.name, preset: o.preset, ...(o.seeds != null ? { seeds: o.seeds } : {}), data, cells: cells.map((c) => c.id),
  };
  fs.mkdirSync(o.out, { recursive: true });
  claimFolder(o.out, manifest);
  const mine = cells.filter((_, i) => inShard(i, o.shard ?? null));
  log(`glonet experiment ${exp.name} --preset ${o.preset}: ${cells.length} cells` +
    (o.shard ? `, shard ${o.shard.index}/${o.shard.count} (${o.shard.source}) runs ${mine.length}` : '') + ` into ${o.out}`);
  let ran = 0;
  let skipped = 0;
  let failed = 0;
  for (const [i, cell] of mine.entries()) {
    const tag = `[${i + 1}/${mine.length} ${cell.id}]`;
    if (fs.existsSync(cellDoneFile(o.out, cell.id))) {
      checkFinishedCell(o.out, cell);
      skipped++;
      log(`${tag} finished earlier, skipped`);
      continue;
    }
    log(`${tag} ${cell.config.model}/${cell.config.arch} depth ${cell.config.depth}, seed ${cell.config.seed}, ${cell.config.epochs} epochs`);
    const status = await runCell(o.out, cell, (l) => log(`${tag} ${l}`));
    if (status === 'failed') failed++;
    else ran++;
  }
  const results = await writeExperimentReport(o.out);
  return { results, ran, skipped, failed };
}
