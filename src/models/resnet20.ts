/**
 * The ResNet20-shaped CNN family (reference-notes.md, "Canonical architectures"), mirroring the
 * `CNN` class of peers/pytorch_peer.py so parameter counts and shapes line up with PyTorch.
 *
 * Depth follows ResNet naming: depth = 6n + 2 (20, 32, 44, 56, 110), n two-conv blocks per stage.
 *
 *   stem      conv3x3 -> 16 channels, no bias (the peer has no stem bias for any arch), linear
 *   stages    16, 32, 64 channels, n blocks each; stride 2 in the first conv of stages 2 and 3
 *   vanilla        block: h = conv(relu(BN(conv(relu(BN(x))))));  x = h
 *   vanilla-nobn   the same without BN
 *   resnetv2       pre-activation block: x = shortcut(x) + h, shortcut = identity, or a 1x1 conv
 *                  with stride 2 (no bias) where the stage changes
 *   resnetv2-nobn  the same without BN
 *   final     BN + ReLU for vanilla and resnetv2, ReLU for the -nobn variants
 *   head      global average pool, Dense(outputs)
 *   glonet    no BN, no skips: every conv+ReLU is a block (6n blocks, 18 at depth 20, conv biases
 *             on); each block output is global-average-pooled and summed by the GloNet layer,
 *             which zero-pads the 16- and 32-channel vectors to 64. Pooling is linear, so this is
 *             the paper's "pool to 8x8, pad to 64 channels, sum" embedding followed by the head's
 *             global pool, computed more cheaply. Head: Dense(outputs) on the sum.
 *
 * The baselines end, as every pre-activation ResNet (and the peer) does, with a final BN + ReLU
 * before the pool (ReLU alone for the -nobn variants): without it the residual stream reaches the
 * head unnormalized and ResNetv2 diverges at SGD lr 0.1. As in the peer, the baselines' convs
 * have no bias (BN or not), the glonet convs have one.
 * Stride-2 3x3 convs pad one pixel on every side as PyTorch's `padding=1` does (TF's 'same' would
 * pad only after, shifting the sampling grid by one pixel relative to the 1x1 shortcut).
 * BatchNorm uses PyTorch's settings: momentum 0.1 (TF.js momentum 0.9) and epsilon 1e-5.
 * He-normal conv and head kernels (seeded, one seed per layer), zero biases, L2 on kernels.
 * Works on any [h, w, c] image: 28x28x1 (stages 28 -> 14 -> 7) and 32x32x3 (32 -> 16 -> 8).
 */
import * as tf from '@tensorflow/tfjs';
import { GloNet } from '../layers/glonet.js';
import { heNormal, lastDim } from './init.js';
import { ModelConfigError } from './mlp.js';
import type { BuildOptions, BuiltModel } from './index.js';
import type { Dataset } from '../data/dataset.js';

export const RESNET20_ARCHS = ['glonet', 'resnetv2', 'resnetv2-nobn', 'vanilla', 'vanilla-nobn'] as const;
export type ResNet20Arch = (typeof RESNET20_ARCHS)[number];
/** ResNet naming: 6n + 2 for n = 3, 5, 7, 9, 18 two-conv blocks per stage. */
export const RESNET_DEPTHS = [20, 32, 44, 56, 110] as const;

export interface ResNet20Config {
  arch: ResNet20Arch;
  /** 20, 32, 44, 56 or 110. */
  depth: number;
  /** [height, width, channels]. */
  inputShape: number[];
  outputs: number;
  /** L2 coefficient on kernels. Default 5e-5 (weight decay 1e-4). */
  l2?: number;
  seed?: number;
}

const STAGE_CHANNELS = [16, 32, 64];

export function validateResNet20Config(cfg: Pick<ResNet20Config, 'arch' | 'depth' | 'inputShape'>): void {
  if (!(RESNET20_ARCHS as readonly string[]).includes(cfg.arch)) {
    throw new ModelConfigError(`--arch: expected one of ${RESNET20_ARCHS.join(', ')} for --model resnet20, got '${cfg.arch}'`);
  }
  if (!(RESNET_DEPTHS as readonly number[]).includes(cfg.depth)) {
    throw new ModelConfigError(`--depth: expected one of ${RESNET_DEPTHS.join(', ')} for --model resnet20 (ResNet naming, 6n+2 layers), got ${cfg.depth}`);
  }
  const s = cfg.inputShape;
  if (s.length !== 3 || s.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ModelConfigError(`--model resnet20 needs images [height, width, channels]; this data set has examples of shape [${s.join(', ')}] (use --model mlp for tabular data)`);
  }
}

/** Two-conv blocks per stage at this depth. */
export function resnetBlocksPerStage(depth: number): number {
  return (depth - 2) / 6;
}

/** Number of analysis blocks: 6n conv blocks for glonet, 3n two-conv blocks for the baselines. */
export function resnet20BlockCount(arch: ResNet20Arch, depth: number): number {
  const n = resnetBlocksPerStage(depth);
  return arch === 'glonet' ? 6 * n : 3 * n;
}

/** Layer names whose outputs are the blocks' outputs, in order (what analysis reads). */
export function resnet20BlockLayers(arch: ResNet20Arch, depth: number): string[] {
  const count = resnet20BlockCount(arch, depth);
  return Array.from({ length: count }, (_, i) => {
    const b = i + 1;
    if (arch === 'glonet') return `block_${b}_pool`;
    return arch.startsWith('resnetv2') ? `block_${b}` : `block_${b}_conv2`;
  });
}

export function buildResNet20(cfg: ResNet20Config): tf.LayersModel {
  validateResNet20Config(cfg);
  const l2 = cfg.l2 ?? 5e-5;
  const n = resnetBlocksPerStage(cfg.depth);
  // TF.js random initializers treat seed 0 as "no seed" (Math.random): layer seeds start at seed + 1.
  let seed = (cfg.seed ?? 0) + 1;
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const reg = () => (l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined);
  /** conv with PyTorch padding: (k - 1) / 2 pixels on every side. */
  const conv = (x: tf.SymbolicTensor, name: string, filters: number, o: { kernel?: number; stride?: number; bias: boolean; relu?: boolean }): tf.SymbolicTensor => {
    const kernel = o.kernel ?? 3;
    const stride = o.stride ?? 1;
    let padding: 'same' | 'valid' = 'same';
    if (stride !== 1 && kernel > 1) {
      x = apply(tf.layers.zeroPadding2d({ name: `${name}_pad`, padding: (kernel - 1) / 2 }), x);
      padding = 'valid';
    }
    return apply(tf.layers.conv2d({
      name,
      filters,
      kernelSize: kernel,
      strides: stride,
      padding,
      useBias: o.bias,
      activation: o.relu ? 'relu' : 'linear',
      kernelInitializer: heNormal(kernel * kernel * lastDim(x), seed++),
      biasInitializer: 'zeros',
      kernelRegularizer: reg(),
    }), x);
  };
  const bn = (x: tf.SymbolicTensor, name: string) =>
    apply(tf.layers.batchNormalization({ name, momentum: 0.9, epsilon: 1e-5 }), x);
  const relu = (x: tf.SymbolicTensor, name: string) => apply(tf.layers.activation({ name, activation: 'relu' }), x);

  const input = tf.input({ shape: cfg.inputShape, name: 'input' });
  let x = conv(input, 'stem', 16, { bias: false });

  if (cfg.arch === 'glonet') {
    const pooled: tf.SymbolicTensor[] = [];
    let b = 0;
    STAGE_CHANNELS.forEach((channels, stage) => {
      for (let i = 0; i < 2 * n; i++) {
        b++;
        const stride = stage > 0 && i === 0 ? 2 : 1;
        x = conv(x, `block_${b}`, channels, { stride, bias: true, relu: true });
        pooled.push(apply(tf.layers.globalAveragePooling2d({ name: `block_${b}_pool` }), x));
      }
    });
    x = apply(new GloNet({ name: 'glonet' }), pooled);
  } else {
    const useBn = cfg.arch === 'vanilla' || cfg.arch === 'resnetv2';
    const skip = cfg.arch.startsWith('resnetv2');
    let channelsIn = 16;
    let b = 0;
    STAGE_CHANNELS.forEach((channels, stage) => {
      for (let i = 0; i < n; i++) {
        b++;
        const stride = stage > 0 && i === 0 ? 2 : 1;
        let h = x;
        for (const k of [1, 2]) {
          if (useBn) h = bn(h, `block_${b}_bn${k}`);
          h = relu(h, `block_${b}_relu${k}`);
          h = conv(h, `block_${b}_conv${k}`, channels, { stride: k === 1 ? stride : 1, bias: false });
        }
        if (skip) {
          const shortcut = stride !== 1 || channelsIn !== channels
            ? conv(x, `block_${b}_shortcut`, channels, { kernel: 1, stride, bias: false })
            : x;
          x = apply(tf.layers.add({ name: `block_${b}` }), [shortcut, h]);
        } else {
          x = h;
        }
        channelsIn = channels;
      }
    });
    // The final BN-ReLU of a pre-activation network (ReLU alone without BN), as in the peer.
    if (useBn) x = bn(x, 'final_bn');
    x = relu(x, 'final_relu');
    x = apply(tf.layers.globalAveragePooling2d({ name: 'pool' }), x);
  }
  const y = apply(tf.layers.dense({
    name: 'head',
    units: cfg.outputs,
    kernelInitializer: heNormal(lastDim(x), seed++),
    biasInitializer: 'zeros',
    kernelRegularizer: reg(),
  }), x);
  return tf.model({ inputs: input, outputs: y, name: `resnet${cfg.depth}_${cfg.arch}` });
}

/** The `--model resnet20` family (`--width` does not apply: the channels are 16/32/64). */
export function buildResNet20Family(o: BuildOptions, ds: Pick<Dataset, 'inputShape' | 'outputs' | 'task'>): BuiltModel {
  const arch = o.arch as ResNet20Arch;
  validateResNet20Config({ arch, depth: o.depth, inputShape: ds.inputShape });
  if (ds.task !== 'classification') throw new ModelConfigError('--model resnet20 is an image classifier; this data set is a regression task');
  const model = buildResNet20({ arch, depth: o.depth, inputShape: ds.inputShape, outputs: ds.outputs, l2: o.l2, seed: o.seed });
  return {
    model,
    meta: { model: 'resnet20', arch, depth: o.depth, task: ds.task, inputShape: ds.inputShape, outputs: ds.outputs, blockLayers: resnet20BlockLayers(arch, o.depth) },
  };
}
