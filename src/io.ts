/**
 * Every file glonet writes, and every file it reads from a run or experiment folder or a user's
 * option, goes through here.
 * Reading is bounded: a regular file only (a device, FIFO or socket is refused before it is
 * opened), at most a size known before a byte is read (src/limits.ts), and for the files of a run
 * or experiment folder, inside that folder (symbolic links followed). JSON parse errors name the
 * file and never echo its text.
 * Writing is never half-done: a temporary sibling (`.NAME.tmp-PID-N-RANDOM`) is written, then renamed
 * over the target. `durable` also flushes the data to the disk before the rename (and the folder
 * after it), so that even a power cut leaves the old file or the new one. A failed write is a
 * WriteFailedError naming the path and the reason (a full disk, a permission); the target keeps
 * its old content and the temporary file is removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BadFileError, WriteFailedError, fsReason, isFsError, shown } from './errors.js';
import { LIMITS, formatBytes } from './limits.js';

let counter = 0;
/**
 * A temporary sibling no other writer picks: processes on different machines sharing a folder (the
 * shards of an experiment; every pod of a Kubernetes Job may have the same pid) can write the same
 * file at the same moment, so the name carries random bytes besides the pid and a counter.
 */
export function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${counter++}-${randomBytes(4).toString('hex')}`);
}

/** The process id in a temporary name written by this module, or undefined for other names. */
export function tempNamePid(name: string): number | undefined {
  const m = /^\..+\.tmp-(\d+)-\d+(-[0-9a-f]{8})?(-old)?$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Run file-system writes; an error of the file system becomes a WriteFailedError naming `target`. */
export function writing<T>(target: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isFsError(e)) throw new WriteFailedError(`${target}: cannot write (${fsReason(e)})`);
    throw e;
  }
}

/**
 * `mkdir -p`: make `dir` and the folders above it that are missing; returns the first folder it
 * made (undefined when `dir` existed). Node's own recursive mkdir loops forever where a folder
 * exists but refuses children with ENOENT (/proc, some FUSE mounts); this one makes each level
 * once and lets the error through.
 */
export function makeDirs(dir: string): string | undefined {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let p = target; ; p = path.dirname(p)) {
    if (fs.existsSync(p)) break;
    missing.push(p);
    if (path.dirname(p) === p) break;
  }
  for (const p of missing.reverse()) {
    try {
      fs.mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(p).isDirectory()) throw e;
    }
  }
  return missing[0];
}

/** Flush a folder's entries (new names, renames) to the disk. */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems cannot open or flush folders; the data files themselves were flushed.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write a file and flush it to the disk (for files that are renamed into place afterwards). */
export function writeFileDurable(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array, o: { durable?: boolean } = {}): void {
  writing(file, () => {
    makeDirs(path.dirname(file));
    const tmp = tempName(file);
    try {
      if (o.durable) writeFileDurable(tmp, data);
      else fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, file);
      if (o.durable) syncDir(path.dirname(file));
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  });
}

export function writeJsonAtomic(file: string, value: unknown, o: { durable?: boolean } = {}): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', o);
}

/**
 * Replace a whole directory: `fill` writes into a fresh temporary sibling, which then takes the
 * target's place. Readers see the old directory or the new one, never a mixture; a crash between
 * the two renames leaves the target missing and both complete copies as temporary siblings.
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void> | void): Promise<void> {
  const target = path.resolve(dir);
  const tmp = tempName(target);
  const old = tempName(target) + '-old';
  writing(target, () => {
    makeDirs(path.dirname(target));
    fs.mkdirSync(tmp);
  });
  try {
    await fill(tmp);
    writing(target, () => {
      if (fs.existsSync(target)) fs.renameSync(target, old);
      fs.renameSync(tmp, target);
    });
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
    if (isFsError(e)) throw new WriteFailedError(`${target}: cannot write (${fsReason(e)})`);
    throw e;
  }
}

/** How a file is read: what it is (for messages), at most how many bytes, and the folder it must lie in. */
export interface ReadBounds {
  /** What the file is, for messages ("metrics", "model", "input"). */
  what?: string;
  /** The largest size accepted, checked before a byte is read (default: LIMITS.jsonBytes). */
  maxBytes?: number;
  /** Why that limit, for the message (default: the JSON limit's reason). */
  why?: string;
  /**
   * A folder the file must lie in, symbolic links followed: a run folder's files may not lead out
   * of it (to /dev/zero, /etc/passwd, another user's files).
   */
  within?: string;
}

/** True when `inner` (a real path) is `outer` (a real path) or lies inside it. */
function insideReal(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);
}

/** "the weights file" for what = "weights", "the IDX file" for what = "IDX file" (no "file file"). */
function theFile(what: string): string {
  return /\bfile$/.test(what) ? `the ${what}` : `the ${what} file`;
}

/**
 * The file's real path once it is known to be a regular file of at most `maxBytes` inside
 * `within`; every other case is a BadFileError naming it. Nothing is opened: devices, FIFOs and
 * sockets are refused by their type (opening a FIFO would wait for a writer, reading a device
 * would never end), links leading out of `within` by where they lead.
 */
export function checkReadable(file: string, o: ReadBounds = {}): { real: string; size: number } {
  const what = o.what ?? 'file';
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (e) {
    throw new BadFileError(`${file}: cannot read the ${what} (${fsReason(e)})`);
  }
  if (o.within != null) {
    let folder: string;
    try {
      folder = fs.realpathSync(o.within);
    } catch (e) {
      throw new BadFileError(`${o.within}: cannot read the folder (${fsReason(e)})`);
    }
    if (!insideReal(real, folder)) {
      throw new BadFileError(`${file}: leads outside its folder ${o.within} (a symbolic link to ${real}); glonet reads only files inside it`);
    }
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(real);
  } catch (e) {
    throw new BadFileError(`${file}: cannot read the ${what} (${fsReason(e)})`);
  }
  if (st.isDirectory()) throw new BadFileError(`${file}: is a folder; expected ${theFile(what)}`);
  if (!st.isFile()) {
    const kind = st.isFIFO() ? 'a named pipe' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
    throw new BadFileError(`${file}: is ${kind}${real !== path.resolve(file) ? ` (${real})` : ''}, not a regular file; expected ${theFile(what)}`);
  }
  const max = o.maxBytes ?? LIMITS.jsonBytes.max;
  if (st.size > max) {
    throw new BadFileError(`${file}: ${formatBytes(st.size)}; the ${what} can be at most ${formatBytes(max)} (${o.why ?? LIMITS.jsonBytes.why})`);
  }
  return { real, size: st.size };
}

/**
 * Read a file glonet was given or found in a run folder, bounded: a regular file (not a device,
 * FIFO or socket), at most `maxBytes`, inside `within` when given; it is opened without following
 * a link swapped in since the check and without waiting on a FIFO, and at most its checked size is
 * read. Problems are BadFileErrors naming the file.
 */
export function readFileBounded(file: string, o: ReadBounds = {}): Buffer {
  const what = o.what ?? 'file';
  const { real, size } = checkReadable(file, o);
  let fd: number | undefined;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0));
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new BadFileError(`${file}: changed into something other than a regular file while it was opened; expected ${theFile(what)}`);
    const buf = Buffer.allocUnsafe(Math.min(size, st.size));
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  } catch (e) {
    if (e instanceof BadFileError) throw e;
    throw new BadFileError(`${file}: cannot read the ${what} (${fsReason(e)})`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The first `n` bytes of a file (fewer when it is shorter), opened without waiting on a FIFO. */
export function readHead(file: string, n: number): Buffer {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    if (!fs.fstatSync(fd).isFile()) throw new BadFileError(`${file}: not a regular file`);
    const b = Buffer.alloc(n);
    return b.subarray(0, fs.readSync(fd, b, 0, n, 0));
  } catch (e) {
    if (e instanceof BadFileError) throw e;
    throw new BadFileError(`${file}: cannot read the file (${fsReason(e)})`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * The SHA-256 of a file and its size, read in chunks of 1 MiB (bounded as {@link readFileBounded};
 * nothing is held in memory but one chunk).
 */
export function hashFile(file: string, o: ReadBounds = {}): { bytes: number; sha256: string } {
  const what = o.what ?? 'file';
  const { real } = checkReadable(file, o);
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  let fd: number | undefined;
  let bytes = 0;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0));
    if (!fs.fstatSync(fd).isFile()) throw new BadFileError(`${file}: changed into something other than a regular file while it was opened; expected ${theFile(what)}`);
    const max = o.maxBytes ?? LIMITS.jsonBytes.max;
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, bytes);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      bytes += n;
      if (bytes > max) throw new BadFileError(`${file}: grew beyond ${formatBytes(max)} while it was read; the ${what} can be at most that`);
    }
  } catch (e) {
    if (e instanceof BadFileError) throw e;
    throw new BadFileError(`${file}: cannot read the ${what} (${fsReason(e)})`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Read a file the user or a run folder provides (bounded as {@link readFileBounded}); problems are BadFileErrors naming it. */
export function readFileChecked(file: string, what = 'file', o: Omit<ReadBounds, 'what'> = {}): Buffer {
  return readFileBounded(file, { ...o, what });
}

/**
 * JSON.parse's complaint without the text it quotes: V8 cites the start of the file ("...", "root:x:0:0"
 * is not valid JSON), which must not be echoed from a file that may not be what it claims.
 */
export function jsonProblem(e: unknown): string {
  const m = String((e as Error)?.message ?? e);
  return shown(m.replace(/, "[\s\S]*" is not valid JSON$/, '').replace(/^(Unexpected token '.'), .*$/s, '$1'), 120).slice(1, -1);
}

/**
 * Read a JSON file, bounded as {@link readFileBounded} (default: at most LIMITS.jsonBytes; pass
 * `within` for a file of a run or experiment folder). Problems are BadFileErrors naming the file.
 */
export function readJson<T = unknown>(file: string, what = 'file', o: Omit<ReadBounds, 'what'> = {}): T {
  const text = readFileBounded(file, { ...o, what }).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new BadFileError(`${file}: the ${what} is not valid JSON (${jsonProblem(e)}); the file is cut off or damaged`);
  }
}
