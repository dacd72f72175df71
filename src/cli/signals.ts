/**
 * SIGINT (Ctrl-C) and SIGTERM during training: the first asks the run to stop before its next
 * batch (the epoch in progress is dropped, every committed epoch stays), the second stops at once.
 * Either way the process ends with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
 *
 * The handlers are installed (`arm`) only when the training loop starts. Before that (reading the
 * data, building the model), nothing is in memory that the run folder does not hold, and the
 * signal's default action ends the process at once, however long a read or a build would take: a
 * JavaScript handler would wait for them to finish.
 */
import { constants } from 'node:os';

interface StopSignals {
  signal: AbortSignal;
  /** 130 for SIGINT, 143 for SIGTERM. */
  exitCode(): number;
  /** Install the handlers (from now on the first signal asks the run to stop before its next batch). */
  arm(): void;
  dispose(): void;
}

export function stopOnSignals(): StopSignals {
  const ctl = new AbortController();
  let code = 128 + constants.signals.SIGINT;
  const handler = (sig: NodeJS.Signals): void => {
    const c = 128 + constants.signals[sig];
    if (ctl.signal.aborted) {
      process.stderr.write('glonet: interrupted again; stopping now (every committed epoch is kept; continue with --resume)\n');
      process.exit(c);
    }
    code = c;
    ctl.abort(sig);
  };
  let armed = false;
  return {
    signal: ctl.signal,
    exitCode: () => code,
    arm() {
      if (armed) return;
      armed = true;
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
