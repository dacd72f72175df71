/**
 * The GloNet layer: a parameter-free sum of every block's output (arXiv 2311.15947, eq. 1).
 *
 *     x_{L+1} = sum_{l=1..L} x_l
 *
 * Inputs whose last dimension is smaller than the largest are zero-padded to it (the paper's
 * information-preserving embedding); every other dimension must agree.
 */
import * as tf from '@tensorflow/tfjs';
import { GlonetError } from '../errors.js';
import { LIMITS, formatCount, overLimit, type Limit } from '../limits.js';

/** A layer output shape, batch dimension first (null where unknown), as TF.js layers report it. */
export type LayerShape = Array<number | null>;

/** Block outputs that cannot be summed; the message names the shapes. */
export class GloNetShapeError extends GlonetError {
  /** 'GloNetShapeError'. */
  override name = 'GloNetShapeError';
}

function describe(shape: LayerShape): string {
  return `[${shape.map((d) => (d == null ? 'null' : String(d))).join(', ')}]`;
}

/**
 * Checks the block output shapes and returns the summed output shape; `width`, when given, is the
 * smallest last dimension of the output (a truncated GloNet keeps the full model's width).
 */
export function gloNetOutputShape(shapes: LayerShape[], width = 0): LayerShape {
  if (shapes.length === 0) throw new GloNetShapeError('GloNet layer: needs at least one block output');
  const first = shapes[0];
  let last = 0;
  for (const [i, s] of shapes.entries()) {
    if (s.length !== first.length) {
      throw new GloNetShapeError(
        `GloNet layer: block output ${i + 1} has shape ${describe(s)} but block output 1 has ${describe(first)}; ` +
          'all block outputs need the same rank');
    }
    for (let d = 1; d < s.length - 1; d++) {
      if (s[d] !== first[d]) {
        throw new GloNetShapeError(
          `GloNet layer: block output ${i + 1} has shape ${describe(s)} but block output 1 has ${describe(first)}; ` +
            'only the last dimension may differ (it is zero-padded to the largest). Embed the outputs ' +
            'first (for example by pooling) so the other dimensions agree');
      }
    }
    const c = s[s.length - 1];
    if (c == null) throw new GloNetShapeError(`GloNet layer: block output ${i + 1} has an unknown last dimension ${describe(s)}`);
    last = Math.max(last, c);
  }
  return [...first.slice(0, -1), Math.max(last, width)];
}

/** Options of the {@link GloNet} layer (and of TF.js layers in general). */
export interface GloNetArgs {
  /** The layer's name (unique in a model). */
  name?: string;
  /** TF.js's flag; the layer has no weights, so it changes nothing. */
  trainable?: boolean;
  /** The output's data type (default float32). */
  dtype?: tf.DataType;
  /** Pad the sum to at least this last dimension (default: the largest input's). */
  width?: number;
}

/**
 * The GloNet layer: the sum of its inputs (the blocks' outputs), each zero-padded in the last
 * dimension to the largest (or to `width`). No weights. Registered with TF.js's serialization as
 * 'GloNet', so models containing it save and load once glonet is imported.
 */
export class GloNet extends tf.layers.Layer {
  /** The name TF.js's serialization knows the layer by. */
  static className = 'GloNet';
  /** The smallest last dimension of the output (0: the largest input's). */
  readonly width: number;

  constructor(args: GloNetArgs = {}) {
    const width = args.width ?? 0;
    // Checked before anything is allocated: a failed allocation on the wasm backend breaks it for the rest of the process.
    if (!Number.isSafeInteger(width) || width < 0) throw new GloNetShapeError(`GloNet layer: width must be a non-negative integer, got ${width}`);
    if (width > GLONET_MAX_WIDTH.max) throw new GloNetShapeError(overLimit('GloNet layer: width', width, GLONET_MAX_WIDTH));
    super(args);
    this.supportsMasking = false;
    this.width = width;
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as LayerShape[];
    return gloNetOutputShape(shapes, this.width);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => gloNetSum(Array.isArray(inputs) ? inputs : [inputs], this.width));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...(this.width ? { width: this.width } : {}) };
  }
}
tf.serialization.registerClass(GloNet);

/** The widest sum a GloNet layer pads to (src/limits.ts). */
export const GLONET_MAX_WIDTH: Limit = {
  max: 2 ** 20,
  why: 'the padded sum of a batch holds batch x width floats in the backend\'s memory, and the widest block of glonet\'s families has 4,096 units',
};

/** Sum of tensors, zero-padding the last dimension of smaller ones (the GloNet aggregation). */
export function gloNetSum(xs: tf.Tensor[], minWidth = 0): tf.Tensor {
  const shape = gloNetOutputShape(xs.map((x) => x.shape as LayerShape), minWidth);
  const width = shape[shape.length - 1] as number;
  const floats = (shape as number[]).reduce((a, b) => a * b, 1);
  if (floats > LIMITS.activations.max) {
    throw new GloNetShapeError(`GloNet layer: the sum would be of shape ${describe(shape)}, ${formatCount(floats)} floats; at most ${formatCount(LIMITS.activations.max)} (${LIMITS.activations.why})`);
  }
  const padded = xs.map((x) => {
    const c = x.shape[x.rank - 1];
    if (c === width) return x;
    const pads: Array<[number, number]> = x.shape.map(() => [0, 0]);
    pads[x.rank - 1] = [0, width - c];
    return tf.pad(x, pads);
  });
  return padded.length === 1 ? padded[0].clone() : tf.addN(padded);
}

/** Create a GloNet layer (TF.js-style factory, like `tf.layers.add`). */
export function gloNetLayer(args: GloNetArgs = {}): GloNet {
  return new GloNet(args);
}
