/**
 * Every TypeScript example in the documentation compiles against the package as users import it:
 * the ```ts blocks of README.md and docs/*.md, and those in the doc comments of src/ (TypeDoc
 * `@example`s). Each block is its own module importing 'glonet', which resolves through this
 * package's `exports` to the built declarations: dist/src/index.d.ts under strict NodeNext, or,
 * for a block fenced as ```ts browser (code for a page), dist/src/browser.d.ts under Bundler
 * resolution with the `browser` condition and the DOM's types instead of Node's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers.js';

interface Example {
  /** Where it is written: file and line of the opening fence. */
  where: string;
  code: string;
  /** Fenced as ```ts browser: compiled against the browser entry. */
  browser: boolean;
}

function fencedBlocks(text: string, file: string, lineOf: (index: number) => number): Example[] {
  const out: Example[] = [];
  for (const m of text.matchAll(/^[ \t]*```ts( browser)?\n([\s\S]*?)^[ \t]*```/gm)) {
    out.push({ where: `${path.relative(ROOT, file)}:${lineOf(m.index ?? 0)}`, code: m[2], browser: m[1] != null });
  }
  return out;
}

function markdownExamples(file: string): Example[] {
  const text = fs.readFileSync(file, 'utf8');
  return fencedBlocks(text, file, (i) => text.slice(0, i).split('\n').length);
}

/** ```ts blocks inside the /** ... *\/ comments of a source file, with the comment's ` * ` removed. */
function commentExamples(file: string): Example[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: Example[] = [];
  for (const c of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const body = c[0].split('\n').map((l) => l.replace(/^\s*\/?\*+\/?\s?/, '')).join('\n');
    const startLine = text.slice(0, c.index ?? 0).split('\n').length;
    out.push(...fencedBlocks(body, file, (i) => startLine + body.slice(0, i).split('\n').length - 1));
  }
  return out;
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

test('the TypeScript examples of README.md, docs/ and the doc comments compile against the package', () => {
  const docs = fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(ROOT, 'docs', f));
  const examples = [
    ...[path.join(ROOT, 'README.md'), ...docs].flatMap(markdownExamples),
    ...sources(path.join(ROOT, 'src')).flatMap(commentExamples),
  ];
  assert.ok(examples.length >= 3, `found only ${examples.length} examples`);
  assert.ok(fs.existsSync(path.join(ROOT, 'dist', 'src', 'index.d.ts')), 'the package is built (dist/src/index.d.ts)');

  // Inside the repository, so 'glonet' resolves to this package itself and its dependencies to
  // its node_modules, as they would in a user's project.
  const dir = path.join(ROOT, 'test-output', 'doc-examples');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const files = examples.map((e, i) => {
    const file = path.join(dir, `example-${i + 1}.ts`);
    assert.match(e.code, /from 'glonet'/, `${e.where}: an example shows its imports from 'glonet'`);
    fs.writeFileSync(file, `// ${e.where}\n${e.code}`);
    return file;
  });
  const common = { target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true };
  const node = ts.createProgram(files.filter((_, i) => !examples[i].browser), {
    ...common, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, types: ['node'],
  });
  const browser = ts.createProgram(files.filter((_, i) => examples[i].browser), {
    ...common, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, customConditions: ['browser'],
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [],
  });
  const diagnostics = [...ts.getPreEmitDiagnostics(node), ...ts.getPreEmitDiagnostics(browser)];
  const errors = diagnostics.map((d) => {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file) return msg;
    const i = files.indexOf(path.resolve(d.file.fileName));
    const line = d.file.getLineAndCharacterOfPosition(d.start ?? 0).line; // line 0 is the "// where" line
    return `${i >= 0 ? `${examples[i].where} (example line ${line})` : d.file.fileName}: ${msg}`;
  });
  assert.deepEqual(errors, []);
});
