/**
 * What glonet keeps with a model (model.json's `userDefinedMetadata.glonet`) and a model loaded
 * with it: types only, shared by the builders, training, analysis and both entries (Node's
 * ./model-io.ts reads and writes the files; the browser's ./browser/load-model.ts fetches them).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Standardization } from './data/dataset.js';
import type { TableEncoding } from './data/table-encoding.js';
import type { NormFreeOptions, Task } from './vocabulary.js';

/** What glonet stores in model.json's `userDefinedMetadata.glonet`. */
export interface ModelMetadata {
  /** The model family ('mlp', 'resnet20', 'vit', or a registered one). */
  model: string;
  /** The architecture within the family ('glonet', 'resnetv2', ...). */
  arch: string;
  /** The depth the model was built with (the family's meaning of depth). */
  depth: number;
  /** 'regression' or 'classification'. */
  task: Task;
  /** Shape of one example, without the batch dimension. */
  inputShape: number[];
  /** Model outputs: classes, or 1 for regression. */
  outputs: number;
  /** Layer names whose outputs are the blocks' outputs, in order (what analysis reads). */
  blockLayers: string[];
  /** GloNets trained without normalization: the options beyond the paper's plain sum that the model was built with (absent: none). */
  normFree?: NormFreeOptions;
  /** Tabular data: how raw columns are scaled before they reach the model. */
  standardization?: Standardization;
  /** Class names, when the data set has them. */
  classNames?: string[];
  /**
   * Tables read column by column (CSV): how raw columns become the inputs and what the outputs
   * mean (src/data/table-encoding.ts). Predict, analysis and the page apply it to raw rows.
   */
  encoding?: TableEncoding;
  /** For truncated models: the number of blocks kept. */
  truncatedFrom?: {
    /** Blocks kept. */
    blocks: number;
    /** Blocks of the full model. */
    of: number;
  };
  /** The training epoch whose weights these are (written by glonet train and truncate). */
  epoch?: number;
}

/** A TF.js model with glonet's metadata. */
export interface LoadedModel {
  /** The TF.js model. */
  model: tf.LayersModel;
  /** glonet's metadata (from model.json). */
  meta: ModelMetadata;
}
