/**
 * Layers for training GloNets without batch normalization (issue 24; docs/protocol-notes.md has
 * what each does to training):
 *
 *   WSConv2D     a conv whose kernel is Scaled-Weight-Standardized before use (Brock et al.,
 *                "Characterizing signal propagation to close the performance gap in unnormalized
 *                ResNets", 2021): per output channel c, over its fan-in N = kh * kw * in,
 *                  K^[., c] = gamma * gain[c] * (K[., c] - mean_c) / sqrt(N * var_c + epsilon)
 *                with var_c the biased variance, a learnable gain (initialized at 1) and a fixed
 *                gamma: 1 for a conv reading a linear input (the image, the stem's output),
 *                sqrt(2 / (1 - 1/pi)) for a conv reading a ReLU output (so that a unit-variance
 *                input gives a unit-variance output). It was meant to remove the mean shift
 *                that ReLU outputs carry from block to block; at initialization the images'
 *                pooled features stay as alike as without it (cosine 0.998 against 0.999,
 *                bench/bnfree/probe.json), while the logits shrink (RMS 0.6-1.0 against 2.2-7.0 over 3 seeds). Why it
 *                trains faster is measured, not explained (docs/protocol-notes.md, issue 24).
 *   BlockScale   a learnable scalar on a block's contribution to the GloNet sum (SkipInit and
 *                ReZero's idea, moved to where a GloNet has its skips), initialized at `init`.
 *   FixedCenter  subtracts a fixed (non-trainable) vector: a block's pooled output minus its mean
 *                over training examples at initialization (src/models/resnet20.ts fits it).
 *
 * BlockScale and FixedCenter are linear, so per-block explanations and truncation stay exact.
 * Every layer is registered for serialization and keeps its weights in `getWeights()` order
 * (WSConv2D: kernel, [bias], gain), the order the fused CNN engine lays them out in.
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerShape } from './glonet.js';

type Shape = LayerShape;

function oneShape(inputShape: Shape | Shape[]): Shape {
  return (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
}

function oneTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function lastDimOf(layer: string, shape: Shape): number {
  const d = shape[shape.length - 1];
  if (d == null) throw new Error(`${layer}: the input's last dimension must be known, got [${shape.map((v) => (v == null ? 'null' : v)).join(', ')}]`);
  return d;
}

/** Scaled WS's gamma for a conv reading ReLU outputs: 1 / std(relu(z)) for z ~ N(0, 1). */
export const WS_RELU_GAMMA = Math.sqrt(2 / (1 - 1 / Math.PI));
/** Scaled WS's epsilon under the square root (NF-ResNets' 1e-4). */
export const WS_EPSILON = 1e-4;

/** The options of a {@link WSConv2D} layer. */
export interface WSConv2DArgs {
  /** The layer's name (unique in a model). */
  name?: string;
  /** Output channels. */
  filters: number;
  /** The kernel's height and width. */
  kernelSize: number;
  /** Stride in both directions (default 1). */
  strides?: number;
  /** 'same' or 'valid' (stride-2 convs of the ResNet20 family pad explicitly first, then 'valid'). */
  padding?: 'same' | 'valid';
  /** A bias per output channel (default true). */
  useBias?: boolean;
  /** 'relu' or 'linear' (default). */
  activation?: 'relu' | 'linear';
  /** The fixed gain: 1 for a linear input, {@link WS_RELU_GAMMA} for a ReLU input. */
  gamma: number;
  /** Added to N * var under the square root (default {@link WS_EPSILON}). */
  epsilon?: number;
  /** L2 on the raw kernel: penalty l2 * sum(K^2). */
  l2?: number;
  /** Seed of the raw kernel's He-normal initializer. */
  seed?: number;
}

/** A conv2d with a Scaled-Weight-Standardized kernel, a bias and a learnable per-channel gain. */
export class WSConv2D extends tf.layers.Layer {
  /** The class name TF.js serializes the layer under. */
  static className = 'WSConv2D';
  /** Output channels. */
  readonly filters: number;
  /** The kernel's height and width. */
  readonly kernelSize: number;
  /** Stride in both directions. */
  readonly strides: number;
  /** 'same' or 'valid'. */
  readonly padding: 'same' | 'valid';
  /** Whether the layer has a bias. */
  readonly useBias: boolean;
  /** 'relu' or 'linear'. */
  readonly activation: 'relu' | 'linear';
  /** The fixed gain. */
  readonly gamma: number;
  /** Added to N * var under the square root. */
  readonly epsilon: number;
  /** L2 on the raw kernel. */
  readonly l2: number;
  /** Seed of the raw kernel's initializer. */
  readonly seed: number;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;
  private gain?: tf.LayerVariable;

  constructor(args: WSConv2DArgs) {
    super({ name: args.name });
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 'same';
    this.useBias = args.useBias ?? true;
    this.activation = args.activation ?? 'linear';
    this.gamma = args.gamma;
    this.epsilon = args.epsilon ?? WS_EPSILON;
    this.l2 = args.l2 ?? 0;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: Shape | Shape[]): void {
    const cin = lastDimOf('WSConv2D', oneShape(inputShape));
    const k = this.kernelSize;
    const fanIn = k * k * cin;
    this.kernel = this.addWeight('kernel', [k, k, cin, this.filters], 'float32',
      tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(2 / fanIn), seed: this.seed }),
      this.l2 > 0 ? tf.regularizers.l2({ l2: this.l2 }) : undefined);
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.zeros());
    this.gain = this.addWeight('gain', [this.filters], 'float32', tf.initializers.ones());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    const out = (d: number | null) => {
      if (d == null) return null;
      return this.padding === 'same' ? Math.ceil(d / this.strides) : Math.floor((d - this.kernelSize) / this.strides) + 1;
    };
    return [s[0], out(s[1]), out(s[2]), this.filters];
  }

  /** The standardized kernel K^ (a tensor the caller disposes). */
  standardizedKernel(): tf.Tensor4D {
    return tf.tidy(() => {
      const k = this.kernel!.read() as tf.Tensor4D;
      const fanIn = k.shape[0] * k.shape[1] * k.shape[2];
      const mean = tf.mean(k, [0, 1, 2], true);
      const centered = tf.sub(k, mean);
      const variance = tf.mean(tf.square(centered), [0, 1, 2], true);
      const scale = tf.mul(tf.rsqrt(tf.add(tf.mul(variance, fanIn), this.epsilon)), tf.mul(this.gain!.read(), this.gamma));
      return tf.mul(centered, scale) as tf.Tensor4D;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs) as tf.Tensor4D;
      let y: tf.Tensor = tf.conv2d(x, this.standardizedKernel(), this.strides, this.padding);
      if (this.bias) y = tf.add(y, this.bias.read());
      return this.activation === 'relu' ? tf.relu(y) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding,
      useBias: this.useBias, activation: this.activation, gamma: this.gamma, epsilon: this.epsilon, l2: this.l2, seed: this.seed,
    };
  }
}
tf.serialization.registerClass(WSConv2D);

/** The options of a {@link BlockScale} layer. */
export interface BlockScaleArgs {
  /** The layer's name (unique in a model). */
  name?: string;
  /** The scale's initial value. */
  init: number;
}

/** y = a * x with one learnable scalar a (initialized at `init`). */
export class BlockScale extends tf.layers.Layer {
  /** The class name TF.js serializes the layer under. */
  static className = 'BlockScale';
  /** The scale's initial value. */
  readonly init: number;
  private scale?: tf.LayerVariable;

  constructor(args: BlockScaleArgs) {
    super({ name: args.name });
    this.init = args.init;
  }

  override build(): void {
    this.scale = this.addWeight('scale', [1], 'float32', tf.initializers.constant({ value: this.init }));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(oneTensor(inputs), this.scale!.read()));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), init: this.init };
  }
}
tf.serialization.registerClass(BlockScale);

/** The options of a {@link FixedCenter} layer. */
export interface FixedCenterArgs {
  /** The layer's name (unique in a model). */
  name?: string;
}

/** y = x - c with a fixed, non-trainable vector c over the last dimension (zeros until set). */
export class FixedCenter extends tf.layers.Layer {
  /** The class name TF.js serializes the layer under. */
  static className = 'FixedCenter';
  private center?: tf.LayerVariable;

  constructor(args: FixedCenterArgs = {}) {
    super({ name: args.name });
  }

  override build(inputShape: Shape | Shape[]): void {
    const c = lastDimOf('FixedCenter', oneShape(inputShape));
    this.center = this.addWeight('center', [c], 'float32', tf.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.sub(oneTensor(inputs), this.center!.read()));
  }
}
tf.serialization.registerClass(FixedCenter);
