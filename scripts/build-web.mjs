/**
 * Builds the `glonet web` page into dist/web: glonet-web.js (the page, TF.js, the wasm backend's
 * JavaScript, Vega and glonet's browser entry in one bundle made with esbuild), glonet-web.css and
 * index.html. The page imports glonet by its package name, so esbuild resolves it through the
 * `browser` export condition, as a user's own bundler would. Run by `npm ci` (prepare) after tsc.
 */
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
fs.mkdirSync(out, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['web/main.ts'],
  outfile: path.join(out, 'glonet-web.js'),
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});
fs.copyFileSync(path.join(root, 'web', 'index.html'), path.join(out, 'index.html'));
fs.copyFileSync(path.join(root, 'web', 'page.css'), path.join(out, 'glonet-web.css'));
const bytes = fs.statSync(path.join(out, 'glonet-web.js')).size;
process.stderr.write(`glonet: web page built (dist/web/glonet-web.js, ${(bytes / 1e6).toFixed(1)} MB, ${Object.keys(result.metafile.inputs).length} modules)\n`);
