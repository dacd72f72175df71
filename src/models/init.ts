/**
 * He-normal initialization as the paper's reference code gets it (PyTorch's kaiming_normal_):
 * a normal distribution with standard deviation sqrt(2 / fanIn). TF.js's `heNormal` draws from a
 * truncated normal without correcting its variance, which gives 0.88x that spread and makes
 * activations shrink with depth in networks without normalization.
 */
import * as tf from '@tensorflow/tfjs';

export function heNormal(fanIn: number, seed: number): ReturnType<typeof tf.initializers.randomNormal> {
  return tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(2 / fanIn), seed });
}

/** The last dimension of a symbolic tensor (a layer's fan-in for dense layers). */
export function lastDim(x: tf.SymbolicTensor): number {
  const d = x.shape[x.shape.length - 1];
  if (d == null) throw new Error(`unknown last dimension in ${JSON.stringify(x.shape)}`);
  return d;
}
