/**
 * glonet: Globally Connected Neural Networks on TensorFlow.js.
 * Importing this module registers the GloNet layer for `tf.loadLayersModel`.
 */
export { VERSION } from './version.js';
export { GloNet, gloNetLayer, gloNetSum, gloNetOutputShape, GloNetShapeError, glonet, type Block, type GloNetChainArgs } from './layers/index.js';
export type { GloNetArgs, LayerShape } from './layers/glonet.js';
export { buildMlp, mlpBlockLayers, mlpFamily, MLP_ARCHS, type MlpArch, type MlpConfig } from './models/mlp.js';
export { buildResNet20, resnet20Family, RESNET20_ARCHS, RESNET_DEPTHS, type ResNet20Arch, type ResNet20Config } from './models/resnet20.js';
export { buildViT, vitFamily, VIT_ARCHS, type VitArch, type VitConfig } from './models/vit.js';
export { buildModel, registerFamily, getFamily, familyNames, familyDefaults, ModelConfigError, type BuildOptions, type BuiltModel, type DataShape, type Defaults, type ModelFamily, type Protocol } from './models/index.js';
export { initBackend, activeBackend, BACKENDS, type BackendName, BackendError } from './backend/index.js';
export { loadDataset, type LoadOptions } from './data/index.js';
export { loadSgemm, loadCsv, SGEMM_FEATURES, type TabularOptions } from './data/tabular.js';
export { readNumericCsv, type NumericTable, type ReadCsvOptions } from './data/csv.js';
export { loadImageDataset, flattenInputShape, type ImageDatasetName, type ImageLoadOptions } from './data/images.js';
export { DataError, exampleSize, type Dataset, type Standardization, type Task } from './data/dataset.js';
export { saveModel, loadModel, fileSystem, type LoadedModel, type ModelMetadata } from './model-io.js';
export { runTraining, RunError, type RunResult, type RunOptions } from './train/run.js';
export { DivergedError, InterruptedError } from './train/trainer.js';
export { BadFileError, OutFolderError, WriteFailedError } from './errors.js';
export type { Progress } from './train/progress.js';
export { fastPathInfo, type FastPathInfo } from './engines/mlp/pick-core.js';
export { createFusedMlp, type DenseWeights, type FusedLoss, type FusedMlp, type FusedMlpOptions, type FusedMlpOptimizerState, type FusedMlpWeights } from './engines/mlp/glonet-mlp.js';
export { ENGINE_NAMES, type EngineName, type NamedArray, type OptimizerName, type Stepper, type StepperOptions } from './engines/types.js';
export { analyzeModel, truncationCurve, blockNorms, type AnalyzeOptions } from './analysis/analyze.js';
export { explain, type Explanation } from './analysis/explain.js';
export { truncateModel } from './analysis/truncate.js';
export { blockView, blockOutputs, applyHead, linearHead, AnalysisError, type BlockView } from './analysis/blocks.js';
export { writeReport } from './report/report.js';
export { learningRateAt, DATASETS, type DatasetName, type RunConfig } from './train/config.js';
export { evaluate, scoreOutputs, type Evaluation } from './train/trainer.js';
export type { Metrics, EpochMetrics, Analysis, BlockNorm, BlockEffect, EffectiveDepth, TruncationPoint, ContributionSample } from './contracts.js';
export { Rng } from './random.js';
