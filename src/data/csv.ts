/**
 * Numeric CSV reading: header row required, comma or semicolon detected from the header, quoted
 * headers accepted, gzip detected by its magic bytes. Parsing is csv-parse's (streaming).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { DataError } from './dataset.js';
import { fsReason, isFsError, shown, shownList } from '../errors.js';

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

async function firstLine(file: string): Promise<string> {
  const stream = openText(file);
  let text = '';
  try {
    for await (const chunk of stream) {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) return text.slice(0, nl).replace(/\r$/, '');
      if (text.length > MAX_HEADER_BYTES) {
        throw new DataError(`${file} line 1: the header row is longer than ${MAX_HEADER_BYTES} bytes; expected a header row naming the columns`);
      }
    }
  } catch (e) {
    throw readError(file, e);
  } finally {
    stream.destroy();
  }
  return text;
}

function detectDelimiter(header: string): ',' | ';' {
  const count = (ch: string) => header.split(ch).length - 1;
  return count(';') > count(',') ? ';' : ',';
}

/** Which columns {@link readNumericCsv} keeps. */
export interface ReadCsvOptions {
  /** Columns to leave out entirely (non-numeric columns must be listed here). */
  drop?: string[];
  /** Read only these columns (each must exist); every other column is ignored. */
  only?: string[];
  /** What to tell the user about a non-numeric value in this column (default: "expected a number"). */
  hint?: (column: string) => string;
}

/** Read a CSV whose kept columns are all numeric. Errors name the file, line and column. */
export async function readNumericCsv(file: string, opts: ReadCsvOptions = {}): Promise<NumericTable> {
  const header = await firstLine(file);
  if (header.trim() === '') throw new DataError(`${file}: empty file; a header row naming the columns is required`);
  const delimiter = detectDelimiter(header);
  // A row of numbers is at most about 25 characters per column; far longer rows are not this CSV.
  const parser = parse({ delimiter, trim: true, skip_empty_lines: true, relax_quotes: false, bom: true, info: true, max_record_size: Math.max(MAX_HEADER_BYTES, 32 * header.length) });
  const text = openText(file);
  text.on('error', (e) => parser.destroy(e));
  text.pipe(parser);
  let columns: string[] | undefined;
  let keep: number[] = [];
  let cols: number[][] = [];
  const lines: number[] = [];
  let line = 1; // the current record's last line in the file
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const record = item.record;
      if (!columns) {
        columns = record.map((c) => c.trim());
        const drop = new Set(opts.drop ?? []);
        for (const d of drop) {
          if (!columns.includes(d)) {
            throw new DataError(`--drop: ${file} has no column ${shown(d)} (columns: ${shownList(columns)})`);
          }
        }
        const seen = new Set<string>();
        for (const c of columns) {
          if (seen.has(c)) throw new DataError(`${file} line 1: column name ${shown(c)} appears twice`);
          seen.add(c);
        }
        if (opts.only) {
          const missing = opts.only.filter((c) => !columns!.includes(c));
          if (missing.length) {
            throw new DataError(`${file}: missing column${missing.length > 1 ? 's' : ''} ${shownList(missing)}; expected the training columns ${shownList(opts.only)}`);
          }
          keep = opts.only.map((c) => columns!.indexOf(c));
        } else {
          keep = columns.map((_, i) => i).filter((i) => !drop.has(columns![i]));
        }
        cols = keep.map(() => []);
        continue;
      }
      line = item.info.lines;
      if (record.length !== columns.length) {
        throw new DataError(`${file} line ${line}: expected ${columns.length} fields (as in the header), got ${record.length}`);
      }
      for (let k = 0; k < keep.length; k++) {
        const text = record[keep[k]];
        const v = text === '' ? NaN : Number(text);
        if (!Number.isFinite(v)) {
          const name = columns[keep[k]];
          const what = text === '' ? 'an empty value' : `the non-numeric value ${shown(text)}`;
          throw new DataError(`${file} line ${line}: column ${shown(name)} has ${what}; ${opts.hint?.(name) ?? 'expected a number'}`);
        }
        cols[k].push(v);
      }
      lines.push(line);
    }
  } catch (e) {
    throw readError(file, e);
  } finally {
    text.destroy();
  }
  if (!columns) throw new DataError(`${file}: empty file; a header row naming the columns is required`);
  const rows = cols[0]?.length ?? 0;
  if (rows === 0) throw new DataError(`${file}: no data rows after the header`);
  return { columns: keep.map((i) => columns![i]), values: cols.map((c) => Float64Array.from(c)), rows, lines: Int32Array.from(lines) };
}
