/**
 * Initializers every family uses.
 *
 * He-normal as the paper's reference code gets it (PyTorch's kaiming_normal_): a normal
 * distribution with standard deviation sqrt(2 / fanIn). TF.js's `heNormal` draws from a
 * truncated normal without correcting its variance, which gives 0.88x that spread and makes
 * activations shrink with depth in networks without normalization.
 *
 * The head of a GloNet reads the sum of L block outputs, so its input grows with L at
 * initialization. `--head-init` offers two alternatives to the paper's initialization of that
 * head (`paper`: its family's He-normal or Glorot-uniform kernel): `scaled` divides the kernel by L, `zero`
 * starts it at zero. docs/protocol-notes.md has what they do to training.
 */
import * as tf from '@tensorflow/tfjs';
import type { HeadInit } from '../vocabulary.js';

type Initializer = ReturnType<typeof tf.initializers.randomNormal>;

export function heNormal(fanIn: number, seed: number): Initializer {
  return tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(2 / fanIn), seed });
}


interface HeadInitOptions {
  kind: HeadInit;
  /** The family's initializer for this kernel: He-normal (MLP, CNN) or Glorot-uniform (ViT). */
  base: 'he' | 'glorot';
  fanIn: number;
  fanOut: number;
  /** Number of block outputs the GloNet layer sums (L). */
  blocks: number;
  seed: number;
}

/** The initializer of a GloNet head's kernel. */
export function headInitializer(o: HeadInitOptions): Initializer {
  if (o.kind === 'zero') return tf.initializers.zeros();
  const scale = o.kind === 'scaled' ? 1 / o.blocks : 1;
  if (o.base === 'he') return tf.initializers.randomNormal({ mean: 0, stddev: scale * Math.sqrt(2 / o.fanIn), seed: o.seed });
  if (o.kind === 'paper') return tf.initializers.glorotUniform({ seed: o.seed });
  const limit = scale * Math.sqrt(6 / (o.fanIn + o.fanOut));
  return tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed: o.seed });
}

/** The last dimension of a symbolic tensor (a layer's fan-in for dense layers). */
export function lastDim(x: tf.SymbolicTensor): number {
  const d = x.shape[x.shape.length - 1];
  if (d == null) throw new Error(`unknown last dimension in ${JSON.stringify(x.shape)}`);
  return d;
}
