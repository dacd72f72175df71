/**
 * The kinds of file problems every command can meet, and the words for the operating system's
 * reasons. The CLI turns each into one line (src/cli/index.ts):
 *   BadFileError      a file or folder glonet reads is missing, unreadable or not what it should
 *                     be: bad input, exit code 2
 *   OutFolderError    the folder to write into cannot be used as asked: bad input, exit code 2
 *   WriteFailedError  writing failed while the command ran (a full disk, a lost permission, an
 *                     I/O error): a runtime failure, exit code 1; what was committed stays valid
 */

/** A file or folder glonet reads is missing, unreadable or not what it should be (the message names it). */
export class BadFileError extends Error {
  /** 'BadFileError'. */
  override name = 'BadFileError';
}

/** Writing failed while the command ran (full disk, lost permission, I/O error); what was committed stays valid. */
export class WriteFailedError extends Error {
  /** 'WriteFailedError'. */
  override name = 'WriteFailedError';
}

/**
 * The folder a command should write into cannot be used as asked: it is a file, lies inside one,
 * cannot be written, holds a run that would be overwritten, or is the command's own source.
 * Bad input, exit code 2.
 */
export class OutFolderError extends Error {
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

/** The reason of a file-system error in words ("no space left on the device (the disk is full)"). */
export function fsReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return (err?.code && REASONS[err.code]) ?? (err?.code ? `${err.code}` : String((err as Error)?.message ?? err));
}

/** True for an error that comes from the file system (it has an errno code such as ENOSPC). */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
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
