/**
 * Loading a glonet model over HTTP (in a browser, or anywhere `fetch` works): the same
 * `{ model, meta }` as the Node `loadModel(dir)`, from a URL of a model folder or its model.json.
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedModel, ModelMetadata } from '../model-metadata.js';
// Importing the layers registers them for deserialization.
import '../layers/index.js';

/**
 * Loads a model saved by glonet from a URL: `url` is the model folder (`.../model/`) or its
 * `model.json`; relative URLs follow `fetch`.
 *
 * @throws Error when model.json has no glonet metadata.
 */
export async function loadModel(url: string, options?: tf.io.LoadOptions): Promise<LoadedModel> {
  const modelJson = url.endsWith('.json') ? url : `${url.replace(/\/+$/, '')}/model.json`;
  const model = await tf.loadLayersModel(modelJson, options);
  const meta = (model.getUserDefinedMetadata() as { glonet?: ModelMetadata } | undefined)?.glonet;
  if (!meta) throw new Error(`${modelJson}: model.json has no glonet metadata (was it written by glonet?)`);
  return { model, meta };
}
