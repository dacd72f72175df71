/**
 * How a table's raw columns become a model's inputs: the encoding, fitted on the training rows
 * (./csv-dataset.ts) and saved with the model (model.json's glonet metadata, `encoding`), and the
 * one function that applies it, {@link encodeRow}, used by training, analysis, `glonet predict`
 * and the page of `glonet web` alike, so a row means the same to all of them.
 *
 * A column's inputs, in column order:
 *   numeric      its z-score with the training mean and standard deviation; a missing value is the
 *                training median, and when the training rows had missing values in this column, a
 *                second input is 1 where the value was missing (a missing indicator), else 0
 *   categorical  one input per level seen in the training rows (one-hot, levels in a stable
 *                order); `(missing)` when the training rows had empty cells there (a level of its
 *                own); `(other)` for the rarer levels past the level limit. A level never seen in
 *                training is `(other)` when the column has one, else no level at all (every input 0)
 * The target: a number (regression: z-scored with the training mean and standard deviation) or
 * one of the classes seen in the data (classification).
 *
 * A cell is a number, a word or missing ({@link parseCell}): numbers are written in decimal
 * (`0x10`, `0b101`, `Infinity` are words), missing is an empty cell or one of
 * {@link MISSING_TOKENS}. No Node.js here: the page imports this module.
 */
import { DataError, fitsFloat32, zScore } from './values.js';
import { shown } from '../errors.js';

/** Cells that mean "no value" (as R, pandas and spreadsheets write it), besides the empty cell. */
export const MISSING_TOKENS: readonly string[] = ['NA', 'N/A', 'n/a', '#N/A', 'NaN', 'nan', 'null', 'NULL', 'None'];
const MISSING = new Set(['', ...MISSING_TOKENS]);

/** A parsed cell: a number, a word (any other text), or null for a missing value. */
export type Cell = number | string | null;

/** A decimal number as people write it in tables: sign, digits, a point, an exponent. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A cell's text as a {@link Cell}: missing tokens are null, decimal numbers (finite in float64)
 * are numbers, anything else is a word, trimmed.
 */
export function parseCell(text: string): Cell {
  const t = text.trim();
  if (MISSING.has(t)) return null;
  if (DECIMAL.test(t)) {
    const v = Number(t);
    if (Number.isFinite(v)) return v;
  }
  return t;
}

/** True when a word is written as a decimal number too large for float64 ('1e999'). */
export function isOverflowingNumber(text: string): boolean {
  return DECIMAL.test(text.trim());
}

/** The level a cell names in a categorical column: numbers by their shortest decimal form ('1.50' and '1.5' are one level). */
export function levelKey(cell: number | string): string {
  return typeof cell === 'number' ? String(cell) : cell;
}

/** The input name of a categorical column's missing-value level. */
export const MISSING_LEVEL = '(missing)';
/** The input name of a categorical column's pooled rare levels. */
export const OTHER_LEVEL = '(other)';

/** A numeric column: z-scored, missing values imputed with the training median. */
export interface NumericColumn {
  /** The column's name in the table. */
  name: string;
  /** 'numeric'. */
  kind: 'numeric';
  /** Training mean of the column's values (missing ones left out). */
  mean: number;
  /** Training standard deviation (1 for a constant column, which then standardizes to 0). */
  std: number;
  /** Training median: what a missing value becomes. */
  median: number;
  /** Whether the column has a missing-indicator input (its training rows had missing values). */
  indicator: boolean;
}

/** A categorical column: one-hot over its training levels. */
export interface CategoricalColumn {
  /** The column's name in the table. */
  name: string;
  /** 'categorical'. */
  kind: 'categorical';
  /** The levels seen in the training rows, one input each, in this order. */
  levels: string[];
  /** Whether the training rows had missing values here: a `(missing)` level and input. */
  missingLevel: boolean;
  /** Whether rarer levels past the level limit share an `(other)` input (unseen levels go there too). */
  otherLevel: boolean;
}

/** One raw column of the table and how it becomes inputs. */
export type ColumnEncoding = NumericColumn | CategoricalColumn;

/** What the model predicts: a number in the column's units, or one of the classes. */
export type TargetEncoding =
  | {
    /** The target column's name. */
    name: string;
    /** 'numeric': regression. */
    kind: 'numeric';
    /** Training mean of the (transformed) target. */
    mean: number;
    /** Training standard deviation of the (transformed) target. */
    std: number;
    /** 'ln': the model predicts ln(target) (SGEMM run times). */
    transform?: 'ln';
  }
  | {
    /** The target column's name. */
    name: string;
    /** 'classes': classification. */
    kind: 'classes';
    /** The classes, in the model's output order. */
    classes: string[];
  };

/** How a table's raw columns become the model's inputs and what it predicts; saved with the model. */
export interface TableEncoding {
  /** 'glonet-table'. */
  format: 'glonet-table';
  /** 1. */
  version: 1;
  /** The raw columns the model reads, in input order. */
  columns: ColumnEncoding[];
  /** What the model predicts. */
  target: TargetEncoding;
  /** 'impute': missing values are filled in (see the module comment); 'refuse': they are errors. */
  missing: 'impute' | 'refuse';
}

/** The number of model inputs a column takes. */
export function columnWidth(c: ColumnEncoding): number {
  return c.kind === 'numeric' ? (c.indicator ? 2 : 1) : c.levels.length + (c.missingLevel ? 1 : 0) + (c.otherLevel ? 1 : 0);
}

/** The model's input names, in order: `col`, `col (missing)`, `col=level`, `col=(missing)`, `col=(other)`. */
export function inputNames(enc: TableEncoding): string[] {
  return enc.columns.flatMap((c) => (c.kind === 'numeric'
    ? (c.indicator ? [c.name, `${c.name} (missing)`] : [c.name])
    : [...c.levels, ...(c.missingLevel ? [MISSING_LEVEL] : []), ...(c.otherLevel ? [OTHER_LEVEL] : [])].map((l) => `${c.name}=${l}`)));
}

/** The number of model inputs. */
export function inputCount(enc: TableEncoding): number {
  return enc.columns.reduce((s, c) => s + columnWidth(c), 0);
}

/** What happened to one row's cells on the way in: values filled in, levels not seen in training. */
export interface RowNotes {
  /** Columns whose missing value was filled in (numeric: the median; categorical without a missing level: no level). */
  missing?: string[];
  /** Columns whose level was not seen in training, with the level. */
  unknown?: UnknownLevel[];
}

/** A level a categorical column never had in the training rows. */
export interface UnknownLevel {
  /** The column. */
  column: string;
  /** The level, as a key ({@link levelKey}). */
  level: string;
}

const levelIndex = new WeakMap<CategoricalColumn, Map<string, number>>();
function indexOf(c: CategoricalColumn): Map<string, number> {
  let m = levelIndex.get(c);
  if (!m) {
    m = new Map(c.levels.map((l, i) => [l, i]));
    levelIndex.set(c, m);
  }
  return m;
}

function note(notes: RowNotes | undefined, kind: 'missing', column: string): RowNotes;
function note(notes: RowNotes | undefined, kind: 'unknown', column: string, level: string): RowNotes;
function note(notes: RowNotes | undefined, kind: 'missing' | 'unknown', column: string, level?: string): RowNotes {
  const n = notes ?? {};
  if (kind === 'missing') (n.missing ??= []).push(column);
  else (n.unknown ??= []).push({ column, level: level! });
  return n;
}

/**
 * Encodes one row: `cells[i]` is the value of `enc.columns[i]`; the inputs are written to
 * `out[offset ..]`. Returns what was filled in or not recognised (undefined when nothing was).
 *
 * @param where names the row in messages ("rows.csv line 7").
 * @throws {@link DataError} naming the row and column: a word in a numeric column, a missing
 * value when the encoding refuses them, a value beyond float32 once standardized.
 */
export function encodeRow(enc: TableEncoding, cells: ArrayLike<Cell>, out: Float32Array, offset: number, where: () => string): RowNotes | undefined {
  let o = offset;
  let notes: RowNotes | undefined;
  const refuse = enc.missing === 'refuse';
  for (let i = 0; i < enc.columns.length; i++) {
    const c = enc.columns[i];
    const cell = cells[i];
    if (cell === null && refuse) {
      throw new DataError(`${where()}: column ${shown(c.name)} is empty; expected a ${c.kind === 'numeric' ? 'number' : 'value'} (this model takes no missing values)`);
    }
    if (c.kind === 'numeric') {
      let v: number;
      if (cell === null) {
        v = c.median;
        notes = note(notes, 'missing', c.name);
      } else if (typeof cell === 'string') {
        const why = isOverflowingNumber(cell) ? 'a number beyond float64\'s range' : 'a word';
        throw new DataError(`${where()}: column ${shown(c.name)} has ${shown(cell)}, ${why}; expected a number${refuse ? '' : ' or an empty cell'} (the model reads this column as numeric)`);
      } else {
        v = cell;
      }
      const z = zScore(v, c.mean, c.std);
      if (!fitsFloat32(z)) {
        throw new DataError(`${where()}: column ${shown(c.name)} has the value ${v}, ${z.toPrecision(3)} standard deviations from the training rows' mean, beyond float32 (the model's number type); remove the row or rescale the column`);
      }
      out[o++] = z;
      if (c.indicator) out[o++] = cell === null ? 1 : 0;
    } else {
      const width = columnWidth(c);
      out.fill(0, o, o + width);
      if (cell === null) {
        if (c.missingLevel) out[o + c.levels.length] = 1;
        else notes = note(notes, 'missing', c.name);
      } else {
        const key = levelKey(cell);
        const k = indexOf(c).get(key);
        if (k !== undefined) out[o + k] = 1;
        else {
          if (c.otherLevel) out[o + width - 1] = 1;
          notes = note(notes, 'unknown', c.name, key);
        }
      }
      o += width;
    }
  }
  return notes;
}

/**
 * A column's value in its own units from its standardized float32 input: value * std + mean,
 * rounded to a millionth of the column's spread, which undoes the float32 rounding (an integer
 * column gives its integers back, and standardizing the result gives the stored input back).
 */
export function rawValue(standardized: number, mean: number, std: number): number {
  const quantum = 10 ** (Math.floor(Math.log10(std)) - 6);
  return Number((Math.round((standardized * std + mean) / quantum) * quantum).toPrecision(12));
}

/**
 * The raw cells of an encoded row (the inverse of {@link encodeRow} up to what it forgets):
 * numbers in the column's units, levels, null for a missing value, {@link OTHER_LEVEL} for the
 * pooled rare levels, and undefined for a level not seen in training.
 */
export function decodeRow(enc: TableEncoding, x: ArrayLike<number>, offset = 0): Array<Cell | undefined> {
  let o = offset;
  return enc.columns.map((c) => {
    const base = o;
    o += columnWidth(c);
    if (c.kind === 'numeric') return c.indicator && x[base + 1] > 0.5 ? null : rawValue(x[base], c.mean, c.std);
    for (let k = 0; k < c.levels.length; k++) if (x[base + k] > 0.5) return c.levels[k];
    if (c.missingLevel && x[base + c.levels.length] > 0.5) return null;
    if (c.otherLevel && x[o - 1] > 0.5) return OTHER_LEVEL;
    return undefined;
  });
}

/** The encoding of a model that has only per-column statistics (SGEMM, or a numeric CSV trained before encodings existed). */
export function numericEncoding(st: { featureNames: string[]; mean: number[]; std: number[]; target?: { name: string; mean: number; std: number; transform?: 'ln' } }, classes?: string[]): TableEncoding {
  return {
    format: 'glonet-table', version: 1, missing: 'refuse',
    columns: st.featureNames.map((name, i) => ({ name, kind: 'numeric', mean: st.mean[i], std: st.std[i], median: st.mean[i], indicator: false })),
    target: st.target ? { kind: 'numeric', ...st.target } : { name: 'class', kind: 'classes', classes: classes ?? [] },
  };
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * What is wrong with an encoding read from a file (model.json), or undefined: every field of the
 * right type, positive spreads, distinct names and levels, and `inputs` model inputs in all.
 */
export function encodingProblem(e: unknown, inputs: number, outputs: number): string | undefined {
  const enc = e as Partial<TableEncoding> | null;
  if (typeof enc !== 'object' || enc === null || enc.format !== 'glonet-table' || enc.version !== 1) return 'encoding must be {format: "glonet-table", version: 1, ...}';
  if (enc.missing !== 'impute' && enc.missing !== 'refuse') return 'encoding.missing must be impute or refuse';
  if (!Array.isArray(enc.columns) || enc.columns.length === 0) return 'encoding.columns must be a non-empty list';
  const names = new Set<string>();
  for (const c of enc.columns as Array<Partial<NumericColumn> & Partial<Omit<CategoricalColumn, 'kind'>> & { kind?: string }>) {
    if (typeof c !== 'object' || c === null || !isStr(c.name)) return 'every encoding column needs a name';
    if (names.has(c.name)) return `encoding column ${shown(c.name)} appears twice`;
    names.add(c.name);
    if (c.kind === 'numeric') {
      if (!isNum(c.mean) || !isNum(c.std) || !(c.std > 0) || !isNum(c.median) || typeof c.indicator !== 'boolean') {
        return `encoding column ${shown(c.name)}: a numeric column needs a finite mean and median, a positive std and an indicator flag`;
      }
    } else if (c.kind === 'categorical') {
      if (!Array.isArray(c.levels) || !c.levels.every(isStr) || new Set(c.levels).size !== c.levels.length || typeof c.missingLevel !== 'boolean' || typeof c.otherLevel !== 'boolean') {
        return `encoding column ${shown(c.name)}: a categorical column needs distinct levels and missingLevel and otherLevel flags`;
      }
      if (columnWidth(c as unknown as CategoricalColumn) === 0) return `encoding column ${shown(c.name)} has no level`;
    } else {
      return `encoding column ${shown(c.name)}: kind must be numeric or categorical`;
    }
  }
  const n = inputCount(enc as TableEncoding);
  if (n !== inputs) return `the encoding makes ${n} inputs, but the model takes ${inputs}`;
  const t = enc.target as Partial<TargetEncoding & { classes: unknown; mean: unknown; std: unknown }> | undefined;
  if (typeof t !== 'object' || t === null || !isStr(t.name)) return 'encoding.target needs a name';
  if (t.kind === 'numeric') {
    if (!isNum(t.mean) || !isNum(t.std) || !(t.std > 0) || (t.transform !== undefined && t.transform !== 'ln')) return 'encoding.target: a numeric target needs a finite mean and a positive std';
    if (outputs !== 1) return `encoding.target is numeric, but the model has ${outputs} outputs`;
  } else if (t.kind === 'classes') {
    if (!Array.isArray(t.classes) || !t.classes.every(isStr) || new Set(t.classes).size !== t.classes.length) return 'encoding.target.classes must be distinct names';
    if (t.classes.length !== outputs) return `encoding.target has ${t.classes.length} classes, but the model has ${outputs} outputs`;
  } else {
    return 'encoding.target.kind must be numeric or classes';
  }
  return undefined;
}
