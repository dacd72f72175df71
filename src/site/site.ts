/**
 * The files of a `glonet web` page for one run folder, built in memory: the page and its bundle
 * (TF.js and glonet's browser entry, made by `npm ci`), TF.js's wasm binaries, the run's model and
 * JSON files, a sample of its test set and `glonet analyze`'s analysis of that very sample. The
 * server serves these from memory; `--out` writes them as a static folder. Nothing is fetched from
 * anywhere else.
 *
 *   index.html, glonet-web.js, glonet-web.css     the page (dist/web)
 *   wasm/*.wasm                                   @tensorflow/tfjs-backend-wasm's binaries
 *   model/model.json, model/weights.bin           the trained model, as saved by glonet train
 *   run/metrics.json, run/analysis.json           the run's files (analysis.json when present)
 *   sample/sample.json, sample/inputs.bin         the first N test examples (sample-format.ts)
 *   sample/analysis.json                          analyzeModel on exactly that sample, in Node
 *   site.json                                     what the page needs to know about the rest
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { writeDirAtomic } from '../io.js';
import { packageRoot } from '../paths.js';
import { VERSION } from '../version.js';
import { openRun, runDataset } from '../analysis/run-folder.js';
import { analyzeModel } from '../analysis/analyze.js';
import { exampleSize } from '../data/dataset.js';
import { decodeSampleInputs, encodeSampleInputs, sampleDataset, type SampleHeader, type SiteManifest } from './site-format.js';
import { GlonetError } from '../errors.js';

/** Site path (forward slashes, no leading slash) to file contents. */
export type SiteFiles = Map<string, Uint8Array>;

interface SiteOptions {
  /** Test examples to ship (default 2000, or the whole test set when smaller). */
  sampleRows?: number;
  /** The Node TF.js backend that is active (recorded with the sample's analysis). */
  backend: string;
}

/** A site that cannot be built or written (missing bundle, an --out folder that is not a site). */
class SiteError extends GlonetError {
  override name = 'SiteError';
}

const PAGE_FILES = ['index.html', 'glonet-web.js', 'glonet-web.css', 'glonet-web.js.LEGAL.txt'];
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value) + '\n');

/** The page bundle made by `npm ci` (scripts/build-web.mjs). */
function pageFiles(): Array<[string, Uint8Array]> {
  const dir = path.join(packageRoot(), 'dist', 'web');
  return PAGE_FILES.map((f) => {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) throw new SiteError(`the web page bundle is missing (${file}); build it with npm run build`);
    return [f, fs.readFileSync(file)];
  });
}

function wasmFiles(): Array<[string, Uint8Array]> {
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  return WASM_FILES.map((f) => [`wasm/${f}`, fs.readFileSync(path.join(dir, f))]);
}

function modelFiles(runDir: string): Array<[string, Uint8Array]> {
  const dir = path.join(runDir, 'model');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest?: Array<{ paths: string[] }> };
  const names = ['model.json', ...(manifest.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => path.posix.normalize(p)))];
  return names.map((n) => {
    if (n.startsWith('..') || path.isAbsolute(n)) throw new SiteError(`${dir}/model.json: weight file ${n} is outside the model folder`);
    return [`model/${n}`, fs.readFileSync(path.join(dir, n))];
  });
}

/** Build every file of the page for the run in `runDir` (the Node backend must be initialized). */
export async function buildSite(runDir: string, options: SiteOptions): Promise<SiteFiles> {
  const run = await openRun(runDir);
  const ds = await runDataset(run);
  const rows = Math.min(options.sampleRows ?? 2000, ds.nTest);
  const size = exampleSize(ds);
  const x = ds.xTest.slice(0, rows * size);
  const pixels = ds.inputShape.length === 3 ? { mean: ds.standardization?.mean, std: ds.standardization?.std } : null;
  const { encoding, bytes } = encodeSampleInputs(x, ds.inputShape, pixels);
  const header: SampleHeader = {
    format: 'glonet-sample', version: 1, rows, testSize: ds.nTest, inputShape: ds.inputShape,
    task: ds.task, outputs: ds.outputs, encoding, targets: Array.from(ds.yTest.subarray(0, rows)),
  };
  // The analysis runs on the decoded bytes: exactly the inputs the page will see.
  const decoded = decodeSampleInputs(header, bytes);
  const analysis = analyzeModel(run.model, run.meta, sampleDataset(header, decoded), { samples: rows });

  const files: SiteFiles = new Map([...pageFiles(), ...wasmFiles(), ...modelFiles(runDir)]);
  files.set('run/metrics.json', fs.readFileSync(path.join(runDir, 'metrics.json')));
  const runAnalysis = path.join(runDir, 'analysis.json');
  if (fs.existsSync(runAnalysis)) files.set('run/analysis.json', fs.readFileSync(runAnalysis));
  files.set('sample/sample.json', json(header));
  files.set('sample/inputs.bin', bytes);
  files.set('sample/analysis.json', json({ ...analysis, backend: options.backend }));
  const manifest: SiteManifest = {
    format: 'glonet-web', version: 1, glonet: VERSION, run: path.basename(path.resolve(runDir)),
    runAnalysis: files.has('run/analysis.json'),
    sample: { rows, testSize: ds.nTest, encoding: encoding.type, analysisBackend: options.backend },
  };
  files.set('site.json', json(manifest));
  run.model.dispose();
  return files;
}

function isSite(dir: string): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'site.json'), 'utf8')) as { format?: string }).format === 'glonet-web';
  } catch {
    return false;
  }
}

/**
 * Throws unless `outDir` may receive a site: it does not exist, or is empty, or holds an earlier
 * site. Anything else (a run folder, a home directory) is never replaced.
 */
export function checkSiteFolder(outDir: string): void {
  if (fs.existsSync(outDir)) {
    if (!fs.statSync(outDir).isDirectory()) throw new SiteError(`--out: ${outDir} is a file, not a folder`);
    if (fs.readdirSync(outDir).length > 0 && !isSite(outDir)) {
      throw new SiteError(`--out: ${outDir} already holds files that are not a glonet web site; give a new or empty folder`);
    }
  }
}

/** Write the site as a static folder, replacing `outDir` (see checkSiteFolder) atomically. */
export async function writeSite(files: SiteFiles, outDir: string): Promise<void> {
  checkSiteFolder(outDir);
  await writeDirAtomic(outDir, (tmp) => {
    for (const [name, data] of files) {
      const file = path.join(tmp, ...name.split('/'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data);
    }
  });
}
