/**
 * Vision Transformer pieces as TF.js layers: a learned class token, a learned position embedding,
 * multi-head self-attention, and a layer taking one token's row out of a sequence.
 *
 * Every layer is registered for serialization, so a saved ViT loads with `tf.loadLayersModel` in a
 * fresh process once this package has been imported. Weights are created in `build` with seeded
 * initializers (`seed` in the layer's config), so building the same model twice gives the same
 * weights.
 */
import * as tf from '@tensorflow/tfjs';

type Shape = Array<number | null>;

function oneShape(inputShape: Shape | Shape[]): Shape {
  return (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
}

function oneTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function expectSequence(layer: string, shape: Shape): { tokens: number | null; width: number } {
  if (shape.length !== 3 || shape[2] == null) {
    throw new Error(`${layer}: expected a token sequence [batch, tokens, width] with a known width, got [${shape.map((d) => (d == null ? 'null' : d)).join(', ')}]`);
  }
  return { tokens: shape[1], width: shape[2] };
}

/** Small seeded normal initializer (std 0.02), the usual choice for token and position embeddings. */
function embeddingInit(seed: number) {
  return tf.initializers.truncatedNormal({ mean: 0, stddev: 0.02, seed });
}

export interface SeededLayerArgs {
  name?: string;
  trainable?: boolean;
  dtype?: tf.DataType;
  /** Seed of the layer's weight initializers. Default 0. */
  seed?: number;
}

/**
 * Prepends one learned token (the class token) to a sequence: [batch, t, d] -> [batch, t + 1, d].
 */
export class ClassToken extends tf.layers.Layer {
  static className = 'ClassToken';
  readonly seed: number;
  private token?: tf.LayerVariable;

  constructor(args: SeededLayerArgs = {}) {
    super(args);
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: Shape | Shape[]): void {
    const { width } = expectSequence('ClassToken', oneShape(inputShape));
    this.token = this.addWeight('token', [1, 1, width], 'float32', embeddingInit(this.seed));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    const { tokens, width } = expectSequence('ClassToken', s);
    return [s[0], tokens == null ? null : tokens + 1, width];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const token = this.token!.read();
      const batch = x.shape[0];
      return tf.concat([tf.tile(token, [batch, 1, 1]), x], 1);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), seed: this.seed };
  }
}
tf.serialization.registerClass(ClassToken);

/** Adds a learned position embedding (one row per token position): [batch, t, d] -> same shape. */
export class PositionEmbedding extends tf.layers.Layer {
  static className = 'PositionEmbedding';
  readonly seed: number;
  private positions?: tf.LayerVariable;

  constructor(args: SeededLayerArgs = {}) {
    super(args);
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: Shape | Shape[]): void {
    const { tokens, width } = expectSequence('PositionEmbedding', oneShape(inputShape));
    if (tokens == null) throw new Error('PositionEmbedding: the number of tokens must be known');
    this.positions = this.addWeight('positions', [tokens, width], 'float32', embeddingInit(this.seed));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.add(oneTensor(inputs), this.positions!.read()));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), seed: this.seed };
  }
}
tf.serialization.registerClass(PositionEmbedding);

export interface MultiHeadSelfAttentionArgs extends SeededLayerArgs {
  /** Number of attention heads; must divide the width. */
  heads: number;
  /** L2 coefficient on the four projection kernels (penalty l2 * sum(w^2)). Default 0. */
  l2?: number;
}

/**
 * Multi-head self-attention: q, k, v projections of the sequence, per head
 * softmax(q k^T / sqrt(d_head)) v, heads concatenated and projected back to the width.
 * [batch, t, d] -> [batch, t, d]. Kernels Glorot-uniform (seeded; PyTorch's attention uses
 * Xavier-uniform too), biases zero.
 */
export class MultiHeadSelfAttention extends tf.layers.Layer {
  static className = 'MultiHeadSelfAttention';
  readonly heads: number;
  readonly seed: number;
  readonly l2: number;
  private w: Record<'q' | 'k' | 'v' | 'o', { kernel: tf.LayerVariable; bias: tf.LayerVariable }> | undefined;

  constructor(args: MultiHeadSelfAttentionArgs) {
    super(args);
    if (!Number.isInteger(args.heads) || args.heads < 1) throw new Error(`MultiHeadSelfAttention: heads must be a positive integer, got ${args.heads}`);
    this.heads = args.heads;
    this.seed = args.seed ?? 0;
    this.l2 = args.l2 ?? 0;
  }

  override build(inputShape: Shape | Shape[]): void {
    const { width } = expectSequence('MultiHeadSelfAttention', oneShape(inputShape));
    if (width % this.heads !== 0) {
      throw new Error(`MultiHeadSelfAttention: the width ${width} is not divisible by the number of heads ${this.heads}`);
    }
    const reg = this.l2 > 0 ? tf.regularizers.l2({ l2: this.l2 }) : undefined;
    const make = (p: 'q' | 'k' | 'v' | 'o', i: number) => ({
      kernel: this.addWeight(`${p}_kernel`, [width, width], 'float32', tf.initializers.glorotUniform({ seed: this.seed + i }), reg),
      bias: this.addWeight(`${p}_bias`, [width], 'float32', tf.initializers.zeros()),
    });
    this.w = { q: make('q', 0), k: make('k', 1), v: make('v', 2), o: make('o', 3) };
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const [batch, tokens, width] = x.shape as [number, number, number];
      const h = this.heads;
      const dh = width / h;
      const flat = tf.reshape(x, [batch * tokens, width]);
      const project = (p: 'q' | 'k' | 'v' | 'o', m: tf.Tensor) => tf.add(tf.matMul(m as tf.Tensor2D, this.w![p].kernel.read() as tf.Tensor2D), this.w![p].bias.read());
      // [batch * tokens, width] -> [batch, heads, tokens, d_head]
      const split = (m: tf.Tensor) => tf.transpose(tf.reshape(m, [batch, tokens, h, dh]), [0, 2, 1, 3]);
      const q = split(project('q', flat));
      const k = split(project('k', flat));
      const v = split(project('v', flat));
      const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
      const attended = tf.matMul(tf.softmax(scores), v); // [batch, heads, tokens, d_head]
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * tokens, width]);
      return tf.reshape(project('o', merged), [batch, tokens, width]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), heads: this.heads, seed: this.seed, l2: this.l2 };
  }
}
tf.serialization.registerClass(MultiHeadSelfAttention);

export interface TokenSliceArgs {
  name?: string;
  trainable?: boolean;
  dtype?: tf.DataType;
  /** The token position to take. Default 0 (the class token). */
  index?: number;
}

/** Takes one token's row out of a sequence: [batch, t, d] -> [batch, d]. */
export class TokenSlice extends tf.layers.Layer {
  static className = 'TokenSlice';
  readonly index: number;

  constructor(args: TokenSliceArgs = {}) {
    super(args);
    this.index = args.index ?? 0;
    if (!Number.isInteger(this.index) || this.index < 0) throw new Error(`TokenSlice: index must be a non-negative integer, got ${this.index}`);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    const { tokens, width } = expectSequence('TokenSlice', s);
    if (tokens != null && this.index >= tokens) throw new Error(`TokenSlice: index ${this.index} is out of range for ${tokens} tokens`);
    return [s[0], width];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const [batch, , width] = x.shape as [number, number, number];
      return tf.reshape(tf.slice(x, [0, this.index, 0], [batch, 1, width]), [batch, width]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), index: this.index };
  }
}
tf.serialization.registerClass(TokenSlice);
