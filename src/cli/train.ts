/** `glonet train`: options to a RunConfig, and the run. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKENDS } from '../backend/index.js';
import { familyNames, getFamily } from '../models/index.js';
import { checkArch } from '../models/family.js';
import { runTraining, type RunResult } from '../train/run.js';
import { list, momentum, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './parse.js';
import { ExitError, UsageError } from './errors.js';
import { afterTraining } from './after-training.js';
import { checkWritableFolder } from '../out-folder.js';
import { withFolderLock } from '../folder-lock.js';
import { stopOnSignals } from './signals.js';
import { LIMITS, formatCount } from '../limits.js';
import { SEED_LIMIT } from '../train/options.js';
import { InterruptedError } from '../train/trainer.js';
import { datasetNames, getDataset } from '../data/registry.js';
import { DEFAULT_MAX_CLASSES, DEFAULT_MAX_LEVELS } from '../data/csv-dataset.js';
import { BLOCK_SCALES, HEAD_INITS, normFreeOf, OPTIMIZERS, SCHEDULES, type HeadInit, type NormFreeOptions, type Protocol, type RunConfig } from '../vocabulary.js';

/** `glonet train`'s options as commander parses them: a run's configuration, the protocol's settings optional. */
interface TrainCliOptions extends Pick<RunConfig, 'model' | 'arch' | 'dataset' | 'data' | 'target' | 'drop' | 'depth' | 'seed' |
  'subset' | 'fast' | 'headInit' | 'task' | 'categorical' | 'missing' | 'maxClasses' | 'maxLevels'>, Partial<Protocol>, Partial<Pick<RunConfig, 'augment' | 'backend'>>,
  Pick<NormFreeOptions, 'blockScale' | 'weightStd' | 'centerBlocks'> {
  out: string;
  resume?: boolean;
  overwrite?: boolean;
  report?: boolean;
}

/** Train with SIGINT and SIGTERM stopping the run cleanly: one line and exit code 130 or 143. */
export async function trainStoppably(cfg: RunConfig, out: string, opts: { resume?: boolean; overwrite?: boolean }): Promise<RunResult> {
  const stop = stopOnSignals();
  try {
    const r = await runTraining(cfg, out, { ...opts, signal: stop.signal, beforeTraining: stop.arm });
    // A signal that arrived while the last steps ran synchronously (a native engine's step does not
    // give the event loop a turn) is delivered to the handler only on the loop's next turn: take
    // one before looking, or the handler is removed below with the signal still pending, and lost.
    await new Promise((resolve) => setImmediate(resolve));
    if (stop.signal.aborted) {
      // The signal came during the last epoch, which was committed anyway: the run is complete, its report not written.
      r.model.dispose();
      const last = r.metrics.epochs[r.metrics.epochs.length - 1]?.epoch ?? 0;
      throw new ExitError(`interrupted after epoch ${last}, the run's last: the run is complete, its report was not written (glonet train --resume with the same options writes it)`, stop.exitCode());
    }
    return r;
  } catch (e) {
    if (e instanceof InterruptedError) throw new ExitError(e.message, stop.exitCode());
    throw e;
  } finally {
    stop.dispose();
  }
}

/** Every registered family's architectures and what --depth means for it, for --help. */
function familyHelp(what: (f: ReturnType<typeof getFamily>) => string): string {
  return familyNames().map((n) => what(getFamily(n))).join('; ');
}

/** Each family's default of one setting, for --help ("mlp 0.01, resnet20 0.1, vit 0.0001"). */
function defaultsHelp(key: 'width' | 'batchSize' | 'optimizer' | 'lr' | 'momentum' | 'l2' | 'schedule' | 'warmup' | 'epochs'): string {
  return familyHelp((f) => {
    const value = (a: string) => String(f.defaults(a)[key] ?? 0);
    const values = [...new Set(f.archs.map(value))];
    return `${f.name} ${values.length === 1 ? values[0] : f.archs.map((a) => `${a} ${value(a)}`).join(', ')}`;
  });
}

/** The CSV options besides --data, --target and --drop (train and experiment run). */
export function addTableOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--task <task>', 'csv: classification reads a numeric target as class codes; regression insists on numbers (default: words are classes, numbers regression)').choices(['classification', 'regression']))
    .option('--categorical <cols>', 'csv: numeric columns to read as categories, comma-separated (repeatable); columns of words are categorical anyway; keeps a column whose values are all different', list)
    .addOption(new Option('--missing <how>', `csv: impute fills an empty or NA cell (numeric: the training median and a missing-indicator input; categorical: a level of its own), refuse makes each an error (default impute)`).choices(['impute', 'refuse']))
    .option('--max-classes <n>', `csv: the most classes a target may have (default ${DEFAULT_MAX_CLASSES})`, atLeastTwo)
    .option('--max-levels <n>', `csv: one-hot levels per categorical column; rarer levels share one '(other)' input (default ${DEFAULT_MAX_LEVELS})`, positiveInt);
}

function atLeastTwo(v: string): number {
  const n = positiveInt(v);
  if (n < 2) throw new InvalidArgumentError(`expected an integer of at least 2, got '${v}'.`);
  return n;
}

type Family = ReturnType<typeof getFamily>;

/**
 * A GloNet setting's default in the families that have it ("mlp paper, resnet20 paper, vit
 * paper"), read from each family's glonet defaults; `option` limits it to the families whose
 * glonet takes that norm-free option.
 */
function normFreeHelp(value: (d: ReturnType<Family['defaults']>) => string, option?: keyof NonNullable<RunConfig['normFree']>): string {
  const takes = (f: Family) => f.archs.includes('glonet') && (option == null || (f.normFreeOptions ?? []).includes(option));
  return familyNames().map(getFamily).filter(takes).map((f) => `${f.name} ${value(f.defaults('glonet'))}`).join(', ');
}

/** The options every training command shares (train, and experiment cells). */
function addTrainOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--model <family>', 'model family').choices(familyNames()).default('mlp'))
    .option('--arch <arch>', `architecture: ${familyHelp((f) => `${f.name}: ${f.archs.join(', ')}`)}`, 'glonet')
    .addOption(new Option('--dataset <name>', 'data set').choices(datasetNames()).default('sgemm'))
    .option('--data <path>', 'data location: the CSV file (csv), a folder of IDX files (mnist, fashion-mnist) or of binary batches (cifar10)')
    .option('--target <col>', 'csv: the column to predict')
    .option('--drop <cols>', 'csv: columns to leave out, comma-separated (repeatable); a column with an empty header is named by its position, \'column 3\'', list)
    .requiredOption('--depth <n>', familyHelp((f) => f.depthHelp), positiveInt)
    .option('--width <w>', `units per block (mlp) or embedding size (vit), at most ${familyNames().flatMap((n) => getFamily(n).limits?.width ? [`${formatCount(getFamily(n).limits!.width!.max)} (${n})`] : []).join(', ')}; default ${defaultsHelp('width')}`, positiveInt)
    .option('--epochs <e>', `epochs, at most ${formatCount(LIMITS.epochs.max)}; default ${defaultsHelp('epochs')}`, positiveInt)
    .option('--batch-size <b>', `mini-batch size, at most ${formatCount(LIMITS.batchSize.max)} (and what the model's activations allow: the message says how many); default ${defaultsHelp('batchSize')}`, positiveInt)
    .addOption(new Option('--optimizer <name>', `optimizer (sgd = SGD with momentum); default ${defaultsHelp('optimizer')}`).choices(OPTIMIZERS))
    .option('--lr <x>', `learning rate; default ${defaultsHelp('lr')}`, positiveNumber)
    .option('--momentum <x>', `SGD momentum, from 0 up to (not including) 1; default ${defaultsHelp('momentum')}`, momentum)
    .option('--l2 <x>', `L2 coefficient on kernels, penalty l2*sum(w^2); default ${defaultsHelp('l2')}`, nonNegativeNumber)
    .addOption(new Option('--schedule <s>', `learning-rate schedule: step = x0.1 every quarter of the epochs; default ${defaultsHelp('schedule')}`).choices(SCHEDULES))
    .option('--warmup <epochs>', `linear learning-rate warm-up over this many epochs' worth of steps (fractions allowed; 0 = none), step by step, with any schedule; default ${defaultsHelp('warmup')}`, nonNegativeNumber)
    .option('--seed <s>', `random seed, 0 to ${formatCount(SEED_LIMIT.max)}: same seed, backend and data give the same metrics`, nonNegativeInt, 0)
    .option('--subset <n>', 'train and test on a seeded random subset of n examples (at least 10, at most the data\'s size)', positiveInt)
    .option('--augment', 'image data sets: random flips and 4-pixel crops')
    .addOption(new Option('--backend <name>', 'TF.js backend (default: the fastest that loads)').choices(BACKENDS))
    .addOption(new Option('--head-init <kind>', `glonet: the head kernel at initialization: paper (the family's He-normal, Glorot-uniform for vit), scaled (that divided by the number of blocks summed), zero; default ${normFreeHelp((d) => d.headInit ?? 'paper')}`).choices(HEAD_INITS))
    .addOption(new Option('--block-scale <init>', `glonet: a learnable scalar on each block's contribution to the sum, initialized at 1 or 1/L (L blocks), or none; default ${normFreeHelp((d) => d.normFree?.blockScale ?? 'none', 'blockScale')}`).choices(BLOCK_SCALES))
    .option('--weight-std', `glonet: Scaled Weight Standardization of every conv kernel (NF-ResNets), with a learnable gain per channel; default ${normFreeHelp((d) => (d.normFree?.weightStd ? 'on' : 'off'), 'weightStd')}`)
    .option('--no-weight-std', 'glonet: plain conv kernels (the paper\'s)')
    .option('--center-blocks', `glonet: subtract from each block's pooled output its mean over the first 1,024 training images at initialization (fixed); default ${normFreeHelp((d) => (d.normFree?.centerBlocks ? 'on' : 'off'), 'centerBlocks')}`)
    .option('--no-center-blocks', 'glonet: no centering (the paper\'s)')
    .addOption(new Option('--fast <mode>', 'fused training engines (MLPs of every arch with Adam; ResNet20 of every arch with SGD or Adam; ViTs of both archs with Adam): auto uses them when they apply, off forces plain TF.js').choices(['auto', 'off']).default('auto'));
}

/** The defaults of every family and arch with their reasons, for `glonet train --help`. */
function defaultsText(): string {
  const lines = ['', 'Defaults (the protocol each architecture is trained with unless an option says otherwise):'];
  for (const name of familyNames()) {
    const f = getFamily(name);
    const seen = new Map<string, string[]>();
    for (const arch of f.archs) {
      const d = f.defaults(arch);
      const nf = d.normFree ?? {};
      const flags = [
        ...(d.headInit != null && d.headInit !== 'paper' ? [`--head-init ${d.headInit}`] : []),
        ...(nf.weightStd ? ['--weight-std'] : []), ...(nf.centerBlocks ? ['--center-blocks'] : []),
        ...(nf.blockScale != null && nf.blockScale !== 'none' ? [`--block-scale ${nf.blockScale}`] : []),
      ];
      const text = `${d.optimizer}${d.optimizer === 'sgd' ? ` momentum ${d.momentum}` : ''} lr ${d.lr}, schedule ${d.schedule}${d.warmup ? `, warm-up ${d.warmup} epoch${d.warmup === 1 ? '' : 's'}` : ''}, batch ${d.batchSize}, L2 ${d.l2}, ${d.epochs} epochs${flags.map((f) => `, ${f}`).join('')}: ${d.reason}`;
      seen.set(text, [...(seen.get(text) ?? []), arch]);
    }
    for (const [text, archs] of seen) lines.push(`  ${name} ${archs.length === f.archs.length ? '(all archs)' : archs.join(', ')}: ${text}`);
  }
  return lines.join('\n');
}

/** A head init as run configs record it: absent for the paper's. */
function headInitOf(h: HeadInit | undefined): Pick<RunConfig, 'headInit'> {
  return h != null && h !== 'paper' ? { headInit: h } : {};
}

/** The norm-free options that are on: each given option, else the arch's default. */
function normFreeConfig(o: Pick<TrainCliOptions, 'blockScale' | 'weightStd' | 'centerBlocks'>, d: NormFreeOptions): Pick<RunConfig, 'normFree'> {
  const nf = normFreeOf({ blockScale: o.blockScale ?? d.blockScale, weightStd: o.weightStd ?? d.weightStd, centerBlocks: o.centerBlocks ?? d.centerBlocks });
  return nf ? { normFree: nf } : {};
}

function toRunConfig(o: TrainCliOptions): RunConfig {
  const family = getFamily(o.model);
  checkArch(family.name, family.archs, o.arch);
  const d = family.defaults(o.arch);
  if (o.dataset === 'csv' && !o.data) throw new UsageError('--data: --dataset csv needs --data PATH naming the CSV file');
  if (o.dataset === 'csv' && !o.target) throw new UsageError('--target: --dataset csv needs --target COL naming the column to predict');
  const tableOnly = (['target', 'drop', 'task', 'categorical', 'missing', 'maxClasses', 'maxLevels'] as const).filter((k) => o[k] != null);
  if (o.dataset !== 'csv' && tableOnly.length > 0) {
    throw new UsageError(`${tableOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: ${tableOnly.length > 1 ? 'these options apply' : 'applies'} to --dataset csv only`);
  }
  if (o.augment && getDataset(o.dataset).kind !== 'images') throw new UsageError(`--augment: random flips and crops apply to image data sets; ${o.dataset} is a table`);
  if (o.dataset === 'cifar10' && !o.data) throw new UsageError('--data: --dataset cifar10 needs --data DIR holding data_batch_1.bin .. data_batch_5.bin and test_batch.bin');
  return {
    model: o.model, arch: o.arch, dataset: o.dataset,
    ...(o.data != null ? { data: o.data } : {}),
    ...(o.target != null ? { target: o.target } : {}),
    ...(o.drop != null ? { drop: o.drop } : {}),
    ...(o.task != null ? { task: o.task } : {}),
    ...(o.categorical != null ? { categorical: o.categorical } : {}),
    ...(o.missing != null ? { missing: o.missing } : {}),
    ...(o.maxClasses != null ? { maxClasses: o.maxClasses } : {}),
    ...(o.maxLevels != null ? { maxLevels: o.maxLevels } : {}),
    depth: o.depth,
    width: o.width ?? d.width,
    epochs: o.epochs ?? d.epochs,
    batchSize: o.batchSize ?? d.batchSize,
    optimizer: o.optimizer ?? d.optimizer,
    lr: o.lr ?? d.lr,
    momentum: o.momentum ?? d.momentum,
    l2: o.l2 ?? d.l2,
    schedule: o.schedule ?? d.schedule,
    ...((o.warmup ?? d.warmup ?? 0) > 0 ? { warmup: o.warmup ?? d.warmup } : {}),
    seed: o.seed,
    ...(o.subset != null ? { subset: o.subset } : {}),
    augment: Boolean(o.augment),
    backend: o.backend ?? 'auto',
    fast: o.fast,
    ...headInitOf(o.headInit ?? d.headInit),
    ...normFreeConfig(o, d.normFree ?? {}),
  };
}

export function trainCommand(): Command {
  const cmd = new Command('train').description('train a model and write DIR/metrics.json, DIR/model/ and DIR/report.html');
  addTableOptions(addTrainOptions(cmd))
    .addHelpText('after', defaultsText)
    .requiredOption('--out <dir>', 'run folder')
    .option('--resume', 'continue the run in --out from its last consistent epoch (a new or empty folder starts a new run)')
    .option('--overwrite', 'replace the run --out holds (its model, checkpoint, metrics, analysis and report); without it such a folder is refused')
    .option('--no-report', 'skip writing report.html')
    .action(async (o: TrainCliOptions) => {
      const cfg = toRunConfig(o);
      checkWritableFolder(o.out, '--out');
      // One writer from the first epoch to the report (runTraining takes the same lock again).
      await withFolderLock(o.out, { purpose: 'glonet train', option: '--out' }, async () => {
        const result = await trainStoppably(cfg, o.out, { resume: o.resume, overwrite: o.overwrite });
        result.model.dispose();
        await afterTraining(result, { report: o.report !== false });
      });
    });
  return cmd;
}
