/**
 * A model family is one record: its name (`--model`), its architectures, the training protocol
 * it defaults to (each setting with the reason for it), how to build a model, and which layers'
 * outputs are its blocks (the unit of analysis). Each family file (mlp.ts, resnet20.ts, vit.ts)
 * exports one; ./index.ts is the registry, and the command line derives its choices and
 * defaults from it, so `registerFamily` adds a family that `glonet train` accepts.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset.js';
import type { HeadInit, NormFreeOptions, Protocol, RunConfig } from '../vocabulary.js';
import { GlonetError } from '../errors.js';
import type { ModelMetadata } from '../model-metadata.js';
import { LIMITS, overLimit, formatCount, type Limit } from '../limits.js';
import { normFreeOf } from '../vocabulary.js';

/** A model that cannot be built as asked (bad arch, depth, width or data shape). */
export class ModelConfigError extends GlonetError {
  /** 'ModelConfigError'. */
  override name = 'ModelConfigError';
}

/**
 * What a family builds from: the run's options (model, arch, depth, width, l2, seed, head init,
 * norm-free options; src/vocabulary.ts says what each means).
 */
export type BuildOptions = Pick<RunConfig, 'model' | 'arch' | 'depth' | 'width' | 'l2' | 'seed' | 'headInit' | 'normFree'>;

/** What a family needs to know about the data. */
export type DataShape = Pick<Dataset, 'inputShape' | 'outputs' | 'task'>;

/** A built model and its metadata. */
export interface BuiltModel {
  /** The TF.js model, uncompiled. */
  model: tf.LayersModel;
  /** What analysis needs later, saved in model.json. */
  meta: ModelMetadata;
}

/** A protocol with the reason for it, in words a user can check (printed by --help and docs/training.md). */
export interface Defaults extends Protocol {
  /** Why these settings (the paper's protocol, or what was measured). */
  reason: string;
}

/** A model family: everything `glonet train` and analysis need to build and read its models. */
export interface ModelFamily {
  /** `--model NAME`. */
  name: string;
  /** `--arch` values; the first is the default. */
  archs: readonly string[];
  /** One line for --help: what depth means for this family. */
  depthHelp: string;
  /** The training protocol of an architecture. */
  defaults(arch: string): Defaults;
  /** Build (and validate) a model; errors are ModelConfigErrors naming the option. */
  build(o: BuildOptions, data: DataShape): BuiltModel;
  /** The norm-free options its --arch glonet takes (none when absent). */
  normFreeOptions?: ReadonlyArray<keyof NormFreeOptions>;
  /** Names of the layers whose outputs are the blocks' outputs (their contributions to a GloNet sum), in order. */
  blockLayers(arch: string, depth: number, normFree?: NormFreeOptions): string[];
  /**
   * Settings the model takes from the training data before training starts (a new run only):
   * the ResNet20 family's fixed block centers. `x` holds `rows` training examples.
   */
  fitToData?(model: tf.LayersModel, meta: ModelMetadata, x: Float32Array, rows: number): void;
  /** The largest depth and width it builds, each with the reason (checked before the data are read). */
  limits?: FamilyLimits;
  /** The size of its model before it is built (checked against src/limits.ts before anything is allocated). */
  size?(o: BuildOptions, data: DataShape): ModelSize;
}

/** A family's upper limits of --depth and --width (src/limits.ts says why limits exist). */
export interface FamilyLimits {
  /** The largest --depth. */
  depth: Limit;
  /** The largest --width, when the family has one. */
  width?: Limit;
}

/** How big a model is before it is built. */
export interface ModelSize {
  /** Trainable (and BN moving) parameters. */
  parameters: number;
  /** Floats of the layer outputs one training example keeps for the backward pass (an estimate). */
  activations: number;
}

/** The depth and width checks every family's options get before anything is read or built. */
export function checkDepthWidth(family: Pick<ModelFamily, 'name' | 'limits'>, o: { depth: number; width?: number }): void {
  const lim = family.limits;
  if (!Number.isSafeInteger(o.depth) || o.depth < 1) throw new ModelConfigError(`--depth: expected a positive integer, got ${o.depth}`);
  if (lim && o.depth > lim.depth.max) throw new ModelConfigError(overLimit(`--depth: --model ${family.name}`, o.depth, lim.depth));
  if (o.width != null) {
    if (!Number.isSafeInteger(o.width) || o.width < 1) throw new ModelConfigError(`--width: expected a positive integer, got ${o.width}`);
    if (lim?.width && o.width > lim.width.max) throw new ModelConfigError(overLimit(`--width: --model ${family.name}`, o.width, lim.width));
  }
}

/**
 * The size checks of a model about to be built for these data: its parameters, and the
 * activations a step on `batch` examples keeps (both against src/limits.ts). Nothing is allocated.
 */
export function checkModelSize(family: Pick<ModelFamily, 'name' | 'size'>, o: BuildOptions, data: DataShape, batch?: number): void {
  if (!family.size) return;
  const { parameters, activations } = family.size(o, data);
  // Data of a shape the family does not take (a table for an image model) give no size: its build
  // refuses them with the reason, after the options' own checks.
  if (Number.isNaN(parameters) || Number.isNaN(activations)) return;
  const what = `--depth ${o.depth}${o.width != null ? ` --width ${o.width}` : ''}`;
  if (!(parameters <= LIMITS.parameters.max)) {
    throw new ModelConfigError(`${what}: this --model ${family.name} would have ${formatCount(parameters)} parameters on these data; ` +
      `at most ${formatCount(LIMITS.parameters.max)} (${LIMITS.parameters.why})`);
  }
  if (batch != null && !(batch * activations <= LIMITS.activations.max)) {
    const fits = Math.floor(LIMITS.activations.max / activations);
    throw new ModelConfigError(`--batch-size ${batch}: a training step of this ${what} keeps about ${formatCount(Math.round(batch * activations))} floats of activations; ` +
      `at most ${formatCount(LIMITS.activations.max)} (${LIMITS.activations.why})` +
      (fits >= 1 ? `; use --batch-size ${fits} or less` : '; use a smaller --depth or --width'));
  }
}

/** A family's model with the metadata analysis needs later (saved in model.json). */
export function withMetadata(family: Pick<ModelFamily, 'name' | 'blockLayers'>, o: BuildOptions, data: DataShape, model: tf.LayersModel): BuiltModel {
  const normFree = normFreeOf(o.normFree ?? {});
  return {
    model,
    meta: {
      model: family.name, arch: o.arch, depth: o.depth, task: data.task, inputShape: data.inputShape, outputs: data.outputs,
      blockLayers: family.blockLayers(o.arch, o.depth, normFree),
      ...(normFree ? { normFree } : {}),
    },
  };
}

/** The arch check every family starts with. */
export function checkArch(family: string, archs: readonly string[], arch: string): void {
  if (!archs.includes(arch)) throw new ModelConfigError(`--arch: expected one of ${archs.join(', ')} for --model ${family}, got '${arch}'`);
}

/** `--head-init` other than the paper's applies to a GloNet head only. */
export function checkHeadInit(arch: string, headInit: HeadInit | undefined): void {
  if (headInit != null && headInit !== 'paper' && !arch.startsWith('glonet')) {
    throw new ModelConfigError(`--head-init ${headInit}: applies to a GloNet (--arch glonet or glonet-bn: the head that reads the sum of the blocks), not ${arch}`);
  }
}

/**
 * The norm-free options a family's architecture takes (`allowed`, for --arch glonet; no other
 * arch takes any): one that is on elsewhere is a ModelConfigError naming the option.
 */
export function checkNormFree(family: string, arch: string, o: NormFreeOptions, allowed: ReadonlyArray<keyof NormFreeOptions>): void {
  const on = normFreeOf(o) ?? {};
  const flag: Record<keyof NormFreeOptions, string> = { blockScale: `--block-scale ${o.blockScale}`, weightStd: '--weight-std', centerBlocks: '--center-blocks' };
  for (const key of Object.keys(on) as Array<keyof NormFreeOptions>) {
    if (arch !== 'glonet') throw new ModelConfigError(`${flag[key]}: applies to --arch glonet (the GloNet without normalization), not ${arch}`);
    if (!allowed.includes(key)) throw new ModelConfigError(`${flag[key]}: not available for --model ${family}`);
  }
}

/** The image families' input rule: examples are images [height, width, channels]. */
export function checkImageShape(family: string, inputShape: number[]): void {
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ModelConfigError(`--model ${family} needs images [height, width, channels]; this data set has examples of shape [${inputShape.join(', ')}] (use --model mlp for tabular data)`);
  }
}

/** The image families classify: a regression data set is an error. */
export function checkClassifier(family: string, data: DataShape): void {
  if (data.task !== 'classification') throw new ModelConfigError(`--model ${family} is an image classifier; this data set is a regression task`);
}

/** TF.js random initializers treat seed 0 as "no seed" (Math.random): layer seeds start at seed + 1. */
export function seedCounter(seed: number | undefined): () => number {
  let next = (seed ?? 0) + 1;
  return () => next++;
}
