/** Small DOM and number-formatting helpers for the page. */

type Child = Node | string | null | undefined | false;

/** `h('p', { class: 'note' }, 'text', child)`: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null && c !== false) el.append(c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** A number for people, with `digits` significant digits (6 by default: enough to compare to 1e-5). */
export function fmt(v: number, digits = 6): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(digits - 1).replace(/-/g, '−');
  return Number(v.toPrecision(digits)).toString().replace(/-/g, '−');
}

/** Show a value in an element: formatted text, the exact value in data-value. */
export function show(el: HTMLElement, v: number, digits = 6): void {
  el.textContent = fmt(v, digits);
  el.dataset.value = String(v);
}


/** Resolves after the browser has painted (lets status text appear before long work). */
export const nextPaint = (): Promise<void> => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));

/** Show an error in the status line (as an alert) and in the console. */
export function fail(e: unknown): void {
  const status = document.getElementById('status');
  if (status) {
    status.textContent = `Error: ${(e as Error)?.message ?? String(e)}`;
    status.classList.add('error');
    status.setAttribute('role', 'alert');
  }
  console.error(e);
}
