/**
 * Which core a fused MLP engine runs on: the native addon (`fused-native`) when it loads, else
 * the JavaScript twin (`fused-js`); GLONET_FAST_ENGINE=js|native overrides the choice.
 */
import { defaultThreads } from '../addon.js';
import { FusedMlpError, type FusedCore, type FusedMlpEngineOptions } from './core.js';
import { loadNative, type NativeThreading } from './fused-native.js';

/** Which fused MLP engine runs on this machine ({@link fastPathInfo}). */
export interface FastPathInfo {
  /** 'native' (the addon) or 'js' (the JavaScript fallback). */
  engine: 'native' | 'js';
  /** Why the JavaScript engine is used, when it is. */
  reason?: string;
  /** SIMD kernels of the native engine: 'avx512', 'avx2-fma' or 'portable'. */
  simd?: string;
  /**
   * How the native engine got here: 'prebuilt binary prebuilds/linux-x64/glonet_fused.glibc.node',
   * 'built from source at install', 'built from source (npm prepare)', or '$GLONET_NATIVE_ADDON'.
   */
  origin?: string;
  /** Threads a default `createFusedMlp` uses. */
  threads: number;
  /** Whether the native engine's threads compute with subnormal floats flushed to zero (native/src/common/float_mode.h). */
  flushSubnormals?: boolean;
}

function envEngine(): 'native' | 'js' | undefined {
  const e = process.env.GLONET_FAST_ENGINE;
  return e === 'js' || e === 'native' ? e : undefined;
}

/** Which engine `createFusedMlp({engine: 'auto'})` will use on this machine, and why. */
export function fastPathInfo(): FastPathInfo {
  const forced = envEngine();
  const native = loadNative();
  if (forced === 'js') return { engine: 'js', reason: 'GLONET_FAST_ENGINE=js', threads: 1 };
  if (native.addon == null) return { engine: 'js', reason: native.reason, threads: 1 };
  const i = native.addon.info();
  return { engine: 'native', simd: i.simd, origin: native.origin, threads: defaultThreads(), flushSubnormals: i.flushSubnormals };
}

/**
 * The engine core a fused engine runs on: the native one when built (unless `opts.engine` or
 * GLONET_FAST_ENGINE=js asks for JavaScript), else the JavaScript one. `threads` is the native
 * engine's thread count (1 for JavaScript); its tiles have opts.tileRows rows, else nativeTileRows.
 */
export function pickCore(opts: Pick<FusedMlpEngineOptions, 'engine' | 'threads' | 'tileRows' | 'simd'>, nativeTileRows: number,
  js: () => FusedCore, native: (addon: NonNullable<ReturnType<typeof loadNative>['addon']>, t: NativeThreading) => FusedCore): { core: FusedCore; threads: number } {
  const requested = opts.engine ?? 'auto';
  const choice = requested === 'auto' ? envEngine() ?? 'auto' : requested;
  if (choice === 'js') return { core: js(), threads: 1 };
  const loaded = loadNative();
  if (loaded.addon == null) {
    if (choice === 'native') throw new FusedMlpError(`native engine requested but ${loaded.reason}`);
    return { core: js(), threads: 1 };
  }
  const threads = Math.max(1, Math.min(64, Math.floor(opts.threads ?? defaultThreads())));
  const t: NativeThreading = { threads, tileRows: opts.tileRows ?? nativeTileRows, simd: (opts.simd ?? 'auto') !== 'portable', adaptive: opts.threads == null };
  return { core: native(loaded.addon, t), threads };
}

