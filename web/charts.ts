/**
 * Live Vega-Lite charts for the page: a chart is compiled once, rendered to SVG, and its named
 * data sets are replaced in place when numbers change (the SVG keeps its size, so nothing moves).
 */
import * as vega from 'vega';
import { expressionInterpreter } from 'vega-interpreter';
import { compile, type TopLevelSpec } from 'vega-lite';
import { CHART_THEME } from '../src/display.js';

const THEME = { ...CHART_THEME, padding: 6, axisY: { minExtent: 44 } };

export type Row = Record<string, number | string | null>;

export interface LiveChart {
  /** Replace the rows of a named data set and redraw. */
  set(name: string, rows: Row[]): Promise<void>;
  dispose(): void;
}

/** Render `spec` (plain Vega-Lite, without a size) into `container`, which keeps its reserved size. */
export async function liveChart(container: HTMLElement, spec: Record<string, unknown>, description: string): Promise<LiveChart> {
  // The chart fills its container (whose size the page reserves) and re-lays out its plot when
  // labels change or the window resizes, so text keeps its size and nothing around it moves.
  const sized = { ...spec, width: 'container', height: 'container', autosize: { type: 'fit', contains: 'padding', resize: true } };
  const vg = compile({ ...sized, description, config: THEME } as unknown as TopLevelSpec).spec;
  // Vega's expressions run in its interpreter, not compiled with Function: the page's content
  // security policy allows no eval (src/site/server.ts).
  const view = new vega.View(vega.parse(vg, undefined, { ast: true }), { renderer: 'svg', container, hover: true, expr: expressionInterpreter });
  await view.runAsync();
  return {
    async set(name, rows) {
      await view.change(name, vega.changeset().remove(() => true).insert(rows)).runAsync();
    },
    dispose: () => view.finalize(),
  };
}

/** A quantitative x axis over integers 1..n (blocks, k). */
export function integerAxis(field: string, title: string, n: number): Record<string, unknown> {
  return { field, type: 'quantitative', title, scale: { domain: [0.5, n + 0.5], nice: false, zero: false }, axis: { format: 'd', tickMinStep: 1 } };
}

/**
 * A y scale and axis for positive-or-not values: log (ticks at 1, 2, 5 or only powers of ten, as
 * the span allows) when the positive values span at least a decade, else linear.
 */
export function valueScale(values: number[]): { scale: Record<string, unknown>; axis: Record<string, unknown> } {
  const v = values.filter((x) => Number.isFinite(x));
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  if (!(lo > 0 && hi / lo >= 10)) return { scale: { zero: false }, axis: { format: '~g', tickCount: 5 } };
  const domain = [lo / 1.15, hi * 1.15];
  const decades = Math.log10(domain[1] / domain[0]);
  const steps = decades <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(domain[0])); e <= Math.ceil(Math.log10(domain[1])); e++) {
    for (const m of steps) {
      const t = Number((m * 10 ** e).toPrecision(2));
      if (t >= domain[0] && t <= domain[1]) ticks.push(t);
    }
  }
  return { scale: { type: 'log', nice: false, domain }, axis: { values: ticks, format: '~g' } };
}

/** A named, initially filled data set. */
export const named = (name: string, values: Row[]): Record<string, unknown> => ({ name, values });
