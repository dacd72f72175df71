/**
 * glonet: Globally Connected Neural Networks on TensorFlow.js.
 * Importing this module registers the GloNet layer for `tf.loadLayersModel`.
 */
export { VERSION } from './version.js';
export { GloNet, gloNetLayer, gloNetSum, gloNetOutputShape, GloNetShapeError, glonet, type Block, type GloNetChainArgs } from './layers/index.js';
export { buildMlp, mlpBlockLayers, mlpFamily, MLP_ARCHS, type MlpArch, type MlpConfig } from './models/mlp.js';
export { buildResNet20, resnet20Family, RESNET20_ARCHS, RESNET_DEPTHS } from './models/resnet20.js';
export { buildViT, vitFamily, VIT_ARCHS } from './models/vit.js';
export { buildModel, registerFamily, getFamily, familyNames, familyDefaults, ModelConfigError, type BuildOptions, type BuiltModel, type DataShape, type Defaults, type ModelFamily, type Protocol } from './models/index.js';
export { initBackend, activeBackend, BACKENDS, type BackendName, BackendError } from './backend/index.js';
export { loadDataset, type LoadOptions } from './data/index.js';
export { loadSgemm, loadCsv, SGEMM_FEATURES } from './data/tabular.js';
export { readNumericCsv } from './data/csv.js';
export { loadImageDataset, flattenInputShape } from './data/images.js';
export { DataError, exampleSize, type Dataset, type Standardization, type Task } from './data/dataset.js';
export { saveModel, loadModel, fileSystem, type ModelMetadata } from './model-io.js';
export { runTraining, RunError, type RunResult, type RunOptions } from './train/run.js';
export { DivergedError, InterruptedError } from './train/trainer.js';
export { BadFileError, OutFolderError, WriteFailedError } from './errors.js';
export { createFusedMlp, fastPathInfo, type DenseWeights, type FastPathInfo, type FusedLoss, type FusedMlp, type FusedMlpOptions, type FusedMlpWeights } from './engines/fused-mlp.js';
export type { EngineName, Stepper, StepperOptions } from './engines/types.js';
export { analyzeModel, truncationCurve, blockNorms } from './analysis/analyze.js';
export { explain, type Explanation } from './analysis/explain.js';
export { truncateModel } from './analysis/truncate.js';
export { blockView, blockOutputs, applyHead, linearHead, AnalysisError, type BlockView } from './analysis/blocks.js';
export { writeReport } from './report/report.js';
export { learningRateAt, type RunConfig } from './train/config.js';
export { evaluate, scoreOutputs, type Evaluation } from './train/trainer.js';
export type { Metrics, EpochMetrics, Analysis, BlockNorm, TruncationPoint, ContributionSample } from './contracts.js';
export { Rng } from './random.js';
