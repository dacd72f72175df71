/** Errors the CLI itself raises: a bad command line (exit code 2), and a stop with a chosen exit code. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** End the command with this one-line message and exit code (an interrupted run: 130 for SIGINT). */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(message: string, readonly code: number) {
    super(message);
  }
}
