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
import { tempNamePid, writeJsonAtomic, writing } from '../io.js';
import { GlonetError, OutFolderError } from '../errors.js';
import { checkWritableFolder, makeOutFolder, runEntries } from '../out-folder.js';
import { FolderBusyError, LOCK_FILE, lockFolder, type FolderLock } from '../folder-lock.js';
import { readCellMetrics, readCellRecord } from './cell-files.js';
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
  /** Cells trained (and analyzed) by this call. */
  ran: number;
  /** Cells found finished. */
  skipped: number;
  /** Cells whose run failed (their error is in DIR/cells/ID/failed.json). */
  failed: number;
  /** The ids of the failed cells. */
  failedCells: string[];
  /** Cells another process was running (another shard on the same folder): left to it. */
  busyCells: string[];
}

/** The settings a finished cell must have been trained with to count for this run. */
const SAME_CELL_KEYS = ['model', 'arch', 'dataset', 'data', 'target', 'drop', 'task', 'categorical', 'missing', 'maxClasses', 'maxLevels', 'depth', 'width', 'epochs', 'batchSize', 'optimizer', 'lr', 'momentum', 'l2', 'schedule', 'warmup', 'seed', 'subset', 'augment', 'headInit', 'normFree'] as const;
/** Settings whose absence means their default (runs written before the setting existed). */
const DEFAULTS: Partial<Record<(typeof SAME_CELL_KEYS)[number], unknown>> = { headInit: 'paper' };

/**
 * Whether the cell's folder holds a finished cell trained as this run asks: 'done', or 'damaged'
 * (its cell.json or metrics.json is not what glonet wrote: it is run again, which resumes it).
 * A finished cell trained with other settings is an ExperimentError: the folder belongs to another run.
 */
function finishedCell(dir: string, cell: CellSpec, log: (l: string) => void): 'done' | 'damaged' {
  let m: Metrics;
  try {
    readCellRecord(dir, cellDoneFile(dir, cell.id), cell.id);
    m = readCellMetrics(dir, path.join(cellDir(dir, cell.id), 'metrics.json'), true);
  } catch (e) {
    if (!(e instanceof GlonetError)) throw e;
    log(`${e.message}; running the cell again`);
    return 'damaged';
  }
  for (const k of SAME_CELL_KEYS) {
    if (JSON.stringify(m.config[k] ?? DEFAULTS[k] ?? null) !== JSON.stringify(cell.config[k] ?? DEFAULTS[k] ?? null)) {
      throw new ExperimentError(`${cellDir(dir, cell.id)} was trained with ${k} = ${JSON.stringify(m.config[k])}, this run asks ${JSON.stringify(cell.config[k])}; pass another --out`);
    }
  }
  return 'done';
}

async function runCell(dir: string, cell: CellSpec, log: (l: string) => void): Promise<'done' | 'failed'> {
  const folder = cellDir(dir, cell.id);
  const loadStart = os.loadavg()[0];
  writing(folder, () => {
    fs.rmSync(cellDoneFile(dir, cell.id), { force: true });
    fs.rmSync(cellFailedFile(dir, cell.id), { force: true });
  });
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
    } else if (e instanceof ExperimentError || e instanceof RunError || e instanceof FolderBusyError) {
      throw e;
    } else {
      const error = String((e as Error)?.message ?? e).split('\n')[0];
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

/**
 * Refuse an --out that is not, and cannot become, an experiment folder: a file, a folder that
 * cannot be written, a folder holding other files (a training run's, a user's), and cell paths
 * that are not folders inside it. Reads only.
 */
function checkExperimentFolder(out: string, cells: CellSpec[]): void {
  checkWritableFolder(out, '--out', 'the experiment');
  if (!fs.existsSync(out)) return;
  if (!fs.existsSync(path.join(out, 'experiment.json'))) {
    // A lock or the temporary file of another shard claiming the folder this moment are not a user's files.
    const files = fs.readdirSync(out).filter((n) => n !== LOCK_FILE && tempNamePid(n) === undefined && n !== 'cells');
    if (files.length > 0) {
      const what = runEntries(out).length ? 'the files of a training run' : `files that are not an experiment's (${files.slice(0, 3).join(', ')}${files.length > 3 ? ', ...' : ''})`;
      throw new OutFolderError(`--out: ${out} holds ${what}; an experiment needs a new or empty folder, or the folder of an earlier run of it to resume`);
    }
    return;
  }
  const root = fs.realpathSync(out);
  for (const c of cells) {
    const p = cellDir(out, c.id);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    const real = st.isSymbolicLink() ? (() => { try { return fs.realpathSync(p); } catch { return ''; } })() : '';
    if (st.isSymbolicLink() ? !(real.startsWith(root + path.sep) && fs.statSync(real).isDirectory()) : !st.isDirectory()) {
      throw new ExperimentError(`${p}: is ${st.isSymbolicLink() ? `a link to ${real || 'nothing'}` : 'a file'}, not the cell's folder inside ${out}; remove it, or pass another --out`);
    }
  }
}

export async function runExperiment(exp: Experiment, o: RunExperimentOptions): Promise<RunExperimentResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const data = chooseData(exp, o.data ?? {});
  const cells = gridCells(exp, o.preset, data, { seeds: o.seeds, backend: o.backend, fast: o.fast });
  const manifest: ExperimentManifest = {
    experiment: exp.name, preset: o.preset, ...(o.seeds != null ? { seeds: o.seeds } : {}), data, cells: cells.map((c) => c.id),
  };
  checkExperimentFolder(o.out, cells);
  makeOutFolder(o.out, '--out');
  claimFolder(o.out, manifest);
  const mine = cells.filter((_, i) => inShard(i, o.shard ?? null));
  log(`glonet experiment ${exp.name} --preset ${o.preset}: ${cells.length} cells` +
    (o.shard ? `, shard ${o.shard.index}/${o.shard.count} (${o.shard.source}) runs ${mine.length}` : '') + ` into ${o.out}`);
  let ran = 0;
  let skipped = 0;
  const failed: string[] = [];
  /** Run one cell unless another process holds it: false when it does. */
  const attempt = async (cell: CellSpec, tag: string, last: boolean): Promise<boolean> => {
    const say = (l: string) => log(`${tag} ${l}`);
    // Each cell is written by one process at a time: shards and reruns sharing the folder leave a cell another process holds to it.
    let lock: FolderLock;
    try {
      lock = lockFolder(cellDir(o.out, cell.id), { purpose: `glonet experiment run ${exp.name} (cell ${cell.id})` });
    } catch (e) {
      if (!(e instanceof FolderBusyError)) throw e;
      say(`being run by another process (${e.holder.purpose.replace(/ \(cell .*\)$/, '')}, pid ${e.holder.pid} on ${e.holder.host}); ${last ? 'left to it' : 'skipped for now'}`);
      return false;
    }
    try {
      if (fs.existsSync(cellDoneFile(o.out, cell.id)) && finishedCell(o.out, cell, say) === 'done') {
        skipped++;
        say('finished earlier, skipped');
        return true;
      }
      say(`${cell.config.model}/${cell.config.arch} depth ${cell.config.depth}, seed ${cell.config.seed}, ${cell.config.epochs} epochs`);
      const status = await runCell(o.out, cell, say);
      if (status === 'failed') failed.push(cell.id);
      else ran++;
      return true;
    } finally {
      lock.release();
    }
  };
  const later: Array<[CellSpec, string]> = [];
  for (const [i, cell] of mine.entries()) {
    const tag = `[${i + 1}/${mine.length} ${cell.id}]`;
    if (!(await attempt(cell, tag, false))) later.push([cell, tag]);
  }
  // Cells another process held are tried once more at the end: its holder may have finished them,
  // or died (a task killed and requeued by a scheduler leaves a lock whose process is gone).
  const busy: string[] = [];
  for (const [cell, tag] of later) if (!(await attempt(cell, tag, true))) busy.push(cell.id);
  const results = await writeExperimentReport(o.out);
  return { results, ran, skipped, failed: failed.length, failedCells: failed, busyCells: busy };
}
