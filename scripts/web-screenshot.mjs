/**
 * Makes the README's screenshot of `glonet web` (docs/web.png) from a real run:
 *
 *   node scripts/web-screenshot.mjs [--run DIR] [--out docs/web.png]
 *
 * Without --run it makes one first with `glonet demo` (the README's main job: a 100-block GloNet
 * MLP on all of SGEMM for 100 epochs, analyzed; under two minutes with the native engine). Then `glonet web RUN --out` writes the site, glonet's server serves it on
 * localhost, and headless Chromium (/usr/bin/chromium, every request outside localhost aborted)
 * opens it at 1280x800, turns the dial to the effective depth, trains the playground for a few
 * seconds and takes a full-page screenshot. Needs `npm run build` first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const out = path.resolve(arg('--out', path.join(root, 'docs', 'web.png')));
const work = path.join(root, 'test-output', 'web-screenshot');

function glonet(...args) {
  process.stdout.write(`$ glonet ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'glonet.js'), ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`glonet ${args[0]} failed with exit code ${r.status}`);
}

let run = arg('--run');
if (!run) {
  run = path.join(work, 'run');
  glonet('demo', '--out', run);
}
const site = path.join(work, 'site');
fs.rmSync(site, { recursive: true, force: true });
glonet('web', run, '--out', site);

const { serveSite } = await import(path.join(root, 'dist', 'src', 'web', 'server.js'));
const files = new Map(fs.readdirSync(site, { recursive: true })
  .filter((f) => fs.statSync(path.join(site, f)).isFile())
  .map((f) => [f.split(path.sep).join('/'), fs.readFileSync(path.join(site, f))]));
const server = await serveSite(files, { port: 0 });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort('blockedbyclient')));
  const page = await context.newPage();
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready=true]', { timeout: 300_000 });
  // The dial at the effective depth that glonet analyze found on the shipped sample.
  const analysis = JSON.parse(fs.readFileSync(path.join(site, 'sample', 'analysis.json'), 'utf8'));
  const k = analysis.effectiveDepth.byError ?? analysis.blockNorms.length;
  await page.focus('[data-testid=blocks]');
  await page.keyboard.press('Home');
  for (let i = 1; i < k; i++) await page.keyboard.press('ArrowRight');
  await page.waitForSelector(`[data-testid=test-error][data-k="${k}"]`, { timeout: 120_000 });
  await page.click('[data-testid=pg-train]');
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=pg-steps]')?.textContent) >= 400, null, { timeout: 300_000 });
  await page.click('[data-testid=pg-train]');
  await page.evaluate(() => window.scrollTo(0, 0));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  const backend = await page.getAttribute('body', 'data-backend');
  process.stdout.write(`wrote ${out} (dial at k = ${k} of ${analysis.blockNorms.length}; TF.js backend in the page: ${backend})\n`);
} finally {
  await browser.close();
  await server.close();
}
