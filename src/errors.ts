/**
 * The base of every error glonet throws on purpose, with the kind of failure it is; the kinds of
 * file problems every command can meet; and the words for the operating system's reasons.
 *
 * GlonetError's `kind` is what the command line (src/cli/index.ts) turns into the exit code:
 *   'input'        the user's input is wrong (an option, a file, a folder, a model): exit code 2
 *   'runtime'      something failed while the command ran (divergence, a failed write): 1
 *   'interrupted'  a signal or an AbortSignal stopped it: 130 (SIGINT) or 143 (SIGTERM)
 * Anything else reaching the command line is a bug: exit code 70. Every glonet error class
 * extends GlonetError and says its kind once, in its declaration.
 *
 * The file problems (the CLI turns each into one line):
 *   BadFileError      a file or folder glonet reads is missing, unreadable or not what it should
 *                     be: bad input, exit code 2
 *   OutFolderError    the folder to write into cannot be used as asked: bad input, exit code 2
 *   WriteFailedError  writing failed while the command ran (a full disk, a lost permission, an
 *                     I/O error): a runtime failure, exit code 1; what was committed stays valid
 */

/** What kind of failure an error is: 'input' (exit code 2), 'runtime' (1) or 'interrupted' (130/143). */
export type ErrorKind = 'input' | 'runtime' | 'interrupted';

/** The base of every error glonet throws on purpose: a one-line message and the kind of failure. */
export class GlonetError extends Error {
  /** 'GlonetError' (each subclass names itself). */
  override name = 'GlonetError';
  /** What kind of failure this is (the command line's exit code follows from it). */
  readonly kind: ErrorKind = 'input';
}

/** A file or folder glonet reads is missing, unreadable or not what it should be (the message names it). */
export class BadFileError extends GlonetError {
  /** 'BadFileError'. */
  override name = 'BadFileError';
}

/** Writing failed while the command ran (full disk, lost permission, I/O error); what was committed stays valid. */
export class WriteFailedError extends GlonetError {
  /** 'WriteFailedError'. */
  override name = 'WriteFailedError';
  override readonly kind = 'runtime';
}

/**
 * The folder a command should write into cannot be used as asked: it is a file, lies inside one,
 * cannot be written, holds a run that would be overwritten, or is the command's own source.
 * Bad input, exit code 2.
 */
export class OutFolderError extends GlonetError {
  /** 'OutFolderError'. */
  override name = 'OutFolderError';
}

const REASONS: Record<string, string> = {
  ENOENT: 'it does not exist',
  EISDIR: 'it is a folder, not a file',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device (the disk is full)',
  EDQUOT: 'the disk quota is exceeded',
  EFBIG: 'the file is larger than this system allows',
  EROFS: 'the file system is read-only',
  EIO: 'an input/output error',
  EEXIST: 'something else already exists there',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
};

/** An error of the operating system, as Node.js reports it (NodeJS.ErrnoException's fields we read). */
interface SystemError extends Error {
  /** 'ENOENT', 'ENOSPC', ... */
  code?: string;
  /** The call that failed ('open', 'write', ...). */
  syscall?: string;
}

/** The reason of a file-system error in words ("no space left on the device (the disk is full)"). */
export function fsReason(e: unknown): string {
  const err = e as SystemError;
  return (err?.code && REASONS[err.code]) ?? (err?.code ? `${err.code}` : String((err as Error)?.message ?? err));
}

/** True for an error that comes from the file system (it has an errno code such as ENOSPC). */
export function isFsError(e: unknown): e is SystemError {
  return e instanceof Error && typeof (e as SystemError).code === 'string' && typeof (e as SystemError).syscall === 'string';
}

/**
 * A value from a user's file as it appears in a one-line message: quoted, control characters
 * escaped (a newline in a CSV field must not break the line), and cut to `max` characters.
 */
export function shown(value: unknown, max = 60): string {
  const text = String(value);
  const cut = text.length > max ? text.slice(0, max) + '...' : text;
  return `'${cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}'`;
}

/** A list of names for a message, each shown(), at most `max` of them. */
export function shownList(names: readonly string[], max = 20): string {
  const head = names.slice(0, max).map((n) => shown(n, 40)).join(', ');
  return names.length > max ? `${head} and ${names.length - max} more` : head;
}
