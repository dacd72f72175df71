/**
 * glonet for browsers: everything of the package that runs without Node (layers, model builders,
 * analysis, explanations, truncation, evaluation), plus browser model loading and backend choice.
 * Bundlers pick this file through the `browser` export condition, so
 * `import { GloNet, glonet, explain, truncateModel } from 'glonet'` pulls in no Node built-ins.
 * Importing it registers the GloNet and ViT layers for `tf.loadLayersModel`.
 */
export { VERSION } from './version.js';
export { GloNet, gloNetLayer, gloNetSum, gloNetOutputShape, GloNetShapeError, glonet, type Block, type GloNetChainArgs } from './layers/index.js';
export { buildMlp, mlpBlockLayers, mlpFamily, MLP_ARCHS, type MlpArch, type MlpConfig } from './models/mlp.js';
export { buildResNet20, resnet20Family, RESNET20_ARCHS, RESNET_DEPTHS } from './models/resnet20.js';
export { buildViT, vitFamily, VIT_ARCHS } from './models/vit.js';
export { buildModel, registerFamily, getFamily, familyNames, familyDefaults, ModelConfigError, type BuildOptions, type BuiltModel, type DataShape, type Defaults, type ModelFamily, type Protocol } from './models/index.js';
export { analyzeModel, truncationCurve, blockNorms } from './analysis/analyze.js';
export { explain, type Explanation } from './analysis/explain.js';
export { truncateModel } from './analysis/truncate.js';
export { blockView, blockOutputs, applyHead, linearHead, AnalysisError, type BlockView } from './analysis/blocks.js';
export { evaluate, scoreOutputs, type Evaluation } from './train/trainer.js';
export { DataError, exampleSize, type Dataset, type Standardization, type Task } from './data/dataset.js';
export type { LoadedModel, ModelMetadata } from './model-io.js';
export type { Metrics, EpochMetrics, Analysis, BlockNorm, TruncationPoint, ContributionSample } from './contracts.js';
export { Rng } from './random.js';
export { loadModel } from './browser/load-model.js';
export { initBackend, BROWSER_BACKENDS, type BrowserBackendName, type BrowserBackendOptions, type BrowserBackendChoice } from './browser/backend.js';
