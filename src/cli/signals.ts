/**
 * SIGINT (Ctrl-C) and SIGTERM during training: the first asks the run to stop before its next
 * batch (the epoch in progress is dropped, every committed epoch stays), the second stops at once.
 * Either way the process ends with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
 */
import { constants } from 'node:os';

interface StopSignals {
  signal: AbortSignal;
  /** 130 for SIGINT, 143 for SIGTERM. */
  exitCode(): number;
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
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: ctl.signal,
    exitCode: () => code,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
