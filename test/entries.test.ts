/**
 * The package's two entries agree: src/browser.ts (the `browser` export condition) exports every
 * name of src/index.ts (the Node entry) that runs without Node.js, and each shared name is the
 * same thing in both (both take them from src/everywhere.ts). A name is Node-only when the module it comes from reaches a Node built-in
 * (`node:fs`, ...) or a Node-only package through its value imports; the browser's own names come from src/browser/,
 * including its counterparts of Node-only functions under the same name (loadModel over HTTP,
 * initBackend with the browser's backends).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');

interface EntryExport {
  /** The module it comes from (a source path). */
  from: string;
  /** Its name in that module. */
  original: string;
  typeOnly: boolean;
}

function resolve(fromFile: string, spec: string): string {
  return path.resolve(path.dirname(fromFile), spec.replace(/\.js$/, '.ts'));
}

/**
 * The names an entry exports, from its `export { a, b as c, type D } from './x.js'` statements
 * and, through `export * from './y.js'`, those of y (made of such statements too).
 */
function entryExports(file: string): Map<string, EntryExport> {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const out = new Map<string, EntryExport>();
  for (const st of sf.statements) {
    assert.ok(ts.isExportDeclaration(st) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier),
      `${path.relative(ROOT, file)}: only \`export ... from '...'\` statements, got: ${st.getText(sf).slice(0, 80)}`);
    const from = resolve(file, (st.moduleSpecifier as ts.StringLiteral).text);
    if (st.exportClause == null) {
      for (const [name, e] of entryExports(from)) out.set(name, e);
      continue;
    }
    assert.ok(ts.isNamedExports(st.exportClause), `${path.relative(ROOT, file)}: no \`export * as\``);
    for (const el of st.exportClause.elements) {
      out.set(el.name.text, { from, original: (el.propertyName ?? el.name).text, typeOnly: st.isTypeOnly || el.isTypeOnly });
    }
  }
  return out;
}

/** Packages of the dependencies that run in Node.js only. */
const NODE_PACKAGES = ['cli-progress', 'commander', 'node-gyp-build', '@tensorflow/tfjs-node'];

const nodeOnlyCache = new Map<string, string | null>();

/** The Node built-in a module reaches through its value imports (a chain for the message), or null. */
function nodeOnly(file: string, seen = new Set<string>()): string | null {
  if (nodeOnlyCache.has(file)) return nodeOnlyCache.get(file)!;
  if (seen.has(file)) return null;
  seen.add(file);
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  let found: string | null = null;
  for (const st of sf.statements) {
    if (found) break;
    let spec: string | undefined;
    if (ts.isImportDeclaration(st) && !st.importClause?.isTypeOnly && ts.isStringLiteral(st.moduleSpecifier)) spec = st.moduleSpecifier.text;
    if (ts.isExportDeclaration(st) && !st.isTypeOnly && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) spec = st.moduleSpecifier.text;
    if (spec == null) continue;
    if (spec.startsWith('node:') || builtinModules.includes(spec) || NODE_PACKAGES.includes(spec)) found = `${path.relative(SRC, file)} imports ${spec}`;
    else if (spec.startsWith('.')) {
      const chain = nodeOnly(resolve(file, spec), seen);
      if (chain) found = `${path.relative(SRC, file)} -> ${chain}`;
    }
  }
  nodeOnlyCache.set(file, found);
  return found;
}

const node = entryExports(path.join(SRC, 'index.ts'));
const browser = entryExports(path.join(SRC, 'browser.ts'));
const BROWSER_DIR = path.join(SRC, 'browser') + path.sep;
/** The browser's counterpart of a Node-only name: from src/browser/, standing in for a Node-only original. */
const counterpart = (name: string): boolean => browser.get(name)!.from.startsWith(BROWSER_DIR) && nodeOnly(node.get(name)!.from) != null;

test('every name both entries export is the same declaration in both', () => {
  const differ: string[] = [];
  for (const [name, b] of browser) {
    const n = node.get(name);
    if (n && !counterpart(name) && (n.from !== b.from || n.original !== b.original || n.typeOnly !== b.typeOnly)) {
      differ.push(`${name}: ${path.relative(SRC, n.from)}#${n.original} (Node) vs ${path.relative(SRC, b.from)}#${b.original} (browser)`);
    }
  }
  assert.deepEqual(differ, []);
});

test('the browser entry exports every name of the Node entry that runs without Node.js', () => {
  const missing: string[] = [];
  for (const [name, n] of node) {
    if (browser.has(name)) continue;
    if (nodeOnly(n.from)) continue;
    missing.push(`${name} (from ${path.relative(SRC, n.from)})`);
  }
  assert.deepEqual(missing, [], 'export these from src/browser.ts too');
});

test('the browser entry exports nothing that needs Node.js, and its own names come from src/browser/', () => {
  const bad: string[] = [];
  for (const [name, b] of browser) {
    const chain = b.typeOnly ? null : nodeOnly(b.from); // a type carries nothing into a bundle
    if (chain) bad.push(`${name}: ${chain}`);
    if (!node.has(name) && !b.from.startsWith(BROWSER_DIR)) bad.push(`${name}: browser-only, but not from src/browser/`);
  }
  assert.deepEqual(bad, []);
});

test('the Node-only rule can tell: model-io reaches node:fs, the layers do not', () => {
  assert.match(nodeOnly(path.join(SRC, 'model-io.ts')) ?? '', /node:fs/);
  assert.equal(nodeOnly(path.join(SRC, 'layers', 'index.ts')), null);
});

test('the shared values are identical at run time', async () => {
  const nodeEntry = await import('../src/index.js') as Record<string, unknown>;
  const browserEntry = await import('../src/browser.js') as Record<string, unknown>;
  const shared = [...browser.keys()].filter((k) => node.has(k) && !browser.get(k)!.typeOnly && !counterpart(k));
  assert.ok(shared.length > 30, `only ${shared.length} shared values`);
  for (const k of shared) assert.equal(browserEntry[k], nodeEntry[k], k);
});
