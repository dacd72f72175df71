/**
 * Backend choice. Fastest first: `tensorflow` (native libtensorflow through the optional
 * `@tensorflow/tfjs-node`), then `wasm` (XNNPACK, binaries read from the installed package, never
 * the network), then `cpu` (pure JavaScript). `--backend` overrides the choice.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { registerTrainingGradients, registerWasmTrainingKernels } from './wasm-kernels.js';
import { GlonetError } from '../errors.js';

/**
 * The TF.js backends glonet uses, fastest first: 'tensorflow' (`@tensorflow/tfjs-node`, optional),
 * 'wasm' (XNNPACK, with glonet's added training kernels), 'cpu'.
 */
export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
/** One of {@link BACKENDS}. */
export type BackendName = (typeof BACKENDS)[number];

const require = createRequire(import.meta.url);

async function loadTensorflow(): Promise<boolean> {
  try {
    // Optional dependency: absent or without its native binary on machines with no internet.
    await import('@tensorflow/tfjs-node' as string);
    return tf.findBackend('tensorflow') != null;
  } catch {
    return false;
  }
}

async function loadWasm(): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    // Read the .wasm files from the installed package (no fetch, no CDN).
    wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow' && !(await loadTensorflow())) return false;
  if (name === 'wasm' && !(await loadWasm())) return false;
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
  } catch {
    return false;
  }
  if (name === 'cpu') {
    // TF.js's cpu backend prints a banner on stderr at its first tensor in Node (install tfjs-node):
    // glonet's problems are one line on stderr, so the banner is left out; glonet info names the backend.
    const warn = console.warn;
    console.warn = () => {};
    try {
      tf.tidy(() => tf.scalar(0));
    } finally {
      console.warn = warn;
    }
  }
  // A faster Tile gradient (any backend); on wasm, the kernels training needs (Conv2DBackpropFilter...).
  registerTrainingGradients();
  if (name === 'wasm') registerWasmTrainingKernels();
  return true;
}

/** A backend that is unknown or does not load; the message names it and what to do. */
export class BackendError extends GlonetError {}

/**
 * Select and initialize a backend. With `requested`, that backend or a clear error; without,
 * the fastest one that loads. Returns the active backend's name.
 */
export async function initBackend(requested?: string): Promise<BackendName> {
  if (requested != null) {
    if (!(BACKENDS as readonly string[]).includes(requested)) {
      throw new BackendError(`--backend: expected one of ${BACKENDS.join(', ')}, got '${requested}'`);
    }
    if (tf.getBackend() === requested) return requested as BackendName;
    if (!(await activate(requested as BackendName))) {
      const hint = requested === 'tensorflow'
        ? ' (install @tensorflow/tfjs-node on a machine that can download libtensorflow)' : '';
      throw new BackendError(`--backend: backend '${requested}' could not be loaded${hint}`);
    }
    return requested as BackendName;
  }
  for (const name of BACKENDS) {
    if (await activate(name)) return name;
  }
  throw new BackendError('no TensorFlow.js backend could be loaded');
}

/** The name of the TF.js backend in use (`tf.getBackend()`). */
export function activeBackend(): string {
  return tf.getBackend();
}
