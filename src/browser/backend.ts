/**
 * Backend choice in a browser: WebGL on a GPU, else wasm (XNNPACK, with the training kernels
 * glonet adds to it), else cpu (plain JavaScript). A WebGL that the browser renders in software
 * (SwiftShader, llvmpipe: what headless and GPU-less machines offer) is far slower than wasm, so it
 * is used only when asked for by name. The wasm binaries are fetched from `wasmPaths`, which a page
 * serves itself (no CDN).
 */
import * as tf from '@tensorflow/tfjs';
import { registerTrainingGradients, registerWasmTrainingKernels } from '../backend/wasm-kernels.js';

/** The TF.js backends glonet uses in a browser, in the order it tries them. */
export const BROWSER_BACKENDS = ['webgl', 'wasm', 'cpu'] as const;
/** One of {@link BROWSER_BACKENDS}. */
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];

/** Where the browser backends' files come from. */
export interface BrowserBackendOptions {
  /**
   * Where the three `.wasm` files of `@tensorflow/tfjs-backend-wasm` are served: a URL prefix
   * ending in `/`. Without it the wasm backend is not tried.
   */
  wasmPaths?: string;
}

/** The backend the browser `initBackend` chose, and what happened to the others. */
export interface BrowserBackendChoice {
  /** The backend in use. */
  name: BrowserBackendName;
  /** Per backend tried: true when it loaded, else why not. */
  tried: Partial<Record<BrowserBackendName, true | string>>;
}

/**
 * True when the browser's WebGL runs on a GPU: a context without a major performance caveat, whose
 * renderer is not a known software rasterizer (Chromium does not flag SwiftShader behind ANGLE).
 */
function hardwareWebGL(): boolean {
  if (typeof document === 'undefined') return false;
  const canvas = document.createElement('canvas');
  const attrs = { failIfMajorPerformanceCaveat: true };
  const gl = (canvas.getContext('webgl2', attrs) ?? canvas.getContext('webgl', attrs)) as WebGLRenderingContext | null;
  if (!gl) return false;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return !/SwiftShader|llvmpipe|softpipe|Software Rasterizer|Basic Render/i.test(renderer);
}

async function activate(name: BrowserBackendName, o: BrowserBackendOptions, chosen: boolean): Promise<true | string> {
  if (name === 'webgl' && !chosen && !hardwareWebGL()) return 'no GPU (software WebGL is slower than wasm)';
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
 * Activate `requested`, or the first of webgl (on a GPU), wasm, cpu that loads. Throws when none
 * does (or when the requested one does not).
 */
export async function initBackend(requested?: BrowserBackendName, options: BrowserBackendOptions = {}): Promise<BrowserBackendChoice> {
  const tried: BrowserBackendChoice['tried'] = {};
  for (const name of requested ? [requested] : BROWSER_BACKENDS) {
    tried[name] = await activate(name, options, requested != null);
    if (tried[name] === true) return { name, tried };
  }
  const why = Object.entries(tried).map(([n, r]) => `${n}: ${r}`).join('; ');
  throw new Error(`no TensorFlow.js backend could be loaded (${why})`);
}
