/**
 * The report machinery every glonet page shares: number formatting, the theme, Vega-Lite specs
 * compiled with `vega-lite` and rendered to SVG in Node by `vega`'s headless `View` (so pages open
 * offline), scales, and the page's CSS. Used by the run report (./report.ts) and the experiment
 * report (../experiments/report.ts).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { CHART_THEME, COLORS, displayName, FONT } from '../display.js';

// ---------------------------------------------------------------------------------------------
// Small helpers.

export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return NaN;
}

export const finite = (v: unknown): boolean => Number.isFinite(num(v));

export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A number for people: integers with separators, tiny or huge values in exponent form. */
export function fmt(v: unknown, digits = 4): string {
  if (v == null) return '—';
  const x = num(v);
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(x.toPrecision(digits)));
}

export function fmtValue(v: unknown): string {
  if (v == null) return '—';
  if (typeof v === 'number') return fmt(v, 6);
  if (typeof v === 'boolean' || typeof v === 'string') return String(v);
  return JSON.stringify(v);
}

/** A value for people: a family's, arch's or data set's display name (src/display.ts), else fmtValue. */
export const pretty = (v: unknown): string => (typeof v === 'string' ? displayName(v) : fmtValue(v));

// ---------------------------------------------------------------------------------------------
// Theme and chart rendering.

export { FONT };
/** The palette (src/display.ts). */
export const C = COLORS;
export const WIDE = 820;
export const HALF = 360;

export const THEME = {
  ...CHART_THEME,
  padding: 8,
  axis: { ...CHART_THEME.axis, labelFlush: true },
  axisY: { minExtent: 38 },
  legend: { ...CHART_THEME.legend, symbolStrokeWidth: 3 },
  point: { filled: true, size: 36 },
  text: { font: FONT, fontSize: 11 },
  range: { category: [C.blue, C.orange, C.green, C.purple, C.gray] },
};

export interface Chart {
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
  /** Extra HTML after the caption (already escaped). */
  note?: string;
}

let renderCounter = 0;

/** Compile a Vega-Lite spec and render it to a standalone SVG string with unique ids. */
async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const full = { ...spec, config: THEME } as TopLevelSpec;
  const vg = compile(full).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    let svg = await view.toSVG();
    // Several inline SVGs share one document: keep clip-path and gradient ids distinct.
    const prefix = `g${++renderCounter}-`;
    svg = svg.replace(/\sid="([^"]+)"/g, ` id="${prefix}$1"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`);
    return svg;
  } finally {
    view.finalize();
  }
}

/** True when the positive values span at least a decade (worth a log scale). */
function spansDecades(values: number[]): boolean {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length < 2 || v.some((x) => x <= 0)) return false;
  const [lo, hi] = minMax(v);
  return hi / lo >= 10;
}

export function minMax(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export type Layer = Record<string, unknown>;

/** Specs are assembled from plain objects (layers built in helpers); Vega-Lite validates them. */
export const vl = (spec: Record<string, unknown>): TopLevelSpec => spec as unknown as TopLevelSpec;

/** Readable log-axis ticks: 1-2-5 per decade over short ranges, powers of ten over long ones. */
function logTicks(lo: number, hi: number): number[] {
  const k0 = Math.floor(Math.log10(lo));
  const k1 = Math.ceil(Math.log10(hi));
  const mantissas = k1 - k0 <= 2 ? [1, 2, 5] : k1 - k0 <= 4 ? [1, 3] : [1];
  const out: number[] = [];
  for (let k = k0; k <= k1; k++) {
    for (const m of mantissas) {
      const v = Number((m * 10 ** k).toPrecision(3));
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

/** A y scale: linear, or log with padded domain and sparse ticks when the values span decades. */
export function yScale(values: number[]): { scale: Layer; axis: Layer; log: boolean } {
  if (!spansDecades(values)) {
    const [lo, hi] = minMax(values);
    if (hi - lo > 1e-12 * Math.max(1, Math.abs(hi))) return { scale: { zero: false }, axis: { format: '~g' }, log: false };
    // One value (one epoch): centre it in a small range instead of a collapsed axis.
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.25 : 1;
    return { scale: { domain: [lo - pad, hi + pad], zero: false }, axis: { format: '~g', tickCount: 5 }, log: false };
  }
  const [lo, hi] = minMax(values);
  const domain = [lo / 1.15, hi * 1.15];
  return { scale: { type: 'log', domain, nice: false }, axis: { values: logTicks(domain[0], domain[1]), format: '~g' }, log: true };
}

/**
 * An integer x scale for epochs or blocks. Deep models (more than 100 blocks) get a symmetric-log
 * block axis so the first blocks, where GloNet puts its signal, stay readable.
 */
export interface XScale { scale: Layer; axis: Layer; log: boolean; frac: (x: number) => number }
export function xScale(lo: number, hi: number, allowLog: boolean, allowNice = true): XScale {
  if (hi <= lo) {
    lo -= 1;
    hi += 1;
  }
  if (allowLog && hi > 100) {
    const t = (x: number) => Math.sign(x) * Math.log1p(Math.abs(x));
    const values = logTicks(Math.max(1, lo), hi);
    if (lo <= 0) values.unshift(0);
    return {
      scale: { type: 'symlog', domain: [lo, hi], nice: false, zero: false },
      axis: { values, format: 'd', labelOverlap: true },
      log: true,
      frac: (x) => (t(x) - t(lo)) / (t(hi) - t(lo)),
    };
  }
  const nice = allowNice && hi - lo >= 20;
  return {
    scale: { domain: [lo, hi], nice, zero: false },
    axis: { format: 'd', tickMinStep: 1 },
    log: false,
    frac: (x) => (x - lo) / (hi - lo),
  };
}

/** A vertical rule with a label at the top, placed inside the plot. */
export function ruleWithLabel(x: number, label: string, color: string, row: number, dash: number[] | undefined, xs: XScale): Layer[] {
  const right = xs.frac(x) > 0.6;
  return [
    {
      data: { values: [{ x }] },
      mark: { type: 'rule', color, strokeWidth: 1.5, ...(dash ? { strokeDash: dash } : {}) },
      encoding: { x: { field: 'x', type: 'quantitative' } },
    },
    {
      data: { values: [{ x, label }] },
      mark: {
        type: 'text', color, align: right ? 'right' : 'left', dx: right ? -5 : 5, baseline: 'top',
        fontWeight: 600, fontSize: 11,
      },
      encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 4 + row * 15 }, text: { field: 'label' } },
    },
  ];
}

export const CSS = `
:root { --ink: #1e293b; --muted: #475569; --line: #e2e8f0; --bg: #f8fafc; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 ${FONT}; }
main { max-width: 1000px; margin: 0 auto; padding: 32px 24px 56px; }
header h1 { font-size: 26px; line-height: 1.25; margin: 0 0 4px; }
header .sub { color: var(--muted); margin: 0; }
h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 22px 0 0; }
.card { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .d { color: var(--muted); font-size: 12px; }
figure { background: white; border: 1px solid var(--line); border-radius: 10px; margin: 0 0 16px; padding: 14px 16px 12px; }
figure svg { display: block; max-width: 100%; height: auto; margin: 6px 0 4px; }
figcaption { color: var(--muted); font-size: 14px; max-width: 72ch; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 0 16px; }
.grid2 figure { padding: 12px 12px 10px; }
p.sum { margin: 2px 0 0; font-size: 13px; font-variant-numeric: tabular-nums; color: var(--ink); }
.note { background: #eff6ff; border: 1px solid #bfdbfe; border-radius: 8px; padding: 10px 14px; margin: 12px 0; }
.warn, .note.warn { background: #fff7ed; border: 1px solid #fed7aa; border-radius: 8px; padding: 10px 14px; margin: 12px 0; }
p.warn { font-size: 13px; padding: 6px 10px; margin: 6px 0 0; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef2f7; padding: 1px 5px; border-radius: 4px; }
table { border-collapse: collapse; width: 100%; background: white; border: 1px solid var(--line); border-radius: 10px; overflow: hidden; font-size: 14px; }
th, td { text-align: left; padding: 6px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; width: 34%; white-space: nowrap; }
td { font-variant-numeric: tabular-nums; word-break: break-word; }
tr:last-child th, tr:last-child td { border-bottom: 0; }
.settings { columns: 2 360px; column-gap: 16px; }
.settings table { break-inside: avoid; margin-bottom: 16px; }
table.confusion { width: auto; margin: 8px 0 4px; }
table.confusion th, table.confusion td { width: auto; text-align: right; padding: 5px 10px; }
table.confusion td.hit { font-weight: 600; background: #eff6ff; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
@media print { body { background: white; } figure, .card { break-inside: avoid; } }
`;

function figureHtml(c: Chart, svg: string): string {
  return (
    `<figure class="chart" id="${escapeHtml(c.id)}">` +
    `<h3>${escapeHtml(c.title)}</h3>` +
    (c.caption ? `<figcaption>${escapeHtml(c.caption)}</figcaption>` : '') +
    svg +
    (c.note ?? '') +
    `</figure>`
  );
}

/** A chart as a standalone SVG file's text (for pages that link their charts, such as an experiment's REPORT.md). */
export async function renderChartSvg(c: Chart): Promise<string> {
  return renderSvg(c.spec);
}

/** A chart as page HTML: its figure, a note when it is only a message, a warning when it cannot be drawn. */
export async function renderChart(c: Chart | string): Promise<string> {
  if (typeof c === 'string') return `<p class="note">${escapeHtml(c)}</p>`;
  try {
    return figureHtml(c, await renderSvg(c.spec));
  } catch (err) {
    return `<p class="note warn">The chart “${escapeHtml(c.title)}” could not be drawn: ${escapeHtml((err as Error).message)}</p>`;
  }
}
