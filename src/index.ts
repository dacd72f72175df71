/**
 * glonet: Globally Connected Neural Networks on TensorFlow.js (the Node.js entry).
 * Importing this module registers the GloNet and ViT layers for `tf.loadLayersModel`.
 * Everything that runs without Node.js comes from ./everywhere.ts, which the browser entry
 * (./browser.ts) exports too; what follows needs Node.js: files, data loading, training, the
 * engines, the reports (test/entries.test.ts checks each of these does).
 */
export * from './everywhere.js';
// Data loading.
export { loadDataset, type LoadOptions } from './data/index.js';
export { datasetNames, getDataset, registerDataset, type DatasetEntry } from './data/registry.js';
export { loadSgemm, SGEMM_FEATURES, type TabularOptions } from './data/tabular.js';
export { loadCsv, DEFAULT_MAX_CLASSES, DEFAULT_MAX_LEVELS, type CsvOptions } from './data/csv-dataset.js';
export { readNumericCsv, readCsvTable, scanCsv, type NumericTable, type ReadCsvOptions, type RawTable, type RawColumn, type CsvHeader } from './data/csv.js';
export { loadImageDataset, flattenInputShape, type ImageLoadOptions } from './data/images.js';
// Models on files, backends, training and the engines.
export { saveModel, loadModel, fileSystem } from './model-io.js';
export { initBackend, activeBackend, BACKENDS, type BackendName, BackendError } from './backend/index.js';
export { runTraining, RunError, type RunResult, type RunOptions } from './train/run.js';
export { validateRunConfig, RunConfigError } from './train/options.js';
export { FolderBusyError, type LockHolder } from './folder-lock.js';
export { fastPathInfo, type FastPathInfo } from './engines/mlp/pick-core.js';
export { createFusedMlp, type DenseWeights, type FusedLoss, type FusedMlp, type FusedMlpOptions, type FusedMlpOptimizerState, type FusedMlpWeights } from './engines/mlp/glonet-mlp.js';
// Reports.
export { writeReport } from './report/report.js';
