/**
 * Folders a command writes a run into (`glonet train --out`, `glonet truncate --out`): whether the
 * path can be a folder this process writes, what an existing folder already holds, refusing to
 * overwrite a run unless asked, never writing a run into its own source, clearing a folder when
 * asked, and removing the temporary files that killed writers left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutFolderError, fsReason } from './errors.js';
import { makeDirs, readJson, tempNamePid, writing } from './io.js';

/** Everything glonet writes at the top of a run folder. */
export const RUN_ENTRIES = ['metrics.json', 'model', 'checkpoint', 'analysis.json', 'report.html'] as const;

/** Check that `dir` is, or can become, a folder this process can write into (`what` it is for, in messages). */
export function checkWritableFolder(dir: string, option: string, what = 'the run'): void {
  const target = path.resolve(dir);
  if (path.dirname(target) === target) {
    throw new OutFolderError(`${option}: ${dir} is the root of the file system; choose a folder of its own for what glonet writes`);
  }
  for (let p = target; ; p = path.dirname(p)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch (e) {
      // Not there yet (or under a file, found further up): look at the parent.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new OutFolderError(`${option}: cannot use ${p} (${fsReason(e)}); choose a folder you can write to`);
    }
    if (st) {
      if (!st.isDirectory()) {
        throw new OutFolderError(p === target
          ? `${option}: ${dir} is a file; expected a folder for ${what} (a new one, or ${what === 'the run' ? 'a run folder' : 'one glonet wrote'})`
          : `${option}: ${p} is a file, so ${dir} cannot be a folder inside it`);
      }
      try {
        fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
      } catch (e) {
        throw new OutFolderError(`${option}: cannot write in ${p} (${fsReason(e)}); choose a folder you can write to`);
      }
      return;
    }
    if (path.dirname(p) === p) return;
  }
}

/**
 * Make the output folder `dir` (and the missing folders above it); returns the first one made. A
 * place that takes no folders (/proc, a read-only file system) is an OutFolderError naming it.
 */
export function makeOutFolder(dir: string, option?: string): string | undefined {
  try {
    return makeDirs(dir);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file system there takes no new folders' : fsReason(e);
    throw new OutFolderError(`${option ? `${option}: ` : ''}cannot make the folder ${dir} (${why}); choose a folder you can write to`);
  }
}

/** The path with every existing part resolved (symbolic links followed), for comparing places. */
function canonical(p: string): string {
  const abs = path.resolve(p);
  for (let head = abs, rest = ''; ; rest = path.join(path.basename(head), rest), head = path.dirname(head)) {
    try {
      return path.join(fs.realpathSync(head), rest);
    } catch {
      if (path.dirname(head) === head) return abs;
    }
  }
}

/** True when `inner` is `outer` or lies inside it. */
export function isSameOrInside(inner: string, outer: string): boolean {
  const a = canonical(inner);
  const b = canonical(outer);
  return a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
}

/** The run entries present in `dir` (a checkpoint/ holding only leftovers of a killed writer does not count). */
export function runEntries(dir: string): string[] {
  return RUN_ENTRIES.filter((e) => {
    const p = path.join(dir, e);
    if (e !== 'checkpoint') return fs.existsSync(p);
    try {
      return fs.readdirSync(p).some((n) => tempNamePid(n) === undefined);
    } catch {
      return fs.existsSync(p);
    }
  });
}

/** "a finished run (10 of 10 epochs)", "a truncated model (3 of 10 blocks)", "files of a run (model/)". */
function describeRun(dir: string): string {
  const entries = runEntries(dir);
  try {
    const m = readJson<Record<string, any>>(path.join(dir, 'metrics.json'), 'metrics', { within: dir });
    if (m?.truncatedFrom) return `a truncated model (${m.truncatedFrom.blocks} of ${m.truncatedFrom.of} blocks)`;
    if (m?.diverged) return `a run that diverged in epoch ${m.diverged.epoch}`;
    const done = Array.isArray(m?.epochs) ? m.epochs.length : 0;
    const want = m?.config?.epochs;
    if (typeof want === 'number') return `${done >= want ? 'a finished' : 'an unfinished'} run (${done} of ${want} epochs)`;
  } catch {
    // described by its entries below
  }
  return `files of a run (${entries.map((e) => (e.includes('.') ? e : `${e}/`)).join(', ')})`;
}

/** Refuse to write into a folder holding a run; `what` says what to do instead. */
export function refuseIfHoldsRun(dir: string, option: string, what: string): void {
  if (runEntries(dir).length === 0) return;
  throw new OutFolderError(`${option}: ${dir} already holds ${describeRun(dir)}; ${what}`);
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove the temporary files and folders that writers killed mid-write left in `dir` and its checkpoint/. */
export function removeLeftovers(dir: string): void {
  for (const folder of [dir, path.join(dir, 'checkpoint')]) {
    let names: string[];
    try {
      names = fs.readdirSync(folder);
    } catch {
      continue;
    }
    for (const n of names) {
      const pid = tempNamePid(n);
      if (pid !== undefined && !pidAlive(pid)) writing(path.join(folder, n), () => fs.rmSync(path.join(folder, n), { recursive: true, force: true }));
    }
  }
}

/** Remove a run's files from `dir` (other files stay), for --overwrite. */
export function clearRunFolder(dir: string): void {
  for (const e of RUN_ENTRIES) writing(path.join(dir, e), () => fs.rmSync(path.join(dir, e), { recursive: true, force: true }));
  removeLeftovers(dir);
}
