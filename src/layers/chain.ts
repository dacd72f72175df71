/**
 * GloNet on any chain of blocks: `stem -> block_1 -> ... -> block_L`, the head reads the sum of
 * every block output (zero-padded in the last dimension when widths differ).
 */
import * as tf from '@tensorflow/tfjs';
import { GloNet } from './glonet.js';

/** A block: any TF.js layer, or a function from a symbolic tensor to a symbolic tensor. */
export type Block = tf.layers.Layer | ((x: tf.SymbolicTensor) => tf.SymbolicTensor);

/** A GloNet built from a chain of blocks: what {@link glonet} takes. */
export interface GloNetChainArgs {
  /** Shape of one example, without the batch dimension. */
  inputShape: number[];
  /** Optional stem applied before the first block (a block in the same sense). */
  stem?: Block;
  /** The chain: block l reads block l-1's output. */
  blocks: Block[];
  /**
   * Optional embedding applied to each block output before the sum (for example global average
   * pooling for convolutional blocks). Must be linear for explanations to stay exact.
   */
  embed?: (x: tf.SymbolicTensor, index: number) => tf.SymbolicTensor;
  /** The head reading the GloNet sum; typically a Dense layer. */
  head: Block;
  /** The model's name. */
  name?: string;
}

export function applyBlock(block: Block, x: tf.SymbolicTensor): tf.SymbolicTensor {
  const out = block instanceof tf.layers.Layer ? block.apply(x) : block(x);
  if (Array.isArray(out) || !(out instanceof tf.SymbolicTensor)) {
    throw new TypeError('glonet(): every block must map one symbolic tensor to one symbolic tensor');
  }
  return out;
}

/**
 * Build a `tf.LayersModel` whose head reads the GloNet sum of the blocks' outputs.
 * The sum is a {@link GloNet} layer named `glonet`; the model saves and loads like any TF.js
 * model once this package has been imported (which registers the layer). The model families of
 * this package (src/models) build their GloNet architectures with this function too.
 */
export function glonet(args: GloNetChainArgs): tf.LayersModel {
  if (args.blocks.length === 0) throw new RangeError('glonet(): needs at least one block');
  const input = tf.input({ shape: args.inputShape, name: 'input' });
  let x = args.stem ? applyBlock(args.stem, input) : input;
  const outputs: tf.SymbolicTensor[] = [];
  args.blocks.forEach((block, i) => {
    x = applyBlock(block, x);
    outputs.push(args.embed ? args.embed(x, i) : x);
  });
  const sum = new GloNet({ name: 'glonet' }).apply(outputs) as tf.SymbolicTensor;
  const y = applyBlock(args.head, sum);
  return tf.model({ inputs: input, outputs: y, name: args.name });
}
