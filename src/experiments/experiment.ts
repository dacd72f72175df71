/**
 * What an experiment is: a re-measurement of claims of the paper. It has a grid of cells per
 * preset (each cell an ordinary run folder: `glonet train` + `glonet analyze`), the data its
 * cells train on, and claims, each with the paper's evidence and a rule that turns the finished
 * cells into a verdict. The experiments themselves are one file each (sgemm-depth.ts, ...), their
 * claims written next to the paper's numbers; ./index.ts lists them.
 */
import type { ClaimResult, ExperimentCell, ExperimentManifest, Verdict } from '../contracts.js';
import { familyDefaults, type Protocol } from '../models/index.js';
import type { RunConfig } from '../vocabulary.js';

/** The CSV options besides the file, target and dropped columns (`glonet train`'s of the same names). */
export type TableOptions = Pick<RunConfig, 'task' | 'categorical' | 'missing' | 'maxClasses' | 'maxLevels'>;
const TABLE_KEYS = ['task', 'categorical', 'missing', 'maxClasses', 'maxLevels'] as const;
import { GlonetError } from '../errors.js';
import { LIMITS, overLimit } from '../limits.js';

/**
 * smoke: under a minute (the tests); quick: minutes, every experiment together about a quarter of
 * an hour on two cores; long: the image experiments on all of Fashion-MNIST, hours (only cnn and
 * vit have it); paper: the paper's grids and epochs.
 */
export const PRESETS = ['smoke', 'quick', 'long', 'paper'] as const;
export type PresetName = (typeof PRESETS)[number];
/** The presets every experiment has ('long' is optional). */
export type CorePreset = Exclude<PresetName, 'long'>;

/**
 * One architecture of a grid: its depths and, where they differ from the grid's, its seeds and
 * budget (a preset may train a cheap architecture at the paper's protocol and the costly ones on
 * less; each claim compares one architecture across depth, and the report says the budgets).
 */
interface GridArch {
  arch: string;
  depths: number[];
  seeds?: number;
  epochs?: number;
  /** A subset of this many examples, or null for all of them. */
  subset?: number | null;
}

/** The cells of one preset: architectures x depths x seeds, trained with the family's protocol. */
export interface Grid {
  archs: GridArch[];
  epochs: number;
  /** Seeds 0..seeds-1 for every architecture that does not say otherwise. */
  seeds: number;
  /** Train and test on a seeded subset of this many examples (all when absent). */
  subset?: number;
  /** Test samples for the block norms (the analysis' default when absent). */
  samples?: number;
  /** Settings that differ from the family's protocol (a smaller ViT for the smoke preset). */
  protocol?: Partial<Protocol>;
  /** Random flips and 4-pixel crops of training images (the paper's CIFAR-10 protocol). */
  augment?: boolean;
}

/** The data options of `glonet experiment run` (the data options of `glonet train`). */
export interface DataOptions extends TableOptions {
  dataset?: string;
  data?: string;
  target?: string;
  drop?: string[];
}

type DataChoice = ExperimentManifest['data'] & { dataset: string };

/** A bad experiment request (unknown name, data it does not take, a folder of another run). */
export class ExperimentError extends GlonetError {
  override name = 'ExperimentError';
}

/** The data of every cell, from the command's data options; bad combinations name the option. */
export function chooseData(exp: Pick<Experiment, 'name' | 'datasets' | 'dataWith'>, o: DataOptions): DataChoice {
  const dataset = o.dataset ?? (o.data != null && exp.dataWith ? exp.dataWith : exp.datasets[0]);
  if (!exp.datasets.includes(dataset)) throw new ExperimentError(`--dataset: ${exp.name} runs on ${exp.datasets.join(' or ')}, not '${dataset}'`);
  if (dataset === 'csv' && (o.data == null || o.target == null)) {
    throw new ExperimentError(`--data and --target: ${exp.name} trains on your CSV file; name it with --data FILE and the column to predict with --target COL`);
  }
  const tableOnly = (['target', 'drop', ...TABLE_KEYS] as const).filter((k) => o[k] != null);
  if (dataset !== 'csv' && tableOnly.length > 0) {
    throw new ExperimentError(`${tableOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: ${tableOnly.length > 1 ? 'these options apply' : 'applies'} to CSV data only`);
  }
  if (dataset === 'cifar10' && o.data == null) throw new ExperimentError('--data: CIFAR-10 needs --data DIR holding data_batch_1.bin .. data_batch_5.bin and test_batch.bin');
  return {
    dataset,
    ...(o.data != null ? { data: o.data } : {}),
    ...(o.target != null ? { target: o.target } : {}),
    ...(o.drop != null ? { drop: o.drop } : {}),
    ...Object.fromEntries(TABLE_KEYS.filter((k) => o[k] != null).map((k) => [k, o[k]])),
  };
}

/** A claim of the paper, the paper's evidence for it, and the rule that judges our cells. */
export interface Claim {
  id: string;
  text: string;
  paper: string;
  /** The rule in words; its thresholds are the constants the judge uses. */
  rule: string;
  /** Judged on wall-clock times: its verdict can differ between runs and machines, unlike the others. */
  timed?: boolean;
  judge(cells: ExperimentCell[]): { verdict: Verdict; ours: string };
}

/** What the experiment report draws, besides the claims table and the cells table. */
export type ChartKind =
  | { kind: 'error-vs-depth' }
  | { kind: 'epoch-time-vs-depth' }
  /** Block norms of seed 0 of every architecture, one chart each, at `depth` (the paper's figure's) or else its deepest. */
  | { kind: 'norms'; depth?: number }
  | { kind: 'truncation' }
  /** Test error per epoch of every architecture at the deepest depth GloNet reached. */
  | { kind: 'learning-curves' };

export interface Experiment {
  name: string;
  /** A title for the report. */
  title: string;
  /** The paper's tables and figures it re-measures. */
  paperRef: string;
  /** One line for `glonet experiment list`: the claim it tests. */
  tests: string;
  /** The model family of every cell. */
  model: string;
  presets: Record<CorePreset, Grid> & Partial<Record<'long', Grid>>;
  /** The data sets it runs on; the first is the default. */
  datasets: readonly string[];
  /** The data set `--data` means when `--dataset` is not given (CIFAR-10 for the image experiments). */
  dataWith?: string;
  claims: Claim[];
  charts: ChartKind[];
}

/** The presets an experiment has, in PRESETS order. */
export function presetsOf(exp: Pick<Experiment, 'presets'>): PresetName[] {
  return PRESETS.filter((p) => exp.presets[p] != null);
}

/** One cell to run: its id (its folder under DIR/cells/) and its training settings. */
export interface CellSpec {
  id: string;
  config: RunConfig;
  samples?: number;
}

function cellId(model: string, arch: string, depth: number, seed: number): string {
  return `${model}-${arch}-d${depth}-s${seed}`;
}

/**
 * The cells of an experiment's preset, in a stable order (architectures as listed, then depths,
 * then seeds). Each cell trains with its family's protocol for its architecture
 * (`familyDefaults(model, arch)`), with the grid's epochs and overrides.
 */
export function gridCells(exp: Experiment, preset: PresetName, data: DataChoice, o: { seeds?: number; backend?: string; fast?: 'auto' | 'off' } = {}): CellSpec[] {
  const grid = exp.presets[preset];
  if (grid == null) throw new ExperimentError(`--preset ${preset}: ${exp.name} has the presets ${presetsOf(exp).join(', ')}`);
  // Counted before a cell is made: a billion of them would take minutes and gigabytes to list.
  if (o.seeds != null && !(Number.isSafeInteger(o.seeds) && o.seeds >= 1)) throw new ExperimentError(`--seeds: expected a positive integer, got ${o.seeds}`);
  if (o.seeds != null && o.seeds > LIMITS.seeds.max) throw new ExperimentError(overLimit('--seeds', o.seeds, LIMITS.seeds));
  const count = grid.archs.reduce((n, a) => n + a.depths.length * (o.seeds ?? a.seeds ?? grid.seeds), 0);
  if (count > LIMITS.cells.max) throw new ExperimentError(overLimit(`${exp.name} --preset ${preset}: cells`, count, LIMITS.cells));
  const cells: CellSpec[] = [];
  for (const a of grid.archs) {
    const seeds = o.seeds ?? a.seeds ?? grid.seeds;
    const subset = a.subset === undefined ? grid.subset : a.subset ?? undefined;
    for (const depth of a.depths) {
      for (let seed = 0; seed < seeds; seed++) {
        const config: RunConfig = {
          model: exp.model, arch: a.arch, ...data,
          depth,
          ...familyDefaults(exp.model, a.arch),
          ...grid.protocol,
          epochs: a.epochs ?? grid.epochs,
          seed,
          ...(subset != null ? { subset } : {}),
          augment: grid.augment ?? false,
          backend: o.backend ?? 'auto',
          fast: o.fast ?? 'auto',
        };
        cells.push({ id: cellId(exp.model, a.arch, depth, seed), config, ...(grid.samples != null ? { samples: grid.samples } : {}) });
      }
    }
  }
  return cells;
}

/** A claim result for the report: the claim's words beside what the judge found. */
export function judgeClaim(claim: Claim, cells: ExperimentCell[]): ClaimResult {
  const { verdict, ours } = claim.judge(cells);
  return { id: claim.id, text: claim.text, paper: claim.paper, ours, verdict, rule: claim.rule, ...(claim.timed ? { timed: true } : {}) };
}
