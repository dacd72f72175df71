/**
 * One writer per folder: an advisory lock file, `DIR/.glonet-lock`, created with O_EXCL (atomic on
 * local file systems and NFS alike) and holding who wrote it: the process id, the host, the boot
 * and the process's start time (Linux), when, and what for. A second glonet process that wants to
 * write the folder finds it and refuses in one line naming the holder.
 *
 * The lock is released when the command ends (normally, on an error, or through process.exit);
 * a process that is killed (SIGKILL, a power cut) leaves the file behind, and the next writer on
 * the same host sees that its process is gone (no such pid, or a pid now used by a process that
 * started later, or another boot) and takes the lock over. A lock from another host cannot be
 * checked from here: the message names the host and the file to remove once that process is gone.
 *
 * Locks are re-entrant within a process (an experiment cell locks its folder, then trains and
 * analyzes it, each of which locks it too).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { GlonetError, fsReason } from './errors.js';
import { makeOutFolder } from './out-folder.js';
import { readJson, writing } from './io.js';

/** The lock file's name inside the folder it locks. */
export const LOCK_FILE = '.glonet-lock';

/** Another process is writing the folder (a runtime failure: exit code 1; try again once it is done). */
export class FolderBusyError extends GlonetError {
  /** 'FolderBusyError'. */
  override name = 'FolderBusyError';
  override readonly kind = 'runtime';
  /** Who holds the folder's lock. */
  readonly holder: LockHolder;
  /**
   * @param message the one-line message naming the folder and the holder
   * @param holder what the lock file says
   */
  constructor(message: string, holder: LockHolder) {
    super(message);
    this.holder = holder;
  }
}

/** Who holds a lock: what the lock file says. */
export interface LockHolder {
  /** The holder's process id. */
  pid: number;
  /** The host it runs on (os.hostname()). */
  host: string;
  /** Linux: /proc/sys/kernel/random/boot_id of the boot the process ran in. */
  boot?: string;
  /** Linux: the process's start time in clock ticks since boot (/proc/PID/stat, field 22). */
  start?: number;
  /** ISO 8601. */
  since: string;
  /** What the holder does ("glonet train", "an experiment cell"). */
  purpose: string;
  /** A random token, so that a process removes only its own lock. */
  token: string;
}

/** A held lock. */
export interface FolderLock {
  /** The locked folder. */
  readonly dir: string;
  /** Release it (once per acquisition; the file goes with the last). */
  release(): void;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

const bootId = (): string | undefined => readText('/proc/sys/kernel/random/boot_id')?.trim();

/** A process's start time in clock ticks since boot (Linux), or undefined. */
function processStart(pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the fields after the last ')' start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[22 - 3]);
  return Number.isFinite(start) ? start : undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the holder certainly no longer runs (checked on its own host only). */
function isStale(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return false;
  const boot = bootId();
  if (h.boot && boot && h.boot !== boot) return true;
  if (!pidAlive(h.pid)) return true;
  const start = processStart(h.pid);
  return h.start != null && start != null && start !== h.start;
}

function isHolder(v: unknown): v is LockHolder {
  const h = v as LockHolder;
  return typeof h === 'object' && h !== null && Number.isSafeInteger(h.pid) && h.pid > 0 && typeof h.host === 'string' &&
    typeof h.token === 'string' && typeof h.since === 'string' && typeof h.purpose === 'string';
}

/** The holder of the lock file, or null when there is none or it cannot be read as one. */
function readHolder(file: string): LockHolder | null {
  try {
    const h = readJson<unknown>(file, 'lock file', { maxBytes: 1 << 16, why: 'it names one process' });
    return isHolder(h) ? h : null;
  } catch {
    return null;
  }
}

/** Locks this process holds: real folder path -> count and token. */
const held = new Map<string, { count: number; holder: LockHolder; file: string; created?: string }>();
let exitHook = false;

function releaseAll(): void {
  for (const [dir, h] of held) {
    h.count = 1;
    releaseOne(dir);
  }
}

function describeHolder(h: LockHolder): string {
  const where = h.host === os.hostname() ? 'on this machine' : `on host ${h.host}`;
  return `${h.purpose}, pid ${h.pid} ${where}, since ${h.since}`;
}

/**
 * Lock `dir` for writing (creating it when it does not exist). Throws FolderBusyError, naming the
 * holder, when another live process holds it; takes over a lock whose process is gone. `option`
 * names the option the folder came from, for messages ("--out").
 */
export function lockFolder(dir: string, o: { purpose: string; option?: string }): FolderLock {
  // The folders made here go again with the lock when nothing else was written into them.
  const created = makeOutFolder(dir, o.option);
  const real = fs.realpathSync(dir);
  const mine = held.get(real);
  if (mine) {
    mine.count++;
    return { dir, release: () => releaseOne(real) };
  }
  const file = path.join(real, LOCK_FILE);
  const holder: LockHolder = {
    pid: process.pid, host: os.hostname(), ...(bootId() ? { boot: bootId() } : {}),
    ...(processStart(process.pid) != null ? { start: processStart(process.pid) } : {}),
    since: new Date().toISOString(), purpose: o.purpose, token: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify(holder) + '\n');
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw writing(file, () => { throw e; });
      }
    }
    const other = readHolder(file);
    if (other == null) {
      // Being written this very moment, or damaged: a damaged lock older than a few seconds is taken over.
      let age = 0;
      try {
        age = Date.now() - fs.statSync(file).mtimeMs;
      } catch {
        continue;
      }
      if (age < 5000 && attempt < 50) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        continue;
      }
    } else if (!isStale(other)) {
      const what = o.option ? `${o.option}: ` : '';
      throw new FolderBusyError(`${what}${dir} is being written by another glonet process (${describeHolder(other)}); ` +
        `wait for it to finish or choose another folder${other.host === os.hostname() ? '' : ` (if that process is gone, remove ${file})`}`, other);
    }
    if (attempt >= 50) throw new FolderBusyError(`${dir}: cannot take the lock ${file}; remove it if no glonet process writes this folder`, other ?? holder);
    // The holder is gone: move its lock aside (atomically, so two processes cannot both take it over) and try again.
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw writing(file, () => { throw e; });
    }
    const moved = readHolder(aside);
    if (other != null && moved?.token !== other.token && moved != null) {
      // A new holder took the lock between the check and the move: give it back.
      try {
        fs.linkSync(aside, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new FolderBusyError(`${dir}: cannot restore the lock ${file} (${fsReason(e)})`, moved);
      }
    }
    fs.rmSync(aside, { force: true });
  }
  held.set(real, { count: 1, holder, file, created: created == null ? undefined : fs.realpathSync(created) });
  if (!exitHook) {
    exitHook = true;
    process.on('exit', releaseAll);
  }
  return { dir, release: () => releaseOne(real) };
}

function releaseOne(real: string): void {
  const h = held.get(real);
  if (!h) return;
  if (--h.count > 0) return;
  held.delete(real);
  if (readHolder(h.file)?.token === h.holder.token) fs.rmSync(h.file, { force: true });
  // A command that made the folder and wrote nothing into it (it failed before writing) leaves no folder behind.
  if (h.created && (real === h.created || real.startsWith(h.created + path.sep))) {
    for (let d = real; ; d = path.dirname(d)) {
      try {
        fs.rmdirSync(d);
      } catch {
        break;
      }
      if (d === h.created) break;
    }
  }
}

/** Run `fn` with `dir` locked (see lockFolder); the lock is released however `fn` ends. */
export async function withFolderLock<T>(dir: string, o: { purpose: string; option?: string }, fn: () => Promise<T> | T): Promise<T> {
  const lock = lockFolder(dir, o);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
