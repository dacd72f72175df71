/**
 * Fused training engine for the ViT family (src/models/vit.ts), both archs: 'glonet' (the head
 * reads the sum of every encoder's class-token row) and 'plain' (the last encoder's). Patch
 * embedding, class token, position embedding, post-norm encoders (multi-head self-attention,
 * LayerNorm, ReLU feed-forward), the head, mean softmax cross-entropy on integer labels, L2 on
 * kernels (`l2 * sum(w^2)`: the patch embedding's, the four attention projections', both
 * feed-forward layers' and the head's; not biases, the class token, the positions or LayerNorm's
 * gamma and beta) and Adam exactly as TF.js 4.22's tf.train.adam (float32 running products
 * beta^t, epsilon 1e-7 outside the square root).
 *
 * One `step()` runs forward, backward, the gradient sum, L2 and Adam in the native addon
 * glonet_fused (native/src/vit/vit_engine.cc: kernels of our own for AVX-512, AVX2 or portable
 * C++, every core, results independent of the thread count). There is no JavaScript twin: when
 * the addon is missing `fusedVitInfo()` says why and training uses the TF.js model.
 *
 * Weights are the model's layers' `getWeights()` arrays, layer by layer in the order of
 * {@link vitLayers}, so they move to and from the tf.layers model unchanged. Inputs are NHWC
 * float32 batches, as TF.js holds them.
 */
import { AdamClock } from '../adam-clock.js';
import { defaultThreads, loadAddon, type AddonLoad } from '../addon.js';
import type { LayerArrays } from '../fused-stepper.js';
import { GlonetError } from '../../errors.js';

interface VitConfig {
  height: number; width: number; channels: number; patch: number; dim: number; heads: number; mlpDim: number;
  depth: number; classes: number; glonet: number; threads: number; chunk: number; adaptive: number; kernels: number;
  lnEpsilon: number;
}

/** The ViT functions of the glonet_fused addon (older binaries lack them). */
interface VitAddon {
  vitCreate(params: Float32Array, m: Float32Array, v: Float32Array, config: VitConfig): unknown;
  vitStep(h: unknown, x: Float32Array, y: Float32Array, rows: number, hp: Float64Array): number;
  vitGradients(h: unknown, x: Float32Array, y: Float32Array, rows: number, hp: Float64Array, out: Float32Array): number;
  vitPredict(h: unknown, x: Float32Array, rows: number, out: Float32Array): void;
  vitDestroy(h: unknown): void;
  vitFlushStates(h: unknown): Array<boolean | null>;
  vitInfo(): { kernels: string };
  vitKernels(h: unknown): string;
  info(): { simd: string; hardwareThreads: number; flushSubnormals: boolean };
}

/** The shape of a ViT of the family (src/models/vit.ts's VitConfig, resolved). */
export interface VitShape {
  arch: 'glonet' | 'plain';
  /** [height, width, channels] of an example (NHWC). */
  inputShape: [number, number, number];
  classes: number;
  /** Encoder layers. */
  depth: number;
  /** Embedding width. */
  width: number;
  /** Attention heads (divide the width). */
  heads: number;
  /** Feed-forward hidden width. */
  mlpDim: number;
  /** Patch side (divides the image's height and width). */
  patch: number;
  /** LayerNorm epsilon (the model's: 1e-5). */
  lnEpsilon: number;
}

export interface FusedVitOptions extends VitShape {
  /** L2 factor on kernels: penalty `l2 * sum(w^2)`. */
  l2: number;
  lr: number;
  /** Adam's beta1, beta2, epsilon (TF.js defaults 0.9, 0.999, 1e-7). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Worker threads. Default: the available cores (at most 8). Results do not depend on it. */
  threads?: number;
  /**
   * Whether to time, now and then, the calling thread alone against all threads and keep the
   * faster (a busy machine). Default: true unless `threads` is given.
   */
  adaptive?: boolean;
  /**
   * Images a thread runs through the whole network at a time (default 8): the unit of work and
   * of gradient summation. Results depend on it in the last bits only (the order of float sums).
   */
  chunkImages?: number;
  /**
   * The kernel set: 'auto' (default: the fastest this CPU runs, AVX-512, AVX2 or portable),
   * 'avx2' (at most AVX2) or 'portable' (to compare them; each set agrees with TF.js).
   */
  kernels?: 'auto' | 'avx2' | 'portable';
}

/** A layer of the model whose weights the engine holds, with its arrays' sizes and which are kernels (under L2). */
export interface FusedVitLayer {
  name: string;
  sizes: number[];
  kernels: boolean[];
}

export interface FusedVitOptimizerState {
  /** Steps taken (TF.js `iterations`). */
  step: number;
  m: LayerArrays;
  v: LayerArrays;
}

export interface FusedVit {
  readonly engine: 'native';
  readonly threads: number;
  readonly parameterCount: number;
  readonly layers: readonly FusedVitLayer[];
  /** The kernel set running: 'avx512', 'avx2' or 'portable'. */
  readonly kernels: string;
  /**
   * One training step on `rows` examples (x: rows * h * w * c NHWC values, y: rows class indices).
   * Returns the mean cross-entropy plus the L2 penalty, before the update.
   */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  /** Logits, rows * classes. */
  predict(x: Float32Array, rows: number): Float32Array;
  /** The training loss (with L2) at the current weights; nothing changes. */
  evaluate(x: Float32Array, y: Float32Array, rows: number): number;
  getWeights(): LayerArrays;
  setWeights(w: LayerArrays): void;
  setLearningRate(lr: number): void;
  /** Gradient of the training loss (with L2) for every array; nothing changes. */
  gradients(x: Float32Array, y: Float32Array, rows: number): LayerArrays;
  getOptimizerState(): FusedVitOptimizerState;
  setOptimizerState(s: FusedVitOptimizerState): void;
  /** Whether each of the engine's threads computes with subnormal floats flushed ([caller, helper 1, ...]). */
  flushStates(): Array<boolean | null>;
  dispose(): void;
}

export interface FusedVitInfo {
  available: boolean;
  /** Why the engine is unavailable. */
  reason?: string;
  /** The kernel set this CPU gets: 'avx512', 'avx2' or 'portable'. */
  kernels?: string;
  /** How the addon got here (see ../addon.ts). */
  origin?: string;
  /** Threads a default engine uses. */
  threads: number;
  /** Whether its threads compute with subnormal floats flushed to zero. */
  flushSubnormals?: boolean;
}

class FusedVitError extends GlonetError {
  override name = 'FusedVitError';
}

/** The addon's code for each kernel choice. */
const KERNEL_CODE = { auto: 0, avx2: 1, portable: 2 } as const;

// ----- loading -----

let cached: AddonLoad<VitAddon> | { addon: null; reason: string } | undefined;

/** The glonet_fused addon, when it has the ViT engine. */
function loadVitAddon(): AddonLoad<VitAddon> {
  if (cached == null) {
    const l = loadAddon<VitAddon>({
      name: 'glonet_fused', engine: 'mlp', envVar: 'GLONET_NATIVE_ADDON', what: 'native addon',
      hint: 'run `node scripts/build-native.mjs`',
    });
    cached = l.addon != null && typeof l.addon.vitCreate !== 'function'
      ? { addon: null, reason: `the native addon (${l.origin}) predates the ViT engine; rebuild it with \`node scripts/build-native.mjs\`` }
      : l;
  }
  return cached;
}

/** Whether the fused ViT engine can run here, and if not, why. */
export function fusedVitInfo(): FusedVitInfo {
  if (process.env.GLONET_FAST_ENGINE === 'js') {
    return { available: false, reason: 'GLONET_FAST_ENGINE=js (the ViT engine is native only)', threads: 1 };
  }
  const l = loadVitAddon();
  if (l.addon == null) return { available: false, reason: l.reason, threads: 1 };
  return {
    available: true, kernels: l.addon.vitInfo().kernels, origin: l.origin, threads: defaultThreads(),
    flushSubnormals: l.addon.info().flushSubnormals,
  };
}

// ----- layers and parameter layout -----

/**
 * The layers whose weights the engine holds, in its order (src/models/vit.ts's names):
 * `patch_embed`, `class_token`, `position_embed`, then per encoder l `encoder_l_attn` (q, k, v
 * and output projections, kernel then bias each), `encoder_l_ln1`, `encoder_l_ffn1`,
 * `encoder_l_ffn2`, `encoder_l` (the second LayerNorm), and `head`.
 */
export function vitLayers(s: VitShape): FusedVitLayer[] {
  const [h, w, c] = s.inputShape;
  const D = s.width;
  const tokens = (h / s.patch) * (w / s.patch) + 1;
  const out: FusedVitLayer[] = [
    { name: 'patch_embed', sizes: [s.patch * s.patch * c * D, D], kernels: [true, false] },
    { name: 'class_token', sizes: [D], kernels: [false] },
    { name: 'position_embed', sizes: [tokens * D], kernels: [false] },
  ];
  for (let l = 1; l <= s.depth; l++) {
    out.push(
      { name: `encoder_${l}_attn`, sizes: [D * D, D, D * D, D, D * D, D, D * D, D], kernels: [true, false, true, false, true, false, true, false] },
      { name: `encoder_${l}_ln1`, sizes: [D, D], kernels: [false, false] },
      { name: `encoder_${l}_ffn1`, sizes: [D * s.mlpDim, s.mlpDim], kernels: [true, false] },
      { name: `encoder_${l}_ffn2`, sizes: [s.mlpDim * D, D], kernels: [true, false] },
      { name: `encoder_${l}`, sizes: [D, D], kernels: [false, false] },
    );
  }
  out.push({ name: 'head', sizes: [D * s.classes, s.classes], kernels: [true, false] });
  return out;
}

function check(o: FusedVitOptions): void {
  const s = o.inputShape;
  if (o.arch !== 'glonet' && o.arch !== 'plain') throw new FusedVitError(`arch must be 'glonet' or 'plain', got ${String(o.arch)}`);
  if (!Array.isArray(s) || s.length !== 3 || s.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new FusedVitError(`inputShape must be [height, width, channels] of positive integers, got ${JSON.stringify(s)}`);
  }
  for (const k of ['depth', 'width', 'heads', 'mlpDim', 'patch'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new FusedVitError(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.width % o.heads !== 0) throw new FusedVitError(`width ${o.width} must be divisible by heads ${o.heads}`);
  if (s[0] % o.patch !== 0 || s[1] % o.patch !== 0) throw new FusedVitError(`images ${s[0]}x${s[1]} are not divisible into ${o.patch}x${o.patch} patches`);
  if (!Number.isInteger(o.classes) || o.classes < 2) throw new FusedVitError(`classes must be an integer >= 2, got ${o.classes}`);
  if (!(o.lnEpsilon > 0)) throw new FusedVitError(`lnEpsilon must be > 0, got ${o.lnEpsilon}`);
  if (!(o.l2 >= 0)) throw new FusedVitError(`l2 must be >= 0, got ${o.l2}`);
  if (!(o.lr > 0)) throw new FusedVitError(`lr must be > 0, got ${o.lr}`);
  if (o.kernels != null && !(o.kernels in KERNEL_CODE)) throw new FusedVitError(`kernels must be 'auto', 'avx2' or 'portable', got ${String(o.kernels)}`);
  if (o.chunkImages != null && !(Number.isInteger(o.chunkImages) && o.chunkImages >= 1 && o.chunkImages <= 4096)) {
    throw new FusedVitError(`chunkImages must be an integer in [1, 4096], got ${o.chunkImages}`);
  }
}

/** The fused engine for a ViT of this shape with these initial weights (every layer's arrays). */
export function createFusedVit(opts: FusedVitOptions, initial: LayerArrays): FusedVit {
  check(opts);
  const load = loadVitAddon();
  if (load.addon == null) throw new FusedVitError(`fused ViT engine unavailable: ${load.reason}`);
  const addon = load.addon;
  const layers = vitLayers(opts);
  const at: number[][] = [];
  let P = 0;
  for (const l of layers) at.push(l.sizes.map((s) => (P += s) - s));

  const flatten = (w: LayerArrays, dst: Float32Array, what: string): void => {
    if (!Array.isArray(w) || w.length !== layers.length) throw new FusedVitError(`${what}: expected ${layers.length} layers, got ${Array.isArray(w) ? w.length : typeof w}`);
    layers.forEach((l, i) => {
      if (!Array.isArray(w[i]) || w[i].length !== l.sizes.length) throw new FusedVitError(`${what}: layer ${l.name} needs ${l.sizes.length} arrays`);
      w[i].forEach((a, j) => {
        if (!(a instanceof Float32Array)) throw new FusedVitError(`${what}: ${l.name}[${j}] must be a Float32Array`);
        if (a.length !== l.sizes[j]) throw new FusedVitError(`${what}: ${l.name}[${j}] has ${a.length} values, expected ${l.sizes[j]}`);
      });
    });
    layers.forEach((l, i) => w[i].forEach((a, j) => dst.set(a, at[i][j])));
  };
  const unflatten = (flat: Float32Array): LayerArrays => layers.map((l, i) => l.sizes.map((s, j) => flat.slice(at[i][j], at[i][j] + s)));

  const params = new Float32Array(P);
  const m = new Float32Array(P);
  const v = new Float32Array(P);
  flatten(initial, params, 'initial weights');
  const [h, w, c] = opts.inputShape;
  const inSize = h * w * c;
  const threads = Math.max(1, Math.min(64, Math.floor(opts.threads ?? defaultThreads())));
  let handle: unknown = addon.vitCreate(params, m, v, {
    height: h, width: w, channels: c, patch: opts.patch, dim: opts.width, heads: opts.heads, mlpDim: opts.mlpDim,
    depth: opts.depth, classes: opts.classes, glonet: opts.arch === 'glonet' ? 1 : 0, threads, chunk: opts.chunkImages ?? 8,
    adaptive: (opts.adaptive ?? opts.threads == null) ? 1 : 0, kernels: KERNEL_CODE[opts.kernels ?? 'auto'],
    lnEpsilon: opts.lnEpsilon,
  });
  const kernels = addon.vitKernels(handle);
  const clock = new AdamClock(opts.lr, opts.l2, opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.epsilon ?? 1e-7);
  const hp = new Float64Array(9);
  const scalars = (): Float64Array => {
    hp.set(clock.scalars());
    return hp;
  };
  const live = (): unknown => {
    if (handle == null) throw new FusedVitError('fused ViT engine is disposed');
    return handle;
  };
  const checkBatch = (x: Float32Array, y: Float32Array | null, rows: number): void => {
    if (!Number.isInteger(rows) || rows < 1) throw new FusedVitError(`rows must be a positive integer, got ${rows}`);
    if (!(x instanceof Float32Array) || x.length < rows * inSize) {
      throw new FusedVitError(`x must be a Float32Array of at least rows*h*w*c = ${rows * inSize} values`);
    }
    if (y == null) return;
    if (!(y instanceof Float32Array) || y.length < rows) throw new FusedVitError(`y must be a Float32Array of at least ${rows} labels`);
    for (let r = 0; r < rows; r++) {
      const k = y[r];
      if (!(k >= 0 && k < opts.classes && Number.isInteger(k))) {
        throw new RangeError(`label ${k} at row ${r} is not a class index in [0, ${opts.classes})`);
      }
    }
  };
  const gradient = (x: Float32Array, y: Float32Array, rows: number): { loss: number; g: Float32Array } => {
    checkBatch(x, y, rows);
    const g = new Float32Array(P);
    const loss = addon.vitGradients(live(), x, y, rows, scalars(), g);
    return { loss, g };
  };

  return {
    engine: 'native',
    threads,
    parameterCount: P,
    layers,
    kernels,
    step(x, y, rows) {
      checkBatch(x, y, rows);
      const loss = addon.vitStep(live(), x, y, rows, scalars());
      clock.tick();
      return loss;
    },
    predict(x, rows) {
      checkBatch(x, null, rows);
      const out = new Float32Array(rows * opts.classes);
      addon.vitPredict(live(), x, rows, out);
      return out;
    },
    evaluate: (x, y, rows) => gradient(x, y, rows).loss,
    getWeights: () => unflatten(params),
    setWeights(wts) {
      flatten(wts, params, 'setWeights');
    },
    setLearningRate(lr) {
      if (!(lr > 0)) throw new FusedVitError(`lr must be > 0, got ${lr}`);
      clock.setLearningRate(lr);
    },
    gradients: (x, y, rows) => unflatten(gradient(x, y, rows).g),
    getOptimizerState: () => ({ step: clock.steps, m: unflatten(m), v: unflatten(v) }),
    setOptimizerState(s) {
      if (!Number.isInteger(s?.step) || s.step < 0) throw new FusedVitError(`optimizer step must be >= 0, got ${s?.step}`);
      const fm = new Float32Array(P);
      const fv = new Float32Array(P);
      flatten(s.m, fm, "optimizer state 'm'");
      flatten(s.v, fv, "optimizer state 'v'");
      m.set(fm);
      v.set(fv);
      clock.reset(s.step);
    },
    flushStates: () => addon.vitFlushStates(live()),
    dispose() {
      if (handle != null) addon.vitDestroy(handle);
      handle = null;
    },
  };
}
