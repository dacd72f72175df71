/**
 * Saving and loading TF.js layers models on the file system: `DIR/model.json` + `DIR/weights.bin`
 * in the standard TF.js format (the files `tf.loadLayersModel` reads over HTTP in a browser).
 * Plain `@tensorflow/tfjs` has no `file://` handler in Node, so this module provides one.
 *
 * Model folders get shared and downloaded, so loading trusts nothing in them: every weights path
 * of model.json must name a regular file inside the folder (no `..`, no absolute path, no
 * symbolic link leading out), the files' sizes must be what the manifest describes before a byte
 * is read, the layer graph must be one TF.js can rebuild (./model-topology.ts), and every problem
 * is a BadFileError naming the file.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic, readFileChecked, jsonProblem } from './io.js';
import { LIMITS, formatBytes } from './limits.js';
import { BadFileError, fsReason, shown } from './errors.js';
import { topologyProblem } from './model-topology.js';
import { encodingProblem } from './data/table-encoding.js';
import type { LoadedModel, ModelMetadata } from './model-metadata.js';
// Importing the layers registers them for deserialization.
import './layers/index.js';

const WEIGHTS_FILE = 'weights.bin';

/** The two files of a saved model: model.json's text and the weights' bytes. */
export async function modelFiles(model: tf.LayersModel, metadata: ModelMetadata): Promise<{ json: string; weights: Uint8Array }> {
  model.setUserDefinedMetadata({ glonet: JSON.parse(JSON.stringify(metadata)) });
  let files: { json: string; weights: Uint8Array } | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
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
    files = { json: JSON.stringify(json), weights };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return files!;
}

/** Write a model's two files into an existing folder with `write(file, data)`. */
async function writeModelFiles(model: tf.LayersModel, dir: string, metadata: ModelMetadata, write: (file: string, data: string | Uint8Array) => void = fs.writeFileSync): Promise<void> {
  const { json, weights } = await modelFiles(model, metadata);
  write(path.join(dir, WEIGHTS_FILE), weights);
  write(path.join(dir, 'model.json'), json);
}

/** Save a model to DIR atomically (a reader never sees a mixture of old and new files). */
export async function saveModel(model: tf.LayersModel, dir: string, metadata: ModelMetadata): Promise<void> {
  await writeDirAtomic(dir, (tmp) => writeModelFiles(model, tmp, metadata));
}

/** Bytes per stored element of each dtype (TF.js's table), including quantized storage. */
const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, float16: 2, uint16: 2, uint8: 1 };

interface ParsedModelJson {
  modelTopology: object;
  weightsManifest: tf.io.WeightsManifestConfig;
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  userDefinedMetadata?: { [key: string]: {} };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The bytes one manifest entry occupies, or a reason it is malformed. */
function entryBytes(w: unknown, where: string): number {
  if (!isObject(w) || typeof w.name !== 'string' || !Array.isArray(w.shape)) {
    throw new BadFileError(`${where}: expected {name, shape, dtype}`);
  }
  const dims = w.shape as unknown[];
  if (!dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new BadFileError(`${where} (${shown(w.name)}): shape must be a list of non-negative integers, got ${shown(JSON.stringify(w.shape))}`);
  }
  const q = isObject(w.quantization) ? w.quantization.dtype : undefined;
  const stored = typeof q === 'string' ? q : w.dtype;
  const per = typeof stored === 'string' ? BYTES_PER_ELEMENT[stored] : undefined;
  if (per === undefined) {
    throw new BadFileError(`${where} (${shown(w.name)}): dtype ${shown(JSON.stringify(stored))} is not one of ${Object.keys(BYTES_PER_ELEMENT).join(', ')}`);
  }
  const bytes = (dims as number[]).reduce((a, b) => a * b, per);
  if (!Number.isSafeInteger(bytes)) throw new BadFileError(`${where} (${shown(w.name)}): shape ${shown(JSON.stringify(w.shape))} is too large`);
  return bytes;
}

/**
 * Where a weights path of model.json points: a regular file inside the model folder. Absolute
 * paths, `..` segments and symbolic links leading out of the folder are refused.
 */
function confinedWeightsFile(folder: string, realFolder: string, p: unknown, modelJson: string): { file: string; size: number } {
  if (typeof p !== 'string' || p === '' || p.includes('\0')) {
    throw new BadFileError(`${modelJson}: a weights path is ${shown(JSON.stringify(p) ?? String(p))}; expected the name of a file in ${folder}`);
  }
  if (path.posix.isAbsolute(p) || path.win32.isAbsolute(p)) {
    throw new BadFileError(`${modelJson}: weights path ${shown(p)} is absolute; a model folder may only name files inside itself`);
  }
  if (p.split(/[\\/]/).includes('..')) {
    throw new BadFileError(`${modelJson}: weights path ${shown(p)} climbs out of the model folder with '..'; a model folder may only name files inside itself`);
  }
  const file = path.join(folder, p);
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (e) {
    throw new BadFileError(`${file}: cannot read the weights file that ${path.basename(modelJson)} lists (${fsReason(e)})`);
  }
  if (real !== realFolder && !real.startsWith(realFolder + path.sep)) {
    throw new BadFileError(`${file}: leads outside the model folder (a symbolic link to ${real}); a model folder may only name files inside itself`);
  }
  const st = fs.statSync(real);
  if (!st.isFile()) throw new BadFileError(`${file}: not a regular file; expected the weights that ${path.basename(modelJson)} lists`);
  return { file, size: st.size };
}

function parseModelJson(modelJson: string): ParsedModelJson {
  if (!fs.existsSync(modelJson)) throw new BadFileError(`${modelJson}: no model here (expected a model.json written by glonet train or truncate)`);
  // The model folder's own file: not a link leading out of it, a device or a FIFO, and of a size a model.json can have.
  const text = readFileChecked(modelJson, 'model', { within: path.dirname(modelJson) }).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new BadFileError(`${modelJson}: not valid JSON (${jsonProblem(e)}); the file is cut off or damaged`);
  }
  if (!isObject(parsed) || !isObject(parsed.modelTopology) || !Array.isArray(parsed.weightsManifest)) {
    throw new BadFileError(`${modelJson}: not a TF.js layers model (expected an object with modelTopology and weightsManifest)`);
  }
  const problem = topologyProblem(parsed.modelTopology);
  if (problem) throw new BadFileError(`${modelJson}: ${shown(problem, 200).slice(1, -1)}`);
  return parsed as unknown as ParsedModelJson;
}

/** An IOHandler reading `DIR/model.json` and its weight files: `tf.loadLayersModel(fileSystem(dir))`. */
export function fileSystem(dirOrModelJson: string): tf.io.IOHandler {
  const modelJson = dirOrModelJson.endsWith('.json') ? dirOrModelJson : path.join(dirOrModelJson, 'model.json');
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const parsed = parseModelJson(modelJson);
      const folder = path.dirname(modelJson);
      const realFolder = fs.realpathSync(folder);
      const specs: tf.io.WeightsManifestEntry[] = [];
      const files: string[] = [];
      let total = 0;
      parsed.weightsManifest.forEach((group: unknown, g) => {
        const where = `${modelJson}: weightsManifest[${g}]`;
        if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
          throw new BadFileError(`${where}: expected {paths: [file names], weights: [entries]}`);
        }
        const expected = group.weights.reduce((sum: number, w, i) => sum + entryBytes(w, `${where}.weights[${i}]`), 0);
        const found = group.paths.map((p) => confinedWeightsFile(folder, realFolder, p, modelJson));
        const size = found.reduce((s, f) => s + f.size, 0);
        if (size !== expected) {
          const names = found.map((f) => f.file).join(', ') || '(no files)';
          throw new BadFileError(`${names}: ${size} bytes, but ${path.basename(modelJson)} describes ${expected} bytes of weights; the file is cut off or does not belong to this model`);
        }
        specs.push(...(group.weights as tf.io.WeightsManifestEntry[]));
        files.push(...found.map((f) => f.file));
        total += size;
        if (total > LIMITS.weightBytes.max) {
          throw new BadFileError(`${modelJson}: describes ${formatBytes(total)} of weights or more; a model folder may hold at most ${formatBytes(LIMITS.weightBytes.max)} (${LIMITS.weightBytes.why})`);
        }
      });
      const all = Buffer.concat(files.map((f) => readFileChecked(f, 'weights file', { within: folder, maxBytes: LIMITS.weightBytes.max, why: LIMITS.weightBytes.why })));
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

const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
const isFiniteList = (v: unknown, n: number): boolean => Array.isArray(v) && v.length === n && v.every((d) => typeof d === 'number' && Number.isFinite(d));

/** What is wrong with glonet's metadata for this model, or undefined when it is usable. */
function metadataProblem(meta: ModelMetadata, model: tf.LayersModel): string | undefined {
  if (typeof meta.model !== 'string' || typeof meta.arch !== 'string') return 'model and arch must be names';
  if (meta.task !== 'regression' && meta.task !== 'classification') return `task must be regression or classification, got ${shown(JSON.stringify(meta.task))}`;
  if (!isIntList(meta.inputShape) || JSON.stringify(meta.inputShape) !== JSON.stringify(model.inputs[0].shape.slice(1))) {
    return `inputShape ${shown(JSON.stringify(meta.inputShape))} is not the model's input shape ${JSON.stringify(model.inputs[0].shape.slice(1))}`;
  }
  if (!Number.isSafeInteger(meta.outputs) || meta.outputs < 1) return `outputs must be a positive integer, got ${shown(JSON.stringify(meta.outputs))}`;
  if (!Array.isArray(meta.blockLayers)) return 'blockLayers must be a list of layer names';
  const names = new Set(model.layers.map((l) => l.name));
  const missing = meta.blockLayers.find((n) => !names.has(n));
  if (missing !== undefined) return `block layer ${shown(missing)} is not a layer of the model`;
  const st = meta.standardization;
  if (st != null) {
    const n = Array.isArray(st.featureNames) ? st.featureNames.length : -1;
    if (n < 0 || !st.featureNames.every((f) => typeof f === 'string') || !isFiniteList(st.mean, n) || !isFiniteList(st.std, n) || !st.std.every((s) => s > 0)) {
      return 'standardization must give a finite mean and a positive std for every feature';
    }
    if (st.target != null && !(Number.isFinite(st.target.mean) && Number.isFinite(st.target.std) && st.target.std > 0)) {
      return 'standardization.target must have a finite mean and a positive std';
    }
  }
  if (meta.classNames != null && !(Array.isArray(meta.classNames) && meta.classNames.length === meta.outputs && meta.classNames.every((c) => typeof c === 'string'))) {
    return `classNames must be ${meta.outputs} names, one per output`;
  }
  if (meta.encoding != null) {
    if (meta.inputShape.length !== 1) return 'an encoding belongs to a model of table rows (an inputShape of one dimension)';
    const problem = encodingProblem(meta.encoding, meta.inputShape[0], meta.outputs);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Loads a model saved by glonet (`DIR/model.json` + weights) and its metadata.
 *
 * @throws {@link BadFileError} naming the file when anything is wrong with it.
 */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const modelJson = path.join(dir, 'model.json');
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(fileSystem(dir));
  } catch (e) {
    if (e instanceof BadFileError) throw e;
    const first = String((e as Error)?.message ?? e).split('\n')[0];
    throw new BadFileError(`${modelJson}: not a model glonet can load (${shown(first, 200).slice(1, -1)})`);
  }
  const meta = (model.getUserDefinedMetadata() as { glonet?: ModelMetadata } | undefined)?.glonet;
  if (!isObject(meta)) throw new BadFileError(`${modelJson}: has no glonet metadata (was it written by glonet?)`);
  const problem = metadataProblem(meta, model);
  if (problem) throw new BadFileError(`${modelJson}: glonet metadata: ${problem}`);
  return { model, meta };
}
