/**
 * Reading CSV files: a header row naming the columns (blank lines before it are skipped), fields
 * separated by commas, semicolons or tabs (whichever the header uses most, outside quotes), quoted
 * fields, gzip detected by its magic bytes. Parsing is csv-parse's (streaming), so a file is read
 * once, in pieces, whatever its size.
 *
 * A column whose header is empty (R writes its row names that way; a trailing comma makes one) is
 * named by its position, `column 3`, a name that --drop accepts. Cells are parsed by
 * ./table-encoding.ts's parseCell: decimal numbers, words, or missing.
 *
 *   scanCsv          every record, one at a time, to a callback (glonet predict encodes them as they come)
 *   readCsvTable     every column, numbers and words kept apart (the CSV data set)
 *   readNumericCsv   a table that must be all numbers (SGEMM)
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { DataError } from './dataset.js';
import { parseCell, type Cell } from './table-encoding.js';
import { fsReason, isFsError, shown, shownList } from '../errors.js';

/** The longest header accepted: a header row this long is not a CSV (it would be read whole first). */
const MAX_HEADER_BYTES = 1 << 20;

/** One line for a problem met while reading: the file, and what went wrong in words. */
function readError(file: string, e: unknown): DataError {
  if (e instanceof DataError) return e;
  const err = e as NodeJS.ErrnoException & { lines?: number };
  if (typeof err?.code === 'string' && err.code.startsWith('Z_')) {
    return new DataError(`${file}: the gzip data is cut off or damaged (${err.message}); expected a complete .gz file`);
  }
  if (isFsError(e)) return new DataError(`${file}: cannot read the file (${fsReason(e)})`);
  return new DataError(`${file}${err?.lines ? ` line ${err.lines}` : ''}: cannot parse the CSV (${shown(err?.message ?? err, 200).slice(1, -1)})`);
}

/** The file's text as a stream, gunzipped when its first bytes say gzip. Read errors reach the stream's reader. */
function openText(file: string): Readable {
  let fd: number;
  const magic = Buffer.alloc(2);
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) throw new DataError(`${file}: is a folder; expected a CSV file`);
    if (!st.isFile()) throw new DataError(`${file}: not a regular file; expected a CSV file`);
    fd = fs.openSync(file, 'r');
    try {
      fs.readSync(fd, magic, 0, 2, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${file}: cannot open the file (${fsReason(e)})`);
  }
  const raw = fs.createReadStream(file);
  if (!(magic[0] === 0x1f && magic[1] === 0x8b)) return raw;
  const gunzip = zlib.createGunzip();
  raw.on('error', (e) => gunzip.destroy(e));
  return raw.pipe(gunzip);
}

/** The first line that is not blank (the header), or '' when every line is. */
async function headerLine(file: string): Promise<string> {
  const stream = openText(file);
  let text = '';
  try {
    for await (const chunk of stream) {
      text += chunk.toString('utf8');
      for (;;) {
        const nl = text.indexOf('\n');
        if (nl < 0) break;
        const line = text.slice(0, nl).replace(/^\uFEFF/, '');
        if (line.trim() !== '') return line.replace(/\r$/, '');
        text = text.slice(nl + 1);
      }
      if (text.length > MAX_HEADER_BYTES) {
        throw new DataError(`${file} line 1: the header row is longer than ${MAX_HEADER_BYTES} bytes; expected a header row naming the columns`);
      }
    }
  } catch (e) {
    throw readError(file, e);
  } finally {
    stream.destroy();
  }
  return text.replace(/^\uFEFF/, '').trim() === '' ? '' : text.replace(/^\uFEFF/, '').replace(/\r$/, '');
}

/** The separator the header uses most, outside quotes: ',' (also on a tie), ';' or a tab. */
function detectDelimiter(header: string): ',' | ';' | '\t' {
  const count = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of header) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) count[ch]++;
  }
  if (count['\t'] > count[','] && count['\t'] > count[';']) return '\t';
  return count[';'] > count[','] ? ';' : ',';
}

/**
 * The line where a quoted field that is never closed opens (csv-parse reports the end of the
 * file): a scan of the file with the quoting rules of CSV (a quote opens a field only at its
 * start; two quotes inside a quoted field are one quote).
 */
async function unclosedQuoteLine(file: string, delimiter: string): Promise<number | undefined> {
  const stream = openText(file);
  let line = 1;
  let quoted = false;
  let openedAt = 0;
  let atFieldStart = true;
  let pendingQuote = false; // inside a quoted field, a quote that may be the first of two
  try {
    for await (const chunk of stream) {
      for (const ch of chunk.toString('utf8') as string) {
        if (quoted) {
          if (pendingQuote) {
            pendingQuote = false;
            if (ch === '"') continue; // "" inside quotes
            quoted = false; // the field closed; this character follows it
          } else if (ch === '"') {
            pendingQuote = true;
            continue;
          }
        }
        if (!quoted) {
          if (ch === '"' && atFieldStart) {
            quoted = true;
            openedAt = line;
            atFieldStart = false;
          } else if (ch === delimiter || ch === '\n') atFieldStart = true;
          else if (ch !== ' ' && ch !== '\t' && ch !== '\r') atFieldStart = false;
        }
        if (ch === '\n') line++;
      }
    }
  } catch {
    return undefined;
  } finally {
    stream.destroy();
  }
  return quoted && !pendingQuote ? openedAt : undefined;
}

/** The header of a CSV file as {@link scanCsv} reads it. */
export interface CsvHeader {
  /** Column names in file order; an empty header is named by its position (`column 3`). */
  columns: string[];
  /** Which columns had an empty header. */
  unnamed: boolean[];
  /** ',', ';' or a tab. */
  delimiter: string;
}

/** The name of the column at 0-based `index` whose header is empty. */
export function positionalName(index: number): string {
  return `column ${index + 1}`;
}

/**
 * Calls `onHeader` with the header, then `onRecord` with every data record (its fields, trimmed),
 * the file line it ends on and the bytes of text read so far. Blank lines are skipped; a record with another number of fields
 * than the header is an error naming its line; so is a quote never closed (naming where it opens).
 */
export async function scanCsv(file: string, onHeader: (h: CsvHeader) => void, onRecord: (fields: string[], line: number, bytes: number) => void): Promise<void> {
  const first = await headerLine(file);
  if (first.trim() === '') throw new DataError(`${file}: empty file; a header row naming the columns is required`);
  const delimiter = detectDelimiter(first);
  // A row of numbers is at most about 25 characters per column; far longer rows are not this CSV.
  const parser = parse({ delimiter, trim: true, skip_empty_lines: true, relax_quotes: false, bom: true, info: true, max_record_size: Math.max(MAX_HEADER_BYTES, 32 * first.length) });
  const text = openText(file);
  text.on('error', (e) => parser.destroy(e));
  text.pipe(parser);
  let header: CsvHeader | undefined;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number; bytes: number } }>) {
      const record = item.record;
      // A line of spaces is blank too (csv-parse keeps it as one empty field).
      if (record.length === 1 && record[0] === '' && (header?.columns.length ?? 0) !== 1) continue;
      if (!header) {
        const raw = record.map((c) => c.trim());
        const unnamed = raw.map((c) => c === '');
        const columns = raw.map((c, i) => (c !== '' ? c : raw.includes(positionalName(i)) ? `${positionalName(i)} (unnamed)` : positionalName(i)));
        const seen = new Set<string>();
        for (const c of columns) {
          if (seen.has(c)) throw new DataError(`${file} line ${item.info.lines}: column name ${shown(c)} appears twice; expected distinct column names`);
          seen.add(c);
        }
        header = { columns, unnamed, delimiter };
        onHeader(header);
        continue;
      }
      if (record.length !== header.columns.length) {
        throw new DataError(`${file} line ${item.info.lines}: expected ${header.columns.length} fields (as in the header), got ${record.length}`);
      }
      onRecord(record, item.info.lines, item.info.bytes);
    }
  } catch (e) {
    if ((e as { code?: string })?.code === 'CSV_QUOTE_NOT_CLOSED') {
      const at = await unclosedQuoteLine(file, delimiter);
      if (at !== undefined) throw new DataError(`${file} line ${at}: a quoted field opens here and is never closed; expected a closing '"'`);
    }
    throw readError(file, e);
  } finally {
    text.destroy();
  }
  if (!header) throw new DataError(`${file}: empty file; a header row naming the columns is required`);
}

/** One column of a CSV file, as read: numbers, words and missing cells kept apart. */
export interface RawColumn {
  /** Its name (`column N` for an empty header). */
  name: string;
  /** Whether the header was empty. */
  unnamed: boolean;
  /** Each row's number; NaN where the cell is a word or missing. */
  numbers: Float64Array;
  /** Each row's word, where it is one (null when the column has no word at all). */
  words: Array<string | undefined> | null;
  /** Rows whose cell is missing. */
  missing: number;
  /** Rows whose cell is a word. */
  wordCount: number;
  /** The first row holding a word, and the word. */
  firstWord?: {
    /** The row, 0-based. */
    row: number;
    /** The word. */
    text: string;
  };
  /** The first row (0-based) holding a number. */
  firstNumber?: number;
  /** The first row (0-based) whose cell is missing. */
  firstMissing?: number;
}

/** A CSV file's columns, as read. */
export interface RawTable {
  /** The file read. */
  file: string;
  /** The kept columns, in file order. */
  columns: RawColumn[];
  /** Data rows (the header excluded). */
  rows: number;
  /** The file line each row ends on (1 is the header, unless blank lines come first), for messages. */
  lines: Int32Array;
}

/** The cell of a raw column at a row. */
export function rawCell(c: RawColumn, row: number): Cell {
  const v = c.numbers[row];
  if (v === v) return v; // not NaN
  return c.words?.[row] ?? null;
}

/** Which columns {@link readCsvTable} and {@link readNumericCsv} keep. */
export interface ReadCsvOptions {
  /** Columns to leave out entirely (each must exist). */
  drop?: string[];
  /** Read only these columns (each must exist); every other column is ignored. */
  only?: string[];
  /** readNumericCsv: what to tell the user about a word in this column (default: "expected a number"). */
  hint?: (column: string) => string;
}

/** Every kept column of a CSV file, numbers and words apart. Errors name the file, line and column. */
export async function readCsvTable(file: string, opts: ReadCsvOptions = {}): Promise<RawTable> {
  let keep: number[] = [];
  let cols: Array<RawColumn & { values: number[] }> = [];
  const lines: number[] = [];
  let row = 0;
  await scanCsv(file, (h) => {
    const drop = new Set(opts.drop ?? []);
    for (const d of drop) {
      if (!h.columns.includes(d)) throw new DataError(`--drop: ${file} has no column ${shown(d)} (columns: ${shownList(h.columns)})`);
    }
    if (opts.only) {
      const missing = opts.only.filter((c) => !h.columns.includes(c));
      if (missing.length) {
        throw new DataError(`${file}: missing column${missing.length > 1 ? 's' : ''} ${shownList(missing)}; expected the training columns ${shownList(opts.only)}`);
      }
      keep = opts.only.map((c) => h.columns.indexOf(c));
    } else {
      keep = h.columns.map((_, i) => i).filter((i) => !drop.has(h.columns[i]));
    }
    cols = keep.map((i) => ({ name: h.columns[i], unnamed: h.unnamed[i], numbers: new Float64Array(0), values: [], words: null, missing: 0, wordCount: 0 }));
  }, (record, line) => {
    for (let k = 0; k < keep.length; k++) {
      const c = cols[k];
      const cell = parseCell(record[keep[k]]);
      if (typeof cell === 'number') {
        c.values.push(cell);
        c.firstNumber ??= row;
      } else {
        c.values.push(NaN);
        if (cell === null) {
          c.missing++;
          c.firstMissing ??= row;
        } else {
          c.words ??= [];
          c.words[row] = cell;
          c.wordCount++;
          c.firstWord ??= { row, text: cell };
        }
      }
    }
    lines.push(line);
    row++;
  });
  if (row === 0) throw new DataError(`${file}: no data rows after the header`);
  const columns = cols.map(({ values, ...c }) => {
    if (c.words) c.words.length = row;
    return { ...c, numbers: Float64Array.from(values) };
  });
  return { file, columns, rows: row, lines: Int32Array.from(lines) };
}

/** A CSV file's numeric columns. */
export interface NumericTable {
  /** Column names, in file order (dropped columns left out). */
  columns: string[];
  /** Column-major values: `values[c][row]`. */
  values: Float64Array[];
  /** Data rows (the header excluded). */
  rows: number;
  /** The file line each row ends on (1 is the header), for messages. */
  lines: Int32Array;
}

/**
 * Read a CSV whose kept columns are all numbers, written in decimal, none missing. The first bad
 * cell (in file order) is an error naming the file, line and column.
 */
export async function readNumericCsv(file: string, opts: ReadCsvOptions = {}): Promise<NumericTable> {
  const t = await readCsvTable(file, opts);
  let bad: { row: number; column: RawColumn } | undefined;
  for (const c of t.columns) {
    const row = Math.min(c.firstWord?.row ?? Infinity, c.firstMissing ?? Infinity);
    if (row < (bad?.row ?? Infinity)) bad = { row, column: c };
  }
  if (bad) {
    const c = bad.column;
    const word = c.words?.[bad.row];
    const what = word === undefined ? 'an empty value' : `the non-numeric value ${shown(word)}`;
    throw new DataError(`${file} line ${t.lines[bad.row]}: column ${shown(c.name)} has ${what}; ${opts.hint?.(c.name) ?? 'expected a number'}`);
  }
  return { columns: t.columns.map((c) => c.name), values: t.columns.map((c) => c.numbers), rows: t.rows, lines: t.lines };
}
