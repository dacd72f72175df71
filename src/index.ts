/**
 * glonet: Globally Connected Neural Networks on TensorFlow.js.
 * Importing this module registers the GloNet layer for `tf.loadLayersModel`.
 */
export { VERSION } from './version.js';
export { GloNet, gloNetLayer, gloNetSum, gloNetOutputShape, GloNetShapeError, glonet, type Block, type GloNetChainArgs } from './layers/index.js';
export { buildMlp, MLP_ARCHS, type MlpArch, type MlpConfig, ModelConfigError } from './models/mlp.js';
export { buildResNet20, RESNET20_ARCHS, RESNET_DEPTHS } from './models/resnet20.js';
export { buildViT, VIT_ARCHS } from './models/vit.js';
export { buildModel, registerFamily, mlpBlockLayers, type BuildOptions, type BuiltModel } from './models/index.js';
export { initBackend, activeBackend, BACKENDS, type BackendName, BackendError } from './backend/index.js';
export { loadDataset, type LoadOptions } from './data/index.js';
export { loadSgemm, loadCsv, SGEMM_FEATURES } from './data/tabular.js';
export { readNumericCsv } from './data/csv.js';
export { loadImageDataset, flattenInputShape } from './data/images.js';
export { DataError, type Dataset, type Standardization, type Task } from './data/dataset.js';
export { saveModel, loadModel, fileSystem, type ModelMetadata } from './model-io.js';
export { runTraining, type RunResult, type RunOptions } from './train/run.js';
export { createFusedMlp, fastPathInfo, type FusedMlp, type FusedMlpOptions, type FusedMlpWeights } from './fast/fused-mlp.js';
export { analyzeModel, type Analysis } from './analysis/analyze.js';
export { explain, type Explanation } from './analysis/explain.js';
export { truncateModel } from './analysis/truncate.js';
export { writeReport } from './report/report.js';
export { familyDefaults, learningRateAt, type RunConfig } from './train/config.js';
export { evaluate } from './train/trainer.js';
export type { Metrics, EpochMetrics } from './train/metrics.js';
export { Rng } from './random.js';
