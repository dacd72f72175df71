/**
 * Per-block explanations: with a linear head H(s) = s K + b and the GloNet sum s = sum_l x_l,
 * the output is sum_l (x_l K) + b exactly. Block l's additive contribution is x_l K.
 */
import * as tf from '@tensorflow/tfjs';
import { AnalysisError, blockOutputs, blockView, linearHead, type BlockView } from './blocks.js';
import type { ModelMetadata } from '../model-metadata.js';

/** A batch's predictions split exactly into per-block contributions plus the head's bias. */
export interface Explanation {
  /** The model's raw output (regression value or logits), shape [rows, outputs]. */
  prediction: Float32Array;
  /** The head's bias, shape [outputs]. */
  bias: Float32Array;
  /** Each block's additive contribution, shape [rows, blocks, outputs]. */
  contributions: Float32Array;
  /** Rows explained. */
  rows: number;
  /** Blocks of the model. */
  blocks: number;
  /** Outputs of the model. */
  outputs: number;
}

/** Explain a batch of inputs; `x` is [rows, ...inputShape]. Needs a GloNet model with a linear head. */
export function explain(model: tf.LayersModel, meta: ModelMetadata, x: tf.Tensor, view: BlockView = blockView(model, meta)): Explanation {
  const head = linearHead(view);
  if (!head) throw new AnalysisError('per-block explanations need a GloNet model whose head is one linear Dense layer');
  const rows = x.shape[0];
  const width = head.kernel.shape[0];
  const outputs = head.kernel.shape[1];
  return tf.tidy(() => {
    const outs = blockOutputs(view, x).map((o) => {
      const flat = o.reshape([rows, -1]);
      const c = flat.shape[1] as number;
      return c === width ? flat : tf.pad(flat, [[0, 0], [0, width - c]]);
    });
    // [blocks, rows, width] x [width, outputs] -> [blocks, rows, outputs] -> [rows, blocks, outputs]
    const stacked = tf.stack(outs);
    const contrib = tf.matMul(stacked.reshape([-1, width]), head.kernel).reshape([outs.length, rows, outputs]).transpose([1, 0, 2]);
    const bias = head.bias ?? tf.zeros([outputs]);
    const prediction = model.predict(x) as tf.Tensor;
    return {
      prediction: prediction.dataSync() as Float32Array,
      bias: bias.dataSync() as Float32Array,
      contributions: contrib.dataSync() as Float32Array,
      rows, blocks: outs.length, outputs,
    };
  });
}
