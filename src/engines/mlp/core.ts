/**
 * What every fused MLP engine shares: the core interface both implementations answer (the native
 * addon, ./fused-native.ts, and the JavaScript twins, ./fused-js.ts and ./fused-js-block.ts), the
 * options that choose and tune the core (./pick-core.ts picks it), the option and batch checks,
 * and the calls both public engines (./glonet-mlp.ts, ./block-mlp.ts) make on their core.
 */
import type { AdamClock, StepScalars } from '../adam-clock.js';
import { GlonetError } from '../../errors.js';

/** The fused MLP engine's losses: mean squared error, or softmax cross-entropy on class indices. */
export type FusedLoss = 'mse' | 'softmax-ce';

/** What an engine (native or JavaScript) does; weights, m and v are the caller's arrays. */
export interface FusedCore {
  readonly engine: 'native' | 'js';
  /** One training step (gradients, L2, Adam in place). Returns data loss + L2 penalty. */
  step(x: Float32Array, y: Float32Array, rows: number, scalars: StepScalars): number;
  /** Full gradient (with L2) into `out`, no update. Returns data loss + L2 penalty. */
  gradients(x: Float32Array, y: Float32Array, rows: number, scalars: StepScalars, out: Float32Array): number;
  /** Model output (rows x nOut: regression values or logits) into `out`. */
  predict(x: Float32Array, rows: number, out: Float32Array): void;
  /** Data loss (without the L2 penalty) at the current weights: forward only. */
  loss(x: Float32Array, y: Float32Array, rows: number): number;
  /**
   * Whether each thread computes with subnormal floats flushed to zero: [the calling thread,
   * helper 1, ...], null where not known. The native engines flush (native/src/common/float_mode.h);
   * JavaScript cannot, so its engines answer [false].
   */
  flushStates(): Array<boolean | null>;
  dispose(): void;
}


/** How a fused MLP engine runs: Adam's constants, and which core with how many threads. */
export interface FusedMlpEngineOptions {
  /** Adam beta1; default 0.9. */
  beta1?: number;
  /** Adam beta2; default 0.999. */
  beta2?: number;
  /** Adam epsilon; default 1e-7 (TF.js's float32 backend epsilon). */
  epsilon?: number;
  /**
   * Native engine threads. Default: the available cores (at most 8), and each step runs on all
   * of them or on the calling thread alone, whichever recent timings say is faster (a machine
   * whose other cores are busy gains nothing from helpers). A number fixes the count. The JS
   * engine uses one thread. Results are bitwise the same for any thread count.
   */
  threads?: number;
  /** 'auto' (default): native when available; env GLONET_FAST_ENGINE=js|native overrides it. */
  engine?: 'native' | 'js' | 'auto';
  /**
   * Rows per tile (memory: depth x tileRows x width floats per thread). Default 48 native, 64 js.
   * The tiles fix the order of the gradient sums: a different tileRows rounds differently.
   */
  tileRows?: number;
  /** Native only: 'portable' disables the AVX2/FMA kernels (for testing). Default 'auto'. */
  simd?: 'auto' | 'portable';
}

export class FusedMlpError extends GlonetError {
  override name = 'FusedMlpError';
}

/**
 * The option checks both fused MLP engines make: each of `sizes` a positive integer, a known loss
 * (softmax-ce with at least 2 outputs), l2 >= 0 and lr > 0.
 */
export function checkMlpOptions<K extends string>(
  o: Record<K, number> & { nOut: number; loss: string; l2: number; lr: number }, sizes: readonly K[],
): void {
  for (const k of sizes) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new FusedMlpError(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.loss !== 'mse' && o.loss !== 'softmax-ce') throw new FusedMlpError(`loss must be 'mse' or 'softmax-ce'`);
  if (o.loss === 'softmax-ce' && o.nOut < 2) throw new FusedMlpError('softmax-ce needs nOut >= 2');
  if (!(o.l2 >= 0)) throw new FusedMlpError(`l2 must be >= 0, got ${o.l2}`);
  if (!(o.lr > 0)) throw new FusedMlpError(`lr must be > 0, got ${o.lr}`);
}

/** The parameters and Adam's two moment vectors of a fused engine, `size` floats each, zeroed. */
export function adamBuffers(size: number): { params: Float32Array; m: Float32Array; v: Float32Array } {
  return { params: new Float32Array(size), m: new Float32Array(size), v: new Float32Array(size) };
}

/** A check of a batch's arrays and row count against a model's shape (a FusedMlpError if wrong). */
function batchChecker(shape: { nIn: number; nOut: number; loss: FusedLoss }): (x: Float32Array, y: Float32Array | null, rows: number) => void {
  const targetsPerRow = shape.loss === 'mse' ? shape.nOut : 1;
  return (x, y, rows) => {
    if (!Number.isInteger(rows) || rows < 1) throw new FusedMlpError(`rows must be a positive integer, got ${rows}`);
    if (!(x instanceof Float32Array) || x.length < rows * shape.nIn) {
      throw new FusedMlpError(`x must be a Float32Array of at least rows*nIn = ${rows * shape.nIn} values`);
    }
    if (y != null && (!(y instanceof Float32Array) || y.length < rows * targetsPerRow)) {
      throw new FusedMlpError(`y must be a Float32Array of at least ${rows * targetsPerRow} values`);
    }
  };
}

/** The calls every fused MLP engine answers alike, on its core: step, predict, setLearningRate, dispose. */
export function coreCalls(core: FusedCore, clock: AdamClock, shape: { nIn: number; nOut: number; loss: FusedLoss }) {
  const checkBatch = batchChecker(shape);
  return {
    step(x: Float32Array, y: Float32Array, rows: number): number {
      checkBatch(x, y, rows);
      const loss = core.step(x, y, rows, clock.scalars());
      clock.tick();
      return loss;
    },
    predict(x: Float32Array, rows: number): Float32Array {
      checkBatch(x, null, rows);
      const out = new Float32Array(rows * shape.nOut);
      core.predict(x, rows, out);
      return out;
    },
    setLearningRate(lr: number): void {
      if (!(lr > 0)) throw new FusedMlpError(`lr must be > 0, got ${lr}`);
      clock.setLearningRate(lr);
    },
    flushStates: (): Array<boolean | null> => core.flushStates(),
    dispose(): void {
      core.dispose();
    },
    checkBatch,
  };
}

