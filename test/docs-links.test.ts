/**
 * Every relative link in README.md and docs/*.md leads somewhere: the file or folder exists inside
 * the repository, and a `#anchor` names a heading of the page it points to (GitHub's heading slugs,
 * as github-slugger makes them) or an explicit `<a id>`/`<a name>` there. Links with a scheme
 * (https:, mailto:) are not followed. Code (fenced blocks, indented blocks, `spans`) is not read
 * for links, as GitHub does not render links there.
 *
 * The checker is a few regular expressions rather than a Markdown parser: these pages use inline
 * links, reference definitions and <a>/<img> tags, and the second test shows on a small broken
 * page that it finds what it should.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './helpers.js';

/** The text without its code blocks (fenced, or indented after a blank line), line for line. */
function withoutCodeBlocks(text: string): string {
  const out: string[] = [];
  let fence: string | null = null;
  let indented = false;
  let previousBlank = true;
  for (const line of text.split('\n')) {
    const open = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence != null) {
      if (open && open[1][0] === fence[0] && open[1].length >= fence.length && line.trim() === open[1]) fence = null;
      out.push('');
    } else if (open) {
      fence = open[1];
      out.push('');
    } else if (/^( {4}|\t)/.test(line) && (previousBlank || indented) && line.trim() !== '') {
      indented = true;
      out.push('');
    } else {
      if (line.trim() !== '') indented = false;
      out.push(line);
    }
    previousBlank = line.trim() === '';
  }
  return out.join('\n');
}

/** The text without any code: blocks and inline `spans`. */
function withoutCode(text: string): string {
  return withoutCodeBlocks(text).replace(/(`+)[\s\S]*?\1/g, '');
}

/** GitHub's anchor for a heading: its text, lower-cased, without punctuation but - and _, spaces as -. */
function slug(heading: string): string {
  const text = heading
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')  // images: their alt text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')   // links: their text
    .replace(/<[^>]+>/g, '')                   // HTML tags
    .replace(/(^|[^\p{L}\p{N}])_+|_+(?=[^\p{L}\p{N}]|$)/gu, '$1'); // _emphasis_ (not snake_case)
  return text.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a Markdown page offers: its ATX headings' slugs (repeats numbered -1, -2, ...) and <a id/name>. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of withoutCodeBlocks(text).matchAll(/^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s[^>]*?(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
  return anchors;
}

/** The link targets of a Markdown page: inline links and images, reference definitions, <a href> and <img src>. */
function linksOf(text: string): string[] {
  const t = withoutCode(text);
  return [
    ...[...t.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
    ...[...t.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]),
    ...[...t.matchAll(/<(?:a|img)\s[^>]*?(?:href|src)="([^"]+)"/g)].map((m) => m[1]),
  ];
}

/** The broken links of the given Markdown files, as "file: target (why)"; root bounds where links may lead. */
function brokenLinks(files: string[], root: string): string[] {
  const broken: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (file: string) => {
    if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(fs.readFileSync(file, 'utf8')));
    return anchorCache.get(file)!;
  };
  for (const file of files) {
    for (const link of linksOf(fs.readFileSync(file, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:, ...
      const where = `${path.relative(root, file)}: ${link}`;
      const hash = link.indexOf('#');
      const target = decodeURIComponent(hash < 0 ? link : link.slice(0, hash));
      const anchor = hash < 0 ? null : decodeURIComponent(link.slice(hash + 1));
      const resolved = target === '' ? file : path.resolve(path.dirname(file), target);
      if (path.relative(root, resolved).startsWith('..') || path.isAbsolute(target)) {
        broken.push(`${where} (leads outside the repository)`);
      } else if (!fs.existsSync(resolved)) {
        broken.push(`${where} (no such file)`);
      } else if (anchor != null) {
        if (resolved.endsWith('.md')) {
          if (!anchors(resolved).has(anchor)) broken.push(`${where} (no heading or <a id> "${anchor}" in ${path.relative(root, resolved)})`);
        } else if (!/^L\d+(-L\d+)?$/.test(anchor)) {
          broken.push(`${where} (an anchor into a file that is not Markdown; only #L<line> is allowed)`);
        }
      }
    }
  }
  return broken;
}

function docsPages(root: string): string[] {
  const docs = path.join(root, 'docs');
  return [path.join(root, 'README.md'), ...fs.readdirSync(docs).filter((f) => f.endsWith('.md')).sort().map((f) => path.join(docs, f))];
}

test('every relative link and #anchor in README.md and docs/*.md resolves', () => {
  const pages = docsPages(ROOT);
  const links = pages.flatMap((p) => linksOf(fs.readFileSync(p, 'utf8')));
  assert.ok(links.filter((l) => !/^[a-z]+:/i.test(l)).length >= 20, `found only ${links.length} links: is the link syntax still read?`);
  assert.deepEqual(brokenLinks(pages, ROOT), []);
});

test('the link checker finds broken files and anchors, and follows GitHub\'s heading slugs', () => {
  assert.equal(slug("GloNet's slow start and `--head-init`"), 'glonets-slow-start-and---head-init');
  assert.equal(slug('In the browser: `glonet web`'), 'in-the-browser-glonet-web');
  assert.equal(slug('Defaults per family, and why'), 'defaults-per-family-and-why');
  assert.equal(slug('The `snake_case` and _emphasis_ [link](x.md)'), 'the-snake_case-and-emphasis-link');
  assert.deepEqual([...anchorsOf('# A\n## A\n```\n# not a heading\n```\n### A ###\n## With `code`\n<a id="here"></a>\n')], ['a', 'a-1', 'a-2', 'with-code', 'here']);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'glonet-links-'));
  try {
    fs.mkdirSync(path.join(root, 'docs'));
    fs.writeFileSync(path.join(root, 'docs', 'page.md'), '# Page\n\n## Second part\n\nBack [home](../README.md#top-part).\n');
    fs.writeFileSync(path.join(root, 'README.md'), [
      '# Top part', '',
      'Fine: [page](docs/page.md), [part](docs/page.md#second-part), [here](#top-part), [web](https://example.com/x#y).',
      'Broken: [gone](docs/gone.md), [anchor](docs/page.md#third-part), [self](#nowhere),',
      '[across', 'lines](docs/page.md#second-part-1), <img src="docs/missing.png">, [out](../../etc/passwd).', '',
      '    [in an indented code block](ignored.md)', '',
      'And `[in code](ignored.md)`.', '',
      '[ref]: docs/nothing.md', '',
    ].join('\n'));
    assert.deepEqual(brokenLinks(docsPages(root), root), [
      'README.md: docs/gone.md (no such file)',
      'README.md: docs/page.md#third-part (no heading or <a id> "third-part" in docs/page.md)',
      'README.md: #nowhere (no heading or <a id> "nowhere" in README.md)',
      'README.md: docs/page.md#second-part-1 (no heading or <a id> "second-part-1" in docs/page.md)',
      'README.md: ../../etc/passwd (leads outside the repository)',
      'README.md: docs/nothing.md (no such file)',
      'README.md: docs/missing.png (no such file)',
    ]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('docs/results.md\'s tables are what the published results give (scripts/results-page.mjs --check)', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'results-page.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // Every published run is linked from the page.
  const page = fs.readFileSync(path.join(ROOT, 'docs', 'results.md'), 'utf8');
  for (const folder of fs.readdirSync(path.join(ROOT, 'docs', 'results'))) assert.ok(page.includes(`(results/${folder}/REPORT.md)`), folder);
});
