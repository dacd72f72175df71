/** Errors the CLI itself raises: a bad command line (exit code 2), and a stop with a chosen exit code. */
import { GlonetError } from '../errors.js';

/** A bad command line: exit code 2. */
export class UsageError extends GlonetError {
  override name = 'UsageError';
}

/** End the command with this one-line message and exit code (an interrupted run: 130 for SIGINT). */
export class ExitError extends GlonetError {
  override name = 'ExitError';
  constructor(message: string, readonly code: number) {
    super(message);
  }
}
