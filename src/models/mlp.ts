/**
 * The MLP family of the paper (reference-notes.md, "Canonical architectures"). Depth n counts the
 * linear layers after the stem, so every architecture at depth n has the same weights up to BN's.
 *
 *   glonet         n blocks relu(W x + b); head on the GloNet sum of all n block outputs
 *   vanilla        n/2 blocks W2 relu(BN(W1 relu(BN(x)))); head on the last output
 *   vanilla-nobn   the same without BN
 *   resnetv2       n/2 pre-activation blocks x + W2 relu(BN(W1 relu(BN(x))))
 *   resnetv2-nobn  the same without BN
 *
 * Stem: Dense(inputs -> width), linear. Head: Dense(width -> outputs), linear (logits for
 * classification). He-normal kernels (PyTorch's, see init.ts), zero biases, L2 on kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { GloNet } from '../layers/glonet.js';
import { heNormal, lastDim } from './init.js';

export const MLP_ARCHS = ['glonet', 'vanilla', 'vanilla-nobn', 'resnetv2', 'resnetv2-nobn'] as const;
export type MlpArch = (typeof MLP_ARCHS)[number];

export interface MlpConfig {
  arch: MlpArch;
  depth: number;
  width?: number;
  /** Shape of one example; images are flattened by the model's first layer. */
  inputShape: number[];
  outputs: number;
  l2?: number;
  seed?: number;
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

export function validateMlpConfig(cfg: MlpConfig): void {
  if (!(MLP_ARCHS as readonly string[]).includes(cfg.arch)) {
    throw new ModelConfigError(`--arch: expected one of ${MLP_ARCHS.join(', ')} for --model mlp, got '${cfg.arch}'`);
  }
  if (!Number.isInteger(cfg.depth) || cfg.depth < 1) {
    throw new ModelConfigError(`--depth: expected a positive integer, got ${cfg.depth}`);
  }
  if (cfg.arch !== 'glonet' && cfg.depth % 2 !== 0) {
    throw new ModelConfigError(
      `--depth: ${cfg.arch} is built of two-layer blocks, so its depth (linear layers after the stem) must be even; got ${cfg.depth}`);
  }
  if (cfg.width != null && (!Number.isInteger(cfg.width) || cfg.width < 1)) {
    throw new ModelConfigError(`--width: expected a positive integer, got ${cfg.width}`);
  }
}

/** Number of GloNet/residual "blocks" an architecture at this depth has (analysis unit). */
export function mlpBlockCount(arch: MlpArch, depth: number): number {
  return arch === 'glonet' ? depth : depth / 2;
}

export function buildMlp(cfg: MlpConfig): tf.LayersModel {
  validateMlpConfig(cfg);
  const width = cfg.width ?? 16;
  const l2 = cfg.l2 ?? 1e-5;
  // TF.js random initializers treat seed 0 as "no seed" (Math.random): layer seeds start at seed + 1.
  let seed = (cfg.seed ?? 0) + 1;
  const dense = (x: tf.SymbolicTensor, name: string, units: number, activation: 'relu' | 'linear' = 'linear') =>
    tf.layers.dense({
      name,
      units,
      activation,
      kernelInitializer: heNormal(lastDim(x), seed++),
      biasInitializer: 'zeros',
      kernelRegularizer: l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined,
    }).apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: cfg.inputShape, name: 'input' });
  let x: tf.SymbolicTensor = input;
  if (cfg.inputShape.length > 1) x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = dense(x, 'stem', width);

  if (cfg.arch === 'glonet') {
    const outs: tf.SymbolicTensor[] = [];
    for (let l = 1; l <= cfg.depth; l++) {
      x = dense(x, `block_${l}`, width, 'relu');
      outs.push(x);
    }
    x = new GloNet({ name: 'glonet' }).apply(outs) as tf.SymbolicTensor;
  } else {
    const bn = cfg.arch === 'vanilla' || cfg.arch === 'resnetv2';
    const skip = cfg.arch.startsWith('resnetv2');
    for (let b = 1; b <= cfg.depth / 2; b++) {
      let h = x;
      for (const k of [1, 2]) {
        if (bn) h = tf.layers.batchNormalization({ name: `block_${b}_bn${k}` }).apply(h) as tf.SymbolicTensor;
        h = tf.layers.activation({ name: `block_${b}_relu${k}`, activation: 'relu' }).apply(h) as tf.SymbolicTensor;
        h = dense(h, `block_${b}_dense${k}`, width);
      }
      x = skip ? (tf.layers.add({ name: `block_${b}` }).apply([x, h]) as tf.SymbolicTensor) : h;
    }
  }
  const y = dense(x, 'head', cfg.outputs);
  return tf.model({ inputs: input, outputs: y, name: `mlp_${cfg.arch}_${cfg.depth}` });
}
