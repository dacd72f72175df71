/**
 * A progress bar for long work in phases (reading, predicting, writing), on a terminal only:
 * cli-progress on stderr, so stdout carries nothing but the command's output. Short inputs and
 * logs (not a terminal) get no bar at all.
 */
import cliProgress from 'cli-progress';

/** Reports a phase's progress: `update(done)` of the total given to `phase`. */
export interface PhaseProgress {
  /** A new phase of `total` units (undefined: unknown, no bar until the next phase). */
  phase(name: string, total: number | undefined): void;
  update(done: number): void;
  stop(): void;
}

const QUIET: PhaseProgress = { phase() {}, update() {}, stop() {} };

/** A bar on `stream` when it is a terminal and `long` says the input is worth one; else nothing. */
export function phaseProgress(long: boolean, stream: NodeJS.WriteStream = process.stderr): PhaseProgress {
  if (!long || !stream.isTTY) return QUIET;
  const bar = new cliProgress.SingleBar({
    format: '{phase} |{bar}| {percentage}% | ETA {eta_formatted}',
    hideCursor: true, clearOnComplete: true, stream, etaBuffer: 20,
  }, cliProgress.Presets.shades_classic);
  let active = false;
  return {
    phase(name, total) {
      if (active) bar.stop();
      active = total != null && total > 0;
      if (active) bar.start(total!, 0, { phase: name.padEnd(10) });
    },
    update(done) {
      if (active) bar.update(done);
    },
    stop() {
      if (active) bar.stop();
      active = false;
    },
  };
}
