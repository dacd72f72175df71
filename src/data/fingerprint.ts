/**
 * What data a run was trained on, to the byte: the files its data set read, each with its size and
 * SHA-256. A run records it in metrics.json (`data.fingerprint`); `analyze`, `truncate`, `web` and
 * `train --resume` compute it again and refuse data that are not the same (a file replaced, rows
 * appended, another file of the same name found from another folder).
 */
import * as path from 'node:path';
import { hashFile } from '../io.js';
import { LIMITS } from '../limits.js';
import { getDataset, type LoadOptions } from './registry.js';

/** One data file as a run read it. */
export interface DataFileFingerprint {
  /** Its absolute path when the run read it. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** Its SHA-256, hex. */
  sha256: string;
}

/** The data files of a run, in the order the data set reads them. */
export interface DataFingerprint {
  /** Each file, in the order the data set reads them (none for data that come with a package). */
  files: DataFileFingerprint[];
}

/** The largest data file hashed: a CSV or image file glonet can load. */
const DATA_FILE_MAX = LIMITS.imageFileBytes.max * 4;

/** The fingerprint of the data these options read (an empty list for data that come with a package). */
export function fingerprintData(o: LoadOptions): DataFingerprint {
  const files = getDataset(o.dataset).files?.(o) ?? [];
  return {
    files: files.map((f) => ({ path: path.resolve(f), ...hashFile(f, { what: 'data file', maxBytes: DATA_FILE_MAX, why: 'it is loaded in memory' }) })),
  };
}

const short = (sha: string) => sha.slice(0, 12);

/**
 * How the data these options read differ from a recorded fingerprint, in words, or undefined when
 * they are the same bytes (wherever they now are).
 */
export function fingerprintMismatch(recorded: DataFingerprint, o: LoadOptions): string | undefined {
  const now = fingerprintData(o).files;
  const was = recorded.files;
  if (now.length !== was.length) {
    return `the run read ${was.length} data file${was.length === 1 ? '' : 's'} (${was.map((f) => f.path).join(', ') || 'none'}), these options read ${now.length} (${now.map((f) => f.path).join(', ') || 'none'})`;
  }
  for (let i = 0; i < now.length; i++) {
    const [a, b] = [was[i], now[i]];
    if (a.bytes !== b.bytes || a.sha256 !== b.sha256) {
      return `the run was trained on ${a.path} (${a.bytes} bytes, SHA-256 ${short(a.sha256)}...), but ${b.path} now holds other data (${b.bytes} bytes, SHA-256 ${short(b.sha256)}...)`;
    }
  }
  return undefined;
}

/** True when `v` looks like a recorded fingerprint (older runs have none). */
export function isFingerprint(v: unknown): v is DataFingerprint {
  const f = v as DataFingerprint;
  return typeof f === 'object' && f !== null && Array.isArray(f.files) &&
    f.files.every((x) => typeof x?.path === 'string' && Number.isSafeInteger(x.bytes) && typeof x.sha256 === 'string');
}
