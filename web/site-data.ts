/**
 * Everything the page reads from its site folder (see src/site/site.ts for the layout): the
 * manifest, the run's metrics and analysis, the test sample with Node's analysis of it, and the
 * model, loaded with glonet's browser `loadModel`.
 */
import type * as tf from '@tensorflow/tfjs';
import { loadModel, type Analysis, type Dataset, type ModelMetadata } from 'glonet';
import { checkSampleHeader, decodeSampleInputs, sampleDataset, type SampleHeader, type SiteManifest } from '../src/site/site-format.js';
import type { Metrics } from '../src/contracts.js';

export interface SiteData {
  manifest: SiteManifest;
  metrics: Metrics;
  /** The run's own analysis.json (all of its test set), when it was included. */
  runAnalysis: Analysis | null;
  /** `analyzeModel` on the sample, computed in Node when the site was built. */
  nodeAnalysis: Analysis & { backend: string };
  sample: { header: SampleHeader; x: Float32Array; bytes: Uint8Array; ds: Dataset };
  model: tf.LayersModel;
  meta: ModelMetadata;
}

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}

const getJson = async <T>(url: string): Promise<T> => (await (await fetchOk(url)).json()) as T;

export async function loadSite(): Promise<SiteData> {
  const manifest = await getJson<SiteManifest>('site.json');
  if (manifest.format !== 'glonet-web') throw new Error('site.json: not a glonet web site');
  const [metrics, runAnalysis, nodeAnalysis, header, bytes, loaded] = await Promise.all([
    getJson<Metrics>('run/metrics.json'),
    manifest.runAnalysis ? getJson<Analysis>('run/analysis.json') : Promise.resolve(null),
    getJson<Analysis & { backend: string }>('sample/analysis.json'),
    getJson<unknown>('sample/sample.json').then((v) => checkSampleHeader(v, 'sample/sample.json')),
    fetchOk('sample/inputs.bin').then(async (r) => new Uint8Array(await r.arrayBuffer())),
    loadModel('model/'),
  ]);
  const x = decodeSampleInputs(header, bytes);
  return { manifest, metrics, runAnalysis, nodeAnalysis, sample: { header, x, bytes, ds: sampleDataset(header, x) }, model: loaded.model, meta: loaded.meta };
}
