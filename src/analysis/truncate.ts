/**
 * Truncation without retraining: a model whose GloNet layer sums only the first K block outputs.
 * It shares the trained layers, so the blocks after K (and their weights) simply drop out.
 */
import * as tf from '@tensorflow/tfjs';
import { GloNet } from '../layers/glonet.js';
import { AnalysisError, blockView } from './blocks.js';
import type { LoadedModel, ModelMetadata } from '../model-metadata.js';

/**
 * A GloNet model that sums only its first `k` block outputs, sharing the trained layers (no
 * retraining); its test error is the truncation curve's point k.
 *
 * @returns the truncated model and its metadata (`truncatedFrom` set).
 * @throws {@link AnalysisError} for a model that is not a GloNet or a `k` out of range.
 */
export function truncateModel(model: tf.LayersModel, meta: ModelMetadata, k: number): LoadedModel {
  const view = blockView(model, meta);
  if (!view.isGloNet) {
    throw new AnalysisError(`--blocks: only GloNet models can be truncated without retraining (this one is ${meta.model}/${meta.arch})`);
  }
  if (!Number.isInteger(k) || k < 1 || k > view.count) {
    throw new AnalysisError(`--blocks: expected an integer from 1 to ${view.count} (the model's blocks), got ${k}`);
  }
  const outs = meta.blockLayers.slice(0, k).map((name) => model.getLayer(name).output as tf.SymbolicTensor);
  // Keep the full sum's width: the head reads it, even when the first K blocks are narrower.
  let y = new GloNet({ name: 'glonet', width: view.sumWidth }).apply(outs) as tf.SymbolicTensor;
  for (const layer of view.head!) y = layer.apply(y) as tf.SymbolicTensor;
  const truncated = tf.model({ inputs: model.inputs, outputs: y, name: `${model.name}_first${k}` });
  const of = meta.truncatedFrom?.of ?? view.count;
  return {
    model: truncated,
    meta: { ...meta, blockLayers: meta.blockLayers.slice(0, k), truncatedFrom: { blocks: k, of } },
  };
}
