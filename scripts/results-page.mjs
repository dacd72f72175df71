#!/usr/bin/env node
/**
 * Writes the generated part of docs/results.md from the published runs: every
 * docs/results/NAME[-TAG].PRESET/results.json (written by `node scripts/run-experiments.mjs
 * --publish`) and, for the fast check beside them, experiments/measured/NAME.quick.json.
 *
 *   node scripts/results-page.mjs           rewrite the part between the markers
 *   node scripts/results-page.mjs --check   exit 1 if docs/results.md is not what the files give
 *
 * Only the text between `<!-- generated:begin -->` and `<!-- generated:end -->` is replaced; the
 * rest of the page (what each disagreement with the paper comes from) is written by hand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PAGE = path.join(ROOT, 'docs', 'results.md');
const PUBLISHED = path.join(ROOT, 'docs', 'results');
const BEGIN = '<!-- generated:begin -->';
const END = '<!-- generated:end -->';
const PRESET_ORDER = ['paper', 'long', 'quick', 'smoke'];

const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
/** A table cell: pipes escaped, line breaks flattened. */
const cell = (s) => String(s ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const minutes = (s) => (s >= 5400 ? `${(s / 3600).toFixed(1)} h` : s >= 90 ? `${(s / 60).toFixed(0)} min` : `${s.toFixed(0)} s`);

/** The published runs, each { folder, name, tag, preset, results }, paper presets first. */
function publishedRuns() {
  if (!fs.existsSync(PUBLISHED)) return [];
  const runs = [];
  for (const folder of fs.readdirSync(PUBLISHED).sort()) {
    const file = path.join(PUBLISHED, folder, 'results.json');
    if (!fs.existsSync(file)) continue;
    const m = /^(.+)\.([a-z]+)$/.exec(folder);
    if (!m) continue;
    const results = readJson(file);
    const tag = m[1] === results.experiment ? null : m[1].slice(results.experiment.length + 1);
    runs.push({ folder, name: results.experiment, tag, preset: m[2], results });
  }
  return runs.sort((a, b) => PRESET_ORDER.indexOf(a.preset) - PRESET_ORDER.indexOf(b.preset) || (a.tag ?? '').localeCompare(b.tag ?? '') || a.folder.localeCompare(b.folder));
}

/** The quick preset's verdicts of an experiment, by claim id (experiments/measured/NAME.quick.json). */
function quickVerdicts(name) {
  const file = path.join(ROOT, 'experiments', 'measured', `${name}.quick.json`);
  if (!fs.existsSync(file)) return new Map();
  return new Map(readJson(file).claims.map((c) => [c.id, c.verdict]));
}

function section(title, runs, withQuick) {
  if (runs.length === 0) return [];
  const head = withQuick
    ? ['| experiment | claim | the paper | ours | verdict | quick preset |', '| --- | --- | --- | --- | --- | --- |']
    : ['| experiment | claim | the paper | ours | verdict |', '| --- | --- | --- | --- | --- |'];
  const rows = [];
  for (const r of runs) {
    const quick = withQuick ? quickVerdicts(r.name) : null;
    const label = `[${r.name}${r.tag ? ` (${r.tag})` : ''}](results/${r.folder}/REPORT.md)`;
    for (const c of r.results.claims) {
      const q = quick ? [quick.get(c.id) ?? 'not in the quick preset'] : [];
      rows.push(`| ${label} | ${cell(c.text)} | ${cell(c.paper)} | ${cell(c.ours)} | **${c.verdict}** |${q.map((v) => ` ${v} |`).join('')}`);
    }
  }
  return [`### ${title}`, '', ...head, ...rows, ''];
}

function runsTable(runs) {
  const rows = runs.map((r) => {
    const x = r.results;
    const unfinished = (x.missing?.length ?? 0) + (x.failed?.length ?? 0);
    const data = x.data?.dataset ?? '';
    // Each cell records the mean 1-minute load while it ran; the run's is their time-weighted mean.
    const timed = x.cells.filter((c) => c.load?.mean != null && c.seconds > 0);
    const load = timed.length ? timed.reduce((s, c) => s + c.load.mean * c.seconds, 0) / timed.reduce((s, c) => s + c.seconds, 0) : null;
    return `| [${r.folder}](results/${r.folder}/REPORT.md) | ${r.preset} | ${cell(data)} | ${x.cells.length}${unfinished ? ` (${unfinished} unfinished)` : ''} | ` +
      `${minutes(x.cellSeconds)} | ${load == null ? '' : load.toFixed(1)} | ${cell(x.machine?.cpuModel)}, ${x.machine?.cpus} cores | ${String(x.writtenAt).slice(0, 10)} |`;
  });
  return ['### The runs', '',
    '| run | preset | data | cells | compute (sum of cells) | load (1 min, mean) | machine | date |', '| --- | --- | --- | --- | --- | --- | --- | --- |', ...rows, ''];
}

function generated() {
  const runs = publishedRuns();
  const paper = runs.filter((r) => r.preset === 'paper' && !r.tag);
  const other = runs.filter((r) => !(r.preset === 'paper' && !r.tag));
  return [
    BEGIN,
    '<!-- Written by `node scripts/results-page.mjs` from docs/results/*/results.json and experiments/measured/*.quick.json: edit those, not this part. -->',
    '',
    ...section('The claims at the paper\'s budgets (paper preset), with the quick preset\'s verdicts beside them', paper, true),
    ...section('The claims on more data and longer runs', other, false),
    ...runsTable(runs),
    END,
  ].join('\n');
}

const text = fs.existsSync(PAGE) ? fs.readFileSync(PAGE, 'utf8') : `# Results\n\n${BEGIN}\n${END}\n`;
const i = text.indexOf(BEGIN);
const j = text.indexOf(END);
if (i < 0 || j < i) {
  console.error(`results-page: ${path.relative(ROOT, PAGE)} has no ${BEGIN} ... ${END} markers`);
  process.exit(2);
}
const next = text.slice(0, i) + generated() + text.slice(j + END.length);
if (process.argv.includes('--check')) {
  if (next !== text) {
    console.error(`results-page: ${path.relative(ROOT, PAGE)} is not what docs/results/ gives; run node scripts/results-page.mjs`);
    process.exit(1);
  }
} else {
  const tmp = `${PAGE}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, next);
  fs.renameSync(tmp, PAGE);
}
