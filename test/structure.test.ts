/**
 * The source tree's shape: its floors, bottom to top, and every import (type imports included)
 * going down or sideways, never up; no import cycles; training reaches the engines only through
 * their seam, and the engines never reach back into training. docs/architecture.md shows the floors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');
const WEB = path.join(ROOT, 'web');

/** The floors, bottom first: a file may import from its own floor and the ones below. */
const FLOORS: Array<[string, string[]]> = [
  ['vocabulary', ['src/vocabulary.ts', 'src/errors.ts', 'src/version.ts', 'src/random.ts', 'src/display.ts', 'src/paths.ts', 'src/limits.ts']],
  ['data and layers', ['src/io.ts', 'src/data/', 'src/layers/']],
  ['models and files', ['src/model-metadata.ts', 'src/model-topology.ts', 'src/model-io.ts', 'src/models/', 'src/contracts.ts', 'src/scoring.ts', 'src/backend/', 'src/out-folder.ts', 'src/folder-lock.ts']],
  ['engines', ['src/engines/']],
  ['training', ['src/train/']],
  ['analysis and reports', ['src/analysis/', 'src/report/']],
  ['experiments and sites', ['src/experiments/', 'src/site/']],
  ['entries', ['src/cli/', 'src/index.ts', 'src/browser.ts', 'src/everywhere.ts', 'src/browser/']],
  ['page', ['web/']],
];

function floorOf(file: string): number {
  const r = path.relative(ROOT, file).split(path.sep).join('/');
  return FLOORS.findIndex(([, places]) => places.some((p) => (p.endsWith('/') ? r.startsWith(p) : r === p)));
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import of every source file of src/ and web/ (static, dynamic and type-only), as source paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of [...sources(SRC), ...sources(WEB)]) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((f) => f.startsWith('.'))
      .map((f) => path.resolve(path.dirname(file), f.replace(/\.js$/, '.ts')));
    graph.set(file, targets);
  }
  return graph;
}

const rel = (f: string) => path.relative(SRC, f);

test('every file of src/ and web/ is on a floor, and every import goes down or sideways', () => {
  const graph = importGraph();
  const unplaced = [...graph.keys()].filter((f) => floorOf(f) < 0).map((f) => path.relative(ROOT, f));
  assert.deepEqual(unplaced, [], 'files on no floor: add them to FLOORS');
  const up: string[] = [];
  for (const [file, targets] of graph) {
    for (const t of targets) {
      if (floorOf(t) > floorOf(file)) up.push(`${path.relative(ROOT, file)} (${FLOORS[floorOf(file)][0]}) -> ${path.relative(ROOT, t)} (${FLOORS[floorOf(t)]?.[0] ?? 'no floor'})`);
    }
  }
  assert.deepEqual(up, []);
});

test('the floor rule can fail: the CLI sits above training, training below the CLI', () => {
  assert.ok(floorOf(path.join(SRC, 'cli', 'train.ts')) > floorOf(path.join(SRC, 'train', 'run.ts')));
  assert.ok(floorOf(path.join(SRC, 'vocabulary.ts')) === 0);
});

test('the import graph of src/ and web/ has no cycle', () => {
  const graph = importGraph();
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].map(rel).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...stack, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('train/ imports only the seam of engines/ (select.ts, types.ts); engines/ never imports train/', () => {
  const graph = importGraph();
  const bad: string[] = [];
  for (const [file, targets] of graph) {
    for (const t of targets) {
      const from = rel(file);
      const to = rel(t);
      if (from.startsWith('train/') && to.startsWith('engines/') && !['engines/select.ts', 'engines/types.ts'].includes(to)) bad.push(`${from} -> ${to}`);
      if (from.startsWith('engines/') && to.startsWith('train/')) bad.push(`${from} -> ${to}`);
    }
  }
  assert.deepEqual(bad, []);
});
