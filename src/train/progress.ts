/**
 * Training progress: a cli-progress bar (batches, loss, ETA) on a terminal, one plain line per
 * epoch otherwise (logs, CI). cli-progress is a small, widely used, dependency-light bar.
 */
import cliProgress from 'cli-progress';
import type { EpochMetrics } from '../contracts.js';

/** Receives a run's progress (a terminal progress bar, epoch lines, or your own). */
export interface Progress {
  /** An epoch of `batches` steps starts. */
  startEpoch(epoch: number, epochs: number, batches: number): void;
  /** `done` batches of the epoch are done; `loss` is the last batch's. */
  batch(done: number, loss: number): void;
  /** The epoch ended with these metrics. */
  endEpoch(m: EpochMetrics, epochs: number, task: 'regression' | 'classification'): void;
  /** The run is over (or stopped). */
  stop(): void;
}

function formatEpoch(m: EpochMetrics, epochs: number, task: 'regression' | 'classification'): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toPrecision(4) : String(v));
  const err = task === 'classification'
    ? `test acc ${((m.testAccuracy ?? 0) * 100).toFixed(2)}%`
    : `test MSE ${f(m.testError)}`;
  return `epoch ${m.epoch}/${epochs}  train loss ${f(m.trainLoss)}  test loss ${f(m.testLoss)}  ${err}  ${m.seconds.toFixed(1)}s`;
}

export function createProgress(opts: { tty?: boolean; quiet?: boolean; log?: (line: string) => void } = {}): Progress {
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));
  if (opts.quiet) return { startEpoch() {}, batch() {}, endEpoch() {}, stop() {} };
  const tty = opts.tty ?? Boolean(process.stderr.isTTY);
  if (!tty) {
    return {
      startEpoch() {},
      batch() {},
      endEpoch: (m, epochs, task) => log(formatEpoch(m, epochs, task)),
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({
    format: 'epoch {epoch}/{epochs} |{bar}| {value}/{total} batches | loss {loss} | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
    stream: process.stderr,
    etaBuffer: 20,
  }, cliProgress.Presets.shades_classic);
  let active = false;
  return {
    startEpoch(epoch, epochs, batches) {
      bar.start(batches, 0, { epoch, epochs, loss: '-' });
      active = true;
    },
    batch(done, loss) {
      bar.update(done, { loss: Number.isFinite(loss) ? loss.toPrecision(4) : String(loss) });
    },
    endEpoch(m, epochs, task) {
      if (active) bar.stop();
      active = false;
      log(formatEpoch(m, epochs, task));
    },
    stop() {
      if (active) bar.stop();
      active = false;
    },
  };
}
