/**
 * The input form of a tabular run: one number field per training column, in the column's own
 * units, prefilled from a test row. Values are standardized exactly as in training,
 * f32((value - mean) / std), before they reach the model.
 */
import type { SiteData } from './site-data.js';
import type { InputSource } from './input-source.js';
import { fmt, h } from './dom.js';

/**
 * A column's value in its own units from its standardized float32 value: value * std + mean,
 * rounded to a millionth of the column's spread, which undoes the float32 rounding (so an integer
 * column shows its integers, and standardizing the shown value gives the stored input back).
 */
function rawValue(standardized: number, mean: number, std: number): number {
  const quantum = 10 ** (Math.floor(Math.log10(std)) - 6);
  return Number((Math.round((standardized * std + mean) / quantum) * quantum).toPrecision(12));
}

export function tabularInput(site: SiteData, container: HTMLElement, onChange: () => void): InputSource {
  const { x, header } = site.sample;
  const d = site.meta.inputShape[0];
  const st = site.meta.standardization;
  const names = st?.featureNames ?? Array.from({ length: d }, (_, i) => `x${i + 1}`);
  const mean = st?.mean ?? new Array<number>(d).fill(0);
  const std = st?.std ?? new Array<number>(d).fill(1);
  const target = st?.target;

  const rowInput = h('input', { type: 'number', id: 'row', 'data-testid': 'row', min: 1, max: header.rows, step: 1, value: 1, inputmode: 'numeric' });
  const rowNote = h('span', { class: 'rownote', id: 'row-note' });
  const fields = names.map((name, i) => h('input', { type: 'number', step: 'any', inputmode: 'decimal', id: `f-${i}`, 'data-testid': 'feature', 'data-name': name, required: true }));
  const error = h('p', { class: 'fielderror', role: 'alert' });
  container.append(
    h('div', { class: 'rowpick' }, h('label', { for: 'row' }, 'Start from test row'), rowInput, rowNote),
    h('fieldset', { class: 'features' },
      h('legend', {}, `The ${d} training columns`),
      ...fields.map((f, i) => h('label', { for: f.id }, h('span', {}, names[i]), f))),
    error,
  );

  const loadRow = (r: number): void => {
    fields.forEach((f, i) => { f.value = String(rawValue(x[r * d + i], mean[i], std[i])); });
    const y = header.targets[r];
    rowNote.textContent = target ? `target ${target.name}: ${fmt(y * target.std + target.mean)}` : `target ${fmt(y)}`;
  };
  rowInput.addEventListener('change', () => {
    const r = Math.round(Number(rowInput.value));
    if (!Number.isFinite(r) || r < 1 || r > header.rows) return;
    loadRow(r - 1);
    onChange();
  });
  for (const f of fields) f.addEventListener('input', onChange);
  loadRow(0);

  return {
    current() {
      const values = fields.map((f) => Number(f.value));
      const bad = fields.filter((f, i) => f.value.trim() === '' || !Number.isFinite(values[i]));
      fields.forEach((f) => (bad.includes(f) ? f.setAttribute('aria-invalid', 'true') : f.removeAttribute('aria-invalid')));
      error.textContent = bad.length ? `Enter a number for ${bad.map((f) => f.dataset.name).join(', ')}.` : '';
      if (bad.length) return null;
      return Float32Array.from(values, (v, i) => (v - mean[i]) / std[i]);
    },
  };
}
