/**
 * Every file glonet writes or reads as JSON goes through here.
 * Writing is never half-done: a temporary sibling (`.NAME.tmp-PID-N-RANDOM`) is written, then renamed
 * over the target. `durable` also flushes the data to the disk before the rename (and the folder
 * after it), so that even a power cut leaves the old file or the new one. A failed write is a
 * WriteFailedError naming the path and the reason (a full disk, a permission); the target keeps
 * its old content and the temporary file is removed.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BadFileError, WriteFailedError, fsReason, isFsError, shown } from './errors.js';

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
    fs.mkdirSync(path.dirname(file), { recursive: true });
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
    fs.mkdirSync(path.dirname(target), { recursive: true });
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

/** Read a file the user or a run folder provides; problems are BadFileErrors naming it. */
export function readFileChecked(file: string, what = 'file'): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new BadFileError(`${file}: cannot read the ${what} (${fsReason(e)})`);
  }
}

export function readJson<T = unknown>(file: string, what = 'file'): T {
  const text = readFileChecked(file, what).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new BadFileError(`${file}: the ${what} is not valid JSON (${shown((e as Error).message, 120).slice(1, -1)}); the file is cut off or damaged`);
  }
}
