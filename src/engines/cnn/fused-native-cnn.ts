/**
 * Fused training engine for the ResNet20 family (src/models/resnet20.ts), all six archs:
 * glonet (6n conv + bias + ReLU blocks whose pooled outputs are summed; with the norm-free
 * options of src/layers/normfree.ts: Scaled-Weight-Standardized kernels with a gain per channel,
 * fixed centers and learnable scales on the pooled outputs), glonet-bn (6n pre-activation blocks
 * conv(relu(BN(x))), their conv outputs pooled and summed), vanilla and resnetv2
 * (pre-activation blocks conv(relu(BN(conv(relu(BN(x)))))), resnetv2 with identity or 1x1
 * stride-2 shortcuts, a final BN + ReLU, global average pool) and their -nobn variants (ReLU
 * without BN), each with a Dense head. Mean softmax cross-entropy on integer labels, L2 on
 * kernels (`l2 * sum(w^2)`, not biases or BN gamma/beta), and either optimizer exactly as TF.js
 * 4.22 has it:
 *   'sgd'   tf.train.momentum(lr, momentum): acc = momentum * acc + g; w = -lr * acc + w
 *   'adam'  tf.train.adam(lr): float32 running products beta^t for the bias correction, epsilon
 *           (1e-7) outside the square root: w = -lr * m^ / (sqrt(v^) + eps) + w
 * Batch normalization trains as TF.js's BatchNormalization layer does (batch mean and biased
 * variance; moving statistics m = m - (m - batch) * (1 - momentum)); `predict` uses the moving
 * statistics.
 *
 * One `step()` runs forward, backward, L2 and the update in the native addon
 * native/build/Release/glonet_cnn.node (oneDNN convolutions, every core). There is no JavaScript
 * twin: when the addon is missing (oneDNN was not installed at build time) `fusedCnnInfo()` says
 * why and training uses the TF.js model.
 *
 * Weights are the model's layers' `getWeights()` arrays, layer by layer in the order of
 * {@link fusedCnnLayers} (conv kernels [kh, kw, in, out], Dense [in, out], BN gamma, beta, moving
 * mean, moving variance), so they move to and from the tf.layers model unchanged. Inputs are NHWC
 * float32 batches, as TF.js holds them.
 */
import { STAGE_CHANNELS, type ResNet20Arch } from '../../models/resnet20.js';
import { AdamClock } from '../adam-clock.js';
import { defaultThreads, loadAddon, type AddonLoad } from '../addon.js';
import type { LayerArrays } from '../fused-stepper.js';
import type { OptimizerName, Protocol } from '../../vocabulary.js';
import { GlonetError } from '../../errors.js';

interface CnnAddon {
  create(params: Float32Array, slotA: Float32Array, slotB: Float32Array, config: {
    arch: number; height: number; width: number; channels: number; classes: number; blocksPerStage: number;
    threads: number; chunk: number; algorithm: number; weightStd: number; blockScale: number; center: number;
  }, bn: Float64Array): unknown;
  step(h: unknown, x: Float32Array, y: Float32Array, rows: number, hp: Float64Array): number;
  gradients(h: unknown, x: Float32Array, y: Float32Array, rows: number, hp: Float64Array, out: Float32Array): number;
  predict(h: unknown, x: Float32Array, rows: number, out: Float32Array): void;
  kernel(h: unknown): string;
  flushStates(h: unknown): Array<boolean | null>;
  destroy(h: unknown): void;
  info(): { isa: string; onednn: string; runtime: string; hardwareThreads: number; flushSubnormals: boolean };
}

/** The addon's code for each arch. */
const ARCH_CODE: Record<ResNet20Arch, number> = { glonet: 0, vanilla: 1, 'vanilla-nobn': 2, resnetv2: 3, 'resnetv2-nobn': 4, 'glonet-bn': 5 };

/** A ResNet20-family model, its optimizer (the protocol's l2, optimizer, lr and momentum) and the engine's settings. */
export interface FusedCnnOptions extends Pick<Protocol, 'l2' | 'optimizer' | 'lr'>, Partial<Pick<Protocol, 'momentum'>> {
  arch: ResNet20Arch;
  /** [height, width, channels] of an example (NHWC). */
  inputShape: [number, number, number];
  classes: number;
  /** n: blocks per stage (depth 6n + 2; 3 = ResNet20). */
  blocksPerStage: number;
  /**
   * glonet only, the model's norm-free options (src/layers/normfree.ts): Scaled-Weight-Standardized
   * convs (their fixed gains by the model's rule: 1 for the stem and block 1, which read linear
   * inputs, sqrt(2 / (1 - 1/pi)) for the others), a fixed center per pooled block output, a
   * learnable scale per block (its initial value is in the weights).
   */
  normFree?: { weightStd?: boolean; centerBlocks?: boolean; blockScale?: boolean };
  /** Adam's beta1, beta2, epsilon (TF.js defaults 0.9, 0.999, 1e-7). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** The BatchNormalization layers' momentum and epsilon (resnet20.ts: 0.9 and 1e-5). */
  bnMomentum?: number;
  bnEpsilon?: number;
  /** Worker threads. Default: the available cores (at most 8). Results do not depend on it. */
  threads?: number;
  /**
   * Rows a thread processes at a time (default 16): the unit of work and of gradient summation.
   * Results depend on it only in the last bits (the order of the float sums).
   */
  chunkRows?: number;
  /**
   * 'auto' (default): Winograd F(4x4, 3x3) for the backward passes of stride-1 convolutions of 32
   * or more input channels where oneDNN has it (AVX-512 CPUs), faster there (the 16-channel ones
   * are faster direct), with float rounding that differs from
   * a direct convolution by about 1e-6 relative; 'direct': direct convolutions only.
   */
  convAlgorithm?: 'auto' | 'direct';
}

/** A layer of the model whose weights the engine holds. */
export interface FusedCnnLayer {
  /** The TF.js layer's name (src/models/resnet20.ts). */
  name: string;
  kind: 'conv' | 'bn' | 'dense' | 'center' | 'scale';
  /** Sizes of the layer's weights, in getWeights() order. */
  sizes: number[];
  /** How many of them (the first ones) are trainable: all but BN's moving statistics and the fixed centers. */
  trainable: number;
  /** Whether the first array is a kernel (under L2). */
  kernel: boolean;
}

/** The optimizer's slots, over the layers' trainable arrays. */
type FusedCnnSlot = 'accum' | 'm' | 'v';

interface FusedCnnOptimizerState {
  /** Steps taken (TF.js `iterations`). */
  step: number;
  /** Momentum SGD's accumulators. */
  accum?: LayerArrays;
  /** Adam's first and second moments. */
  m?: LayerArrays;
  v?: LayerArrays;
}

/** The slots an optimizer keeps. */
export function fusedCnnSlots(optimizer: OptimizerName): FusedCnnSlot[] {
  return optimizer === 'adam' ? ['m', 'v'] : ['accum'];
}

interface FusedCnn {
  readonly engine: 'native';
  readonly threads: number;
  readonly parameterCount: number;
  readonly layers: readonly FusedCnnLayer[];
  /** oneDNN's implementations of the block convolutions, e.g. 'fwd brgconv:avx512_core, ...'. */
  readonly kernel: string;
  /**
   * One training step on `rows` examples (x: rows * h * w * c NHWC values, y: rows class
   * indices). Returns the mean cross-entropy plus the L2 penalty, before the update.
   */
  step(x: Float32Array, y: Float32Array, rows: number): number;
  /** Logits, rows * classes (batch normalization with the moving statistics). */
  predict(x: Float32Array, rows: number): Float32Array;
  /** The training loss (batch statistics, with L2) at the current weights; nothing changes. */
  evaluate(x: Float32Array, y: Float32Array, rows: number): number;
  /** Every layer's weights, BN moving statistics included. */
  getWeights(): LayerArrays;
  setWeights(w: LayerArrays): void;
  setLearningRate(lr: number): void;
  /** Gradient of the training loss (with L2) for every trainable array; nothing changes. */
  gradients(x: Float32Array, y: Float32Array, rows: number): LayerArrays;
  getOptimizerState(): FusedCnnOptimizerState;
  setOptimizerState(s: FusedCnnOptimizerState): void;
  /**
   * Whether each of the engine's threads computes with subnormal floats flushed to zero ([the
   * calling thread during its last call, helper 1, ...]; null where not known).
   */
  flushStates(): Array<boolean | null>;
  dispose(): void;
}

interface FusedCnnInfo {
  available: boolean;
  /** Why the engine is unavailable. */
  reason?: string;
  /** The CPU instruction set oneDNN dispatches to ('avx512_core', 'avx2', ...). */
  isa?: string;
  /** oneDNN version the addon runs with. */
  onednn?: string;
  /** How the addon got here: 'built from source at install', 'built from source (npm prepare)', ... */
  origin?: string;
  /** Threads a default engine uses. */
  threads: number;
  /** Whether its threads compute with subnormal floats flushed to zero (native/src/common/float_mode.h). */
  flushSubnormals?: boolean;
}

class FusedCnnError extends GlonetError {
  override name = 'FusedCnnError';
}

// ----- loading -----

let cached: AddonLoad<CnnAddon> | undefined;

/** The CNN addon ($GLONET_CNN_ADDON, else native/build/ of this package), loaded once. */
function loadCnnAddon(): AddonLoad<CnnAddon> {
  cached ??= loadAddon<CnnAddon>({
    name: 'glonet_cnn', engine: 'cnn', envVar: 'GLONET_CNN_ADDON', what: 'native CNN engine',
    hint: 'it needs oneDNN: `apt-get install libdnnl-dev`, then `node scripts/build-native.mjs`',
  });
  return cached;
}

/** $GLONET_CNN_ALGORITHM=direct|auto: the default convAlgorithm. */
function envAlgorithm(): 'auto' | 'direct' {
  return process.env.GLONET_CNN_ALGORITHM === 'direct' ? 'direct' : 'auto';
}

/** Whether the fused CNN engine can run here, and if not, why. */
export function fusedCnnInfo(): FusedCnnInfo {
  if (process.env.GLONET_FAST_ENGINE === 'js') {
    return { available: false, reason: 'GLONET_FAST_ENGINE=js (the CNN engine is native only)', threads: 1 };
  }
  const l = loadCnnAddon();
  if (l.addon == null) return { available: false, reason: l.reason, threads: 1 };
  const i = l.addon.info();
  return { available: true, isa: i.isa, onednn: i.onednn, origin: l.origin, threads: defaultThreads(), flushSubnormals: i.flushSubnormals };
}

// ----- layers and parameter layout -----

/**
 * The layers whose weights the engine holds, in its order (the native engine lays its
 * parameters out the same way): for glonet `stem`, then per block `block_b` [, `block_b_center`]
 * [, `block_b_scale`], then `head` (a conv's arrays: kernel, [bias], [gain with weight
 * standardization]); for glonet-bn `stem`, per block `block_b_bn`, `block_b`, then `head`; for the
 * baselines `stem`, then per block `block_b_bn1`, `block_b_conv1`, `block_b_bn2`, `block_b_conv2`
 * (no BN layers for -nobn) and, for resnetv2 where the stage changes, `block_b_shortcut`; then
 * `final_bn` (BN archs) and `head`.
 */
export function fusedCnnLayers(o: Pick<FusedCnnOptions, 'arch' | 'inputShape' | 'classes' | 'blocksPerStage' | 'normFree'>): FusedCnnLayer[] {
  const out: FusedCnnLayer[] = [];
  const nf = o.arch === 'glonet' ? o.normFree ?? {} : {};
  const conv = (name: string, k: number, cin: number, cout: number, bias: boolean) => {
    const sizes = [k * k * cin * cout, ...(bias ? [cout] : []), ...(nf.weightStd ? [cout] : [])];
    out.push({ name, kind: 'conv', sizes, trainable: sizes.length, kernel: true });
  };
  const bn = (name: string, c: number) => out.push({ name, kind: 'bn', sizes: [c, c, c, c], trainable: 2, kernel: false });
  conv('stem', 3, o.inputShape[2], 16, false);
  const n = o.blocksPerStage;
  let cin = 16;
  if (o.arch === 'glonet' || o.arch === 'glonet-bn') {
    let b = 0;
    for (const cout of STAGE_CHANNELS) {
      for (let i = 0; i < 2 * n; i++) {
        if (o.arch === 'glonet-bn') bn(`block_${b + 1}_bn`, cin);
        conv(`block_${++b}`, 3, cin, cout, o.arch === 'glonet');
        if (nf.centerBlocks) out.push({ name: `block_${b}_center`, kind: 'center', sizes: [cout], trainable: 0, kernel: false });
        if (nf.blockScale) out.push({ name: `block_${b}_scale`, kind: 'scale', sizes: [1], trainable: 1, kernel: false });
        cin = cout;
      }
    }
  } else {
    const useBn = o.arch === 'vanilla' || o.arch === 'resnetv2';
    const skip = o.arch.startsWith('resnetv2');
    let b = 0;
    STAGE_CHANNELS.forEach((cout, stage) => {
      for (let i = 0; i < n; i++) {
        b++;
        const stride = stage > 0 && i === 0 ? 2 : 1;
        if (useBn) bn(`block_${b}_bn1`, cin);
        conv(`block_${b}_conv1`, 3, cin, cout, false);
        if (useBn) bn(`block_${b}_bn2`, cout);
        conv(`block_${b}_conv2`, 3, cout, cout, false);
        if (skip && (stride !== 1 || cin !== cout)) conv(`block_${b}_shortcut`, 1, cin, cout, false);
        cin = cout;
      }
    });
    if (useBn) bn('final_bn', cin);
  }
  out.push({ name: 'head', kind: 'dense', sizes: [64 * o.classes, o.classes], trainable: 2, kernel: true });
  return out;
}

/** Offsets of every layer's arrays in the flat parameter vector. */
function offsets(layers: readonly FusedCnnLayer[]): { at: number[][]; size: number } {
  let off = 0;
  const at = layers.map((l) => l.sizes.map((s) => {
    const o = off;
    off += s;
    return o;
  }));
  return { at, size: off };
}

function check(o: FusedCnnOptions): void {
  const s = o.inputShape;
  if (!(o.arch in ARCH_CODE)) throw new FusedCnnError(`arch must be one of ${Object.keys(ARCH_CODE).join(', ')}, got ${String(o.arch)}`);
  if (o.arch !== 'glonet' && Object.values(o.normFree ?? {}).some(Boolean)) throw new FusedCnnError(`normFree options apply to arch glonet only, not ${o.arch}`);
  if (!Array.isArray(s) || s.length !== 3 || s.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new FusedCnnError(`inputShape must be [height, width, channels] of positive integers, got ${JSON.stringify(s)}`);
  }
  if (!Number.isInteger(o.classes) || o.classes < 2) throw new FusedCnnError(`classes must be an integer >= 2, got ${o.classes}`);
  if (!Number.isInteger(o.blocksPerStage) || o.blocksPerStage < 1) {
    throw new FusedCnnError(`blocksPerStage must be a positive integer, got ${o.blocksPerStage}`);
  }
  if (!(o.l2 >= 0)) throw new FusedCnnError(`l2 must be >= 0, got ${o.l2}`);
  if (o.optimizer !== 'sgd' && o.optimizer !== 'adam') throw new FusedCnnError(`optimizer must be 'sgd' or 'adam', got ${String(o.optimizer)}`);
  if (!(o.lr > 0)) throw new FusedCnnError(`lr must be > 0, got ${o.lr}`);
  if (!((o.momentum ?? 0) >= 0)) throw new FusedCnnError(`momentum must be >= 0, got ${o.momentum}`);
  if (!((o.bnMomentum ?? 0.9) >= 0 && (o.bnMomentum ?? 0.9) <= 1)) throw new FusedCnnError(`bnMomentum must be in [0, 1], got ${o.bnMomentum}`);
  if (!((o.bnEpsilon ?? 1e-5) > 0)) throw new FusedCnnError(`bnEpsilon must be > 0, got ${o.bnEpsilon}`);
  if (o.chunkRows != null && !(Number.isInteger(o.chunkRows) && o.chunkRows >= 1 && o.chunkRows <= 4096)) {
    throw new FusedCnnError(`chunkRows must be an integer in [1, 4096], got ${o.chunkRows}`);
  }
  if (o.convAlgorithm != null && o.convAlgorithm !== 'auto' && o.convAlgorithm !== 'direct') {
    throw new FusedCnnError(`convAlgorithm must be 'auto' or 'direct', got ${String(o.convAlgorithm)}`);
  }
}

/** The fused engine for a ResNet of depth 6n + 2 with these initial weights (every layer's arrays). */
export function createFusedResNet20(opts: FusedCnnOptions, initial: LayerArrays): FusedCnn {
  check(opts);
  const load = loadCnnAddon();
  if (load.addon == null) throw new FusedCnnError(`fused CNN engine unavailable: ${load.reason}`);
  const addon = load.addon;
  const layers = fusedCnnLayers(opts);
  const nf = opts.arch === 'glonet' ? opts.normFree ?? {} : {};
  const { at, size: P } = offsets(layers);

  /** Copy per-layer arrays (all of each layer's, or only its trainable ones) into `dst`. */
  const flatten = (w: LayerArrays, dst: Float32Array, what: string, trainableOnly: boolean): void => {
    if (!Array.isArray(w) || w.length !== layers.length) throw new FusedCnnError(`${what}: expected ${layers.length} layers, got ${Array.isArray(w) ? w.length : typeof w}`);
    layers.forEach((l, i) => {
      const count = trainableOnly ? l.trainable : l.sizes.length;
      if (!Array.isArray(w[i]) || w[i].length !== count) throw new FusedCnnError(`${what}: layer ${l.name} needs ${count} arrays`);
      w[i].forEach((a, j) => {
        if (!(a instanceof Float32Array)) throw new FusedCnnError(`${what}: ${l.name}[${j}] must be a Float32Array`);
        if (a.length !== l.sizes[j]) throw new FusedCnnError(`${what}: ${l.name}[${j}] has ${a.length} values, expected ${l.sizes[j]}`);
      });
    });
    layers.forEach((l, i) => w[i].forEach((a, j) => dst.set(a, at[i][j])));
  };
  const unflatten = (flat: Float32Array, trainableOnly: boolean): LayerArrays =>
    layers.map((l, i) => l.sizes.slice(0, trainableOnly ? l.trainable : l.sizes.length).map((s, j) => flat.slice(at[i][j], at[i][j] + s)));

  const params = new Float32Array(P);
  const slotA = new Float32Array(P);
  const slotB = new Float32Array(P);
  flatten(initial, params, 'initial weights', false);
  const [h, w, c] = opts.inputShape;
  const inSize = h * w * c;
  const threads = Math.max(1, Math.min(64, Math.floor(opts.threads ?? defaultThreads())));
  const bnMomentum = opts.bnMomentum ?? 0.9;
  let handle: unknown = addon.create(params, slotA, slotB, {
    arch: ARCH_CODE[opts.arch], height: h, width: w, channels: c, classes: opts.classes, blocksPerStage: opts.blocksPerStage,
    threads, chunk: opts.chunkRows ?? 16, algorithm: (opts.convAlgorithm ?? envAlgorithm()) === 'direct' ? 1 : 0,
    weightStd: nf.weightStd ? 1 : 0, blockScale: nf.blockScale ? 1 : 0, center: nf.centerBlocks ? 1 : 0,
  }, Float64Array.of(opts.bnEpsilon ?? 1e-5, 1 - bnMomentum));
  const kernel = addon.kernel(handle);

  // The hyper-parameters as TF.js's float32 scalars, Adam's bookkeeping as the MLP engines keep it
  // (AdamClock: the step count and the float32 running products beta^t; SGD reads neither).
  const adam = opts.optimizer === 'adam';
  const clock = new AdamClock(opts.lr, opts.l2, opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.epsilon ?? 1e-7);
  const momentum = Math.fround(opts.momentum ?? 0);
  const hp = new Float64Array(11);
  const fillHp = (): Float64Array => {
    // AdamClock's order: [l2, b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps, -lr]; the addon's:
    // [l2, adam?, momentum, -lr, b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps].
    const s = clock.scalars();
    hp.set([s[0], adam ? 1 : 0, momentum, s[8], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
    return hp;
  };
  const live = (): unknown => {
    if (handle == null) throw new FusedCnnError('fused CNN engine is disposed');
    return handle;
  };
  const checkBatch = (x: Float32Array, y: Float32Array | null, rows: number): void => {
    if (!Number.isInteger(rows) || rows < 1) throw new FusedCnnError(`rows must be a positive integer, got ${rows}`);
    if (!(x instanceof Float32Array) || x.length < rows * inSize) {
      throw new FusedCnnError(`x must be a Float32Array of at least rows*h*w*c = ${rows * inSize} values`);
    }
    if (y == null) return;
    if (!(y instanceof Float32Array) || y.length < rows) throw new FusedCnnError(`y must be a Float32Array of at least ${rows} labels`);
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
    const loss = addon.gradients(live(), x, y, rows, fillHp(), g);
    return { loss, g };
  };
  const slotNames = fusedCnnSlots(opts.optimizer);
  const slotArrays = adam ? [slotA, slotB] : [slotA];

  return {
    engine: 'native',
    threads,
    parameterCount: P,
    layers,
    kernel,
    step(x, y, rows) {
      checkBatch(x, y, rows);
      const loss = addon.step(live(), x, y, rows, fillHp());
      clock.tick();
      return loss;
    },
    predict(x, rows) {
      checkBatch(x, null, rows);
      const out = new Float32Array(rows * opts.classes);
      addon.predict(live(), x, rows, out);
      return out;
    },
    evaluate: (x, y, rows) => gradient(x, y, rows).loss,
    getWeights: () => unflatten(params, false),
    setWeights(wts) {
      flatten(wts, params, 'setWeights', false);
    },
    setLearningRate(x) {
      if (!(x > 0)) throw new FusedCnnError(`lr must be > 0, got ${x}`);
      clock.setLearningRate(x);
    },
    gradients: (x, y, rows) => unflatten(gradient(x, y, rows).g, true),
    getOptimizerState: () => ({ step: clock.steps, ...Object.fromEntries(slotNames.map((s, i) => [s, unflatten(slotArrays[i], true)])) }),
    setOptimizerState(s) {
      if (!Number.isInteger(s?.step) || s.step < 0) throw new FusedCnnError(`optimizer step must be >= 0, got ${s?.step}`);
      const fresh = slotNames.map((name) => {
        const a = new Float32Array(P);
        flatten(s[name] as LayerArrays, a, `optimizer state '${name}'`, true);
        return a;
      });
      fresh.forEach((a, i) => slotArrays[i].set(a));
      clock.reset(s.step);
    },
    flushStates: () => addon.flushStates(live()),
    dispose() {
      if (handle != null) addon.destroy(handle);
      handle = null;
    },
  };
}
