/**
 * Backend choice in a browser: WebGL (the GPU), else wasm (XNNPACK, with the training kernels
 * glonet adds to it), else cpu (plain JavaScript). The wasm binaries are fetched from
 * `wasmPaths`, which a page serves itself (no CDN).
 */
import * as tf from '@tensorflow/tfjs';
import { registerTrainingGradients, registerWasmTrainingKernels } from '../backend/wasm-kernels.js';

export const BROWSER_BACKENDS = ['webgl', 'wasm', 'cpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];

export interface BrowserBackendOptions {
  /**
   * Where the three `.wasm` files of `@tensorflow/tfjs-backend-wasm` are served: a URL prefix
   * ending in `/`. Without it the wasm backend is not tried.
   */
  wasmPaths?: string;
}

export interface BrowserBackendChoice {
  name: BrowserBackendName;
  /** Per backend tried: true when it loaded, else why not. */
  tried: Partial<Record<BrowserBackendName, true | string>>;
}

async function activate(name: BrowserBackendName, o: BrowserBackendOptions): Promise<true | string> {
  try {
    if (name === 'wasm') {
      if (!o.wasmPaths) return 'no wasmPaths given';
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(o.wasmPaths);
    }
    if (!(await tf.setBackend(name))) return 'failed to initialize';
    await tf.ready();
  } catch (e) {
    return (e as Error).message || String(e);
  }
  registerTrainingGradients();
  if (name === 'wasm') registerWasmTrainingKernels();
  return true;
}

/**
 * Activate `requested`, or the first of webgl, wasm, cpu that loads. Throws when none does (or
 * when the requested one does not).
 */
export async function initBackend(requested?: BrowserBackendName, options: BrowserBackendOptions = {}): Promise<BrowserBackendChoice> {
  const tried: BrowserBackendChoice['tried'] = {};
  for (const name of requested ? [requested] : BROWSER_BACKENDS) {
    tried[name] = await activate(name, options);
    if (tried[name] === true) return { name, tried };
  }
  const why = Object.entries(tried).map(([n, r]) => `${n}: ${r}`).join('; ');
  throw new Error(`no TensorFlow.js backend could be loaded (${why})`);
}
