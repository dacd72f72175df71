/**
 * Access to a trained model's blocks: their outputs (what the GloNet layer sums), the head that
 * reads the sum, and whether that head is linear (which makes per-block explanations exact).
 */
import * as tf from '@tensorflow/tfjs';
import { GloNet } from '../layers/glonet.js';
import { GlonetError } from '../errors.js';
import type { ModelMetadata } from '../model-metadata.js';

/** A model that cannot be analyzed, explained or truncated as asked; the message says why. */
export class AnalysisError extends GlonetError {
  /** 'AnalysisError'. */
  override name = 'AnalysisError';
}

/** A trained model seen as its blocks: what analysis and explanations read. */
export interface BlockView {
  /** Model from the input to every block output, in block order. */
  blocks: tf.LayersModel;
  /** The layers after the GloNet layer (GloNet models only), applied in order to the sum. */
  head: tf.layers.Layer[] | null;
  /** Whether the model has a GloNet layer (only GloNets truncate and explain). */
  isGloNet: boolean;
  /** Number of blocks. */
  count: number;
  /** The GloNet sum's last dimension (partial sums are padded to it before the head). */
  sumWidth: number;
}

/**
 * The model seen as its blocks (from `meta.blockLayers`) and, for GloNet models, its head.
 *
 * @throws {@link AnalysisError} when a block layer named in `meta` is not in the model.
 */
export function blockView(model: tf.LayersModel, meta: ModelMetadata): BlockView {
  if (meta.blockLayers.length === 0) throw new AnalysisError('the model records no block layers; was it built by glonet?');
  const outputs = meta.blockLayers.map((name) => {
    let layer: tf.layers.Layer;
    try {
      layer = model.getLayer(name);
    } catch {
      throw new AnalysisError(`the model has no layer '${name}' (its metadata names it as a block)`);
    }
    return layer.output as tf.SymbolicTensor;
  });
  const blocks = tf.model({ inputs: model.inputs, outputs });
  let head: tf.layers.Layer[] | null = null;
  let sumWidth = 0;
  const index = model.layers.findIndex((l) => l instanceof GloNet);
  if (index >= 0) {
    head = model.layers.slice(index + 1);
    const shape = model.layers[index].outputShape as Array<number | null>;
    sumWidth = shape[shape.length - 1] ?? 0;
  }
  return { blocks, head, isGloNet: head != null, count: outputs.length, sumWidth };
}

/** Run the block model on a chunk and return the block outputs as tensors (caller disposes). */
export function blockOutputs(view: BlockView, x: tf.Tensor): tf.Tensor[] {
  const out = view.blocks.predict(x);
  return Array.isArray(out) ? out : [out];
}

/** The head applied to a (partial) GloNet sum, padded to the full sum's width first (GloNet models only). */
export function applyHead(view: BlockView, sum: tf.Tensor): tf.Tensor {
  if (!view.head) throw new AnalysisError('this model has no GloNet layer, so it has no head on a block sum');
  let y = sum;
  for (const layer of view.head) y = layer.apply(y) as tf.Tensor;
  return y;
}

/** The head's kernel and bias when it is a single linear Dense layer, else null. */
export function linearHead(view: BlockView): {
  /** [width, outputs]. */
  kernel: tf.Tensor2D;
  /** [outputs], or null for a head without bias. */
  bias: tf.Tensor1D | null;
} | null {
  if (!view.head || view.head.length !== 1) return null;
  const layer = view.head[0];
  const cfg = layer.getConfig() as { activation?: string; useBias?: boolean };
  if (layer.getClassName() !== 'Dense' || (cfg.activation != null && cfg.activation !== 'linear')) return null;
  const [kernel, bias] = layer.getWeights();
  return { kernel: kernel as tf.Tensor2D, bias: (bias as tf.Tensor1D) ?? null };
}
