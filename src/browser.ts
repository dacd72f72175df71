/**
 * glonet for browsers: everything of the package that runs without Node (layers, model builders,
 * analysis, explanations, truncation, scoring), plus browser model loading and backend choice.
 * Bundlers pick this file through the `browser` export condition, so
 * `import { GloNet, glonet, explain, truncateModel } from 'glonet'` pulls in no Node built-ins.
 * Importing it registers the GloNet and ViT layers for `tf.loadLayersModel`. The names it shares with
 * the Node entry (./index.ts) come from ./everywhere.ts.
 */
export * from './everywhere.js';
// The browser's own: model loading over HTTP, backend choice.
export { loadModel } from './browser/load-model.js';
export { initBackend, BROWSER_BACKENDS, type BrowserBackendName, type BrowserBackendOptions, type BrowserBackendChoice } from './browser/backend.js';
