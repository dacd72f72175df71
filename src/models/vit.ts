/**
 * The ViT family (docs/architecture.md, "Canonical architectures"): a small Vision Transformer for
 * 28x28 or 32x32 images, plain or with a GloNet head.
 *
 *   patches     4x4 patches (28x28 -> 49 tokens, 32x32 -> 64), each flattened and mapped linearly
 *               to the embedding width (Dense on the flattened patch = a stride-4 4x4 convolution)
 *   tokens      a learned class token prepended, a learned position embedding added
 *   encoder_l   l = 1..depth, post-norm like PyTorch's default TransformerEncoderLayer:
 *                 x = LN(x + MHSA(x));  x = LN(x + W2 relu(W1 x))
 *   plain       head = Dense(outputs) on the class-token row of the last encoder output
 *   glonet      head = Dense(outputs) on the class-token row of the GloNet sum of every encoder
 *               output. Taking a row is linear, so summing the class-token rows (what this model
 *               does, [batch, width]) is the same head input as taking the row of the summed
 *               sequences, and cheaper.
 *
 * GloNet removes normalization before the aggregation in the MLP and CNN families; the ViT keeps
 * each encoder's internal LayerNorms, as the paper's GloNet-ViT does: the encoder layer is the
 * block, unchanged, and only its output is routed to the GloNet sum.
 *
 * Feed-forward width: the authors' notebook uses PyTorch's default 2048; the default here is
 * 2 x width (256 at width 128) to keep CPU training practical; pass `mlpDim: 2048` for the
 * notebook's size. No dropout (the notebook's 0.1 is left out for determinism).
 * Initialization: Glorot-uniform kernels (PyTorch's attention uses Xavier-uniform), He-normal
 * (./init.ts, as every family) for the ReLU feed-forward layer, zero biases, all seeded;
 * LayerNorm epsilon 1e-5 as in PyTorch.
 */
import * as tf from '@tensorflow/tfjs';
import { glonet } from '../layers/chain.js';
import { ClassToken, MultiHeadSelfAttention, PositionEmbedding, TokenSlice } from '../layers/vit.js';
import { checkArch, checkClassifier, checkDepthWidth, checkHeadInit, checkImageShape, checkModelSize, checkNormFree, ModelConfigError, seedCounter, withMetadata, type FamilyLimits, type ModelFamily, type ModelSize } from './family.js';
import { headInitializer, heNormal, lastDim } from './init.js';
import type { HeadInit } from '../vocabulary.js';

/** The ViT family's architectures: 'glonet' (the head reads the sum of the encoders' class tokens) and 'plain'. */
export const VIT_ARCHS = ['glonet', 'plain'] as const;
/** One of {@link VIT_ARCHS}. */
export type VitArch = (typeof VIT_ARCHS)[number];

/** A vision transformer of the family: architecture, depth and the data's shape. */
export interface VitConfig {
  /** The architecture. */
  arch: VitArch;
  /** Number of encoder layers (the paper: 4, 5, 6). */
  depth: number;
  /** Embedding width. Default 128. */
  width?: number;
  /** [height, width, channels]; height and width divisible by the patch size. */
  inputShape: number[];
  /** Classes. */
  outputs: number;
  /** Seed of the initializers. Default 0. */
  seed?: number;
  /** Attention heads; must divide the width. Default 4. */
  heads?: number;
  /** Patch side. Default 4. */
  patch?: number;
  /** Feed-forward hidden width. Default 2 * width (the notebook: 2048). */
  mlpDim?: number;
  /** L2 coefficient on kernels. Default 0 (the notebook uses plain Adam). */
  l2?: number;
  /** GloNet only: the head kernel's initialization (default 'paper', Glorot-uniform). */
  headInit?: HeadInit;
}

function positiveInt(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) >= 1;
}

/** The ViT family's limits (src/limits.ts). */
export const VIT_LIMITS: FamilyLimits = {
  depth: { max: 64, why: 'the paper\'s ViTs have 4 to 6 encoders, and each one costs as much as the whole of a small CNN' },
  width: { max: 1_024, why: 'an encoder of width 1,024 already has 8 million weights' },
};

/** Parameters and per-image activations of a ViT of the family (default heads, patch and feed-forward width), before it is built. */
export function vitSize(depth: number, width: number, inputShape: number[], outputs: number, o: { heads?: number; patch?: number; mlpDim?: number } = {}): ModelSize {
  const [h, w, c] = inputShape;
  const patch = o.patch ?? 4;
  const heads = o.heads ?? 4;
  const mlp = o.mlpDim ?? 2 * width;
  const tokens = Math.floor(h / patch) * Math.floor(w / patch) + 1;
  const encoder = 4 * (width * width + width) + 4 * width + width * mlp + mlp + mlp * width + width;
  const parameters = patch * patch * c * width + width + width + tokens * width + depth * encoder + width * outputs + outputs;
  const activations = h * w * c + 2 * tokens * width + depth * (tokens * (8 * width + 2 * mlp) + 2 * heads * tokens * tokens);
  return { parameters, activations };
}

function validateVitConfig(cfg: VitConfig): void {
  checkArch('vit', VIT_ARCHS, cfg.arch);
  checkHeadInit(cfg.arch, cfg.headInit);
  if (!positiveInt(cfg.depth)) throw new ModelConfigError(`--depth: expected a positive number of encoder layers for --model vit, got ${cfg.depth}`);
  checkDepthWidth({ name: 'vit', limits: VIT_LIMITS }, cfg);
  const width = cfg.width ?? 128;
  const heads = cfg.heads ?? 4;
  const patch = cfg.patch ?? 4;
  if (!positiveInt(width)) throw new ModelConfigError(`--width: expected a positive integer, got ${cfg.width}`);
  if (!positiveInt(heads)) throw new ModelConfigError(`vit heads: expected a positive integer, got ${cfg.heads}`);
  if (width % heads !== 0) throw new ModelConfigError(`--width: the ViT's width ${width} must be divisible by its ${heads} attention heads`);
  if (cfg.mlpDim != null && !positiveInt(cfg.mlpDim)) throw new ModelConfigError(`vit mlpDim: expected a positive integer, got ${cfg.mlpDim}`);
  if (!positiveInt(patch)) throw new ModelConfigError(`vit patch: expected a positive integer, got ${cfg.patch}`);
  const s = cfg.inputShape;
  checkImageShape('vit', s);
  if (s[0] % patch !== 0 || s[1] % patch !== 0) {
    throw new ModelConfigError(`--model vit: images ${s[0]}x${s[1]} are not divisible into ${patch}x${patch} patches`);
  }
  checkModelSize({ name: 'vit', size: () => vitSize(cfg.depth, width, s, cfg.outputs, cfg) },
    { model: 'vit', arch: cfg.arch, depth: cfg.depth, width, l2: cfg.l2 ?? 0, seed: cfg.seed ?? 0 }, { inputShape: s, outputs: cfg.outputs, task: 'classification' });
}

/** Layer names whose outputs are the blocks' (encoder layers') outputs, in order. */
export function vitBlockLayers(arch: VitArch, depth: number): string[] {
  return Array.from({ length: depth }, (_, i) => (arch === 'glonet' ? `encoder_${i + 1}_cls` : `encoder_${i + 1}`));
}

/** Builds a vision transformer of the family (patches, class token, post-norm encoders, head). */
export function buildViT(cfg: VitConfig): tf.LayersModel {
  validateVitConfig(cfg);
  const width = cfg.width ?? 128;
  const heads = cfg.heads ?? 4;
  const patch = cfg.patch ?? 4;
  const mlpDim = cfg.mlpDim ?? 2 * width;
  const l2 = cfg.l2 ?? 0;
  const reg = () => (l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined);
  const nextSeed = seedCounter(cfg.seed);
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const dense = (name: string, units: number, activation: 'relu' | 'linear' = 'linear', init?: HeadInit) => (x: tf.SymbolicTensor) =>
    apply(tf.layers.dense({
      name,
      units,
      activation,
      kernelInitializer: init
        ? headInitializer({ kind: init, base: 'glorot', fanIn: lastDim(x), fanOut: units, blocks: cfg.depth, seed: nextSeed() })
        : activation === 'relu' ? heNormal(lastDim(x), nextSeed()) : tf.initializers.glorotUniform({ seed: nextSeed() }),
      biasInitializer: 'zeros',
      kernelRegularizer: reg(),
    }), x);

  const [h, w, c] = cfg.inputShape;
  const ph = h / patch;
  const pw = w / patch;
  // [h, w, c] -> [h/p, p, w/p, p, c] -> [h/p, w/p, p, p, c] -> [tokens, p*p*c]: row-major patches,
  // embedded, a class token prepended, positions added.
  const stem = (input: tf.SymbolicTensor) => {
    let x = apply(tf.layers.reshape({ name: 'patch_grid', targetShape: [ph, patch, pw, patch, c] }), input);
    x = apply(tf.layers.permute({ name: 'patch_order', dims: [1, 3, 2, 4, 5] }), x);
    x = apply(tf.layers.reshape({ name: 'patches', targetShape: [ph * pw, patch * patch * c] }), x);
    x = dense('patch_embed', width)(x);
    x = apply(new ClassToken({ name: 'class_token', seed: nextSeed() }), x);
    return apply(new PositionEmbedding({ name: 'position_embed', seed: nextSeed() }), x);
  };
  // Post-norm encoder layer l: x = LN(x + MHSA(x)); x = LN(x + W2 relu(W1 x)).
  const encoder = (l: number) => (x: tf.SymbolicTensor) => {
    const seed = nextSeed();
    for (let i = 1; i < 4; i++) nextSeed(); // q, k, v and out projections
    let y = apply(new MultiHeadSelfAttention({ name: `encoder_${l}_attn`, heads, seed, l2 }), x);
    x = apply(tf.layers.add({ name: `encoder_${l}_add1` }), [x, y]);
    x = apply(tf.layers.layerNormalization({ name: `encoder_${l}_ln1`, epsilon: 1e-5 }), x);
    y = dense(`encoder_${l}_ffn1`, mlpDim, 'relu')(x);
    y = dense(`encoder_${l}_ffn2`, width)(y);
    x = apply(tf.layers.add({ name: `encoder_${l}_add2` }), [x, y]);
    return apply(tf.layers.layerNormalization({ name: `encoder_${l}`, epsilon: 1e-5 }), x);
  };
  const encoders = Array.from({ length: cfg.depth }, (_, i) => encoder(i + 1));
  const head = dense('head', cfg.outputs, 'linear', cfg.headInit ?? 'paper');
  const name = `vit_${cfg.arch}_${cfg.depth}`;

  if (cfg.arch === 'glonet') {
    // Taking the class-token row is linear, so summing the rows is the row of the summed sequences.
    const embed = (x: tf.SymbolicTensor, i: number) => apply(new TokenSlice({ name: `encoder_${i + 1}_cls`, index: 0 }), x);
    return glonet({ inputShape: cfg.inputShape, stem, blocks: encoders, embed, head, name });
  }
  const input = tf.input({ shape: cfg.inputShape, name: 'input' });
  const x = encoders.reduce((x, enc) => enc(x), stem(input));
  return tf.model({ inputs: input, outputs: head(apply(new TokenSlice({ name: 'cls', index: 0 }), x)), name });
}

/** `--model vit`: `--width` is the embedding width. */
export const vitFamily: ModelFamily = {
  name: 'vit',
  archs: VIT_ARCHS,
  depthHelp: `vit: encoder layers (the paper: 4, 5, 6), at most ${VIT_LIMITS.depth.max}`,
  defaults: () => ({
    width: 128, epochs: 200, batchSize: 128, optimizer: 'adam', lr: 1e-3, momentum: 0, l2: 0, schedule: 'constant', warmup: 1,
    reason: 'Adam lr 1e-3 after one epoch of linear warm-up (batch 128, embedding 128, no weight decay, as the authors\' notebook) ' +
      'beat the notebook\'s constant 1e-4 on every seed (MNIST, 3,200 digits, 5 epochs, 3 seeds: glonet 61-73% against 39-46%, ' +
      'plain 81-83% against 55-58%; docs/protocol-notes.md); 1e-3 without warm-up was worse than either (24% for glonet after 3 epochs)',
  }),
  build(o, data) {
    const arch = o.arch as VitArch;
    checkNormFree('vit', arch, o.normFree ?? {}, []);
    validateVitConfig({ arch, depth: o.depth, width: o.width, inputShape: data.inputShape, outputs: data.outputs, headInit: o.headInit });
    checkClassifier('vit', data);
    return withMetadata(vitFamily, o, data, buildViT({ arch, depth: o.depth, width: o.width, inputShape: data.inputShape, outputs: data.outputs, seed: o.seed, l2: o.l2, headInit: o.headInit }));
  },
  blockLayers: (arch, depth) => vitBlockLayers(arch as VitArch, depth),
  limits: VIT_LIMITS,
  size: (o, data) => vitSize(o.depth, o.width, data.inputShape, data.outputs),
};
