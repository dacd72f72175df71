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
import { readFileChecked, readJson, tempNamePid, writeDirAtomic } from '../io.js';
import { LIMITS } from '../limits.js';
import { packageRoot } from '../paths.js';
import { VERSION } from '../version.js';
import { openRun, runDataset } from '../analysis/run-folder.js';
import { analyzeModel } from '../analysis/analyze.js';
import { exampleSize } from '../data/dataset.js';
import { decodeSampleInputs, encodeSampleInputs, sampleDataset, SITE_POLICY, type SampleHeader, type SiteManifest } from './site-format.js';
import { GlonetError } from '../errors.js';
import { checkWritableFolder } from '../out-folder.js';

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
    const bytes = fs.readFileSync(file);
    // The page declares its content security policy itself, so that a static copy on any host keeps it.
    if (f !== 'index.html') return [f, bytes];
    const html = bytes.toString('utf8').replace('<meta charset="utf-8">', `<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="${SITE_POLICY}">`);
    return [f, Buffer.from(html)];
  });
}

function wasmFiles(): Array<[string, Uint8Array]> {
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  return WASM_FILES.map((f) => [`wasm/${f}`, fs.readFileSync(path.join(dir, f))]);
}

/** The model folder's files, read as loadModel read them: inside the folder, regular, of bounded size. */
function modelFiles(runDir: string): Array<[string, Uint8Array]> {
  const dir = path.join(runDir, 'model');
  const within = { within: dir };
  const json = readFileChecked(path.join(dir, 'model.json'), 'model', within);
  const manifest = JSON.parse(json.toString('utf8')) as { weightsManifest?: Array<{ paths: string[] }> };
  const names = (manifest.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => path.posix.normalize(p)));
  return [['model/model.json', json], ...names.map((n): [string, Uint8Array] => {
    if (n.startsWith('..') || path.isAbsolute(n)) throw new SiteError(`${dir}/model.json: weight file ${n} is outside the model folder`);
    return [`model/${n}`, readFileChecked(path.join(dir, n), 'weights file', { ...within, maxBytes: LIMITS.weightBytes.max, why: LIMITS.weightBytes.why })];
  })];
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
  files.set('run/metrics.json', readFileChecked(path.join(runDir, 'metrics.json'), 'metrics', { within: runDir }));
  const runAnalysis = path.join(runDir, 'analysis.json');
  if (fs.existsSync(runAnalysis)) files.set('run/analysis.json', readFileChecked(runAnalysis, 'analysis', { within: runDir }));
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
    return readJson<{ format?: string }>(path.join(dir, 'site.json'), 'site manifest', { within: dir, maxBytes: 1 << 20, why: 'it is a few lines' })?.format === 'glonet-web';
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
  // Refused here, before the analysis of the sample, rather than after it when the files are
  // written. The site is built beside the folder and renamed into place, so an earlier site's
  // parent must take new entries too.
  checkWritableFolder(outDir, '--out', 'the site');
  if (fs.existsSync(outDir)) checkWritableFolder(path.dirname(path.resolve(outDir)), '--out', 'the site');
}

/** What a site holds at its top level; anything else in the folder is the user's (a CNAME, a README) and is kept. */
const SITE_ENTRIES = new Set([...PAGE_FILES, 'wasm', 'model', 'run', 'sample', 'site.json']);

/**
 * Write the site as a static folder, replacing an earlier site in `outDir` (see checkSiteFolder)
 * atomically. Files the user added beside the site's own (a CNAME for the web host, a README)
 * are carried over into the new folder.
 */
export async function writeSite(files: SiteFiles, outDir: string): Promise<void> {
  checkSiteFolder(outDir);
  const kept = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((n) => !SITE_ENTRIES.has(n) && tempNamePid(n) === undefined) : [];
  await writeDirAtomic(outDir, (tmp) => {
    for (const [name, data] of files) {
      const file = path.join(tmp, ...name.split('/'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data);
    }
    for (const n of kept) fs.cpSync(path.join(outDir, n), path.join(tmp, n), { recursive: true, verbatimSymlinks: true });
  });
}
