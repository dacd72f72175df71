/**
 * The ViT family (reference-notes.md, "Canonical architectures"): a small Vision Transformer for
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
 * Initialization: Glorot-uniform kernels (PyTorch's attention uses Xavier-uniform), He-normal for
 * the ReLU feed-forward layer, zero biases, all seeded; LayerNorm epsilon 1e-5 as in PyTorch.
 */
import * as tf from '@tensorflow/tfjs';
import { GloNet } from '../layers/glonet.js';
import { ClassToken, MultiHeadSelfAttention, PositionEmbedding, TokenSlice } from '../layers/vit.js';
import { ModelConfigError } from './mlp.js';
import type { BuildOptions, BuiltModel } from './index.js';
import type { Dataset } from '../data/dataset.js';

export const VIT_ARCHS = ['glonet', 'plain'] as const;
export type VitArch = (typeof VIT_ARCHS)[number];

export interface VitConfig {
  arch: VitArch;
  /** Number of encoder layers (the paper: 4, 5, 6). */
  depth: number;
  /** Embedding width. Default 128. */
  width?: number;
  /** [height, width, channels]; height and width divisible by the patch size. */
  inputShape: number[];
  outputs: number;
  seed?: number;
  /** Attention heads; must divide the width. Default 4. */
  heads?: number;
  /** Patch side. Default 4. */
  patch?: number;
  /** Feed-forward hidden width. Default 2 * width (the notebook: 2048). */
  mlpDim?: number;
  /** L2 coefficient on kernels. Default 0 (the notebook uses plain Adam). */
  l2?: number;
}

function positiveInt(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) >= 1;
}

export function validateVitConfig(cfg: VitConfig): void {
  if (!(VIT_ARCHS as readonly string[]).includes(cfg.arch)) {
    throw new ModelConfigError(`--arch: expected one of ${VIT_ARCHS.join(', ')} for --model vit, got '${cfg.arch}'`);
  }
  if (!positiveInt(cfg.depth)) throw new ModelConfigError(`--depth: expected a positive number of encoder layers for --model vit, got ${cfg.depth}`);
  const width = cfg.width ?? 128;
  const heads = cfg.heads ?? 4;
  const patch = cfg.patch ?? 4;
  if (!positiveInt(width)) throw new ModelConfigError(`--width: expected a positive integer, got ${cfg.width}`);
  if (!positiveInt(heads)) throw new ModelConfigError(`vit heads: expected a positive integer, got ${cfg.heads}`);
  if (width % heads !== 0) throw new ModelConfigError(`--width: the ViT's width ${width} must be divisible by its ${heads} attention heads`);
  if (cfg.mlpDim != null && !positiveInt(cfg.mlpDim)) throw new ModelConfigError(`vit mlpDim: expected a positive integer, got ${cfg.mlpDim}`);
  if (!positiveInt(patch)) throw new ModelConfigError(`vit patch: expected a positive integer, got ${cfg.patch}`);
  const s = cfg.inputShape;
  if (s.length !== 3) {
    throw new ModelConfigError(`--model vit needs images [height, width, channels]; this data set has examples of shape [${s.join(', ')}] (use --model mlp for tabular data)`);
  }
  if (s[0] % patch !== 0 || s[1] % patch !== 0) {
    throw new ModelConfigError(`--model vit: images ${s[0]}x${s[1]} are not divisible into ${patch}x${patch} patches`);
  }
}

/** Layer names whose outputs are the blocks' (encoder layers') outputs, in order. */
export function vitBlockLayers(arch: VitArch, depth: number): string[] {
  return Array.from({ length: depth }, (_, i) => (arch === 'glonet' ? `encoder_${i + 1}_cls` : `encoder_${i + 1}`));
}

export function buildViT(cfg: VitConfig): tf.LayersModel {
  validateVitConfig(cfg);
  const width = cfg.width ?? 128;
  const heads = cfg.heads ?? 4;
  const patch = cfg.patch ?? 4;
  const mlpDim = cfg.mlpDim ?? 2 * width;
  const l2 = cfg.l2 ?? 0;
  const reg = () => (l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined);
  // TF.js random initializers treat seed 0 as "no seed" (Math.random): layer seeds start at seed + 1.
  let seed = (cfg.seed ?? 0) + 1;
  const dense = (name: string, units: number, activation: 'relu' | 'linear' = 'linear') =>
    tf.layers.dense({
      name,
      units,
      activation,
      kernelInitializer: activation === 'relu' ? tf.initializers.heNormal({ seed: seed++ }) : tf.initializers.glorotUniform({ seed: seed++ }),
      biasInitializer: 'zeros',
      kernelRegularizer: reg(),
    });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;

  const [h, w, c] = cfg.inputShape;
  const ph = h / patch;
  const pw = w / patch;
  const input = tf.input({ shape: cfg.inputShape, name: 'input' });
  // [h, w, c] -> [h/p, p, w/p, p, c] -> [h/p, w/p, p, p, c] -> [tokens, p*p*c]: row-major patches.
  let x = apply(tf.layers.reshape({ name: 'patch_grid', targetShape: [ph, patch, pw, patch, c] }), input);
  x = apply(tf.layers.permute({ name: 'patch_order', dims: [1, 3, 2, 4, 5] }), x);
  x = apply(tf.layers.reshape({ name: 'patches', targetShape: [ph * pw, patch * patch * c] }), x);
  x = apply(dense('patch_embed', width), x);
  x = apply(new ClassToken({ name: 'class_token', seed: seed++ }), x);
  x = apply(new PositionEmbedding({ name: 'position_embed', seed: seed++ }), x);

  const outs: tf.SymbolicTensor[] = [];
  for (let l = 1; l <= cfg.depth; l++) {
    const attn = new MultiHeadSelfAttention({ name: `encoder_${l}_attn`, heads, seed, l2 });
    seed += 4; // q, k, v and out projections
    let y = apply(attn, x);
    x = apply(tf.layers.add({ name: `encoder_${l}_add1` }), [x, y]);
    x = apply(tf.layers.layerNormalization({ name: `encoder_${l}_ln1`, epsilon: 1e-5 }), x);
    y = apply(dense(`encoder_${l}_ffn1`, mlpDim, 'relu'), x);
    y = apply(dense(`encoder_${l}_ffn2`, width), y);
    x = apply(tf.layers.add({ name: `encoder_${l}_add2` }), [x, y]);
    x = apply(tf.layers.layerNormalization({ name: `encoder_${l}`, epsilon: 1e-5 }), x);
    if (cfg.arch === 'glonet') outs.push(apply(new TokenSlice({ name: `encoder_${l}_cls`, index: 0 }), x));
  }
  const headInput = cfg.arch === 'glonet'
    ? apply(new GloNet({ name: 'glonet' }), outs)
    : apply(new TokenSlice({ name: 'cls', index: 0 }), x);
  const out = apply(dense('head', cfg.outputs), headInput);
  return tf.model({ inputs: input, outputs: out, name: `vit_${cfg.arch}_${cfg.depth}` });
}

/** The `--model vit` family: `o.width` is the embedding width. */
export function buildVitFamily(o: BuildOptions, ds: Pick<Dataset, 'inputShape' | 'outputs' | 'task'>): BuiltModel {
  const arch = o.arch as VitArch;
  validateVitConfig({ arch, depth: o.depth, width: o.width, inputShape: ds.inputShape, outputs: ds.outputs });
  if (ds.task !== 'classification') throw new ModelConfigError('--model vit is an image classifier; this data set is a regression task');
  const model = buildViT({ arch, depth: o.depth, width: o.width, inputShape: ds.inputShape, outputs: ds.outputs, seed: o.seed, l2: o.l2 });
  return {
    model,
    meta: { model: 'vit', arch, depth: o.depth, task: ds.task, inputShape: ds.inputShape, outputs: ds.outputs, blockLayers: vitBlockLayers(arch, o.depth) },
  };
}
