/**
 * Loader for the optional native engines of the fused MLP, both in the addon glonet_fused (a
 * source build in native/build/Release, or the prebuilt binary in prebuilds/; see ./addon.ts):
 * the GloNet MLP engine (native/src/mlp/fused_mlp.cc) and the two-layer-block baselines' engine
 * (native/src/mlp/block_mlp.cc). Absent or unloadable addon: `loadNative()` says why, and the caller
 * falls back to the JavaScript engines.
 */
import { loadAddon, type AddonLoad } from '../addon.js';
import type { StepScalars } from '../adam-clock.js';
import type { FusedCore } from './core.js';
import type { MlpShape } from './fused-js.js';
import { checkLabels } from './js-kernels.js';
import type { BlockMlpShape } from './fused-js-block.js';

/** What both native engines answer, on the handle their create function returns. */
interface CoreFns {
  step(h: unknown, x: Float32Array, y: Float32Array, rows: number, scalars: Float64Array): number;
  gradients(h: unknown, x: Float32Array, y: Float32Array, rows: number, scalars: Float64Array, out: Float32Array): number;
  predict(h: unknown, x: Float32Array, y: null, rows: number, out: Float32Array): void;
  evaluate(h: unknown, x: Float32Array, y: Float32Array, rows: number): number;
  flushStates(h: unknown): Array<boolean | null>;
  destroy(h: unknown): void;
}

interface Threading { threads: number; tileRows: number; simd: number; adaptive: number }

interface NativeAddon extends CoreFns {
  create(params: Float32Array, m: Float32Array, v: Float32Array, config: {
    nIn: number; width: number; depth: number; nOut: number; loss: number; scales: number;
  } & Threading): unknown;
  blockCreate(params: Float32Array, m: Float32Array, v: Float32Array, moving: Float32Array, config: {
    nIn: number; width: number; blocks: number; nOut: number; loss: number; bn: number; skip: number; sum: number;
    epsilon: number; decay: number;
  } & Threading): unknown;
  blockStep: CoreFns['step'];
  blockGradients: CoreFns['gradients'];
  blockPredict: CoreFns['predict'];
  blockEvaluate: CoreFns['evaluate'];
  blockDestroy: CoreFns['destroy'];
  blockFlushStates: CoreFns['flushStates'];
  info(): { simd: string; hardwareThreads: number; flushSubnormals: boolean };
}

type NativeLoad = AddonLoad<NativeAddon>;

let cached: NativeLoad | undefined;

/** The MLP addon ($GLONET_NATIVE_ADDON, a source build, else the prebuilt binary), loaded once. */
export function loadNative(): NativeLoad {
  cached ??= loadAddon<NativeAddon>({
    name: 'glonet_fused', engine: 'mlp', envVar: 'GLONET_NATIVE_ADDON', what: 'native addon',
    hint: 'run `node scripts/build-native.mjs`',
  });
  return cached;
}

/** How a native engine runs: threads (fixed, or adaptive), rows per tile, SIMD kernels or not. */
export interface NativeThreading {
  threads: number;
  tileRows: number;
  simd: boolean;
  adaptive: boolean;
}

function threading(t: NativeThreading): Threading {
  return { threads: t.threads, tileRows: t.tileRows, simd: t.simd ? 1 : 0, adaptive: t.adaptive ? 1 : 0 };
}

/** A native handle as a {@link FusedCore}: labels checked here, disposal made idempotent. */
function wrapCore(handle: unknown, fns: CoreFns, nOut: number, isCe: boolean): FusedCore {
  let h: unknown = handle;
  const live = (): unknown => {
    if (h == null) throw new Error('fused MLP engine is disposed');
    return h;
  };
  return {
    engine: 'native',
    step(x: Float32Array, y: Float32Array, rows: number, scalars: StepScalars) {
      if (isCe) checkLabels(y, rows, nOut);
      return fns.step(live(), x, y, rows, scalars);
    },
    gradients(x, y, rows, scalars, out) {
      if (isCe) checkLabels(y, rows, nOut);
      return fns.gradients(live(), x, y, rows, scalars, out);
    },
    predict(x, rows, out) {
      fns.predict(live(), x, null, rows, out);
    },
    loss(x, y, rows) {
      if (isCe) checkLabels(y, rows, nOut);
      return fns.evaluate(live(), x, y, rows);
    },
    flushStates: () => fns.flushStates(live()),
    dispose() {
      if (h != null) fns.destroy(h);
      h = null;
    },
  };
}

/** The native GloNet MLP engine on these arrays (updated in place). */
export function createNativeCore(addon: NativeAddon, shape: MlpShape, params: Float32Array, m: Float32Array, v: Float32Array,
  t: NativeThreading): FusedCore {
  const handle = addon.create(params, m, v, {
    nIn: shape.nIn, width: shape.width, depth: shape.depth, nOut: shape.nOut, loss: shape.loss === 'mse' ? 0 : 1,
    scales: shape.scales ? 1 : 0, ...threading(t),
  });
  return wrapCore(handle, addon, shape.nOut, shape.loss === 'softmax-ce');
}

/** The native block MLP engine (the two-layer-block baselines, glonet-bn) on these arrays (updated in place). */
export function createNativeBlockCore(addon: NativeAddon, shape: BlockMlpShape, params: Float32Array, m: Float32Array,
  v: Float32Array, moving: Float32Array, t: NativeThreading): FusedCore {
  const handle = addon.blockCreate(params, m, v, moving, {
    nIn: shape.nIn, width: shape.width, blocks: shape.blocks, nOut: shape.nOut, loss: shape.loss === 'mse' ? 0 : 1,
    bn: shape.bn ? 1 : 0, skip: shape.skip ? 1 : 0, sum: shape.sum ? 1 : 0, epsilon: shape.epsilon, decay: shape.decay, ...threading(t),
  });
  const fns: CoreFns = {
    step: addon.blockStep, gradients: addon.blockGradients, predict: addon.blockPredict, evaluate: addon.blockEvaluate,
    destroy: addon.blockDestroy, flushStates: addon.blockFlushStates,
  };
  return wrapCore(handle, fns, shape.nOut, shape.loss === 'softmax-ce');
}
