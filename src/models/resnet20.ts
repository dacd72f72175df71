/**
 * The ResNet20-shaped CNN family (docs/architecture.md, "Canonical architectures"), built layer for
 * layer as the PyTorch peer builds it (bench/peer.ts), so parameter counts and shapes line up with
 * PyTorch (test/models-images.test.ts compares them).
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
 *             Norm-free options (src/layers/normfree.ts, issue 24; all off by default, the paper's
 *             network): `weightStd` makes every conv (stem included) a Scaled-Weight-Standardized
 *             WSConv2D; `centerBlocks` subtracts from each pooled block output its mean over
 *             training images at initialization (fitted by `fitToData`, then fixed);
 *             `blockScale` multiplies each (centered) pooled output by a learnable scalar
 *             initialized at 1 or 1/L. Each block's contribution to the sum is then the output of
 *             its last such layer: block_b_pool, block_b_center or block_b_scale.
 *   glonet-bn GloNet with batch normalization in its blocks, as the authors' CNN notebook has it:
 *             their blocks are ResNetv2's pre-activation ones with the skips removed, so every conv
 *             is a block BN -> ReLU -> conv (no bias), and each block's (conv) output is pooled,
 *             padded and summed as glonet's (the notebook's shape adapter, an untrained 1x1 conv
 *             built in every forward pass, is not repeated; it summed only the stem and the three
 *             stage outputs, this sums every block, as glonet does). No final BN-ReLU: the head
 *             reads the sum, as glonet's.
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
import { glonet } from '../layers/chain.js';
import { BlockScale, FixedCenter, WS_RELU_GAMMA, WSConv2D } from '../layers/normfree.js';
import type { ModelMetadata } from '../model-metadata.js';
import {
  checkArch, checkClassifier, checkHeadInit, checkImageShape, checkNormFree, ModelConfigError, seedCounter, withMetadata,
  type Defaults, type ModelFamily, type ModelSize,
} from './family.js';
import { headInitializer, heNormal, lastDim } from './init.js';
import type { HeadInit, NormFreeOptions } from '../vocabulary.js';

/** The ResNet20 family's architectures ('glonet' first, the default). */
export const RESNET20_ARCHS = ['glonet', 'glonet-bn', 'resnetv2', 'resnetv2-nobn', 'vanilla', 'vanilla-nobn'] as const;
/** One of {@link RESNET20_ARCHS}. */
export type ResNet20Arch = (typeof RESNET20_ARCHS)[number];
/** ResNet naming: 6n + 2 for n = 3, 5, 7, 9, 18 two-conv blocks per stage. */
export const RESNET_DEPTHS = [20, 32, 44, 56, 110] as const;

/** A ResNet20-shaped CNN of the family: architecture, depth and the data's shape. */
export interface ResNet20Config extends NormFreeOptions {
  /** The architecture. */
  arch: ResNet20Arch;
  /** 20, 32, 44, 56 or 110. */
  depth: number;
  /** [height, width, channels]. */
  inputShape: number[];
  /** Classes. */
  outputs: number;
  /** L2 coefficient on kernels. Default 5e-5 (weight decay 1e-4). */
  l2?: number;
  /** Seed of the initializers. Default 0. */
  seed?: number;
  /** GloNet only: the head kernel's initialization (default 'paper', He-normal). */
  headInit?: HeadInit;
}

/** Channels of the three stages. */
export const STAGE_CHANNELS = [16, 32, 64] as const;

/** Parameters and per-image activations of a ResNet of the family at depth 6n + 2, before it is built. */
export function resnet20Size(depth: number, inputShape: number[], outputs: number): ModelSize {
  const [h, w, c] = inputShape;
  const n = Math.max(1, Math.round((depth - 2) / 6));
  let parameters = 9 * c * 16;
  let activations = h * w * c + h * w * 16;
  let cin = 16;
  STAGE_CHANNELS.forEach((ch, stage) => {
    const side = 2 ** stage;
    const maps = Math.ceil(h / side) * Math.ceil(w / side) * ch;
    parameters += 9 * cin * ch + (2 * n - 1) * 9 * ch * ch + 2 * n * (ch + 4 * ch) + cin * ch;
    // Each conv's output and its activation (BN and ReLU): two maps per conv kept for the backward pass.
    activations += 2 * n * 2 * maps;
    cin = ch;
  });
  return { parameters: parameters + 64 * outputs + outputs, activations };
}

/** The norm-free options --arch glonet takes in this family. */
const NORM_FREE = ['blockScale', 'weightStd', 'centerBlocks'] as const;

function validateResNet20Config(cfg: Pick<ResNet20Config, 'arch' | 'depth' | 'inputShape' | 'headInit' | keyof NormFreeOptions>): void {
  checkArch('resnet20', RESNET20_ARCHS, cfg.arch);
  checkHeadInit(cfg.arch, cfg.headInit);
  checkNormFree('resnet20', cfg.arch, cfg, NORM_FREE);
  if (!(RESNET_DEPTHS as readonly number[]).includes(cfg.depth)) {
    throw new ModelConfigError(`--depth: expected one of ${RESNET_DEPTHS.join(', ')} for --model resnet20 (ResNet naming, 6n+2 layers), got ${cfg.depth}`);
  }
  checkImageShape('resnet20', cfg.inputShape);
}

/** Two-conv blocks per stage at this depth. */
function resnetBlocksPerStage(depth: number): number {
  return (depth - 2) / 6;
}

/** Number of analysis blocks: 6n conv blocks for glonet and glonet-bn, 3n two-conv blocks for the baselines. */
function resnet20BlockCount(arch: ResNet20Arch, depth: number): number {
  const n = resnetBlocksPerStage(depth);
  return arch.startsWith('glonet') ? 6 * n : 3 * n;
}

/**
 * Layer names whose outputs are the blocks' outputs, in order (what analysis reads): for a GloNet
 * each block's contribution to the sum (pooled, then centered and scaled when those are on).
 */
export function resnet20BlockLayers(arch: ResNet20Arch, depth: number, nf: NormFreeOptions = {}): string[] {
  const count = resnet20BlockCount(arch, depth);
  const last = nf.blockScale != null && nf.blockScale !== 'none' ? 'scale' : nf.centerBlocks ? 'center' : 'pool';
  return Array.from({ length: count }, (_, i) => {
    const b = i + 1;
    if (arch.startsWith('glonet')) return `block_${b}_${last}`;
    return arch.startsWith('resnetv2') ? `block_${b}` : `block_${b}_conv2`;
  });
}

/** Builds a ResNet20-shaped CNN of the family (stem, three stages of 16/32/64 channels, head). */
export function buildResNet20(cfg: ResNet20Config): tf.LayersModel {
  validateResNet20Config(cfg);
  return buildResNetOfDepth(cfg);
}

/**
 * The same network at any depth 6n + 2 >= 8 (n >= 1 blocks per stage), for tests and benchmarks
 * that want a shallower one than the ResNet depths `--depth` accepts.
 */
export function buildResNetOfDepth(cfg: ResNet20Config): tf.LayersModel {
  checkArch('resnet20', RESNET20_ARCHS, cfg.arch);
  checkHeadInit(cfg.arch, cfg.headInit);
  checkNormFree('resnet20', cfg.arch, cfg, NORM_FREE);
  if (!(Number.isInteger((cfg.depth - 2) / 6) && cfg.depth >= 8)) throw new ModelConfigError(`depth must be 6n + 2 >= 8, got ${cfg.depth}`);
  checkImageShape('resnet20', cfg.inputShape);
  const l2 = cfg.l2 ?? 5e-5;
  const n = resnetBlocksPerStage(cfg.depth);
  const nextSeed = seedCounter(cfg.seed);
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const reg = () => (l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined);
  /**
   * conv with PyTorch padding: (k - 1) / 2 pixels on every side; with `ws`, a WSConv2D whose fixed
   * gain is `ws.gamma` (1 after a linear layer, WS_RELU_GAMMA after a ReLU).
   */
  const conv = (x: tf.SymbolicTensor, name: string, filters: number, o: { kernel?: number; stride?: number; bias: boolean; relu?: boolean; ws?: { gamma: number } }): tf.SymbolicTensor => {
    const kernel = o.kernel ?? 3;
    const stride = o.stride ?? 1;
    let padding: 'same' | 'valid' = 'same';
    if (stride !== 1 && kernel > 1) {
      x = apply(tf.layers.zeroPadding2d({ name: `${name}_pad`, padding: (kernel - 1) / 2 }), x);
      padding = 'valid';
    }
    if (o.ws) {
      return apply(new WSConv2D({
        name, filters, kernelSize: kernel, strides: stride, padding, useBias: o.bias, activation: o.relu ? 'relu' : 'linear',
        gamma: o.ws.gamma, l2, seed: nextSeed(),
      }), x);
    }
    return apply(tf.layers.conv2d({
      name,
      filters,
      kernelSize: kernel,
      strides: stride,
      padding,
      useBias: o.bias,
      activation: o.relu ? 'relu' : 'linear',
      kernelInitializer: heNormal(kernel * kernel * lastDim(x), nextSeed()),
      biasInitializer: 'zeros',
      kernelRegularizer: reg(),
    }), x);
  };
  const bn = (x: tf.SymbolicTensor, name: string) =>
    apply(tf.layers.batchNormalization({ name, momentum: 0.9, epsilon: 1e-5 }), x);
  const relu = (x: tf.SymbolicTensor, name: string) => apply(tf.layers.activation({ name, activation: 'relu' }), x);
  const ws = cfg.weightStd === true;
  const stem = (x: tf.SymbolicTensor) => conv(x, 'stem', 16, { bias: false, ...(ws ? { ws: { gamma: 1 } } : {}) });
  const head = (x: tf.SymbolicTensor) => apply(tf.layers.dense({
    name: 'head',
    units: cfg.outputs,
    kernelInitializer: headInitializer({ kind: cfg.headInit ?? 'paper', base: 'he', fanIn: lastDim(x), fanOut: cfg.outputs, blocks: 6 * n, seed: nextSeed() }),
    biasInitializer: 'zeros',
    kernelRegularizer: reg(),
  }), x);
  const name = `resnet${cfg.depth}_${cfg.arch}`;

  if (cfg.arch === 'glonet' || cfg.arch === 'glonet-bn') {
    const withBn = cfg.arch === 'glonet-bn';
    const blocks = STAGE_CHANNELS.flatMap((channels, stage) => Array.from({ length: 2 * n }, (_, i) => {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const b = stage * 2 * n + i + 1;
      if (withBn) {
        return (x: tf.SymbolicTensor) => conv(relu(bn(x, `block_${b}_bn`), `block_${b}_relu`), `block_${b}`, channels, { stride, bias: false });
      }
      // Block 1 reads the stem's linear output, the others a ReLU's.
      return (x: tf.SymbolicTensor) => conv(x, `block_${b}`, channels, { stride, bias: true, relu: true, ...(ws ? { ws: { gamma: b === 1 ? 1 : WS_RELU_GAMMA } } : {}) });
    }));
    // Global average pooling is linear: pooling each block output before the sum is the paper's
    // "pool to the last stage's size, pad to 64 channels, sum", then the head's global pool.
    // Centering and scaling are linear too.
    const scale = cfg.blockScale != null && cfg.blockScale !== 'none' ? (cfg.blockScale === '1' ? 1 : 1 / (6 * n)) : null;
    const embed = (x: tf.SymbolicTensor, i: number) => {
      let y = apply(tf.layers.globalAveragePooling2d({ name: `block_${i + 1}_pool` }), x);
      if (cfg.centerBlocks) y = apply(new FixedCenter({ name: `block_${i + 1}_center` }), y);
      if (scale != null) y = apply(new BlockScale({ name: `block_${i + 1}_scale`, init: scale }), y);
      return y;
    };
    return glonet({ inputShape: cfg.inputShape, stem, blocks, embed, head, name });
  }

  const useBn = cfg.arch === 'vanilla' || cfg.arch === 'resnetv2';
  const skip = cfg.arch.startsWith('resnetv2');
  const input = tf.input({ shape: cfg.inputShape, name: 'input' });
  let x = stem(input);
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
  return tf.model({ inputs: input, outputs: head(x), name });
}

/** The authors' CNN notebook: SGD lr 0.1, momentum 0.9, weight decay 1e-4 (= L2 5e-5 on sum(w^2)), x0.1 every quarter, batch 128. */
const NOTEBOOK = { width: 16, epochs: 200, batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, l2: 5e-5, schedule: 'step' } as const;
/**
 * Adam lr 1e-3, constant, with the notebook's batch and L2. Constant rather than the notebook's
 * steps: GloNet on Fashion-MNIST (10k, 10 epochs) ends at 80.4% (best 85.5%) with it and at 78.9%
 * with the steps, which cut the rate after epochs 2, 4 and 6 and freeze it from epoch 5 on.
 */
const ADAM = { ...NOTEBOOK, optimizer: 'adam', lr: 1e-3, momentum: 0, schedule: 'constant' } as const;

/**
 * Each architecture's protocol, chosen by measurement (docs/protocol-notes.md): the BN networks
 * train with the notebook's SGD; the networks without BN (GloNet among them) do not, and take
 * Adam; GloNet with Scaled Weight Standardization (issue 24), which makes it learn as fast as the
 * BN ResNets early on (the paper's plain convs: --no-weight-std).
 */
const RESNET20_DEFAULTS: Record<ResNet20Arch, Defaults> = {
  glonet: {
    ...ADAM,
    normFree: { weightStd: true },
    reason: 'no BN: SGD stalls or diverges (MNIST, 3,200 digits, 3 epochs: SGD 0.1 20%, 0.01 20%, with warm-up or clipping ' +
      '26-32%; with weight standardization SGD 0.1 diverges in the second Fashion-MNIST epoch), Adam 1e-3 trains; with Scaled ' +
      'Weight Standardization of the convs (--weight-std; --no-weight-std is the paper\'s network) it keeps up with ResNetv2 ' +
      '(Fashion-MNIST 10k, 10 epochs, 3 seeds: 70.8, 82.7 and 84.7% after epochs 1, 3 and 10 against ResNetv2\'s 53.1, 83.8 ' +
      'and 84.9%, and 80% at epoch 3 in every seed as ResNetv2, with epochs 0.7x as long; the paper\'s network: 53.1, 76.4, ' +
      '84.7%, seed 0)',
  },
  'glonet-bn': {
    ...NOTEBOOK,
    lr: 0.01,
    reason: 'BN in every block, as in the authors\' CNN notebook, and the notebook\'s SGD at a tenth of its rate: at lr 0.1 ' +
      'the head, which reads the sum of 18 unnormalized conv outputs, diverges (NaN in the first epoch on 3,200 MNIST digits); ' +
      'lr 0.01 reaches 66% after 2 epochs there',
  },
  vanilla: { ...NOTEBOOK, reason: 'BN: the authors\' CNN notebook protocol trains it (MNIST, 3,200 digits, 3 epochs: 90%)' },
  'vanilla-nobn': {
    ...ADAM,
    reason: 'no BN: SGD stays at chance (MNIST, 3,200 digits, 3 epochs: lr 0.1 8%, 0.03 18%, 0.01 10%); Adam 1e-3: 85%',
  },
  resnetv2: { ...NOTEBOOK, reason: 'BN: the authors\' CNN notebook protocol trains it (MNIST, 3,200 digits, 3 epochs: 56%)' },
  'resnetv2-nobn': {
    ...ADAM,
    reason: 'no BN: SGD lr 0.1 diverges in the 4th step (the residual stream grows block by block), 0.01 reaches 26% ' +
      '(MNIST, 3,200 digits, 3 epochs); Adam 1e-3: 41%',
  },
};

/** Training images the fixed block centers are the mean over (the first ones of the training split). */
export const CENTER_IMAGES = 1024;

/**
 * `centerBlocks`: sets each block_b_center to the mean of block b's pooled output over the first
 * {@link CENTER_IMAGES} of `rows` images (the model at initialization, centers zero before).
 */
export function fitBlockCenters(model: tf.LayersModel, meta: Pick<ModelMetadata, 'depth' | 'inputShape'>, x: Float32Array, rows: number): void {
  const count = 6 * resnetBlocksPerStage(meta.depth);
  const pools = Array.from({ length: count }, (_, i) => model.getLayer(`block_${i + 1}_pool`).output as tf.SymbolicTensor);
  const probe = tf.model({ inputs: model.inputs, outputs: pools });
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  const n = Math.min(rows, CENTER_IMAGES);
  const sums = pools.map((p) => new Float64Array(p.shape[1] as number));
  for (let r0 = 0; r0 < n; r0 += 128) {
    const m = Math.min(128, n - r0);
    tf.tidy(() => {
      const batch = tf.tensor(x.subarray(r0 * size, (r0 + m) * size), [m, ...meta.inputShape]);
      const outs = probe.predict(batch) as tf.Tensor[];
      outs.forEach((o, k) => {
        const v = o.sum(0).dataSync();
        for (let c = 0; c < v.length; c++) sums[k][c] += v[c];
      });
    });
  }
  sums.forEach((s, k) => {
    const layer = model.getLayer(`block_${k + 1}_center`);
    layer.setWeights([tf.tensor1d(Float32Array.from(s, (v) => v / n))]);
  });
}

/** `--model resnet20` (`--width` does not apply: the channels are 16/32/64). */
export const resnet20Family: ModelFamily = {
  name: 'resnet20',
  archs: RESNET20_ARCHS,
  depthHelp: 'resnet20: 20, 32, 44, 56 or 110 (6n+2)',
  defaults: (arch) => RESNET20_DEFAULTS[arch as ResNet20Arch],
  normFreeOptions: NORM_FREE,
  build(o, data) {
    const arch = o.arch as ResNet20Arch;
    const nf: NormFreeOptions = o.normFree ?? {};
    validateResNet20Config({ arch, depth: o.depth, inputShape: data.inputShape, headInit: o.headInit, ...nf });
    checkClassifier('resnet20', data);
    return withMetadata(resnet20Family, o, data, buildResNet20({ arch, depth: o.depth, inputShape: data.inputShape, outputs: data.outputs, l2: o.l2, seed: o.seed, headInit: o.headInit, ...nf }));
  },
  blockLayers: (arch, depth, nf) => resnet20BlockLayers(arch as ResNet20Arch, depth, nf),
  fitToData(model, meta, x, rows) {
    if (meta.normFree?.centerBlocks) fitBlockCenters(model, meta, x, rows);
  },
  limits: { depth: { max: RESNET_DEPTHS[RESNET_DEPTHS.length - 1], why: 'ResNet naming: 20, 32, 44, 56 or 110' } },
  size: (o, data) => resnet20Size(o.depth, data.inputShape, data.outputs),
};
