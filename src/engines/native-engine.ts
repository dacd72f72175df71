/**
 * Loader for the optional native engine glonet_fused (a source build in native/build/Release, or
 * the prebuilt binary in prebuilds/; see ./addon.ts). Absent or unloadable addon: `loadNative()`
 * says why, and the caller falls back to the JavaScript engine.
 */
import { loadAddon, type AddonLoad } from './addon.js';
import type { FusedCore, MlpShape, StepScalars } from './js-engine.js';

interface NativeAddon {
  create(params: Float32Array, m: Float32Array, v: Float32Array, config: {
    nIn: number; width: number; depth: number; nOut: number; loss: number;
    threads: number; tileRows: number; simd: number; adaptive: number;
  }): unknown;
  step(h: unknown, x: Float32Array, y: Float32Array, rows: number, scalars: Float64Array): number;
  gradients(h: unknown, x: Float32Array, y: Float32Array, rows: number, scalars: Float64Array, out: Float32Array): number;
  predict(h: unknown, x: Float32Array, y: null, rows: number, out: Float32Array): void;
  evaluate(h: unknown, x: Float32Array, y: Float32Array, rows: number): number;
  destroy(h: unknown): void;
  info(): { simd: string; hardwareThreads: number };
}

export type NativeLoad = AddonLoad<NativeAddon>;

let cached: NativeLoad | undefined;

/** The MLP addon ($GLONET_NATIVE_ADDON, a source build, else the prebuilt binary), loaded once. */
export function loadNative(): NativeLoad {
  cached ??= loadAddon<NativeAddon>({
    name: 'glonet_fused', engine: 'mlp', envVar: 'GLONET_NATIVE_ADDON', what: 'native addon',
    hint: 'run `node scripts/build-native.mjs`',
  });
  return cached;
}

export function createNativeCore(
  addon: NativeAddon,
  shape: MlpShape,
  params: Float32Array,
  m: Float32Array,
  v: Float32Array,
  threads: number,
  tileRows: number,
  simd: boolean,
  adaptive: boolean,
): FusedCore {
  let handle: unknown = addon.create(params, m, v, {
    nIn: shape.nIn, width: shape.width, depth: shape.depth, nOut: shape.nOut,
    loss: shape.loss === 'mse' ? 0 : 1, threads, tileRows, simd: simd ? 1 : 0, adaptive: adaptive ? 1 : 0,
  });
  const isCe = shape.loss === 'softmax-ce';
  const live = (): unknown => {
    if (handle == null) throw new Error('fused MLP engine is disposed');
    return handle;
  };
  const checkLabels = (y: Float32Array, rows: number): void => {
    if (!isCe) return;
    for (let r = 0; r < rows; r++) {
      const c = y[r];
      if (!(c >= 0 && c < shape.nOut && Number.isInteger(c))) {
        throw new RangeError(`label ${c} at row ${r} is not a class index in [0, ${shape.nOut})`);
      }
    }
  };
  return {
    engine: 'native',
    step(x: Float32Array, y: Float32Array, rows: number, scalars: StepScalars) {
      checkLabels(y, rows);
      return addon.step(live(), x, y, rows, scalars);
    },
    gradients(x, y, rows, scalars, out) {
      checkLabels(y, rows);
      return addon.gradients(live(), x, y, rows, scalars, out);
    },
    predict(x, rows, out) {
      addon.predict(live(), x, null, rows, out);
    },
    loss(x, y, rows) {
      checkLabels(y, rows);
      return addon.evaluate(live(), x, y, rows);
    },
    dispose() {
      if (handle != null) addon.destroy(handle);
      handle = null;
    },
  };
}
