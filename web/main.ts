/**
 * The `glonet web` page: picks a TF.js backend (WebGL, else wasm served by this site, else cpu),
 * loads the run from the site folder, and sets up the depth dial, the explanations and the
 * playground. Built by scripts/build-web.mjs from glonet's browser entry (`import ... from 'glonet'`).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, BROWSER_BACKENDS, VERSION, type BrowserBackendChoice, type BrowserBackendName } from 'glonet';
import { loadSite } from './site-data.js';
import { BlockModels } from './block-models.js';
import { setupDial } from './dial.js';
import { setupExplain } from './explain.js';
import { setupPlayground } from './playground.js';
import { byId, fail, nextPaint } from './dom.js';
import { displayName } from '../src/display.js';

/** Why this backend: the URL asked for it, or which faster ones were not available and why. */
function backendDetail(choice: BrowserBackendChoice, asked: boolean): string {
  if (asked) return 'asked for in the URL';
  if (choice.name === 'webgl') return 'WebGL on the GPU';
  return Object.entries(choice.tried).filter(([, r]) => r !== true).map(([n, r]) => `${n === 'webgl' ? 'WebGL' : n}: ${r}`).join('; ');
}

async function main(): Promise<void> {
  const status = byId('status');
  const asked = new URLSearchParams(location.search).get('backend');
  if (asked && !(BROWSER_BACKENDS as readonly string[]).includes(asked)) throw new Error(`?backend=${asked}: expected one of ${BROWSER_BACKENDS.join(', ')}`);
  const choice = await initBackend((asked as BrowserBackendName | null) ?? undefined, { wasmPaths: new URL('wasm/', location.href).href });
  document.body.dataset.backend = choice.name;
  status.textContent = `TF.js ${tf.version.tfjs} on ${choice.name}; loading the run…`;
  await nextPaint();

  const site = await loadSite();
  const c = site.metrics.config;
  const title = `${displayName(c.model)} · ${displayName(c.arch)}, depth ${c.depth} on ${displayName(c.dataset)}`;
  document.title = `${title} · glonet web`;
  byId('title').textContent = title;
  const last = site.metrics.epochs[site.metrics.epochs.length - 1];
  byId('subtitle').textContent = `Run ${site.manifest.run}: ${site.metrics.epochs.length} epoch${site.metrics.epochs.length === 1 ? '' : 's'}, ` +
    `${site.model.countParams().toLocaleString('en-US')} parameters, ${site.sample.header.rows} of ${site.sample.header.testSize} test examples shipped with this page` +
    (last && Number.isFinite(last.testError) ? `; last-epoch test error ${last.testError.toPrecision(4)}` : '') + '.';
  byId('footer').textContent = `glonet ${VERSION} · TensorFlow.js ${tf.version.tfjs} on ${choice.name} (${backendDetail(choice, asked != null)}) · everything runs in this page, with no network.`;

  const models = new BlockModels(site.model, site.meta);
  status.textContent = `TF.js on ${choice.name}; analysing ${site.sample.header.rows} test examples…`;
  await nextPaint();
  const explainer = await setupExplain(site, models);
  await setupDial(site, models, (k) => explainer.setK(k));
  await setupPlayground(site, { name: choice.name, detail: backendDetail(choice, asked != null) });
  status.textContent = `Ready. TensorFlow.js ${tf.version.tfjs} runs this run's model on the ${choice.name} backend (${backendDetail(choice, asked != null)}).`;
  document.body.dataset.ready = 'true';
}

main().catch(fail);
