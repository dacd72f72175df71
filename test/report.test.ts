/**
 * The HTML report: built from a real (tiny) training run, opened in headless Chromium offline.
 *
 * `makeRunFolder(dir)` makes the fixture with the real pipeline: `runTraining` (what `glonet
 * train` runs) on a 2,000-row SGEMM subset, then `analyzeRun` (what `glonet analyze` runs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Rng } from '../src/random.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { analyzeRun } from '../src/analysis/run.js';
import { renderReportHtml, writeReport, type ReportAnalysis, type ReportMetrics } from '../src/report/report.js';
import type { RunConfig } from '../src/vocabulary.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const OUT = path.join(ROOT, 'test-output', 'report');
const CHROMIUM = '/usr/bin/chromium';

// ---------------------------------------------------------------------------------------------
// Fixture: a real tiny run.

const DEPTH = 12;
const EPOCHS = 8;
const SAMPLES = 4;

/** A real run folder: `glonet train` (library form) then `glonet analyze`, on an SGEMM subset. */
async function makeRunFolder(dir: string): Promise<void> {
  const cfg: RunConfig = {
    ...familyDefaults('mlp'), model: 'mlp', arch: 'glonet', dataset: 'sgemm', depth: DEPTH, epochs: EPOCHS,
    batchSize: 128, seed: 7, subset: 2000, augment: false, backend: 'cpu', fast: 'off',
  };
  await runTraining(cfg, dir, { progress: createProgress({ quiet: true }), log: () => {} });
  await analyzeRun(dir, { backend: 'cpu', report: false });
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

function freshDir(name: string): string {
  const dir = path.join(OUT, 'runs', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function copyRun(from: string, name: string, files = ['metrics.json', 'analysis.json']): string {
  const dir = freshDir(name);
  for (const f of files) if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

const countCharts = (html: string): number => (html.match(/<figure class="chart"/g) ?? []).length;

function assertNoTmp(dir: string): void {
  const left = fs.readdirSync(dir).filter((f) => f.includes('.tmp'));
  assert.deepEqual(left, [], `temporary files left in ${dir}`);
}

let fixture: Promise<string> | null = null;
/** The real run folder, made once for all tests. */
function realRun(): Promise<string> {
  fixture ??= (async () => {
    const dir = freshDir('real');
    await makeRunFolder(dir);
    return dir;
  })();
  return fixture;
}

/** A copy of the real run whose losses became NaN/Infinity at epoch 6 (JSON writes them as null). */
function makeDiverged(real: string, name: string): string {
  const dir = copyRun(real, name, ['metrics.json']);
  const m = readJson<ReportMetrics>(path.join(dir, 'metrics.json'));
  m.config.arch = 'vanilla-nobn';
  m.epochs[5] = { ...m.epochs[5], trainLoss: 'NaN', testLoss: null, testError: null };
  m.epochs[6] = { ...m.epochs[6], trainLoss: 'Infinity', testLoss: 'Infinity', testError: null };
  m.epochs = m.epochs.slice(0, 7);
  const finiteEpochs = m.epochs.slice(0, 5);
  const best = finiteEpochs.reduce((p, q) => ((q.testError as number) < (p.testError as number) ? q : p));
  m.best = { epoch: best.epoch, testError: best.testError };
  fs.writeFileSync(path.join(dir, 'metrics.json'), JSON.stringify(m));
  return dir;
}

/** Plausible metrics/analysis for sizes too large to train in a test (per the contracts). */
function synthetic(epochsN: number, blocksN: number, task: 'regression' | 'classification', nSamples: number): {
  metrics: ReportMetrics; analysis: ReportAnalysis;
} {
  const rng = new Rng(3);
  const epochs = Array.from({ length: epochsN }, (_, i) => {
    const e = i + 1;
    const base = 0.02 + 0.8 * Math.exp(-e / 8);
    const testError = task === 'regression' ? base * (1 + 0.05 * rng.next()) : 0.02 + 0.3 * Math.exp(-e / 10);
    return {
      epoch: e, trainLoss: base * 0.95, testLoss: base * (1 + 0.05 * rng.next()), testError,
      ...(task === 'classification' ? { testAccuracy: 1 - testError } : {}), seconds: 1 + rng.next(),
    };
  });
  let best = epochs[0];
  for (const e of epochs) if (e.testError < best.testError) best = e;
  const outputs = task === 'regression' ? 1 : 10;
  const blockNorms = Array.from({ length: blocksN }, (_, i) => ({ block: i + 1, mean: 20 * Math.exp(-i / 6), std: 4 * Math.exp(-i / 6) }));
  const truncation = Array.from({ length: blocksN }, (_, i) => ({ blocks: i + 1, testError: 0.02 + 2 * Math.exp(-(i + 1) / 3) }));
  const samples = Array.from({ length: nSamples }, (_, s) => {
    const blocks = Array.from({ length: blocksN }, (_, l) =>
      Array.from({ length: outputs }, (_, o) => (rng.next() - 0.4) * Math.exp(-l / 5) * (o === s % outputs ? 3 : 1)));
    const bias = Array.from({ length: outputs }, (_, o) => 0.1 * o);
    const prediction = bias.map((bo, o) => bo + blocks.reduce((sum, row) => sum + row[o], 0));
    return {
      index: 100 + s, target: task === 'regression' ? rng.next() : s % outputs, prediction, blocks,
      ...(task === 'classification' ? { predictedClass: prediction.indexOf(Math.max(...prediction)) } : {}),
    };
  });
  return {
    metrics: {
      config: {
        model: 'mlp', arch: 'glonet', dataset: task === 'regression' ? 'sgemm' : 'mnist', depth: blocksN, width: 16,
        epochs: epochsN, batchSize: 1024, lr: 0.01, l2: 1e-5, seed: 1, subset: null, backend: 'wasm',
      },
      task, params: 16 * 17 * blocksN + 14 * 16, backend: 'wasm', epochs,
      best: { epoch: best.epoch, testError: best.testError }, meanEpochSeconds: 1.5,
    },
    analysis: {
      samples: 1000, blockNorms, truncation, effectiveDepth: { byError: 9, byNorm: 14, normShare: { share: 0.95, blocks: 6 }, tolerance: 0.05 },
      contributions: { task, bias: Array.from({ length: outputs }, (_, o) => 0.1 * o), samples },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Tests without a browser.

test('the real run folder follows the metrics.json and analysis.json contracts', async () => {
  const dir = await realRun();
  const m = readJson<ReportMetrics>(path.join(dir, 'metrics.json'));
  for (const k of ['model', 'arch', 'dataset', 'depth', 'width', 'epochs', 'batchSize', 'lr', 'l2', 'seed', 'subset', 'backend']) {
    assert.ok(k in m.config, `config.${k}`);
  }
  assert.equal(m.task, 'regression');
  assert.equal(m.epochs.length, EPOCHS);
  for (const e of m.epochs) for (const k of ['epoch', 'trainLoss', 'testLoss', 'testError', 'seconds'] as const) assert.equal(typeof e[k], 'number');
  assert.ok(m.epochs[EPOCHS - 1].trainLoss! < m.epochs[0].trainLoss!, 'training reduced the loss');
  const a = readJson<ReportAnalysis>(path.join(dir, 'analysis.json'));
  assert.equal(a.blockNorms!.length, DEPTH);
  assert.equal(a.blockNorms![0].block, 1);
  assert.equal(a.truncation!.length, DEPTH);
  assert.ok(a.contributions!.samples.length === SAMPLES);
  const s = a.contributions!.samples[0];
  const total = a.contributions!.bias[0] as number + s.blocks.reduce((t, c) => t + (c[0] as number), 0);
  assert.ok(Math.abs(total - (s.prediction[0] as number)) < 1e-6);
  assert.equal(a.effectiveDepth!.normShare!.share, 0.95);
  assert.equal(a.blockEffects!.length, DEPTH);
  // Full-model truncation equals the model's own test error at the last epoch.
  assert.ok(Math.abs((a.truncation![DEPTH - 1].testError as number) - (m.epochs[EPOCHS - 1].testError as number)) < 1e-4);
});

test('writeReport writes one self-contained page with every chart', async () => {
  const dir = await realRun();
  const file = await writeReport(dir);
  assert.equal(file, path.join(dir, 'report.html'));
  assertNoTmp(dir);
  const html = fs.readFileSync(file, 'utf8');
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<title>MLP · GloNet, depth 12 on SGEMM/);
  assert.equal(countCharts(html), 2 + 1 + 1 + SAMPLES);
  assert.doesNotMatch(html, /<script|<link|@import|https?:\/\/(?!www\.w3\.org\/)/i, 'no scripts, links or external URLs');
  for (const k of ['batchSize', 'meanEpochSeconds'.replace('meanEpochSeconds', 'mean epoch seconds'), 'best epoch', 'parameters']) {
    assert.ok(html.includes(`<th>${k}</th>`), `settings row ${k}`);
  }
  assert.match(html, /needed for the error: \d+/);
  assert.match(html, /95% of the norm: \d+/);
  assert.match(html, /\(sum of 12 block contributions\)/);
  assert.match(html, /\(bias\)/);
});

test('without analysis.json the page has the two learning-curve charts and the analyze hint', async () => {
  const dir = copyRun(await realRun(), 'no-analysis', ['metrics.json']);
  const html = fs.readFileSync(await writeReport(dir), 'utf8');
  assert.equal(countCharts(html), 2);
  assert.ok(html.includes(`<code>glonet analyze ${dir}</code>`));
});

test('an existing report is replaced whole, atomically', async () => {
  const dir = copyRun(await realRun(), 'atomic');
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, 'OLD'.repeat(400_000));
  await writeReport(dir);
  const html = fs.readFileSync(file, 'utf8');
  assert.ok(!html.includes('OLDOLD'));
  assert.match(html, /<\/html>\n$/);
  assertNoTmp(dir);
  // A failing write leaves the old report and no temporary file.
  fs.writeFileSync(path.join(dir, 'metrics.json'), '{not json');
  await assert.rejects(writeReport(dir), /metrics\.json/);
  assert.equal(fs.readFileSync(file, 'utf8'), html);
  assertNoTmp(dir);
});

test('one epoch, and a run that diverged to NaN/Infinity, still render', async () => {
  const real = await realRun();
  const one = copyRun(real, 'one-epoch');
  const m1 = readJson<ReportMetrics>(path.join(one, 'metrics.json'));
  m1.epochs = m1.epochs.slice(0, 1);
  m1.best = { epoch: 1, testError: m1.epochs[0].testError };
  fs.writeFileSync(path.join(one, 'metrics.json'), JSON.stringify(m1));
  const h1 = fs.readFileSync(await writeReport(one), 'utf8');
  assert.equal(countCharts(h1), 2 + 1 + 1 + SAMPLES);
  assert.doesNotMatch(h1, /diverged/i);

  const div = makeDiverged(real, 'diverged');
  const h2 = fs.readFileSync(await writeReport(div), 'utf8');
  assert.match(h2, /Training diverged<\/strong> at epoch 6/);
  assert.equal(countCharts(h2), 2);
  assert.doesNotMatch(h2, /NaN<\/text>|Infinity<\/text>/);
});

test('all text is escaped', async () => {
  const { metrics, analysis } = synthetic(5, 6, 'regression', 1);
  metrics.config.dataset = '<script>alert(1)</script>';
  metrics.config.note = '"><img src=x onerror=alert(2)>';
  const html = await renderReportHtml(metrics, analysis, { dir: '/tmp/<b>run</b>' });
  assert.doesNotMatch(html, /<script|<img|<b>run/);
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
});

test('classification contributions use the predicted class logit; non-GloNet has no truncation chart', async () => {
  const { metrics, analysis } = synthetic(12, 20, 'classification', 3);
  const html = await renderReportHtml(metrics, analysis);
  assert.equal(countCharts(html), 2 + 1 + 1 + 3);
  assert.match(html, /predicted class \d+; logit of class \d+: /);
  metrics.config.arch = 'resnetv2';
  delete analysis.truncation;
  delete analysis.contributions;
  const h2 = await renderReportHtml(metrics, analysis);
  assert.equal(countCharts(h2), 2 + 1);
  assert.match(h2, /No truncation curve/);
});

test('200 epochs x 1000 blocks renders quickly', async () => {
  const { metrics, analysis } = synthetic(200, 1000, 'regression', 4);
  await renderReportHtml(metrics, analysis); // warm up module loading
  const t0 = performance.now();
  const html = await renderReportHtml(metrics, analysis);
  const ms = performance.now() - t0;
  assert.equal(countCharts(html), 2 + 1 + 1 + 4);
  assert.ok(ms < 3000, `rendering took ${ms.toFixed(0)} ms`);
  const dir = freshDir('large');
  fs.writeFileSync(path.join(dir, 'metrics.json'), JSON.stringify(metrics));
  fs.writeFileSync(path.join(dir, 'analysis.json'), JSON.stringify(analysis));
  await writeReport(dir);
});

// ---------------------------------------------------------------------------------------------
// In a real browser, offline.

/** Runs in the page: per chart, the SVG size and the data marks that have a visible box. */
const INSPECT = `(() => {
  const charts = [...document.querySelectorAll('figure.chart')].map((fig) => {
    const svg = fig.querySelector('svg');
    if (!svg) return { id: fig.id, svg: null, marks: 0, kinds: [] };
    const r = svg.getBoundingClientRect();
    const els = [...svg.querySelectorAll('.role-mark path, .role-mark rect, .role-mark line')];
    const visible = els.filter((e) => { const b = e.getBBox(); return b.width > 0 || b.height > 0; });
    const kinds = [...new Set(visible.map((e) => e.parentElement.getAttribute('class').split(' ')[0]))];
    return { id: fig.id, svg: { width: r.width, height: r.height }, marks: visible.length, kinds };
  });
  return {
    charts,
    scripts: document.querySelectorAll('script').length,
    external: [...document.querySelectorAll('[src], [href]')].map((e) => e.getAttribute('src') || e.getAttribute('href')),
    text: document.body.innerText,
  };
})()`;

interface Inspected {
  charts: Array<{ id: string; svg: { width: number; height: number } | null; marks: number; kinds: string[] }>;
  scripts: number;
  external: string[];
  text: string;
}

test('the report opens offline in headless Chromium and every chart draws its marks', {
  skip: fs.existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM}; skipping the browser check`,
  timeout: 180_000,
}, async () => {
  const { chromium } = await import('playwright-core');
  const real = await realRun();
  await writeReport(real);
  const noAnalysis = copyRun(real, 'browser-no-analysis', ['metrics.json']);
  await writeReport(noAnalysis);
  const diverged = makeDiverged(real, 'browser-diverged');
  await writeReport(diverged);
  const large = freshDir('browser-large');
  const syn = synthetic(200, 1000, 'regression', 4);
  fs.writeFileSync(path.join(large, 'metrics.json'), JSON.stringify(syn.metrics));
  fs.writeFileSync(path.join(large, 'analysis.json'), JSON.stringify(syn.analysis));
  await writeReport(large);
  const cls = freshDir('browser-classification');
  const synC = synthetic(30, 50, 'classification', 4);
  fs.writeFileSync(path.join(cls, 'metrics.json'), JSON.stringify(synC.metrics));
  fs.writeFileSync(path.join(cls, 'analysis.json'), JSON.stringify(synC.analysis));
  await writeReport(cls);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const cases: Array<[string, string, number]> = [
      [real, 'report.png', 2 + 1 + 1 + SAMPLES],
      [noAnalysis, 'report-no-analysis.png', 2],
      [diverged, 'report-diverged.png', 2],
      [large, 'report-200x1000.png', 2 + 1 + 1 + 4],
      [cls, 'report-classification.png', 2 + 1 + 1 + 4],
    ];
    for (const [dir, png, expected] of cases) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, offline: false });
      const page = await context.newPage();
      const attempted: string[] = [];
      page.on('request', (r) => {
        const url = r.url();
        if (!url.startsWith('file:') && !url.startsWith('data:')) attempted.push(url);
      });
      await context.route('**/*', (route) =>
        route.request().url().startsWith('file:') ? route.continue() : route.abort('blockedbyclient'));
      await page.goto(pathToFileURL(path.join(dir, 'report.html')).href, { waitUntil: 'load' });
      const info = (await page.evaluate(INSPECT)) as Inspected;
      assert.deepEqual(attempted, [], `${png}: network requests attempted`);
      assert.equal(info.scripts, 0);
      assert.deepEqual(info.external, []);
      assert.equal(info.charts.length, expected, `${png}: chart count`);
      for (const c of info.charts) {
        assert.ok(c.svg && c.svg.width > 200 && c.svg.height > 100, `${png} ${c.id}: svg size ${JSON.stringify(c.svg)}`);
        assert.ok(c.marks > 0, `${png} ${c.id}: no visible marks`);
      }
      const kinds = (id: string) => info.charts.find((c) => c.id === id)?.kinds ?? [];
      assert.ok(kinds('loss').includes('mark-line'), `${png}: loss lines`);
      assert.ok(kinds('error').includes('mark-line'), `${png}: error line`);
      if (expected > 2) {
        assert.ok(kinds('norms').includes('mark-area') && kinds('norms').includes('mark-line'), `${png}: norm band and line`);
        assert.ok(kinds('truncation').includes('mark-rule'), `${png}: effective depth rule`);
        assert.ok(kinds('contrib-0').includes('mark-rect'), `${png}: contribution bars`);
      } else {
        assert.match(info.text, /glonet analyze/);
      }
      if (dir === diverged) assert.match(info.text, /Training diverged at epoch 6/);
      fs.mkdirSync(OUT, { recursive: true });
      await page.screenshot({ path: path.join(OUT, png), fullPage: true });
      await context.close();
    }
  } finally {
    await browser.close();
  }
});
