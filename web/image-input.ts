/**
 * The input of an image run: the image as bytes (0..255 per pixel and channel) on a canvas shown
 * enlarged. Grayscale runs (MNIST, Fashion-MNIST) get a drawing pad (pointer, or keyboard: arrows
 * move the pen, Space paints, Shift+arrows paint as they move, Delete clears); every run gets a
 * picker of the shipped test images. Bytes become model inputs exactly as the data loaders scale
 * them (byte / 255, then the run's channel statistics if it has them).
 */
import type { SiteData } from './site-data.js';
import type { InputSource } from './input-source.js';
import { decodeSampleInputs, type SampleEncoding } from '../src/site/site-format.js';
import { h } from './dom.js';

export function imageInput(site: SiteData, container: HTMLElement, onChange: () => void): InputSource {
  const { header, bytes: sampleBytes, x: sampleX } = site.sample;
  const [height, width, channels] = site.meta.inputShape;
  const size = height * width * channels;
  const st = site.meta.standardization;
  const encoding: SampleEncoding = st && st.mean.length === channels ? { type: 'uint8-pixels', mean: st.mean, std: st.std } : { type: 'uint8-pixels' };
  const drawable = channels === 1;
  const names = site.meta.classNames ?? [];
  const pixels = new Uint8Array(size);
  /** The sample row shown unchanged, if any (its exact float inputs are used when the sample is not stored as bytes). */
  let fromSample: number | null = null;

  const canvas = h('canvas', {
    width, height, class: 'pad', 'data-testid': drawable ? 'pad' : 'image',
    ...(drawable
      ? { tabindex: 0, role: 'application', 'aria-roledescription': 'drawing pad', 'aria-label': `Drawing pad, ${width} by ${height} pixels. Draw with the pointer; or use the arrow keys to move the pen, Space to paint, Shift with arrows to paint as you move, Delete to clear.` }
      : { role: 'img', 'aria-label': 'The chosen test image' }),
  });
  const cursor = h('div', { class: 'cursor hidden', 'aria-hidden': 'true' });
  const ctx = canvas.getContext('2d')!;
  const indexInput = h('input', { type: 'number', id: 'image-index', 'data-testid': 'image-index', min: 1, max: header.rows, step: 1, value: 1, inputmode: 'numeric' });
  const prev = h('button', { type: 'button', 'aria-label': 'Previous test image' }, '◀');
  const next = h('button', { type: 'button', 'aria-label': 'Next test image' }, '▶');
  const clear = h('button', { type: 'button', 'data-testid': 'clear' }, 'Clear');
  const label = h('span', { class: 'rownote', id: 'image-label' });
  container.append(
    h('div', { class: 'padwrap' }, canvas, cursor),
    h('div', { class: 'rowpick' }, h('label', { for: 'image-index' }, 'Test image'), prev, indexInput, next, drawable ? clear : null),
    label,
  );
  if (drawable) container.append(h('p', { class: 'hint' }, 'Draw a digit or a garment in white on black; keyboard: arrows move the pen, Space paints, Shift+arrows paint, Delete clears.'));

  const paint = (): void => {
    const img = ctx.createImageData(width, height);
    for (let p = 0; p < width * height; p++) {
      for (let c = 0; c < 3; c++) img.data[4 * p + c] = pixels[p * channels + (channels === 1 ? 0 : c)];
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  };

  const showSample = (i: number, notify = true): void => {
    fromSample = i;
    if (header.encoding.type === 'uint8-pixels') pixels.set(sampleBytes.subarray(i * size, (i + 1) * size));
    else {
      // Stored as float32: show an approximation of the pixels (the model still gets the exact inputs).
      for (let j = 0; j < size; j++) {
        const c = j % channels;
        const unit = encoding.type === 'uint8-pixels' && encoding.mean && encoding.std ? sampleX[i * size + j] * encoding.std[c] + encoding.mean[c] : sampleX[i * size + j];
        pixels[j] = Math.max(0, Math.min(255, Math.round(unit * 255)));
      }
    }
    const y = header.targets[i];
    label.textContent = `test image ${i + 1}: true class ${y}${names[y] != null && names[y] !== String(y) ? ` (${names[y]})` : ''}`;
    indexInput.value = String(i + 1);
    paint();
    if (notify) onChange();
  };
  const step = (d: number): void => showSample((((Number(indexInput.value) - 1 + d) % header.rows) + header.rows) % header.rows);
  indexInput.addEventListener('change', () => {
    const i = Math.round(Number(indexInput.value));
    if (Number.isFinite(i) && i >= 1 && i <= header.rows) showSample(i - 1);
  });
  prev.addEventListener('click', () => step(-1));
  next.addEventListener('click', () => step(1));

  if (drawable) {
    let changed = false;
    const touched = (): void => {
      fromSample = null;
      label.textContent = 'your drawing';
      if (changed) return;
      changed = true;
      requestAnimationFrame(() => {
        changed = false;
        paint();
        onChange();
      });
    };
    // A soft round brush about three pixels wide, in pixel units.
    const dab = (px: number, py: number): void => {
      for (let y = Math.floor(py - 2); y <= Math.ceil(py + 2); y++) {
        for (let x = Math.floor(px - 2); x <= Math.ceil(px + 2); x++) {
          if (x < 0 || y < 0 || x >= width || y >= height) continue;
          const d = Math.hypot(x + 0.5 - px, y + 0.5 - py);
          const v = Math.round(255 * Math.min(1, Math.max(0, 1.7 - d)));
          if (v > pixels[y * width + x]) pixels[y * width + x] = v;
        }
      }
      touched();
    };
    let last: [number, number] | null = null;
    const at = (e: PointerEvent): [number, number] => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) / r.width) * width, ((e.clientY - r.top) / r.height) * height];
    };
    const stroke = (to: [number, number]): void => {
      const from = last ?? to;
      const n = Math.max(1, Math.ceil(Math.hypot(to[0] - from[0], to[1] - from[1]) / 0.25));
      for (let i = 1; i <= n; i++) dab(from[0] + ((to[0] - from[0]) * i) / n, from[1] + ((to[1] - from[1]) * i) / n);
      last = to;
    };
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      last = null;
      stroke(at(e));
      e.preventDefault();
    });
    canvas.addEventListener('pointermove', (e) => { if (last) stroke(at(e)); });
    const end = (): void => { last = null; };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);

    const pen = { x: Math.floor(width / 2), y: Math.floor(height / 2) };
    const placeCursor = (): void => {
      cursor.style.left = `${(pen.x / width) * 100}%`;
      cursor.style.top = `${(pen.y / height) * 100}%`;
      cursor.style.width = `${100 / width}%`;
      cursor.style.height = `${100 / height}%`;
    };
    canvas.addEventListener('focus', () => { placeCursor(); cursor.classList.remove('hidden'); });
    canvas.addEventListener('blur', () => cursor.classList.add('hidden'));
    canvas.addEventListener('keydown', (e) => {
      const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (moves[e.key]) {
        pen.x = Math.max(0, Math.min(width - 1, pen.x + moves[e.key][0]));
        pen.y = Math.max(0, Math.min(height - 1, pen.y + moves[e.key][1]));
        placeCursor();
        if (e.shiftKey) dab(pen.x + 0.5, pen.y + 0.5);
      } else if (e.key === ' ' || e.key === 'Enter') dab(pen.x + 0.5, pen.y + 0.5);
      else if (e.key === 'Delete' || e.key === 'Backspace') clearPad();
      else return;
      e.preventDefault();
    });
    const clearPad = (): void => {
      pixels.fill(0);
      fromSample = null;
      label.textContent = 'empty pad: draw something';
      paint();
      onChange();
    };
    clear.addEventListener('click', clearPad);
  }

  showSample(0, false);

  return {
    current() {
      if (fromSample != null && header.encoding.type === 'float32') return sampleX.slice(fromSample * size, (fromSample + 1) * size);
      return decodeSampleInputs({ ...header, rows: 1, encoding }, pixels);
    },
  };
}
