/**
 * Saving and loading TF.js layers models on the file system: `DIR/model.json` + `DIR/weights.bin`
 * in the standard TF.js format (the files `tf.loadLayersModel` reads over HTTP in a browser).
 * Plain `@tensorflow/tfjs` has no `file://` handler in Node, so this module provides one.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic } from './io.js';
import type { Standardization, Task } from './data/dataset.js';
// Importing the layers registers them for deserialization.
import './layers/index.js';

/** What glonet stores in model.json's `userDefinedMetadata.glonet`. */
export interface ModelMetadata {
  model: string;
  arch: string;
  depth: number;
  task: Task;
  inputShape: number[];
  outputs: number;
  /** Layer names whose outputs are the blocks' outputs, in order (what analysis reads). */
  blockLayers: string[];
  standardization?: Standardization;
  classNames?: string[];
  /** For truncated models: the number of blocks kept. */
  truncatedFrom?: { blocks: number; of: number };
}

const WEIGHTS_FILE = 'weights.bin';

function artifactsToFiles(artifacts: tf.io.ModelArtifacts): { json: string; weights: Uint8Array } {
  const weights = artifacts.weightData
    ? new Uint8Array(tf.io.concatenateArrayBuffers(
      Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData]))
    : new Uint8Array(0);
  const json = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
    userDefinedMetadata: artifacts.userDefinedMetadata,
  };
  return { json: JSON.stringify(json), weights };
}

/** Save a model to DIR atomically (a reader never sees a mixture of old and new files). */
export async function saveModel(model: tf.LayersModel, dir: string, metadata: ModelMetadata): Promise<void> {
  model.setUserDefinedMetadata({ glonet: JSON.parse(JSON.stringify(metadata)) });
  await writeDirAtomic(dir, async (tmp) => {
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      const { json, weights } = artifactsToFiles(artifacts);
      fs.writeFileSync(path.join(tmp, 'model.json'), json);
      fs.writeFileSync(path.join(tmp, WEIGHTS_FILE), weights);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
  });
}

/** An IOHandler reading `DIR/model.json` and its weight files: `tf.loadLayersModel(fileSystem(dir))`. */
export function fileSystem(dirOrModelJson: string): tf.io.IOHandler {
  const modelJson = dirOrModelJson.endsWith('.json') ? dirOrModelJson : path.join(dirOrModelJson, 'model.json');
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      if (!fs.existsSync(modelJson)) throw new Error(`${modelJson}: no model here (expected a model.json written by glonet train or truncate)`);
      let parsed: { modelTopology: object; weightsManifest: tf.io.WeightsManifestConfig; format?: string; generatedBy?: string; convertedBy?: string; userDefinedMetadata?: { [key: string]: {} } };
      try {
        parsed = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
      } catch (e) {
        throw new Error(`${modelJson}: not valid JSON (${(e as Error).message})`);
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Buffer[] = [];
      for (const group of parsed.weightsManifest ?? []) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: parsed.modelTopology,
        format: parsed.format,
        generatedBy: parsed.generatedBy,
        convertedBy: parsed.convertedBy,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        userDefinedMetadata: parsed.userDefinedMetadata,
      };
    },
  };
}

export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; meta: ModelMetadata }> {
  const model = await tf.loadLayersModel(fileSystem(dir));
  const meta = (model.getUserDefinedMetadata() as { glonet?: ModelMetadata } | undefined)?.glonet;
  if (!meta) throw new Error(`${dir}: model.json has no glonet metadata (was it written by glonet?)`);
  return { model, meta };
}
