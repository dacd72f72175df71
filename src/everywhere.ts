/**
 * What both entries of the package export (./index.ts for Node.js, ./browser.ts for browsers):
 * everything of glonet that runs without Node.js. test/entries.test.ts checks that nothing here
 * needs Node.js and that nothing the Node entry adds could run without it.
 */
export { VERSION } from './version.js';
// The vocabulary of a run, and errors.
export {
  BLOCK_SCALES, ENGINE_NAMES, HEAD_INITS, OPTIMIZERS, SCHEDULES, normFreeOf,
  type BlockScaleInit, type EngineName, type HeadInit, type NormFreeOptions, type OptimizerName, type Protocol, type RunConfig, type ScheduleName, type Task,
} from './vocabulary.js';
export { GlonetError, BadFileError, OutFolderError, WriteFailedError, type ErrorKind } from './errors.js';
export { LIMITS, type Limit, type Limits } from './limits.js';
export type { DataFingerprint, DataFileFingerprint } from './data/fingerprint.js';
// Layers and model families.
export { GloNet, gloNetLayer, gloNetSum, gloNetOutputShape, GloNetShapeError, glonet, type Block, type GloNetChainArgs } from './layers/index.js';
export type { GloNetArgs, LayerShape } from './layers/glonet.js';
export { BlockScale, FixedCenter, WSConv2D, WS_RELU_GAMMA, WS_EPSILON, type BlockScaleArgs, type FixedCenterArgs, type WSConv2DArgs } from './layers/index.js';
export { buildMlp, mlpBlockLayers, mlpFamily, MLP_ARCHS, type MlpArch, type MlpConfig } from './models/mlp.js';
export { buildResNet20, resnet20Family, RESNET20_ARCHS, RESNET_DEPTHS, type ResNet20Arch, type ResNet20Config } from './models/resnet20.js';
export { buildViT, vitFamily, VIT_ARCHS, type VitArch, type VitConfig } from './models/vit.js';
export { buildModel, registerFamily, getFamily, familyNames, familyDefaults, ModelConfigError, type BuildOptions, type BuiltModel, type DataShape, type Defaults, type FamilyLimits, type ModelFamily, type ModelSize } from './models/index.js';
export type { LoadedModel, ModelMetadata } from './model-metadata.js';
// Data.
export { DataError, exampleSize, type Dataset, type Standardization } from './data/dataset.js';
export {
  encodeRow, decodeRow, parseCell, levelKey, inputNames, inputCount, columnWidth, numericEncoding, encodingProblem, rawValue,
  MISSING_TOKENS, MISSING_LEVEL, OTHER_LEVEL,
  type Cell, type TableEncoding, type ColumnEncoding, type NumericColumn, type CategoricalColumn, type TargetEncoding, type RowNotes, type UnknownLevel,
} from './data/table-encoding.js';
export { Rng } from './random.js';
// Scoring, and training's pieces that need no Node (the loop itself runs in Node: runTraining).
export { evaluate, scoreOutputs, type Evaluation } from './scoring.js';
export { DivergedError, InterruptedError } from './train/trainer.js';
export type { Progress } from './train/progress.js';
export { learningRateAt } from './train/schedule.js';
export { type NamedArray, type Stepper, type StepperOptions } from './engines/types.js';
// Analysis.
export { analyzeModel, truncationCurve, blockNorms, type AnalyzeOptions } from './analysis/analyze.js';
export { explain, type Explanation } from './analysis/explain.js';
export { modelEncoding } from './analysis/model-encoding.js';
export { predictAll, Predictions, csvHeader, csvLine, PREDICT_BATCH, type PredictionRow } from './analysis/predictions.js';
export { truncateModel } from './analysis/truncate.js';
export { blockView, blockOutputs, applyHead, linearHead, AnalysisError, type BlockView } from './analysis/blocks.js';
export type { Metrics, EpochMetrics, Analysis, BlockNorm, BlockEffect, EffectiveDepth, TruncationPoint, ContributionSample } from './contracts.js';
