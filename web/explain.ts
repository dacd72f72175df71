/**
 * "Explain your own input": the current input (a form of the training columns, a drawing pad or
 * a test-image picker) goes through the dial's k-block model with glonet's `explain`, and the page
 * shows the prediction, the head's bias and each block's additive contribution, which sum to the
 * prediction (shown as a sum and as a waterfall).
 */
import * as tf from '@tensorflow/tfjs';
import { explain } from 'glonet';
import type { SiteData } from './site-data.js';
import type { BlockModels } from './block-models.js';
import { liveChart, named, type LiveChart } from './charts.js';
import { COLORS } from '../src/display.js';
import { byId, fmt, h, show } from './dom.js';
import { tabularInput } from './tabular-input.js';
import { imageInput } from './image-input.js';
import type { InputSource } from './input-source.js';

interface ExplainedPrediction {
  /** The predicted output: the regression value in the target's units, or the predicted class's logit. */
  prediction: number;
  bias: number;
  /** Each block's contribution to `prediction`. */
  contributions: number[];
  predictedClass?: number;
  probabilities?: number[];
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** glonet's explanation of one example by the k-block model, in the units the page shows. */
function explainOne(site: SiteData, models: BlockModels, k: number, input: Float32Array): ExplainedPrediction {
  const m = models.at(k);
  const x = tf.tensor(input, [1, ...site.meta.inputShape]);
  try {
    const e = explain(m.model, m.meta, x, m.view);
    const out = e.outputs;
    const raw = Array.from(e.prediction.subarray(0, out));
    if (site.meta.task === 'classification') {
      const probabilities = softmax(raw);
      const c = raw.indexOf(Math.max(...raw));
      const contributions = Array.from({ length: e.blocks }, (_, l) => e.contributions[l * out + c]);
      return { prediction: raw[c], bias: e.bias[c], contributions, predictedClass: c, probabilities };
    }
    // The model predicts the standardized target: map back to its units (contributions scale, the mean joins the bias).
    const t = site.meta.standardization?.target;
    const scale = t?.std ?? 1;
    const shift = t?.mean ?? 0;
    const contributions = Array.from({ length: e.blocks }, (_, l) => e.contributions[l] * scale);
    return { prediction: raw[0] * scale + shift, bias: e.bias[0] * scale + shift, contributions };
  } finally {
    x.dispose();
  }
}

function waterfallSpec(L: number): Record<string, unknown> {
  const x = { type: 'quantitative', title: 'block (0 = head bias)', scale: { domain: [-0.5, L + 0.5], nice: false, zero: false }, axis: { format: 'd', tickMinStep: 1 } };
  const y = { type: 'quantitative', title: 'running total', scale: { zero: false } };
  return {
    layer: [
      { data: named('steps', []), mark: { type: 'rect' },
        encoding: {
          x: { ...x, field: 'x0' }, x2: { field: 'x1' }, y: { ...y, field: 'start' }, y2: { field: 'end' },
          color: { field: 'kind', type: 'nominal', title: null, scale: { domain: ['raises', 'lowers'], range: [COLORS.blue, COLORS.orange] } },
        } },
      { data: named('bias', []), mark: { type: 'rule', color: COLORS.ink, strokeWidth: 3 }, encoding: { x: { ...x, field: 'x0' }, x2: { field: 'x1' }, y: { ...y, field: 'value' } } },
      { data: named('total', []), mark: { type: 'rule', color: COLORS.ink, strokeDash: [4, 3] }, encoding: { y: { ...y, field: 'value' } } },
    ],
  };
}

interface Explainer {
  setK(k: number): void;
}

export async function setupExplain(site: SiteData, models: BlockModels): Promise<Explainer> {
  const cls = site.meta.task === 'classification';
  const target = site.meta.standardization?.target;
  const container = byId('explain-input');
  let k = models.count;
  let chart: LiveChart | null = null;
  let revision = 0;

  const render = (): void => {
    const input = source.current();
    if (!input) return;
    if (!models.explainable) {
      const y = tf.tidy(() => (site.model.predict(tf.tensor(input, [1, ...site.meta.inputShape])) as tf.Tensor).dataSync());
      show(byId('prediction'), cls ? y.indexOf(Math.max(...y)) : y[0] * (target?.std ?? 1) + (target?.mean ?? 0));
      return;
    }
    const p = explainOne(site, models, k, input);
    const sum = p.contributions.reduce((a, b) => a + b, 0);
    show(byId('prediction'), p.prediction);
    byId('prediction').dataset.k = String(k);
    byId('prediction').dataset.revision = String(++revision);
    show(byId('bias'), p.bias);
    show(byId('contribution-sum'), sum);
    byId('contrib-label').textContent = `sum of ${k} block contribution${k === 1 ? '' : 's'}`;
    const total = p.bias + sum;
    const ok = Math.abs(total - p.prediction) <= 1e-5 * Math.max(1, Math.abs(p.prediction));
    const check = byId('sum-check');
    check.textContent = `bias + contributions = ${fmt(p.bias)} ${sum < 0 ? '−' : '+'} ${fmt(Math.abs(sum))} = ${fmt(total)} ${ok ? '= the prediction ✓' : `≠ the prediction ${fmt(p.prediction)}`}`;
    check.dataset.total = String(total);
    check.classList.toggle('bad', !ok);
    if (cls) {
      const names = site.meta.classNames ?? [];
      const c = p.predictedClass!;
      byId('predicted-class').textContent = names[c] != null && names[c] !== String(c) ? `${c} (${names[c]})` : String(c);
      byId('predicted-class').dataset.value = String(c);
      const top = p.probabilities!.map((q, i) => [q, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 3);
      byId('prediction-extra').textContent = 'probabilities: ' + top.map(([q, i]) => `${names[i] ?? i} ${(q * 100).toFixed(1)}%`).join(', ');
    } else if (target?.transform === 'ln') {
      const unit = /^ln\((.*)\)$/.exec(target.name)?.[1] ?? `exp of ${target.name}`;
      byId('prediction-extra').textContent = `exp(prediction) = ${fmt(Math.exp(p.prediction), 5)} ${unit}`;
    }
    const rows: Array<Record<string, number | string>> = [];
    const tbody = byId('contrib-rows');
    const trs: HTMLTableRowElement[] = [];
    let running = p.bias;
    p.contributions.forEach((c, l) => {
      rows.push({ block: l + 1, x0: l + 0.6, x1: l + 1.4, start: running, end: running + c, kind: c >= 0 ? 'raises' : 'lowers' });
      running += c;
      const cell = h('td', { 'data-testid': 'contribution', 'data-block': l + 1, 'data-value': String(c) }, fmt(c));
      trs.push(h('tr', {}, h('th', { scope: 'row' }, String(l + 1)), cell, h('td', {}, fmt(running))));
    });
    tbody.replaceChildren(...trs);
    void chart?.set('steps', rows)
      .then(() => chart?.set('bias', [{ x0: -0.4, x1: 0.4, value: p.bias }]))
      .then(() => chart?.set('total', [{ value: p.prediction }]));
  };

  const source: InputSource = site.meta.inputShape.length === 1
    ? tabularInput(site, container, render)
    : imageInput(site, container, render);

  if (cls) {
    document.querySelectorAll('.cls-only').forEach((e) => e.classList.remove('hidden'));
    byId('prediction-label').textContent = 'logit of the predicted class';
  } else {
    byId('prediction-label').textContent = `prediction${target ? ` (${target.name})` : ''}`;
  }
  if (!models.explainable) {
    const note = byId('explain-note');
    note.textContent = models.isGloNet
      ? 'This GloNet\'s head is not one linear Dense layer, so its predictions do not split exactly into block contributions; the prediction alone is shown.'
      : 'Per-block contributions need a GloNet (the head reads the sum of the blocks); this run\'s prediction alone is shown.';
    note.classList.remove('hidden');
    byId('chart-waterfall').closest('figure')!.classList.add('hidden');
  } else {
    chart = await liveChart(byId('chart-waterfall'), waterfallSpec(models.count), 'Waterfall of the head bias and each block contribution up to the prediction');
  }
  render();
  return {
    setK(next) {
      k = next;
      render();
    },
  };
}
