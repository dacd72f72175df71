/**
 * The source tree's shape: no import cycles (type imports included), training reaches the
 * engines only through their seam, and the engines never reach back into training.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import of every source file (static, dynamic and type-only), as source paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
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

test('the import graph of src/ has no cycle', () => {
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
