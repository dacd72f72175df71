/**
 * The input form of a tabular run: one field per raw column the model reads, in the column's own
 * units, prefilled from a test row. A numeric column is a number field; a categorical column a
 * choice list of its training levels, with `(other)` when rarer levels were pooled, an empty choice
 * where missing values are allowed, and a choice for a level not seen in training. The row goes
 * through glonet's `encodeRow` with the model's encoding (`modelEncoding`), the very function
 * training and `glonet predict` use, before it reaches the model.
 */
import { decodeRow, encodeRow, inputCount, modelEncoding, OTHER_LEVEL, parseCell, type Cell, type TableEncoding } from 'glonet';
import type { SiteData } from './site-data.js';
import type { InputSource } from './input-source.js';
import { fmt, h } from './dom.js';

/** The choice that stands for a level the training rows never had (encoded as no level). */
const UNSEEN = '\u0000unseen';

function choiceList(id: string, name: string, levels: string[], other: boolean, missing: boolean): HTMLSelectElement {
  const options = [
    ...levels.map((l) => h('option', { value: l }, l)),
    ...(other ? [h('option', { value: OTHER_LEVEL }, `${OTHER_LEVEL} a rarer level`)] : []),
    h('option', { value: UNSEEN }, '(a level not seen in training)'),
    ...(missing ? [h('option', { value: '' }, '(missing)')] : []),
  ];
  return h('select', { id, 'data-testid': 'feature', 'data-name': name, 'data-kind': 'categorical' }, ...options);
}

export function tabularInput(site: SiteData, container: HTMLElement, onChange: () => void): InputSource {
  const { x, header } = site.sample;
  const enc: TableEncoding = modelEncoding(site.meta)!;
  const d = inputCount(enc);
  const allowMissing = enc.missing === 'impute';
  const target = enc.target;

  const rowInput = h('input', { type: 'number', id: 'row', 'data-testid': 'row', min: 1, max: header.rows, step: 1, value: 1, inputmode: 'numeric' });
  const rowNote = h('span', { class: 'rownote', id: 'row-note' });
  const fields: Array<HTMLInputElement | HTMLSelectElement> = enc.columns.map((c, i) => (c.kind === 'numeric'
    ? h('input', {
      type: 'number', step: 'any', inputmode: 'decimal', id: `f-${i}`, 'data-testid': 'feature', 'data-name': c.name, 'data-kind': 'numeric',
      required: !allowMissing, placeholder: allowMissing ? 'empty: missing' : undefined,
    })
    : choiceList(`f-${i}`, c.name, c.levels, c.otherLevel, allowMissing)));
  const error = h('p', { class: 'fielderror', role: 'alert' });
  container.append(
    h('div', { class: 'rowpick' }, h('label', { for: 'row' }, 'Start from test row'), rowInput, rowNote),
    h('fieldset', { class: 'features' },
      h('legend', {}, `The ${enc.columns.length} training columns${allowMissing ? ' (an empty field is a missing value, filled in as in training)' : ''}`),
      ...fields.map((f, i) => h('label', { for: f.id }, h('span', {}, enc.columns[i].name), f))),
    error,
  );

  const loadRow = (r: number): void => {
    decodeRow(enc, x, r * d).forEach((cell, i) => {
      fields[i].value = cell === undefined ? UNSEEN : cell === null ? '' : String(cell);
    });
    const y = header.targets[r];
    rowNote.textContent = target.kind === 'numeric'
      ? `target ${target.name}: ${fmt(y * target.std + target.mean)}`
      : `target ${target.name}: ${target.classes[y] ?? fmt(y)}`;
  };
  rowInput.addEventListener('change', () => {
    const r = Math.round(Number(rowInput.value));
    if (!Number.isFinite(r) || r < 1 || r > header.rows) return;
    loadRow(r - 1);
    onChange();
  });
  for (const f of fields) f.addEventListener(f instanceof HTMLSelectElement ? 'change' : 'input', onChange);
  loadRow(0);

  return {
    current() {
      const bad: string[] = [];
      const cells: Cell[] = fields.map((f, i) => {
        const c = enc.columns[i];
        const text = f.value.trim();
        if (text === '') {
          if (!allowMissing) bad.push(c.name);
          return null;
        }
        if (c.kind === 'categorical') return text;
        const cell = parseCell(text);
        if (typeof cell !== 'number') bad.push(c.name);
        return cell;
      });
      fields.forEach((f) => (bad.includes(enc.columns[fields.indexOf(f)].name) ? f.setAttribute('aria-invalid', 'true') : f.removeAttribute('aria-invalid')));
      if (bad.length) {
        error.textContent = `Enter a number for ${bad.join(', ')}.`;
        return null;
      }
      const out = new Float32Array(d);
      try {
        encodeRow(enc, cells, out, 0, () => 'this row');
      } catch (e) {
        error.textContent = (e as Error).message;
        return null;
      }
      error.textContent = '';
      return out;
    },
  };
}
