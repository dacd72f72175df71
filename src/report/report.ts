/**
 * The HTML report of a training run: one self-contained file (inline CSS, charts as inline SVG,
 * no scripts, no network) built from `metrics.json` and, when present, `analysis.json`.
 *
 * Charts are Vega-Lite specs rendered to SVG in Node (./charts.ts), so the page opens offline in
 * any browser.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  C, CSS, escapeHtml, finite, fmt, fmtValue, HALF, minMax, num, pretty, renderChart, ruleWithLabel, vl, WIDE, xScale, yScale,
  type Chart, type Layer, type XScale,
} from './charts.js';
import type { AnalysisAsRead, MetricsAsRead } from '../contracts.js';
import { readJson, writeFileAtomic } from '../io.js';
import { VERSION } from '../version.js';
import { BadFileError, GlonetError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// Input: the metrics.json / analysis.json contracts (src/contracts.ts), read tolerantly: JSON
// turns NaN and Infinity into null, so every number may arrive as null, or as a string from
// other writers.

export type ReportMetrics = MetricsAsRead;
export type ReportAnalysis = AnalysisAsRead;
type ReportEpoch = ReportMetrics['epochs'][number];
type ReportContributionSample = NonNullable<NonNullable<ReportAnalysis['contributions']>['samples']>[number];

interface RenderOptions {
  /** The run folder, shown in the hint to run `glonet analyze DIR`. */
  dir?: string;
  /** Set when analysis.json exists but could not be read. */
  analysisError?: string;
}

// ---------------------------------------------------------------------------------------------
// The charts.

interface Divergence { epoch: number; message?: string }

function findDivergence(m: ReportMetrics): Divergence | null {
  let first: number | null = null;
  for (const e of m.epochs ?? []) {
    if (!finite(e.trainLoss) || !finite(e.testLoss) || !finite(e.testError)) {
      first = e.epoch;
      break;
    }
  }
  if (m.diverged && typeof m.diverged === 'object') {
    const epoch = Number.isFinite(num(m.diverged.epoch)) ? num(m.diverged.epoch) : first ?? NaN;
    return { epoch, message: m.diverged.message };
  }
  return first == null ? null : { epoch: first };
}

function epochX(m: ReportMetrics, div: Divergence | null): XScale {
  const epochs = m.epochs.map((e) => e.epoch);
  if (div && Number.isFinite(div.epoch)) epochs.push(div.epoch);
  const [lo, hi] = minMax(epochs);
  return xScale(lo, hi, false);
}

/** A red rule where training diverged. */
function divergenceRule(div: Divergence | null, xs: XScale): Layer[] {
  return div && Number.isFinite(div.epoch) ? ruleWithLabel(div.epoch, 'diverged', C.red, 0, [4, 3], xs) : [];
}

function lossChart(m: ReportMetrics, div: Divergence | null): Chart | string {
  const rows: Array<{ epoch: number; series: string; value: number }> = [];
  for (const e of m.epochs) {
    if (finite(e.trainLoss)) rows.push({ epoch: e.epoch, series: 'train loss', value: num(e.trainLoss) });
    if (finite(e.testLoss)) rows.push({ epoch: e.epoch, series: 'test loss', value: num(e.testLoss) });
  }
  if (rows.length === 0) return 'No finite loss values to plot.';
  const ys = yScale(rows.map((r) => r.value));
  const xs = epochX(m, div);
  const lossName = m.task === 'classification' ? 'cross-entropy' : 'MSE';
  return {
    id: 'loss',
    title: 'Learning curves: loss',
    caption:
      `Training and test loss (${lossName}) after each epoch${ys.log ? ', on a log scale' : ''}. ` +
      'Curves that fall together mean the model is learning what generalizes; a test curve that ' +
      'turns upward while the training curve keeps falling means overfitting.',
    spec: vl({
      width: WIDE, height: 260,
      description: 'Training and test loss per epoch',
      layer: [
        {
          data: { values: rows },
          mark: { type: 'line', point: m.epochs.length <= 40, interpolate: 'monotone' },
          encoding: {
            x: { field: 'epoch', type: 'quantitative', title: 'epoch', scale: xs.scale, axis: xs.axis },
            y: { field: 'value', type: 'quantitative', title: `loss (${lossName})`, scale: ys.scale, axis: ys.axis },
            color: {
              field: 'series', type: 'nominal', title: null,
              scale: { domain: ['train loss', 'test loss'], range: [C.blue, C.orange] },
            },
          },
        },
        ...divergenceRule(div, xs),
      ],
    }),
  };
}

function errorChart(m: ReportMetrics, div: Divergence | null): Chart | string {
  const rows = m.epochs.filter((e) => finite(e.testError)).map((e) => ({ epoch: e.epoch, value: num(e.testError) }));
  if (rows.length === 0) return 'No finite test error values to plot.';
  const cls = m.task === 'classification';
  const ys = yScale(rows.map((r) => r.value));
  const xs = epochX(m, div);
  let best = rows[0];
  for (const r of rows) if (r.value < best.value) best = r;
  const right = xs.frac(best.epoch) > 0.6;
  const y = { field: 'value', type: 'quantitative', title: cls ? 'test error (1 − accuracy)' : 'test error (MSE)', scale: ys.scale, axis: ys.axis };
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: xs.scale, axis: xs.axis };
  const bestRow = [{ ...best, label: `best ${fmt(best.value)} at epoch ${best.epoch}` }];
  return {
    id: 'error',
    title: 'Learning curves: test error',
    caption:
      `Test error after each epoch (${cls ? 'one minus accuracy' : 'mean squared error on the standardized target'}` +
      `${ys.log ? ', log scale' : ''}). The dark point marks the best epoch, the number this run reports; ` +
      'a flat tail means more epochs would not help.',
    spec: vl({
      width: WIDE, height: 220,
      description: 'Test error per epoch with the best epoch highlighted',
      layer: [
        {
          data: { values: rows },
          mark: { type: 'line', color: C.green, point: rows.length <= 40, interpolate: 'monotone' },
          encoding: { x, y },
        },
        {
          data: { values: bestRow },
          mark: { type: 'point', filled: true, size: 120, color: C.ink, stroke: 'white', strokeWidth: 1.5, opacity: 1 },
          encoding: { x, y },
        },
        {
          data: { values: bestRow },
          mark: { type: 'text', align: right ? 'right' : 'left', dx: right ? -4 : 4, dy: -16, fontWeight: 600, color: C.ink },
          encoding: { x, y, text: { field: 'label' } },
        },
        ...divergenceRule(div, xs),
      ],
    }),
  };
}

/** Where the signal sits: the norm share of analysis.json (older files: the 1%-of-the-largest rule). */
function normShare(a: ReportAnalysis): { blocks: number; label: string } | null {
  const ns = a.effectiveDepth?.normShare;
  if (ns && finite(ns.blocks) && finite(ns.share)) return { blocks: num(ns.blocks), label: `${Math.round(num(ns.share) * 100)}% of the norm` };
  const byNorm = num(a.effectiveDepth?.byNorm);
  return Number.isFinite(byNorm) ? { blocks: byNorm, label: 'last block above 1% of the largest norm' } : null;
}

function blockNormChart(m: ReportMetrics, a: ReportAnalysis): Chart | string {
  const rows = (a.blockNorms ?? [])
    .filter((b) => finite(b.mean))
    .map((b) => {
      const mean = num(b.mean);
      const std = finite(b.std) ? num(b.std) : 0;
      return { block: b.block, mean, lo: Math.max(0, mean - std), hi: mean + std };
    });
  if (rows.length === 0) return 'No block norms to plot.';
  const [lo, hi] = minMax(rows.map((r) => r.block));
  const xs = xScale(lo, hi, true);
  const x = { field: 'block', type: 'quantitative', title: xs.log ? 'block (log scale)' : 'block', scale: xs.scale, axis: xs.axis };
  const layers: Layer[] = [
    {
      data: { values: rows },
      mark: { type: 'area', color: C.band, opacity: 0.45 },
      encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'block output norm' }, y2: { field: 'hi' } },
    },
    {
      data: { values: rows },
      mark: { type: 'line', color: C.blue, point: rows.length <= 40 },
      encoding: { x, y: { field: 'mean', type: 'quantitative' } },
    },
  ];
  const share = normShare(a);
  if (share) layers.push(...ruleWithLabel(share.blocks, `${share.label}: ${fmt(share.blocks)}`, C.purple, 0, [5, 4], xs));
  const glonet = m.config?.arch === 'glonet' || m.config?.arch == null;
  const samples = finite(a.samples) ? ` over ${fmt(a.samples)} test samples` : '';
  return {
    id: 'norms',
    title: 'Block output norms',
    caption:
      `How strongly each block writes into the network: the mean norm of the block's output${samples}, ` +
      'with a band of ± one standard deviation. ' +
      (glonet
        ? 'GloNet concentrates its signal in the first blocks; blocks whose norm is near zero add almost ' +
          'nothing to the sum the head reads, so they can be dropped.'
        : 'Without global aggregation the head reads only the last block: vanishing norms mean blocks ' +
          'that pass little signal on, exploding norms mean instability.'),
    spec: vl({ width: WIDE, height: 240, description: 'Mean block output norm per block', layer: layers }),
  };
}

function truncationChart(m: ReportMetrics, a: ReportAnalysis): Chart | string {
  const rows = (a.truncation ?? [])
    .filter((t) => finite(t.testError))
    .map((t) => ({ blocks: t.blocks, value: num(t.testError) }))
    .sort((p, q) => p.blocks - q.blocks);
  if (rows.length === 0) return 'No finite truncation errors to plot.';
  const cls = m.task === 'classification';
  const ys = yScale(rows.map((r) => r.value));
  const [lo, hi] = minMax(rows.map((r) => r.blocks));
  const xs = xScale(lo, hi, true);
  const x = { field: 'blocks', type: 'quantitative', title: xs.log ? 'blocks kept, k (log scale)' : 'blocks kept (k)', scale: xs.scale, axis: xs.axis };
  const y = { field: 'value', type: 'quantitative', title: cls ? 'test error (1 − accuracy)' : 'test error (MSE)', scale: ys.scale, axis: ys.axis };
  const full = rows[rows.length - 1];
  const layers: Layer[] = [
    {
      data: { values: [{ value: full.value }] },
      mark: { type: 'rule', color: C.gray, strokeDash: [2, 3] },
      encoding: { y },
    },
    {
      data: { values: rows },
      mark: { type: 'line', color: C.green, point: rows.length <= 60 },
      encoding: { x, y },
    },
  ];
  const ed = a.effectiveDepth ?? {};
  const byError = num(ed.byError);
  const share = normShare(a);
  if (Number.isFinite(byError)) layers.push(...ruleWithLabel(byError, `needed for the error: ${fmt(byError)}`, C.orange, 0, undefined, xs));
  if (share) layers.push(...ruleWithLabel(share.blocks, `${share.label}: ${fmt(share.blocks)}`, C.purple, 1, [5, 4], xs));
  const tol = finite(ed.tolerance) ? ` (within tolerance ${fmt(ed.tolerance)} of the full model)` : '';
  return {
    id: 'truncation',
    title: 'Truncation: test error vs blocks kept',
    caption:
      'Test error of the same trained model when it keeps only its first k blocks, with no retraining ' +
      `(the dotted line is the full model: ${fmt(full.value)} with ${fmt(full.blocks)} blocks). ` +
      (Number.isFinite(byError)
        ? `The error needs the first ${fmt(byError)} blocks${tol}: blocks after it can be dropped at almost no cost. `
        : 'Where the curve flattens, the remaining blocks add little. ') +
      (share ? `The first ${fmt(share.blocks)} blocks hold ${share.label.replace(' of the norm', '')} of the summed block norm: where the signal sits, which can be far fewer blocks than the error needs.` : ''),
    spec: vl({ width: WIDE, height: 240, description: 'Test error against the number of blocks kept', layer: layers }),
  };
}

function argmax(v: number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function contributionChart(m: ReportMetrics, a: ReportAnalysis, s: ReportContributionSample, i: number): Chart | string {
  const contrib = a.contributions!;
  const cls = (contrib.task ?? m.task) === 'classification';
  const pred = (s.prediction ?? []).map(num);
  const out = cls ? (s.predictedClass ?? argmax(pred)) : 0;
  const values = (s.blocks ?? []).map((b) => num(Array.isArray(b) ? b[out] : b));
  if (values.length === 0) return `Sample #${s.index}: no block contributions recorded.`;
  const bias = num(contrib.bias?.[out] ?? 0);
  const biasV = Number.isFinite(bias) ? bias : 0;
  const what = cls ? 'logit' : 'prediction';
  const up = `raises the ${what}`;
  const down = `lowers the ${what}`;
  const bars: Array<{ x0: number; x1: number; value: number; sign: string }> = [];
  const running: Array<{ block: number; value: number }> = [{ block: 0, value: biasV }];
  let sum = 0;
  values.forEach((v, l) => {
    const block = l + 1;
    if (Number.isFinite(v)) {
      sum += v;
      bars.push({ x0: block - 0.42, x1: block + 0.42, value: v, sign: v >= 0 ? up : down });
    }
    running.push({ block, value: biasV + sum });
  });
  const total = biasV + sum;
  const n = values.length;
  const xs = xScale(0, n + 0.5, true, false);
  const xBars = { field: 'x0', type: 'quantitative', scale: xs.scale, axis: { ...xs.axis, labels: false, ticks: false, domain: false, title: null } };
  const xRun = { field: 'block', type: 'quantitative', title: xs.log ? 'block (log scale; 0 = bias only)' : 'block (0 = bias only)', scale: xs.scale, axis: xs.axis };
  const yRun = { field: 'value', type: 'quantitative', title: 'cumulative', scale: { zero: false }, axis: { tickCount: 3, format: '~g' } };
  const runLayers: Layer[] = [
    {
      data: { values: running },
      mark: { type: 'line', color: C.ink, interpolate: 'step-after', strokeWidth: 1.75 },
      encoding: { x: xRun, y: yRun },
    },
  ];
  const target = num(s.target);
  if (!cls && Number.isFinite(target)) {
    const t = [{ value: target, block: n + 0.5, label: 'target' }];
    runLayers.unshift(
      { data: { values: t }, mark: { type: 'rule', color: C.green, strokeDash: [4, 3], strokeWidth: 1.5 }, encoding: { y: yRun } },
      {
        data: { values: t },
        mark: { type: 'text', color: C.green, align: 'right', baseline: 'bottom', dy: -2, fontWeight: 600 },
        encoding: { x: { field: 'block', type: 'quantitative' }, y: yRun, text: { field: 'label' } },
      },
    );
  }
  const recorded = pred[out];
  const mismatch = Number.isFinite(recorded) && Math.abs(recorded - total) > 1e-3 * Math.max(1, Math.abs(total));
  const sumText = `${fmt(total)} = ${fmt(sum)} (sum of ${n} block contributions) ${biasV < 0 ? '−' : '+'} ${fmt(Math.abs(biasV))} (bias)`;
  const head = cls
    ? `true class ${fmtValue(s.target)}, predicted class ${out}; logit of class ${out}: ${sumText}`
    : `target ${fmt(target)}, prediction ${sumText}`;
  const note =
    `<p class="sum">${escapeHtml(head)}</p>` +
    (mismatch ? `<p class="warn">The recorded prediction is ${escapeHtml(fmt(recorded))}; the blocks plus bias sum to ${escapeHtml(fmt(total))}.</p>` : '');
  return {
    id: `contrib-${i}`,
    title: `Sample #${s.index}`,
    caption: '',
    note,
    spec: vl({
      description: `Per-block contributions to the ${what} for sample ${s.index}`,
      vconcat: [
        {
          width: HALF, height: 130,
          layer: [
            {
              data: { values: [{ zero: 0 }] },
              mark: { type: 'rule', color: '#94a3b8' },
              encoding: { y: { field: 'zero', type: 'quantitative' } },
            },
            {
              data: { values: bars },
              mark: { type: 'rect' },
              encoding: {
                x: xBars, x2: { field: 'x1' },
                y: { field: 'value', type: 'quantitative', title: 'contribution', axis: { tickCount: 4, format: '~g' } },
                y2: { datum: 0 },
                color: {
                  field: 'sign', type: 'nominal', title: null,
                  scale: { domain: [up, down], range: [C.blue, C.orange] },
                  legend: { orient: 'top', direction: 'horizontal', labelLimit: 240, symbolType: 'square' },
                },
              },
            },
          ],
        },
        { width: HALF, height: 80, layer: runLayers },
      ],
      spacing: 6,
    }),
  };
}

/**
 * The test set's confusion matrix after the last epoch (classifiers): rows the true class, columns
 * the predicted one, the diagonal highlighted, each row's recall and each column's precision.
 */
function confusionTable(m: ReportMetrics): string {
  const c = m.confusion;
  const matrix = c?.matrix;
  if (!c || !Array.isArray(matrix) || matrix.length === 0 || !matrix.every((r) => Array.isArray(r) && r.length === matrix.length)) return '';
  const n = matrix.length;
  const cell = (t: number, p: number) => num(matrix[t][p]);
  const names = Array.from({ length: n }, (_, k) => String((m.data?.classes as unknown[] | undefined)?.[k] ?? k));
  const pct = (a: number, b: number) => (b > 0 ? `${((a / b) * 100).toFixed(1)}%` : '—');
  const rowTotal = (t: number) => names.reduce((s, _, p) => s + cell(t, p), 0);
  const colTotal = (p: number) => names.reduce((s, _, t) => s + cell(t, p), 0);
  const head = `<tr><th scope="col">true \\ predicted</th>${names.map((nm) => `<th scope="col">${escapeHtml(nm)}</th>`).join('')}<th scope="col">recall</th></tr>`;
  const body = names.map((nm, t) => `<tr><th scope="row">${escapeHtml(nm)}</th>${names.map((_, p) => `<td${t === p ? ' class="hit"' : ''}>${escapeHtml(fmt(cell(t, p)))}</td>`).join('')}<td>${pct(cell(t, t), rowTotal(t))}</td></tr>`).join('');
  const foot = `<tr><th scope="row">precision</th>${names.map((_, p) => `<td>${pct(cell(p, p), colTotal(p))}</td>`).join('')}<td></td></tr>`;
  const total = names.reduce((s, _, t) => s + rowTotal(t), 0);
  const constant = finite(m.data?.constantError) ? ` Always guessing the most frequent training class would score ${((1 - num(m.data!.constantError)) * 100).toFixed(1)}%.` : '';
  return (
    `<figure class="chart" id="confusion"><h3>Confusion matrix</h3>` +
    `<figcaption>${escapeHtml(`The ${fmt(total)} test examples after epoch ${fmt(c.epoch)}: each row is a true class, each column the class predicted; the diagonal is right.${constant}`)}</figcaption>` +
    `<table class="confusion" aria-label="confusion matrix">${head}${body}${foot}</table></figure>`
  );
}

// ---------------------------------------------------------------------------------------------
// The page.

function settingsTable(m: ReportMetrics, div: Divergence | null): string {
  const run: Array<[string, unknown]> = Object.entries(m.config ?? {});
  const cls = m.task === 'classification';
  const lastAcc = [...m.epochs].reverse().find((e) => finite(e.testAccuracy));
  const results: Array<[string, string]> = [
    ['task', m.task],
    ['parameters', fmt(m.params)],
    ['backend', fmtValue(m.backend)],
    ['epochs recorded', fmt(m.epochs.length)],
    ['best epoch', fmt(m.best?.epoch)],
    [cls ? 'best test error (1 − accuracy)' : 'best test error (MSE)', fmt(m.best?.testError)],
    ['mean epoch seconds', fmt(m.meanEpochSeconds, 3)],
  ];
  if (cls && lastAcc) results.push(['final test accuracy', fmt(lastAcc.testAccuracy)]);
  if (m.engine) results.push(['engine', m.engine]);
  if (m.data) {
    if (m.data.source) results.push(['data source', m.data.source]);
    if (m.data.nTrain != null) results.push(['train / test examples', `${fmt(m.data.nTrain)} / ${fmt(m.data.nTest)}`]);
    if (Array.isArray(m.data.inputShape)) results.push(['input shape', `[${m.data.inputShape.join(', ')}]`]);
  }
  if (m.truncatedFrom) results.push(['truncated from', `${m.truncatedFrom.dir} (${fmt(m.truncatedFrom.blocks)} of ${fmt(m.truncatedFrom.of)} blocks)`]);
  if (div) results.push(['diverged at epoch', fmt(div.epoch)]);
  const rows = (list: Array<[string, unknown]>) =>
    list.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(fmtValue(v))}</td></tr>`).join('');
  return (
    `<div class="settings">` +
    `<table aria-label="run options"><tbody>${rows(run)}</tbody></table>` +
    `<table aria-label="results"><tbody>${rows(results)}</tbody></table>` +
    `</div>`
  );
}

function cards(m: ReportMetrics): string {
  const cls = m.task === 'classification';
  const best = m.best ?? { epoch: null, testError: null };
  const bestEpoch = m.epochs.find((e) => e.epoch === num(best.epoch));
  const list: Array<[string, string, string]> = [
    [cls ? 'best test error' : 'best test MSE', fmt(best.testError), finite(best.epoch) ? `at epoch ${fmt(best.epoch)}` : 'no finite epoch'],
  ];
  if (cls && bestEpoch && finite(bestEpoch.testAccuracy)) {
    list.push(['test accuracy', `${(num(bestEpoch.testAccuracy) * 100).toFixed(2)}%`, 'at the best epoch']);
  }
  list.push(
    ['parameters', fmt(m.params), `${fmtValue(m.config?.depth ?? '?')} blocks × width ${fmtValue(m.config?.width ?? '?')}`],
    ['epoch time', finite(m.meanEpochSeconds) ? `${fmt(m.meanEpochSeconds, 3)} s` : '—', `mean of ${m.epochs.length} epoch${m.epochs.length === 1 ? '' : 's'}`],
    ['backend', fmtValue(m.backend ?? m.config?.backend), 'TensorFlow.js'],
  );
  return (
    `<div class="cards">` +
    list.map(([k, v, d]) => `<div class="card"><div class="k">${escapeHtml(k)}</div><div class="v">${escapeHtml(v)}</div><div class="d">${escapeHtml(d)}</div></div>`).join('') +
    `</div>`
  );
}

/** Render the report page. `analysis` adds the block norm, truncation and contribution charts. */
export async function renderReportHtml(
  metrics: ReportMetrics,
  analysis?: ReportAnalysis | null,
  options: RenderOptions = {},
): Promise<string> {
  const m: ReportMetrics = { ...metrics, epochs: [...(metrics.epochs ?? [])].sort((p, q) => p.epoch - q.epoch) };
  const cfg = m.config ?? {};
  const titleParts = [pretty(cfg.model ?? 'model'), pretty(cfg.arch ?? '')].filter((s) => s !== '');
  const title = `${titleParts.join(' · ')}, depth ${fmtValue(cfg.depth ?? '?')} on ${pretty(cfg.dataset ?? '?')}`;
  const div = findDivergence(m);

  const render = renderChart;

  const parts: string[] = [];
  parts.push(
    `<header><h1>${escapeHtml(title)}</h1>` +
      `<p class="sub">Training report · ${escapeHtml(m.task)} · ${escapeHtml(fmt(m.epochs.length))} epoch${m.epochs.length === 1 ? '' : 's'}` +
      ` · seed ${escapeHtml(fmtValue(cfg.seed ?? '—'))}</p></header>`,
  );
  parts.push(cards(m));
  if (div) {
    const last = m.epochs[m.epochs.length - 1]?.epoch;
    const stopped = m.diverged != null || last == null || last <= div.epoch;
    parts.push(
      `<p class="note warn"><strong>Training diverged</strong> at epoch ${escapeHtml(fmt(div.epoch))}: the loss became NaN or ` +
        `infinite${div.message ? ` (${escapeHtml(div.message)})` : ''}${stopped ? ', so training stopped there' : ''}. The charts plot the finite values only; ` +
        'a lower learning rate, a shallower model, or the GloNet architecture usually trains stably.</p>',
    );
  }

  parts.push('<h2>Training</h2>');
  if (m.epochs.length === 0) parts.push('<p class="note">No epochs were recorded.</p>');
  else {
    parts.push(await render(lossChart(m, div)));
    parts.push(await render(errorChart(m, div)));
    if (m.task === 'classification') parts.push(confusionTable(m));
  }
  const notes = Array.isArray(m.data?.notes) ? m.data!.notes.filter((n): n is string => typeof n === 'string') : [];
  if (notes.length) parts.push(`<p class="note">${notes.map((n) => `Data: ${escapeHtml(n)}.`).join('<br>')}</p>`);

  parts.push('<h2>Inside the network</h2>');
  const dir = options.dir ?? 'DIR';
  if (options.analysisError) {
    parts.push(`<p class="note warn">analysis.json could not be read: ${escapeHtml(options.analysisError)}. Run <code>glonet analyze ${escapeHtml(dir)}</code> again to rebuild it.</p>`);
  } else if (!analysis) {
    parts.push(
      `<p class="note">No analysis yet. Run <code>glonet analyze ${escapeHtml(dir)}</code> to add the block norms, ` +
        'the truncation curve (test error against blocks kept) and per-sample block contributions to this report.</p>',
    );
  } else {
    parts.push(await render(blockNormChart(m, analysis)));
    if (analysis.truncation && analysis.truncation.length > 0) parts.push(await render(truncationChart(m, analysis)));
    else if (cfg.arch === 'glonet') parts.push('<p class="note">analysis.json has no truncation curve.</p>');
    else {
      parts.push(`<p class="note">No truncation curve: truncating by dropping the last blocks applies to GloNet, where the head reads the sum of all block outputs; this run's architecture is ${escapeHtml(pretty(cfg.arch ?? 'unknown'))}.</p>`);
    }
    const samples = analysis.contributions?.samples ?? [];
    if (samples.length > 0) {
      const cls = (analysis.contributions?.task ?? m.task) === 'classification';
      parts.push(
        `<h3 style="margin-top:24px">Block contributions to single predictions</h3>` +
          `<figcaption style="margin-bottom:10px">${escapeHtml(
            'The head is linear and reads the sum of the block outputs, so every prediction splits exactly into one ' +
              'additive contribution per block plus the head bias. Top of each panel: each block\'s contribution to the ' +
              (cls ? 'predicted class\'s logit' : 'predicted output (standardized units)') +
              '; bottom: the cumulative prediction, the bias plus the first k blocks' +
              (cls ? '' : ', with the target dashed') +
              '. Where the cumulative line stops moving, the later blocks could be dropped.',
          )}</figcaption>`,
      );
      const figs: string[] = [];
      for (let i = 0; i < samples.length; i++) figs.push(await render(contributionChart(m, analysis, samples[i], i)));
      parts.push(`<div class="grid2">${figs.join('')}</div>`);
    } else {
      parts.push('<p class="note">No per-sample contributions in analysis.json.</p>');
    }
  }

  parts.push('<h2>Run settings</h2>');
  parts.push(settingsTable(m, div));
  parts.push(`<footer>Generated by glonet ${escapeHtml(VERSION)} from metrics.json${analysis ? ' and analysis.json' : ''}. This file is self-contained and opens offline.</footer>`);

  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(title)} · glonet report</title>` +
    `<style>${CSS}</style></head><body><main>\n${parts.join('\n')}\n</main></body></html>\n`
  );
}

/** Write `DIR/report.html` (atomically) from `DIR/metrics.json` and `DIR/analysis.json`. */
export async function writeReport(dir: string): Promise<string> {
  let metrics: ReportMetrics;
  try {
    metrics = readJson<ReportMetrics>(path.join(dir, 'metrics.json'), 'metrics', { within: dir });
  } catch (err) {
    if (err instanceof GlonetError) throw new BadFileError(`cannot write the report: ${err.message}`);
    throw err;
  }
  let analysis: ReportAnalysis | undefined;
  let analysisError: string | undefined;
  const analysisFile = path.join(dir, 'analysis.json');
  if (fs.existsSync(analysisFile)) {
    try {
      analysis = readJson<ReportAnalysis>(analysisFile, 'analysis', { within: dir });
    } catch (err) {
      analysisError = (err as Error).message;
    }
  }
  const html = await renderReportHtml(metrics, analysis, { dir, analysisError });
  const out = path.join(dir, 'report.html');
  writeFileAtomic(out, html);
  return out;
}

export { escapeHtml } from './charts.js';
