/**
 * `glonet experiment report DIR`: gathers the folder's cells (./results.ts) and writes
 *   DIR/results.json   the results contract (src/contracts.ts)
 *   DIR/REPORT.md      the claims, rules and cells as Markdown tables, readable on GitHub
 *   DIR/report.html    the same, self-contained, with Vega-Lite charts rendered to SVG in Node
 *                      by the run report's machinery (src/report/charts.ts)
 * Missing and failed cells are listed by id, never dropped.
 */
import * as path from 'node:path';
import type { ClaimResult, ExperimentCell, ExperimentResults, Verdict } from '../contracts.js';
import { writeFileAtomic, writeJsonAtomic } from '../io.js';
import {
  C, CSS, escapeHtml, fmt, HALF, minMax, pretty, renderChart, renderChartSvg, ruleWithLabel, vl, WIDE, xScale, yScale,
  type Chart, type Layer,
} from '../report/charts.js';
import type { ChartKind, Experiment } from './experiment.js';
import { getExperiment } from './index.js';
import { gatherResults, type CellFiles } from './results.js';

const classification = (r: ExperimentResults) => r.cells.some((c) => c.bestTestAccuracy != null);

/** The cell's headline number: best accuracy in percent, or best test MSE. */
const headline = (c: ExperimentCell, cls: boolean): number | null =>
  cls ? (c.bestTestAccuracy != null ? c.bestTestAccuracy * 100 : null) : c.bestTestError;

const md = (s: unknown) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

function duration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** One line on where and when, shared by both pages. */
function provenance(r: ExperimentResults): string {
  const m = r.machine;
  const loads = r.cells.map((c) => c.load?.mean).filter((x): x is number => x != null);
  const load = loads.length ? `; mean 1-minute load ${(loads.reduce((s, x) => s + x, 0) / loads.length).toFixed(1)} on ${r.cells[0].load!.cpus} cores while the cells ran` : '';
  return `glonet ${r.glonetVersion}; report written ${r.writtenAt.slice(0, 16).replace('T', ' ')} UTC on ${m.host} (${m.cpuModel}, ${m.cpus} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node})${load}`;
}

function counts(r: ExperimentResults): string {
  const total = r.cells.length + r.missing.length + r.failed.length;
  return `${r.cells.length} of ${total} cells finished` +
    (r.missing.length ? `, ${r.missing.length} missing` : '') + (r.failed.length ? `, ${r.failed.length} failed` : '') +
    `; compute time ${duration(r.cellSeconds)} (the sum of the finished cells' training and analysis)`;
}

/** The smoke preset tests the machinery: too small for its verdicts to be evidence. */
const presetNote = (r: ExperimentResults) =>
  (r.preset === 'smoke' ? 'The smoke preset checks that the experiment runs end to end; its grids are far too small for the verdicts to be evidence.' : '');

const dataText = (r: ExperimentResults) =>
  `${pretty(r.data.dataset)}${r.data.data ? ` from ${r.data.data}` : ''}${r.data.target ? `, target ${r.data.target}` : ''}${r.data.drop?.length ? `, dropping ${r.data.drop.join(', ')}` : ''}`;

/** A word as a POSIX shell reads it back: bare when it is safe, single-quoted otherwise. */
function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** The command that reruns this experiment on the same data (options the experiment's defaults make unnecessary left out). */
function command(r: ExperimentResults): string {
  const d = r.data;
  const exp = getExperiment(r.experiment);
  // The data set chooseData picks when --dataset is not given.
  const implied = d.data != null && exp.dataWith ? exp.dataWith : exp.datasets[0];
  const opts: [string, string | number | string[] | undefined][] = [
    ['--dataset', d.dataset !== implied ? d.dataset : undefined],
    ['--data', d.data],
    ['--target', d.target],
    ['--drop', d.drop?.length ? d.drop : undefined],
    ['--task', d.task],
    ['--categorical', d.categorical?.length ? d.categorical : undefined],
    ['--missing', d.missing],
    ['--max-classes', d.maxClasses],
    ['--max-levels', d.maxLevels],
  ];
  const words = opts.filter(([, v]) => v != null).map(([k, v]) => `${k} ${shellWord(Array.isArray(v) ? v.join(',') : String(v))}`);
  return ['glonet experiment run', r.experiment, '--preset', r.preset, ...words, '--out DIR'].join(' ');
}

/**
 * When architectures trained on different budgets (a preset that gives the cheap one the paper's
 * protocol), the sentence that says so; empty when every cell had the same epochs and rows.
 */
function budgetNote(r: ExperimentResults): string {
  const byArch = new Map<string, Set<string>>();
  for (const c of r.cells) byArch.set(c.arch, (byArch.get(c.arch) ?? new Set()).add(`${c.epochs} epochs on ${c.nTrain.toLocaleString('en-US')} training examples`));
  const all = new Set([...byArch.values()].flatMap((s) => [...s]));
  if (all.size <= 1) return '';
  return `Budgets differ: ${[...byArch.entries()].map(([a, b]) => `${pretty(a)} ${[...b].join(' or ')}`).join('; ')}. Each claim compares one architecture across depth; compare architectures with each other only at equal budgets.`;
}

function effective(c: ExperimentCell): string {
  const e = c.effectiveDepth;
  if (!e) return '—';
  return `${e.byError ?? '—'} / ${e.normShare.blocks}`;
}

/** A cell's mean epoch seconds, with the last epochs' time over the first epochs' where recorded (a slowdown during the run). */
function epochSeconds(c: ExperimentCell): string {
  const d = c.epochDrift;
  return fmt(c.meanEpochSeconds, 3) + (d && d.first > 0 ? ` (${(d.last / d.first).toFixed(2)})` : '');
}

// ---------------------------------------------------------------------------------------------
// REPORT.md

/** A chart as REPORT.md shows it: a drawn SVG file under charts/, or a note where there is nothing to draw. */
type MarkdownChart = { file: string; title: string; caption: string } | { note: string };

function renderMarkdown(exp: Experiment, r: ExperimentResults, charts: MarkdownChart[]): string {
  const cls = classification(r);
  const out: string[] = [];
  out.push(`# ${exp.name}: ${exp.title} (${r.preset} preset)`, '');
  out.push(`Re-measures the paper's ${exp.paperRef} (GloNets, arXiv 2311.15947) on ${dataText(r)}. ${counts(r)}.`, '');
  out.push(`${provenance(r)}.`, '');
  out.push(`Reproduce: \`${command(r)}\``, '');
  if (presetNote(r)) out.push(`> ${presetNote(r)}`, '');
  if (budgetNote(r)) out.push(`> ${budgetNote(r)}`, '');
  out.push('## Claims', '', '| claim | the paper | ours | verdict |', '| --- | --- | --- | --- |');
  for (const c of r.claims) out.push(`| ${md(c.text)} | ${md(c.paper)} | ${md(c.ours)} | **${c.verdict}** |`);
  out.push('', 'Rules (each written once in code, next to the paper\'s numbers):', '');
  for (const c of r.claims) out.push(`- \`${c.id}\`: ${c.rule}.`);
  const off = r.claims.filter((c) => c.verdict === 'partly' || c.verdict === 'fails');
  if (off.length) {
    out.push('', `Where ours disagrees with the paper: ${off.map((c) => `\`${c.id}\` (${c.verdict})`).join(', ')}. ` +
      'No claim\'s threshold was changed after its results were seen; glonet\'s docs/experiments.md lists the preset and rule changes and says what we found.');
  }
  if (charts.length) {
    out.push('', '## Charts');
    for (const c of charts) {
      if ('note' in c) out.push('', `> ${c.note}`);
      else out.push('', `### ${c.title}`, '', c.caption, '', `![${c.title}](${c.file})`);
    }
  }
  out.push('', '## Cells', '');
  out.push(`| cell | arch | depth | seed | ${cls ? 'best accuracy %' : 'best test MSE'} | best epoch | epochs | training examples | s / epoch (last / first) | engine | blocks for the error / for 95% of the norm |`);
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const c of r.cells) {
    out.push(`| ${c.id} | ${c.arch} | ${c.depth} | ${c.seed} | ${fmt(headline(c, cls))}${c.diverged ? ` (diverged at epoch ${c.diverged.epoch})` : ''} | ${c.bestEpoch ?? '—'} | ${c.epochs} | ${fmt(c.nTrain)} | ${epochSeconds(c)} | ${c.engine} | ${effective(c)} |`);
  }
  if (r.missing.length) {
    out.push('', '## Missing cells', '', 'Not finished yet (another shard may still be running them; rerun the same command to finish them here):', '');
    for (const m of r.missing) out.push(`- ${m.id}${m.interruptedAfterEpoch != null ? ` (interrupted after epoch ${m.interruptedAfterEpoch})` : ' (not started)'}`);
  }
  if (r.failed.length) {
    out.push('', '## Failed cells', '', 'Retried by the next run of the same command:', '');
    for (const f of r.failed) out.push(`- ${f.id}: ${f.error}`);
  }
  const defs = r.cells.find((c) => c.effectiveDepth)?.effectiveDepth?.definitions;
  if (defs) {
    out.push('', '## Definitions', '');
    for (const [k, v] of Object.entries(defs)) out.push(`- \`${k}\`: ${v}.`);
  }
  return out.join('\n') + '\n';
}

/**
 * The claims of several experiments as one Markdown table (docs/experiments.md's), each experiment closed by
 * a row with its finished cells, their compute time and what is unfinished.
 */
export function claimsTableMarkdown(all: ExperimentResults[]): string {
  const out = ['| experiment | claim | the paper | ours | verdict |', '| --- | --- | --- | --- | --- |'];
  for (const r of all) {
    for (const c of r.claims) out.push(`| ${r.experiment} | ${md(c.text)} | ${md(c.paper)} | ${md(c.ours)} | **${c.verdict}** |`);
    const unfinished = r.missing.length + r.failed.length;
    out.push(`| ${r.experiment} | ${r.cells.length} cells finished${unfinished ? `, ${unfinished} not` : ''}; ${duration(r.cellSeconds)} of compute | | | |`);
  }
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Charts

const ARCH_COLORS = [C.orange, C.blue, C.green, C.purple, C.gray, C.red];

/** The shared y scale, with tick labels of three significant digits on a linear axis (90, not 9e+1). */
function yAxis(values: number[]): ReturnType<typeof yScale> {
  const ys = yScale(values);
  return ys.log ? ys : { ...ys, axis: { ...ys.axis, format: '.3~r' } };
}

function archScale(r: ExperimentResults): Layer {
  const archs = [...new Set(r.cells.map((c) => c.arch))];
  return { domain: archs.map(pretty), range: archs.map((a) => (a === 'glonet' ? C.orange : ARCH_COLORS[1 + (archs.filter((x) => x !== 'glonet').indexOf(a) % 5)])) };
}

function depthAxis(depths: number[]): Layer {
  const [lo, hi] = minMax(depths);
  const log = hi / lo >= 10;
  return {
    field: 'depth', type: 'quantitative', title: log ? 'depth (log scale)' : 'depth',
    scale: log ? { type: 'log', domain: [lo / 1.2, hi * 1.2], nice: false } : { domain: [lo - 0.5, hi + 0.5], nice: false, zero: false },
    axis: { values: [...new Set(depths)].sort((a, b) => a - b), format: 'd', labelOverlap: true },
  };
}

/** One metric of every cell against depth: seeds as points, their mean as a line, one colour per arch. */
function perDepthChart(r: ExperimentResults, id: string, title: string, yTitle: string, caption: string, value: (c: ExperimentCell) => number | null): Chart | string {
  const rows = r.cells.flatMap((c) => {
    const v = value(c);
    return v != null && Number.isFinite(v) ? [{ arch: pretty(c.arch), depth: c.depth, value: v, seed: c.seed }] : [];
  });
  if (rows.length === 0) return `${title}: no finished cell has a finite value.`;
  const ys = yAxis(rows.map((x) => x.value));
  const x = depthAxis(rows.map((x) => x.depth));
  const y = { field: 'value', type: 'quantitative', title: yTitle, scale: ys.scale, axis: ys.axis };
  const color = { field: 'arch', type: 'nominal', title: null, scale: archScale(r) };
  return {
    id, title, caption: caption + (ys.log ? ' Log scale.' : ''),
    spec: vl({
      width: WIDE, height: 260, description: title,
      layer: [
        { data: { values: rows }, mark: { type: 'line', point: false }, encoding: { x, y: { ...y, aggregate: 'mean' }, color } },
        { data: { values: rows }, mark: { type: 'point', filled: true, size: 50, opacity: 0.8 }, encoding: { x, y, color } },
      ],
    }),
  };
}

function normCharts(r: ExperimentResults, files: Map<string, CellFiles>, at?: number): Array<Chart | string> {
  const out: Array<Chart | string> = [];
  for (const arch of [...new Set(r.cells.map((c) => c.arch))]) {
    const cells = r.cells.filter((c) => c.arch === arch && files.get(c.id)?.analysis);
    if (cells.length === 0) continue;
    const depth = at != null && cells.some((c) => c.depth === at) ? at : Math.max(...cells.map((c) => c.depth));
    const cell = cells.filter((c) => c.depth === depth).sort((a, b) => a.seed - b.seed)[0];
    const a = files.get(cell.id)!.analysis!;
    const rows = a.blockNorms.filter((b) => Number.isFinite(b.mean)).map((b) => ({ block: b.block, mean: b.mean, lo: Math.max(0, b.mean - b.std), hi: b.mean + b.std }));
    if (rows.length === 0) continue;
    const xs = xScale(1, rows.length, true);
    const x = { field: 'block', type: 'quantitative', title: 'block', scale: xs.scale, axis: xs.axis };
    const share = a.effectiveDepth.normShare;
    const layers: Layer[] = [
      { data: { values: rows }, mark: { type: 'area', color: C.band, opacity: 0.45 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'mean L1 norm' }, y2: { field: 'hi' } } },
      { data: { values: rows }, mark: { type: 'line', color: C.blue, point: rows.length <= 30 }, encoding: { x, y: { field: 'mean', type: 'quantitative' } } },
      ...(arch === 'glonet' ? ruleWithLabel(share.blocks, `${Math.round(share.share * 100)}% of the norm: ${share.blocks}`, C.purple, 0, [5, 4], xs) : []),
      ...(arch === 'glonet' && a.effectiveDepth.byError != null ? ruleWithLabel(a.effectiveDepth.byError, `needed for the error: ${a.effectiveDepth.byError}`, C.orange, 1, undefined, xs) : []),
    ];
    out.push({
      id: `norms-${arch}`,
      title: `${pretty(arch)}, ${depth} layers, seed ${cell.seed}`,
      caption: `Mean L1 norm of each block's output over ${a.samples} test samples, ± one standard deviation.`,
      spec: vl({ width: HALF, height: 180, description: `block norms of ${arch}`, layer: layers }),
    });
  }
  return out;
}

function truncationChart(r: ExperimentResults, files: Map<string, CellFiles>, cls: boolean): Chart | string {
  const rows: Array<{ blocks: number; value: number; seed: string }> = [];
  const keep: number[] = [];
  for (const c of r.cells.filter((x) => x.arch === 'glonet')) {
    const a = files.get(c.id)?.analysis;
    for (const p of a?.truncation ?? []) {
      const v = cls ? (p.testAccuracy ?? NaN) * 100 : p.testError;
      if (Number.isFinite(v)) rows.push({ blocks: p.blocks, value: v, seed: `seed ${c.seed}` });
    }
    if (c.effectiveDepth?.byError != null) keep.push(c.effectiveDepth.byError);
  }
  if (rows.length === 0) return 'No truncation curve: no analyzed GloNet cell.';
  const xs = xScale(1, Math.max(...rows.map((x) => x.blocks)), true);
  const ys = yAxis(rows.map((x) => x.value));
  const x = { field: 'blocks', type: 'quantitative', title: 'blocks kept (k)', scale: xs.scale, axis: xs.axis };
  const y = { field: 'value', type: 'quantitative', title: cls ? 'test accuracy %' : 'test MSE', scale: ys.scale, axis: ys.axis };
  const mean = keep.length ? keep.reduce((s, k) => s + k, 0) / keep.length : NaN;
  return {
    id: 'truncation',
    title: 'Accuracy of the same trained GloNet keeping only its first k blocks',
    caption: 'No retraining: the GloNet layer sums the first k block outputs. One line per seed; the rule marks the mean number of blocks needed to stay within the tolerance of the full model.',
    spec: vl({
      width: WIDE, height: 260, description: 'truncation curves',
      layer: [
        { data: { values: rows }, mark: { type: 'line', point: rows.length <= 120 }, encoding: { x, y, color: { field: 'seed', type: 'nominal', title: null } } },
        ...(Number.isFinite(mean) ? ruleWithLabel(mean, `needed for the error: ${fmt(mean, 3)}`, C.orange, 0, undefined, xs) : []),
      ],
    }),
  };
}

function learningCurves(r: ExperimentResults, files: Map<string, CellFiles>, cls: boolean): Chart | string {
  const glonetDepths = r.cells.filter((c) => c.arch === 'glonet').map((c) => c.depth);
  if (glonetDepths.length === 0) return 'No learning curves: no finished GloNet cell.';
  const depth = Math.max(...glonetDepths);
  const rows: Array<{ epoch: number; value: number; arch: string }> = [];
  for (const c of r.cells.filter((x) => x.depth === depth && x.seed === 0)) {
    for (const e of files.get(c.id)?.metrics.epochs ?? []) {
      const v = cls ? (e.testAccuracy ?? NaN) * 100 : e.testError;
      if (Number.isFinite(v)) rows.push({ epoch: e.epoch, value: v, arch: pretty(c.arch) });
    }
  }
  if (rows.length === 0) return 'No finite learning curve values.';
  const [lo, hi] = minMax(rows.map((x) => x.epoch));
  const xs = xScale(lo, hi, false);
  const ys = yAxis(rows.map((x) => x.value));
  return {
    id: 'learning-curves',
    title: `Learning curves at depth ${depth} (seed 0)`,
    caption: `Test ${cls ? 'accuracy' : 'MSE'} after each epoch, every architecture at the same depth${ys.log ? ', log scale' : ''}.`,
    spec: vl({
      width: WIDE, height: 260, description: 'learning curves',
      layer: [{
        data: { values: rows }, mark: { type: 'line', point: hi <= 40 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', scale: xs.scale, axis: xs.axis },
          y: { field: 'value', type: 'quantitative', title: cls ? 'test accuracy %' : 'test MSE', scale: ys.scale, axis: ys.axis },
          color: { field: 'arch', type: 'nominal', title: null, scale: archScale(r) },
        },
      }],
    }),
  };
}

function charts(kind: ChartKind, r: ExperimentResults, files: Map<string, CellFiles>): Array<Chart | string> {
  const cls = classification(r);
  switch (kind.kind) {
    case 'error-vs-depth':
      return [perDepthChart(r, 'error-vs-depth', cls ? 'Best test accuracy against depth' : 'Best test error against depth', cls ? 'best test accuracy %' : 'best test MSE',
        'The best epoch of every cell: a point per seed, a line through their mean.', (c) => headline(c, cls))];
    case 'epoch-time-vs-depth': {
      const engines = [...new Set(r.cells.map((c) => `${pretty(c.arch)}: ${c.engine}`))].join(', ');
      return [perDepthChart(r, 'epoch-time', 'Epoch time per 1,000 training rows against depth', 'seconds per epoch per 1,000 training rows',
        `Mean epoch time of every cell (training and test evaluation) divided by the thousands of rows it trained on, since a preset may give the architectures different numbers of rows. Engines: ${engines}; times on different engines compare the engines, not the architectures.`,
        (c) => (c.nTrain > 0 ? (c.meanEpochSeconds / c.nTrain) * 1000 : c.meanEpochSeconds))];
    }
    case 'norms':
      return normCharts(r, files, kind.depth);
    case 'truncation':
      return [truncationChart(r, files, cls)];
    case 'learning-curves':
      return [learningCurves(r, files, cls)];
  }
}

// ---------------------------------------------------------------------------------------------
// report.html

const VERDICT_COLORS: Record<Verdict, string> = { holds: C.green, partly: '#b45309', fails: C.red, 'not-measured': C.gray };

function claimRow(c: ClaimResult): string {
  return `<tr><td>${escapeHtml(c.text)}</td><td>${escapeHtml(c.paper)}</td><td>${escapeHtml(c.ours)}</td>` +
    `<td><span class="verdict" style="background:${VERDICT_COLORS[c.verdict]}">${escapeHtml(c.verdict)}</span></td></tr>`;
}

const PAGE_CSS = `${CSS}
.claims th { width: auto; }
.claims td:last-child { white-space: nowrap; }
.verdict { color: white; font-weight: 650; border-radius: 6px; padding: 2px 8px; font-size: 13px; }
.scroll { overflow-x: auto; }
.cells th, .cells td { width: auto; padding: 4px 8px; font-size: 13px; white-space: nowrap; }
ul.rules li { margin-bottom: 4px; }
`;

async function renderExperimentHtml(exp: Experiment, r: ExperimentResults, files: Map<string, CellFiles>): Promise<string> {
  const cls = classification(r);
  const render = renderChart;
  const parts: string[] = [];
  parts.push(`<header><h1>${escapeHtml(`${exp.name}: ${exp.title}`)}</h1><p class="sub">${escapeHtml(`${r.preset} preset · the paper's ${exp.paperRef} · ${dataText(r)}`)}</p></header>`);
  parts.push(`<p>${escapeHtml(counts(r))}.</p><p class="sub">${escapeHtml(provenance(r))}. Reproduce: <code>${escapeHtml(command(r))}</code></p>`);
  if (presetNote(r)) parts.push(`<p class="note warn">${escapeHtml(presetNote(r))}</p>`);
  if (budgetNote(r)) parts.push(`<p class="note">${escapeHtml(budgetNote(r))}</p>`);
  parts.push('<h2>Claims</h2>');
  parts.push(`<table class="claims"><thead><tr><th>claim</th><th>the paper</th><th>ours</th><th>verdict</th></tr></thead><tbody>${r.claims.map(claimRow).join('')}</tbody></table>`);
  parts.push(`<ul class="rules">${r.claims.map((c) => `<li><code>${escapeHtml(c.id)}</code>: ${escapeHtml(c.rule)}.</li>`).join('')}</ul>`);
  const off = r.claims.filter((c) => c.verdict === 'partly' || c.verdict === 'fails');
  if (off.length) parts.push(`<p class="note warn">Where ours disagrees with the paper: ${escapeHtml(off.map((c) => `${c.id} (${c.verdict})`).join(', '))}. No claim's threshold was changed after its results were seen; glonet's docs/experiments.md lists the preset and rule changes and says what we found.</p>`);
  if (r.missing.length || r.failed.length) {
    parts.push(`<p class="note warn">${r.missing.length ? `Missing cells: ${escapeHtml(r.missing.map((m) => `${m.id}${m.interruptedAfterEpoch != null ? ` (interrupted after epoch ${m.interruptedAfterEpoch})` : ''}`).join(', '))}. ` : ''}` +
      `${r.failed.length ? `Failed cells: ${escapeHtml(r.failed.map((f) => `${f.id} (${f.error})`).join('; '))}.` : ''}</p>`);
  }
  parts.push('<h2>Charts</h2>');
  for (const kind of exp.charts) {
    const list = charts(kind, r, files);
    const html: string[] = [];
    for (const c of list) html.push(await render(c));
    parts.push(kind.kind === 'norms' ? `<div class="grid2">${html.join('')}</div>` : html.join(''));
  }
  parts.push('<h2>Cells</h2>');
  const head = ['cell', 'arch', 'depth', 'seed', cls ? 'best accuracy %' : 'best test MSE', 'best epoch', 'epochs', 'training examples', 's / epoch (last / first)', 'engine', 'blocks for the error / 95% of the norm'];
  const rows = r.cells.map((c) => [c.id, pretty(c.arch), c.depth, c.seed, `${fmt(headline(c, cls))}${c.diverged ? ` (diverged at epoch ${c.diverged.epoch})` : ''}`, c.bestEpoch ?? '—', c.epochs, fmt(c.nTrain), epochSeconds(c), c.engine, effective(c)]);
  parts.push(`<div class="scroll"><table class="cells"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((row) => `<tr>${row.map((v) => `<td>${escapeHtml(v)}</td>`).join('')}</tr>`).join('') + '</tbody></table></div>');
  parts.push(`<p class="sub">Each cell is a run folder under <code>cells/</code> with its own report.html.</p>`);
  parts.push(`<footer>Generated by glonet ${escapeHtml(r.glonetVersion)} from the cells of this folder. Self-contained; opens offline.</footer>`);
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(exp.name)} · glonet experiment</title><style>${PAGE_CSS}</style></head><body><main>\n${parts.join('\n')}\n</main></body></html>\n`;
}

/**
 * Draws the experiment's charts as SVG files under DIR/charts/ (for REPORT.md, which links them;
 * report.html has them inline). A chart that cannot be drawn becomes a note.
 */
async function writeChartFiles(dir: string, exp: Experiment, r: ExperimentResults, files: Map<string, CellFiles>): Promise<MarkdownChart[]> {
  const out: MarkdownChart[] = [];
  for (const kind of exp.charts) {
    for (const c of charts(kind, r, files)) {
      if (typeof c === 'string') {
        out.push({ note: c });
        continue;
      }
      try {
        const file = `charts/${c.id}.svg`;
        writeFileAtomic(path.join(dir, file), await renderChartSvg(c));
        out.push({ file, title: c.title, caption: c.caption });
      } catch (err) {
        out.push({ note: `The chart "${c.title}" could not be drawn: ${(err as Error).message}` });
      }
    }
  }
  return out;
}

/** Gather DIR's cells and write results.json, REPORT.md (with its charts under charts/) and report.html; returns the results. */
export async function writeExperimentReport(dir: string): Promise<ExperimentResults> {
  const { results, files } = gatherResults(dir);
  const exp = getExperiment(results.experiment);
  writeJsonAtomic(path.join(dir, 'results.json'), results);
  const chartFiles = await writeChartFiles(dir, exp, results, files);
  writeFileAtomic(path.join(dir, 'REPORT.md'), renderMarkdown(exp, results, chartFiles));
  writeFileAtomic(path.join(dir, 'report.html'), await renderExperimentHtml(exp, results, files));
  return results;
}
