/**
 * The depth dial: a slider k = 1..L. For each k the page evaluates the k-block model on the test
 * sample with glonet's `evaluate` (the function `glonet truncate` scores with), counts its
 * parameters and times one prediction; the truncation curve and the block norms, computed here
 * with glonet's `analyzeModel` (what `glonet analyze` runs), mark k. Node's analysis of the same
 * sample is shown beside every number.
 */
import * as tf from '@tensorflow/tfjs';
import { analyzeModel, evaluate, type Analysis } from 'glonet';
import type { SiteData } from './site-data.js';
import { msPerPrediction, type BlockModels } from './block-models.js';
import { integerAxis, liveChart, named, valueScale, type LiveChart } from './charts.js';
import { COLORS } from '../src/display.js';
import { byId, fail, fmt, nextPaint, show } from './dom.js';

interface DialResult { k: number; error: number; accuracy?: number; params: number; ms: number }

/** Largest relative difference between two lists of numbers, each pair scaled by the larger magnitude. */
function maxRelDiff(a: number[], b: number[]): number {
  let worst = 0;
  a.forEach((v, i) => {
    const scale = Math.max(Math.abs(v), Math.abs(b[i]), 1e-12);
    worst = Math.max(worst, Math.abs(v - b[i]) / scale);
  });
  return worst;
}

function truncationSpec(browser: Analysis, node: Analysis, L: number, cls: boolean): Record<string, unknown> {
  const curve = (browser.truncation ?? []).map((p) => ({ k: p.blocks, error: p.testError }));
  const nodeRows = (node.truncation ?? []).map((p) => ({ k: p.blocks, error: p.testError }));
  const x = integerAxis('k', 'blocks kept, k', L);
  const y = { field: 'error', type: 'quantitative', title: cls ? 'test error (1 − accuracy)' : 'test error (MSE)', ...valueScale(curve.map((r) => r.error)) };
  return {
    layer: [
      { data: { values: curve.map((r) => ({ ...r, source: 'this browser' })) }, mark: { type: 'line', interpolate: 'monotone' },
        encoding: { x, y, color: { field: 'source', type: 'nominal', title: null, scale: { domain: ['this browser', 'Node'], range: [COLORS.green, COLORS.gray] } } } },
      { data: { values: nodeRows.map((r) => ({ ...r, source: 'Node' })) }, mark: { type: 'point', size: 18, filled: false, strokeWidth: 1 },
        encoding: { x, y, color: { field: 'source', type: 'nominal', title: null } } },
      {
        data: named('marker', []),
        layer: [
          { mark: { type: 'rule', color: COLORS.orange, strokeDash: [4, 3] }, encoding: { x } },
          { mark: { type: 'point', filled: true, size: 110, color: COLORS.orange, stroke: 'white', strokeWidth: 1.5, opacity: 1 }, encoding: { x, y } },
        ],
      },
    ],
  };
}

function normsSpec(a: Analysis, L: number): Record<string, unknown> {
  const rows = a.blockNorms.map((b) => ({ block: b.block, mean: b.mean, lo: Math.max(0, b.mean - b.std), hi: b.mean + b.std }));
  const x = integerAxis('block', 'block', L);
  return {
    layer: [
      { data: named('dropped', [{ from: L + 0.5, to: L + 0.5 }]), mark: { type: 'rect', color: COLORS.gray, opacity: 0.16 },
        encoding: { x: { field: 'from', type: 'quantitative', scale: x.scale as object }, x2: { field: 'to' } } },
      { data: { values: rows }, mark: { type: 'area', color: COLORS.band, opacity: 0.45 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'block output norm (L1)' }, y2: { field: 'hi' } } },
      { data: { values: rows }, mark: { type: 'line', color: COLORS.blue, point: L <= 40 }, encoding: { x, y: { field: 'mean', type: 'quantitative' } } },
    ],
  };
}

interface Dial {
  /** Current k. */
  readonly k: number;
}

/** Wire the dial section; `onK` runs after each k is shown (the explanation follows the dial). */
export async function setupDial(site: SiteData, models: BlockModels, onK: (k: number) => void): Promise<Dial> {
  const { ds, header } = site.sample;
  const cls = ds.task === 'classification';
  const L = models.count;
  const slider = byId<HTMLInputElement>('blocks');
  byId('blocks-total').textContent = String(L);
  byId('error-label').textContent = cls ? 'test error (1 − accuracy)' : 'test error (MSE)';

  // Everything `glonet analyze` computes, on the same sample, in this browser.
  const browser = analyzeModel(site.model, site.meta, ds, { samples: ds.nTest, explainSamples: 0 });
  const node = site.nodeAnalysis;
  const norms = maxRelDiff(browser.blockNorms.map((b) => b.mean), node.blockNorms.map((b) => b.mean));
  const curveDiff = browser.truncation && node.truncation ? maxRelDiff(browser.truncation.map((p) => p.testError), node.truncation.map((p) => p.testError)) : null;
  byId('agreement').textContent =
    `This browser against Node (glonet analyze on the same ${header.rows} examples, backend ${node.backend}): largest relative difference ` +
    (curveDiff != null ? `${fmt(curveDiff, 2)} over the ${L} truncation errors, ` : '') + `${fmt(norms, 2)} over the ${L} block norms.`;
  byId('agreement').dataset.curve = String(curveDiff);
  byId('agreement').dataset.norms = String(norms);

  const normsChart = await liveChart(byId('chart-norms'), normsSpec(browser, L), 'Mean L1 norm of each block output over the test sample');
  if (!models.isGloNet) {
    const note = byId('dial-note');
    note.textContent = `This run is a ${site.meta.arch} network: its head reads only the last block, so a prefix of its blocks is not a model. ` +
      'The dial, the truncation curve and per-block explanations need a GloNet; the block norms are this run\'s.';
    note.classList.remove('hidden');
    byId('chart-truncation').closest('figure')!.classList.add('hidden');
    return { k: L };
  }
  const truncChart = await liveChart(byId('chart-truncation'), truncationSpec(browser, node, L, cls), 'Test error against the number of blocks kept, with the dial marked');

  const last = site.metrics.epochs[site.metrics.epochs.length - 1];
  const whole = header.rows === header.testSize;
  const errorEl = byId('test-error');
  let current = L;
  let shown = 0;
  let pending: number | null = null;
  let running = false;

  const compute = async (k: number): Promise<DialResult> => {
    const m = models.at(k);
    const predict = (x: Float32Array, rows: number) =>
      tf.tidy(() => (m.model.predict(tf.tensor(x, [rows, ...ds.inputShape])) as tf.Tensor).dataSync() as Float32Array).slice();
    const e = evaluate(predict, ds, ds.xTest, ds.yTest, ds.nTest, 512);
    const ms = await msPerPrediction(m.model, ds.xTest.subarray(0, ds.inputShape.reduce((a, b) => a * b, 1)), ds.inputShape);
    return { k, error: e.error, accuracy: e.accuracy, params: m.model.countParams(), ms };
  };

  const display = async (r: DialResult): Promise<void> => {
    show(errorEl, r.error);
    errorEl.dataset.k = String(r.k);
    byId('error-detail').textContent = cls ? `accuracy ${((r.accuracy ?? 0) * 100).toFixed(2)}% on ${header.rows} examples` : `on ${header.rows} test examples`;
    const nodePoint = node.truncation![r.k - 1];
    show(byId('node-error'), nodePoint.testError);
    byId('node-error').dataset.k = String(r.k);
    byId('node-detail').textContent = r.k === L && last?.testError != null
      ? `metrics.json (last epoch${whole ? '' : `, all ${header.testSize}`}): ${fmt(last.testError)}`
      : `glonet analyze, k = ${r.k}`;
    show(byId('params'), r.params);
    byId('params-detail').textContent = r.k === L ? 'the full model' : `${((r.params / site.model.countParams()) * 100).toFixed(1)}% of the full model`;
    byId('ms').textContent = `${r.ms.toFixed(r.ms < 1 ? 3 : 2)} ms`;
    await truncChart.set('marker', [{ k: r.k, error: r.error }]);
    await normsChart.set('dropped', [{ from: r.k + 0.5, to: L + 0.5 }]);
    shown = r.k;
    onK(r.k);
  };

  // Moves faster than the model computes coalesce: only the latest k is computed next.
  const request = async (k: number): Promise<void> => {
    pending = k;
    if (running) return;
    running = true;
    try {
      while (pending != null) {
        const next: number = pending;
        pending = null;
        if (next === shown) continue;
        slider.setAttribute('aria-busy', 'true');
        await display(await compute(next));
      }
    } finally {
      running = false;
      slider.removeAttribute('aria-busy');
    }
  };

  slider.max = String(L);
  slider.value = String(L);
  slider.disabled = false;
  byId('blocks-value').textContent = String(L);
  slider.addEventListener('input', () => {
    current = Number(slider.value);
    byId('blocks-value').textContent = String(current);
    slider.setAttribute('aria-valuetext', `${current} of ${L} blocks`);
    void request(current).catch(fail);
  });
  await nextPaint();
  await request(L);
  return { get k() { return current; } };
}
