/**
 * The MLP family of the paper (docs/architecture.md, "Canonical architectures"). Depth n counts
 * the linear layers after the stem, so every architecture at depth n has the same weights up to
 * BN's.
 *
 *   glonet         n blocks relu(W x + b); head on the GloNet sum of all n block outputs
 *   glonet-bn      n blocks relu(BN(W x + b)); head on the GloNet sum of all n block outputs (the
 *                  normalization the paper removes, kept to measure what it does to GloNet)
 *   vanilla        n/2 blocks W2 relu(BN(W1 relu(BN(x)))); head on the last output
 *   vanilla-nobn   the same without BN
 *   resnetv2       n/2 pre-activation blocks x + W2 relu(BN(W1 relu(BN(x))))
 *   resnetv2-nobn  the same without BN
 *
 * glonet's norm-free option `blockScale` (src/layers/normfree.ts) multiplies each block's term of
 * the sum by a learnable scalar (block_k_scale, initialized at 1 or 1/L); the chain is unchanged.
 *
 * Stem: Dense(inputs -> width), linear. Head: Dense(width -> outputs), linear (logits for
 * classification). He-normal kernels (PyTorch's, see init.ts), zero biases, L2 on kernels.
 * BatchNormalization layers keep TF.js's defaults (momentum 0.99, epsilon 1e-3) in every arch.
 */
import * as tf from '@tensorflow/tfjs';
import { glonet } from '../layers/chain.js';
import { BlockScale } from '../layers/normfree.js';
import { checkArch, checkDepthWidth, checkHeadInit, checkModelSize, checkNormFree, ModelConfigError, seedCounter, withMetadata, type FamilyLimits, type ModelFamily, type ModelSize } from './family.js';
import { headInitializer, heNormal, lastDim } from './init.js';
import type { BlockScaleInit, HeadInit } from '../vocabulary.js';

/** The MLP family's architectures ('glonet' first, the default). */
export const MLP_ARCHS = ['glonet', 'glonet-bn', 'vanilla', 'vanilla-nobn', 'resnetv2', 'resnetv2-nobn'] as const;
/** One of {@link MLP_ARCHS}. */
export type MlpArch = (typeof MLP_ARCHS)[number];

/** An MLP of the family: architecture, depth and the data's shape. */
export interface MlpConfig {
  /** The architecture. */
  arch: MlpArch;
  /** Linear layers after the stem (even for the two-layer-block baselines). */
  depth: number;
  /** Units per layer. Default 16. */
  width?: number;
  /** Shape of one example; images are flattened by the model's first layer. */
  inputShape: number[];
  /** Outputs: classes, or 1 for regression. */
  outputs: number;
  /** L2 coefficient on kernels. Default 1e-5. */
  l2?: number;
  /** Seed of the initializers. Default 0. */
  seed?: number;
  /** GloNet only: the head kernel's initialization (default 'paper', He-normal). */
  headInit?: HeadInit;
  /** GloNet only: a learnable scalar on each block's term of the sum, initialized at 1 or 1/L (default 'none'). */
  blockScale?: BlockScaleInit;
}

/** The MLP family's limits (src/limits.ts). */
export const MLP_LIMITS: FamilyLimits = {
  depth: { max: 10_000, why: 'the paper\'s deepest MLP has 1,000 layers; building, saving and analyzing a model take seconds per thousand layers, growing faster than the depth' },
  width: { max: 4_096, why: 'a block of 4,096 units already has 16 million weights' },
};

/** Parameters and per-example activations of an MLP of the family, before it is built. */
export function mlpSize(arch: string, depth: number, width: number, inputShape: number[], outputs: number): ModelSize {
  const inputs = inputShape.reduce((a, b) => a * b, 1);
  const bn = arch === 'vanilla' || arch === 'resnetv2' || arch === 'glonet-bn';
  const parameters = inputs * width + width + depth * (width * width + width + (bn ? 4 * width : 0)) + width * outputs + outputs;
  // Every layer's output (and, with BN, its normalized input) is kept for the backward pass.
  return { parameters, activations: inputs + (depth + 2) * width * (bn ? 2 : 1) };
}

function validateMlpConfig(cfg: MlpConfig): void {
  checkArch('mlp', MLP_ARCHS, cfg.arch);
  checkDepthWidth({ name: 'mlp', limits: MLP_LIMITS }, cfg);
  if (!cfg.arch.startsWith('glonet') && cfg.depth % 2 !== 0) {
    throw new ModelConfigError(
      `--depth: ${cfg.arch} is built of two-layer blocks, so its depth (linear layers after the stem) must be even; got ${cfg.depth}`);
  }
  checkHeadInit(cfg.arch, cfg.headInit);
  checkModelSize({ name: 'mlp', size: (o, d) => mlpSize(o.arch, o.depth, o.width ?? 16, d.inputShape, d.outputs) },
    { model: 'mlp', arch: cfg.arch, depth: cfg.depth, width: cfg.width ?? 16, l2: cfg.l2 ?? 0, seed: cfg.seed ?? 0 }, { inputShape: cfg.inputShape, outputs: cfg.outputs, task: 'regression' });
  checkNormFree('mlp', cfg.arch, { blockScale: cfg.blockScale }, NORM_FREE);
}

/** The norm-free options --arch glonet takes in this family. */
const NORM_FREE = ['blockScale'] as const;

/** Names of the layers whose outputs are the blocks' outputs (one per block, in order): a GloNet's terms of its sum. */
export function mlpBlockLayers(arch: MlpArch, depth: number, blockScale: BlockScaleInit = 'none'): string[] {
  const scaled = arch === 'glonet' && blockScale !== 'none';
  if (arch.startsWith('glonet')) return Array.from({ length: depth }, (_, i) => `block_${i + 1}${scaled ? '_scale' : ''}`);
  const skip = arch.startsWith('resnetv2');
  return Array.from({ length: depth / 2 }, (_, i) => (skip ? `block_${i + 1}` : `block_${i + 1}_dense2`));
}

/**
 * Builds an MLP of the family: a linear stem Dense(inputs -> width), the blocks, a linear head.
 *
 * @example
 * ```ts
 * import { buildMlp } from 'glonet';
 * const model = buildMlp({ arch: 'glonet', depth: 100, inputShape: [14], outputs: 1 });
 * model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
 * ```
 */
export function buildMlp(cfg: MlpConfig): tf.LayersModel {
  validateMlpConfig(cfg);
  const width = cfg.width ?? 16;
  const l2 = cfg.l2 ?? 1e-5;
  const nextSeed = seedCounter(cfg.seed);
  const dense = (name: string, units: number, activation: 'relu' | 'linear' = 'linear', init?: HeadInit) => (x: tf.SymbolicTensor) =>
    tf.layers.dense({
      name,
      units,
      activation,
      kernelInitializer: init
        ? headInitializer({ kind: init, base: 'he', fanIn: lastDim(x), fanOut: units, blocks: cfg.depth, seed: nextSeed() })
        : heNormal(lastDim(x), nextSeed()),
      biasInitializer: 'zeros',
      kernelRegularizer: l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined,
    }).apply(x) as tf.SymbolicTensor;
  const stem = (x: tf.SymbolicTensor) =>
    dense('stem', width)(cfg.inputShape.length > 1 ? tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor : x);
  const head = dense('head', cfg.outputs, 'linear', cfg.headInit ?? 'paper');
  const name = `mlp_${cfg.arch}_${cfg.depth}`;

  if (cfg.arch === 'glonet') {
    const blocks = Array.from({ length: cfg.depth }, (_, i) => dense(`block_${i + 1}`, width, 'relu'));
    const init = cfg.blockScale == null || cfg.blockScale === 'none' ? null : cfg.blockScale === '1' ? 1 : 1 / cfg.depth;
    const embed = init == null ? undefined : (x: tf.SymbolicTensor, i: number) => new BlockScale({ name: `block_${i + 1}_scale`, init }).apply(x) as tf.SymbolicTensor;
    return glonet({ inputShape: cfg.inputShape, stem, blocks, embed, head, name });
  }
  if (cfg.arch === 'glonet-bn') {
    const blocks = Array.from({ length: cfg.depth }, (_, i) => (x: tf.SymbolicTensor) => {
      const z = tf.layers.batchNormalization({ name: `block_${i + 1}_bn` }).apply(dense(`block_${i + 1}_dense`, width)(x)) as tf.SymbolicTensor;
      return tf.layers.activation({ name: `block_${i + 1}`, activation: 'relu' }).apply(z) as tf.SymbolicTensor;
    });
    return glonet({ inputShape: cfg.inputShape, stem, blocks, head, name });
  }
  const bn = cfg.arch === 'vanilla' || cfg.arch === 'resnetv2';
  const skip = cfg.arch.startsWith('resnetv2');
  const input = tf.input({ shape: cfg.inputShape, name: 'input' });
  let x = stem(input);
  for (let b = 1; b <= cfg.depth / 2; b++) {
    let h = x;
    for (const k of [1, 2]) {
      if (bn) h = tf.layers.batchNormalization({ name: `block_${b}_bn${k}` }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.activation({ name: `block_${b}_relu${k}`, activation: 'relu' }).apply(h) as tf.SymbolicTensor;
      h = dense(`block_${b}_dense${k}`, width)(h);
    }
    x = skip ? (tf.layers.add({ name: `block_${b}` }).apply([x, h]) as tf.SymbolicTensor) : h;
  }
  return tf.model({ inputs: input, outputs: head(x), name });
}

/** `--model mlp`: fully connected networks on tabular data or flattened images. */
export const mlpFamily: ModelFamily = {
  name: 'mlp',
  archs: MLP_ARCHS,
  depthHelp: `mlp: linear layers after the stem (even for the two-layer-block baselines), at most ${MLP_LIMITS.depth.max.toLocaleString('en-US')}`,
  normFreeOptions: NORM_FREE,
  defaults: () => ({
    width: 16, epochs: 200, batchSize: 1024, optimizer: 'adam', lr: 0.01, momentum: 0, l2: 1e-5, schedule: 'constant',
    reason: 'the paper\'s protocol for SGEMM and MNIST: Adam lr 0.01, batch 1024, L2 1e-5, 200 epochs, 16 units per block',
  }),
  build(o, data) {
    const arch = o.arch as MlpArch;
    checkNormFree('mlp', arch, o.normFree ?? {}, NORM_FREE);
    return withMetadata(mlpFamily, o, data, buildMlp({
      arch, depth: o.depth, width: o.width, inputShape: data.inputShape, outputs: data.outputs, l2: o.l2, seed: o.seed, headInit: o.headInit,
      blockScale: o.normFree?.blockScale,
    }));
  },
  limits: MLP_LIMITS,
  size: (o, data) => mlpSize(o.arch, o.depth, o.width, data.inputShape, data.outputs),
  blockLayers: (arch, depth, nf) => mlpBlockLayers(arch as MlpArch, depth, nf?.blockScale),
};
