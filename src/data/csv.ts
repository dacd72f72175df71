/**
 * Numeric CSV reading: header row required, comma or semicolon detected from the header, quoted
 * headers accepted, gzip detected by its magic bytes. Parsing is csv-parse's (streaming).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { DataError } from './dataset.js';

export interface NumericTable {
  columns: string[];
  /** Column-major values: `values[c][row]`. */
  values: Float64Array[];
  rows: number;
}

function openText(file: string): Readable {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new DataError(`${file}: cannot open the file (does it exist?)`);
  }
  const magic = Buffer.alloc(2);
  fs.readSync(fd, magic, 0, 2, 0);
  fs.closeSync(fd);
  const raw = fs.createReadStream(file);
  return magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(zlib.createGunzip()) : raw;
}

async function firstLine(file: string): Promise<string> {
  const stream = openText(file);
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString('utf8');
    const nl = text.indexOf('\n');
    if (nl >= 0) {
      stream.destroy();
      return text.slice(0, nl).replace(/\r$/, '');
    }
    if (text.length > 1 << 20) break;
  }
  stream.destroy();
  return text;
}

export function detectDelimiter(header: string): ',' | ';' {
  const count = (ch: string) => header.split(ch).length - 1;
  return count(';') > count(',') ? ';' : ',';
}

export interface ReadCsvOptions {
  /** Columns to leave out entirely (non-numeric columns must be listed here). */
  drop?: string[];
  /** Read only these columns (each must exist); every other column is ignored. */
  only?: string[];
}

/** Read a CSV whose kept columns are all numeric. Errors name the file, line and column. */
export async function readNumericCsv(file: string, opts: ReadCsvOptions = {}): Promise<NumericTable> {
  const header = await firstLine(file);
  if (header.trim() === '') throw new DataError(`${file}: empty file; a header row naming the columns is required`);
  const delimiter = detectDelimiter(header);
  const parser = openText(file).pipe(
    parse({ delimiter, trim: true, skip_empty_lines: true, relax_quotes: false, bom: true, info: true }),
  );
  let columns: string[] | undefined;
  let keep: number[] = [];
  let cols: number[][] = [];
  let line = 1; // the current record's last line in the file
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const record = item.record;
      if (!columns) {
        columns = record.map((c) => c.trim());
        const drop = new Set(opts.drop ?? []);
        for (const d of drop) {
          if (!columns.includes(d)) {
            throw new DataError(`--drop: ${file} has no column '${d}' (columns: ${columns.join(', ')})`);
          }
        }
        const seen = new Set<string>();
        for (const c of columns) {
          if (seen.has(c)) throw new DataError(`${file} line 1: column name '${c}' appears twice`);
          seen.add(c);
        }
        if (opts.only) {
          const missing = opts.only.filter((c) => !columns!.includes(c));
          if (missing.length) {
            throw new DataError(`${file}: missing column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `'${c}'`).join(', ')}; expected the training columns ${opts.only.join(', ')}`);
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
          const what = text === '' ? 'an empty value' : `the non-numeric value '${text}'`;
          throw new DataError(
            `${file} line ${line}: column '${name}' has ${what}; every kept column must be numeric (leave it out with --drop '${name}')`);
        }
        cols[k].push(v);
      }
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    const err = e as Error & { lines?: number };
    throw new DataError(`${file}${err.lines ? ` line ${err.lines}` : ''}: cannot parse the CSV (${err.message})`);
  }
  if (!columns) throw new DataError(`${file}: empty file; a header row naming the columns is required`);
  const rows = cols[0]?.length ?? 0;
  if (rows === 0) throw new DataError(`${file}: no data rows after the header`);
  return { columns: keep.map((i) => columns![i]), values: cols.map((c) => Float64Array.from(c)), rows };
}
