/**
 * The BN-free study of issue 24 (docs/protocol-notes.md, "Making the BN-free GloNets keep up with
 * the BN ResNets"): `glonet train` cells run one after another, each an ordinary run folder, and
 * the tables made from their metrics.json files.
 *
 *   node dist/bench/bnfree-study.js run cnn|mlp|bn [--out DIR] [--only REGEX]
 *   node dist/bench/bnfree-study.js summarize cnn|mlp|bn [--out DIR]
 *   node dist/bench/bnfree-study.js time cnn [--out DIR] [--only REGEX] [--rounds 5]
 *   node dist/bench/bnfree-study.js probe cnn
 *
 * `run` trains every cell of the study whose id matches --only, in the listed order (seed by
 * seed, so the machine's load falls on every variant alike), skipping finished cells and resuming
 * interrupted ones (`glonet train --resume`); next to each run folder it writes study.json: the
 * command, the 1-minute load average sampled every 5 s while it ran (mean and max) and the exit
 * code. `summarize` prints the tables and writes bench/bnfree/<study>.json (the raw numbers the
 * tables come from). Run folders default to runs/bnfree/<study>/ (not committed).
 *
 * `time` measures what an epoch of each CNN variant costs under the same load, for the wall time
 * to 80% (the study's runs ran hours apart on a machine other jobs shared, so their own epoch
 * seconds compare the load more than the models): rounds of one-epoch runs on 2,400
 * Fashion-MNIST images, every variant once per round in turn, the median epoch seconds of each
 * and its ratio to ResNetv2's; written to bench/bnfree/timing.json.
 *
 * `probe` looks at GloNet-ResNet20 at initialization (3 seeds, 512 Fashion-MNIST training images,
 * TF.js): for the paper's network, each norm-free option and glonet-bn, the mean cosine similarity
 * of two images' pooled block outputs (block by block, and of the sum the head reads) and how much
 * of the logits varies from image to image (the standard deviation across images over the RMS);
 * written to bench/bnfree/probe.json. protocol-notes.md explains why these matter.
 *
 * Studies:
 *   cnn  GloNet-ResNet20 on Fashion-MNIST (10,000 training images, 1,667 test images, 10 epochs,
 *        3 seeds): the paper's BN-free GloNet at its default (Adam) and with the notebook's SGD,
 *        each candidate with both optimizers, ResNetv2 and vanilla ResNet20 at their defaults.
 *        Reported: test accuracy after epochs 1, 3 and 10, and the wall time (sum of epoch seconds,
 *        training and test evaluation) until the first epoch at 80% or more.
 *   mlp  MLPs on all SGEMM rows at the paper's protocol (Adam 0.01, batch 1024, L2 1e-5, 200
 *        epochs): GloNet variants against ResNetv2 at 10, 100 and 1000 blocks, 2 seeds. Reported:
 *        the best test MSE over the epochs.
 *   bn   glonet-bn beside glonet: where the signal sits (block norms, effective depth) is read
 *        by `glonet analyze` on the same run folders (the experiments sgemm-norms and mnist-depth
 *        judge it; this study only trains).
 */
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadDataset } from '../src/data/index.js';
import { buildModel, getFamily } from '../src/models/index.js';
import type { NormFreeOptions } from '../src/vocabulary.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'glonet.js');

interface Cell {
  /** Folder name under the study's runs: `<variant>-s<seed>` or `<variant>-d<depth>-s<seed>`. */
  id: string;
  /** The variant (the row of the table). */
  variant: string;
  depth: number;
  seed: number;
  epochs: number;
  /** `glonet train` options (without --out). */
  args: string[];
}

// ----- the studies -----

const CNN_SEEDS = [0, 1, 2];
const CNN_EPOCHS = 10;
/** The notebook's SGD: lr 0.1, momentum 0.9, x0.1 every quarter of the epochs. */
const SGD = ['--optimizer', 'sgd', '--lr', '0.1', '--momentum', '0.9', '--schedule', 'step'];

/** CNN variants: name -> `glonet train` options beyond the common ones. */
const CNN_VARIANTS: Record<string, string[]> = {
  'resnetv2': ['--arch', 'resnetv2'],
  'vanilla': ['--arch', 'vanilla'],
  'glonet-adam': ['--arch', 'glonet'],
  'glonet-sgd': ['--arch', 'glonet', ...SGD],
  'ws-adam': ['--arch', 'glonet', '--weight-std'],
  'ws-sgd': ['--arch', 'glonet', '--weight-std', ...SGD],
  'ws-sgd001': ['--arch', 'glonet', '--weight-std', '--optimizer', 'sgd', '--lr', '0.01', '--momentum', '0.9', '--schedule', 'step'],
  'scale1-adam': ['--arch', 'glonet', '--block-scale', '1'],
  'scale1-sgd': ['--arch', 'glonet', '--block-scale', '1', ...SGD],
  'scaleL-adam': ['--arch', 'glonet', '--block-scale', '1/L'],
  'scaleL-sgd': ['--arch', 'glonet', '--block-scale', '1/L', ...SGD],
  'fixup-adam': ['--arch', 'glonet', '--head-init', 'zero', '--block-scale', '1'],
  'fixup-sgd': ['--arch', 'glonet', '--head-init', 'zero', '--block-scale', '1', ...SGD],
  'center-adam': ['--arch', 'glonet', '--center-blocks'],
  'center-sgd': ['--arch', 'glonet', '--center-blocks', ...SGD],
  // Adam with the notebook's steps (x0.1 every quarter of the epochs), as the BN archs have them.
  'glonet-adam-step': ['--arch', 'glonet', '--schedule', 'step'],
  'center-adam-step': ['--arch', 'glonet', '--center-blocks', '--schedule', 'step'],
  'ws-adam-step': ['--arch', 'glonet', '--weight-std', '--schedule', 'step'],
  // Weight standardization with the others.
  'ws-center-adam': ['--arch', 'glonet', '--weight-std', '--center-blocks'],
  'ws-adam3e-3': ['--arch', 'glonet', '--weight-std', '--lr', '0.003'],
  // glonet-bn at the BN archs' protocol (the notebook's SGD), at a tenth of its rate, and with Adam.
  'glonet-bn-sgd': ['--arch', 'glonet-bn', ...SGD],
  'glonet-bn-sgd001': ['--arch', 'glonet-bn', '--optimizer', 'sgd', '--lr', '0.01', '--momentum', '0.9', '--schedule', 'step'],
  'glonet-bn-adam': ['--arch', 'glonet-bn', '--optimizer', 'adam', '--lr', '0.001', '--schedule', 'constant'],
};

/**
 * A variant's options as they were run: GloNet-ResNet20's convs were plain (the paper's) in every
 * variant without --weight-std; since the study made weight standardization the default, those
 * variants say --no-weight-std so that rerunning the study trains the same networks.
 */
function asRun(args: string[]): string[] {
  return args[1] === 'glonet' && !args.includes('--weight-std') ? [...args, '--no-weight-std'] : args;
}

function cnnCells(): Cell[] {
  const common = ['--model', 'resnet20', '--depth', '20', '--dataset', 'fashion-mnist', '--subset', '10000', '--epochs', String(CNN_EPOCHS)];
  return CNN_SEEDS.flatMap((seed) => Object.entries(CNN_VARIANTS).map(([variant, args]) => ({
    id: `${variant}-s${seed}`, variant, depth: 20, seed, epochs: CNN_EPOCHS, args: [...common, ...asRun(args), '--seed', String(seed)],
  })));
}

const MLP_SEEDS = [0, 1];
const MLP_EPOCHS = 200;
const MLP_DEPTHS = [10, 100, 1000];
/** MLP variants: name -> `glonet train` options beyond the common ones (the paper's protocol). */
const MLP_VARIANTS: Record<string, string[]> = {
  'resnetv2': ['--arch', 'resnetv2'],
  'vanilla-nobn': ['--arch', 'vanilla-nobn'],
  'glonet': ['--arch', 'glonet'],
  'glonet-zero': ['--arch', 'glonet', '--head-init', 'zero'],
  'glonet-scaled': ['--arch', 'glonet', '--head-init', 'scaled'],
  'glonet-zero-lr3e-3': ['--arch', 'glonet', '--head-init', 'zero', '--lr', '0.003'],
  'glonet-zero-lr1e-3': ['--arch', 'glonet', '--head-init', 'zero', '--lr', '0.001'],
  'glonet-zero-step': ['--arch', 'glonet', '--head-init', 'zero', '--schedule', 'step'],
  'glonet-step': ['--arch', 'glonet', '--schedule', 'step'],
  'resnetv2-step': ['--arch', 'resnetv2', '--schedule', 'step'],
  'glonet-scale1': ['--arch', 'glonet', '--block-scale', '1'],
  'glonet-zero-scale1': ['--arch', 'glonet', '--head-init', 'zero', '--block-scale', '1'],
  'glonet-scaleL': ['--arch', 'glonet', '--block-scale', '1/L'],
  'glonet-zero-scaleL': ['--arch', 'glonet', '--head-init', 'zero', '--block-scale', '1/L'],
};

function mlpCells(): Cell[] {
  const common = ['--model', 'mlp', '--dataset', 'sgemm', '--epochs', String(MLP_EPOCHS)];
  return MLP_SEEDS.flatMap((seed) => MLP_DEPTHS.flatMap((depth) => Object.entries(MLP_VARIANTS).map(([variant, args]) => ({
    id: `${variant}-d${depth}-s${seed}`, variant, depth, seed, epochs: MLP_EPOCHS,
    args: [...common, ...args, '--depth', String(depth), '--seed', String(seed)],
  }))));
}

function bnCells(): Cell[] {
  return [];
}

const STUDIES: Record<string, () => Cell[]> = { cnn: cnnCells, mlp: mlpCells, bn: bnCells };

/** Variants timed by default (`time cnn`): the baselines, GloNet and its candidates with Adam. */
const TIMED = /^(resnetv2|vanilla|glonet-adam|ws-adam|center-adam|scale1-adam|glonet-bn-sgd001)$/;

// ----- running -----

interface CellLog {
  args: string[];
  started: string;
  seconds: number;
  load: { mean: number; max: number; samples: number; cpus: number };
  exit: number | null;
}

interface Metrics {
  config: { epochs: number };
  engine: string;
  epochs: Array<{ epoch: number; testError: number; testAccuracy?: number; seconds: number }>;
  diverged?: { epoch: number; batch: number };
}

function readMetrics(dir: string): Metrics | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8')) as Metrics;
  } catch {
    return null;
  }
}

const finished = (dir: string, cell: Cell): boolean => {
  const m = readMetrics(dir);
  return m != null && (m.diverged != null || m.epochs.length >= cell.epochs);
};

async function runCell(dir: string, cell: Cell): Promise<void> {
  const args = [BIN, 'train', ...cell.args, '--out', dir, '--resume', '--no-report'];
  const samples: number[] = [];
  const t0 = Date.now();
  const timer = setInterval(() => samples.push(os.loadavg()[0]), 5000);
  samples.push(os.loadavg()[0]);
  const exit = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = fs.createWriteStream(`${dir}.log`, { flags: 'a' });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.on('close', (code) => resolve(code));
  });
  clearInterval(timer);
  const record: CellLog = {
    args: cell.args, started: new Date(t0).toISOString(), seconds: (Date.now() - t0) / 1000,
    load: { mean: samples.reduce((a, b) => a + b, 0) / samples.length, max: Math.max(...samples), samples: samples.length, cpus: os.cpus().length },
    exit,
  };
  fs.writeFileSync(`${dir}.study.json`, JSON.stringify(record, null, 1) + '\n');
}

async function run(study: string, out: string, only: RegExp | null): Promise<void> {
  fs.mkdirSync(out, { recursive: true });
  for (const cell of STUDIES[study]()) {
    if (only && !only.test(cell.id)) continue;
    const dir = path.join(out, cell.id);
    if (finished(dir, cell)) continue;
    process.stdout.write(`${new Date().toISOString()} ${cell.id}: glonet train ${cell.args.join(' ')} (load ${os.loadavg()[0].toFixed(2)})\n`);
    await runCell(dir, cell);
  }
}

// ----- tables -----

interface CellResult {
  id: string;
  variant: string;
  depth: number;
  seed: number;
  engine: string | null;
  epochsRun: number;
  diverged: boolean;
  /** Test accuracy (%) after each epoch (classification) or test MSE (regression). */
  curve: number[];
  /** Seconds of each epoch. */
  seconds: number[];
  best: number;
  /** CNN: wall seconds and epochs until the first epoch at 80% or more (null: never). */
  to80?: { seconds: number; epoch: number } | null;
  load: CellLog['load'] | null;
}

function collect(study: string, out: string): CellResult[] {
  const results: CellResult[] = [];
  for (const cell of STUDIES[study]()) {
    const dir = path.join(out, cell.id);
    const m = readMetrics(dir);
    if (m == null) continue;
    let log: CellLog | null = null;
    try {
      log = JSON.parse(fs.readFileSync(`${dir}.study.json`, 'utf8')) as CellLog;
    } catch {
      log = null;
    }
    const cls = m.epochs.some((e) => e.testAccuracy != null);
    const curve = m.epochs.map((e) => (cls ? (e.testAccuracy ?? 0) * 100 : e.testError));
    const r: CellResult = {
      id: cell.id, variant: cell.variant, depth: cell.depth, seed: cell.seed, engine: m.engine ?? null,
      epochsRun: m.epochs.length, diverged: m.diverged != null, curve, seconds: m.epochs.map((e) => e.seconds),
      best: cls ? Math.max(...curve) : Math.min(...curve), load: log?.load ?? null,
    };
    if (cls) {
      const i = curve.findIndex((a) => a >= 80);
      r.to80 = i < 0 ? null : { seconds: r.seconds.slice(0, i + 1).reduce((a, b) => a + b, 0), epoch: i + 1 };
    }
    results.push(r);
  }
  return results;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const f1 = (x: number) => x.toFixed(1);

function cnnTable(results: CellResult[]): string {
  const lines = [
    '| variant | seeds | acc. epoch 1 (%) | epoch 3 | epoch 10 | best | seconds to 80% (epoch) | s/epoch | load (mean) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const variant of Object.keys(CNN_VARIANTS)) {
    const rs = results.filter((r) => r.variant === variant && r.epochsRun >= CNN_EPOCHS);
    if (rs.length === 0) continue;
    const at = (e: number) => `${f1(mean(rs.map((r) => r.curve[e - 1])))} (${rs.map((r) => f1(r.curve[e - 1])).join(', ')})`;
    const to80 = rs.map((r) => (r.to80 ? `${r.to80.seconds.toFixed(0)} (${r.to80.epoch})` : 'never')).join(', ');
    const reached = rs.filter((r) => r.to80 != null);
    const to80Mean = reached.length === rs.length ? `${mean(reached.map((r) => r.to80!.seconds)).toFixed(0)}: ` : '';
    lines.push(`| ${variant} | ${rs.map((r) => r.seed).join(',')} | ${at(1)} | ${at(3)} | ${at(10)} | ${f1(mean(rs.map((r) => r.best)))} | ${to80Mean}${to80} | ` +
      `${mean(rs.map((r) => mean(r.seconds))).toFixed(1)} | ${rs.map((r) => (r.load ? r.load.mean.toFixed(1) : '-')).join(', ')} |`);
  }
  return lines.join('\n');
}

/**
 * The median test error of a run's last 50 epochs: where a model ends up, robust to the spikes of
 * a noisy curve (the best over 200 epochs is the lowest of 200 noisy evaluations of one test set).
 */
const last50 = (r: CellResult) => {
  const s = r.curve.slice(-50).sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Best test MSE (mean over seeds, then each seed) per variant and depth; `of` picks another number of a run. */
function mlpTable(results: CellResult[], variants: string[], depths: number[], of: (r: CellResult) => number = (r) => r.best, digits = 4): string {
  const lines = [`| variant | ${depths.map((d) => `depth ${d}`).join(' | ')} |`, `| --- | ${depths.map(() => '---').join(' | ')} |`];
  for (const variant of variants) {
    const cells = depths.map((d) => {
      const rs = results.filter((r) => r.variant === variant && r.depth === d && (r.epochsRun >= MLP_EPOCHS || r.diverged));
      if (rs.length === 0) return '-';
      return `${mean(rs.map(of)).toFixed(digits)} (${rs.map((r) => of(r).toFixed(digits)).join(', ')})`;
    });
    if (cells.every((c) => c === '-')) continue;
    lines.push(`| ${variant} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function summarize(study: string, out: string): void {
  const results = collect(study, out);
  const file = path.join(ROOT, 'bench', 'bnfree', `${study}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ study, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model }, results }, null, 1) + '\n');
  if (study === 'cnn') process.stdout.write(cnnTable(results) + '\n');
  else {
    const variants = [...new Set(results.map((r) => r.variant))];
    const depths = [...new Set(results.map((r) => r.depth))].sort((a, b) => a - b);
    process.stdout.write(`Best test MSE over the epochs:\n${mlpTable(results, variants, depths)}\n\n`);
    process.stdout.write(`Median test MSE of the last 50 epochs:\n${mlpTable(results, variants, depths, last50)}\n\n`);
    process.stdout.write(`Epoch of the best test MSE:\n${mlpTable(results, variants, depths, (r) => r.curve.indexOf(r.best) + 1, 0)}\n`);
  }
}

/** Interleaved one-epoch runs of each variant: median epoch seconds and the ratio to ResNetv2's. */
async function time(out: string, only: RegExp, rounds: number): Promise<void> {
  const variants = Object.entries(CNN_VARIANTS).filter(([v]) => only.test(v));
  const seconds: Record<string, number[]> = Object.fromEntries(variants.map(([v]) => [v, []]));
  const loads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [variant, args] of variants) {
      const dir = path.join(out, 'timing', `${variant}-r${r}`);
      fs.rmSync(dir, { recursive: true, force: true });
      const cell: Cell = {
        id: `${variant}-r${r}`, variant, depth: 20, seed: r, epochs: 1,
        args: ['--model', 'resnet20', '--depth', '20', '--dataset', 'fashion-mnist', '--subset', '2400', '--epochs', '1', ...asRun(args), '--seed', String(r)],
      };
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      loads.push(os.loadavg()[0]);
      await runCell(dir, cell);
      const m = readMetrics(dir);
      if (m?.epochs.length === 1) seconds[variant].push(m.epochs[0].seconds);
      process.stdout.write(`round ${r + 1}/${rounds} ${variant}: ${m?.epochs[0]?.seconds.toFixed(1) ?? 'failed'} s (load ${os.loadavg()[0].toFixed(1)})\n`);
    }
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const base = seconds.resnetv2?.length ? med(seconds.resnetv2) : NaN;
  const rows = variants.map(([v]) => ({ variant: v, seconds: seconds[v], median: med(seconds[v]), ratioToResnetv2: med(seconds[v]) / base }));
  const file = path.join(ROOT, 'bench', 'bnfree', 'timing.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ images: 2400, rounds, load: { mean: loads.reduce((a, b) => a + b, 0) / loads.length, max: Math.max(...loads) }, cpus: os.cpus().length, rows }, null, 1) + '\n');
  for (const r of rows) process.stdout.write(`${r.variant}: median ${r.median.toFixed(2)} s an epoch of 2,400 images, ${r.ratioToResnetv2.toFixed(2)}x ResNetv2's\n`);
}

/** Mean cosine similarity over all pairs of rows of x [n, c] (rows of zeros count as similarity 0). */
function meanCosine(x: tf.Tensor2D): number {
  return tf.tidy(() => {
    const n = x.shape[0];
    const unit = tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12));
    const gram = tf.matMul(unit, unit, false, true);
    return (tf.sum(gram).dataSync()[0] - tf.sum(tf.mul(tf.eye(n), gram)).dataSync()[0]) / (n * (n - 1));
  });
}

/** GloNet-ResNet20 at initialization: how alike the images' pooled block outputs are, and how much the logits vary. */
async function probe(): Promise<void> {
  await initBackend();
  const variants: Array<[string, string, NormFreeOptions | undefined]> = [
    ['glonet (the paper)', 'glonet', undefined], ['--weight-std', 'glonet', { weightStd: true }], ['--center-blocks', 'glonet', { centerBlocks: true }],
    ['--block-scale 1/L', 'glonet', { blockScale: '1/L' }], ['glonet-bn (batch statistics)', 'glonet-bn', undefined],
  ];
  const rows: Array<Record<string, unknown>> = [];
  for (const seed of [0, 1, 2]) {
    const ds = await loadDataset({ dataset: 'fashion-mnist', subset: 10000, seed });
    const n = 512;
    const x = tf.tensor(ds.xTrain.subarray(0, n * 784), [n, 28, 28, 1]);
    for (const [name, arch, normFree] of variants) {
      const { model, meta } = buildModel({ model: 'resnet20', arch, depth: 20, width: 16, l2: 5e-5, seed, ...(normFree ? { normFree } : {}) }, ds);
      getFamily('resnet20').fitToData?.(model, meta, ds.xTrain, ds.nTrain);
      const blocks = meta.blockLayers.map((l) => model.getLayer(l).output as tf.SymbolicTensor);
      const probeModel = tf.model({ inputs: model.inputs, outputs: [...blocks, model.getLayer('glonet').output as tf.SymbolicTensor, model.outputs[0]] });
      // glonet-bn as in training: batch statistics (its moving ones start at mean 0, variance 1).
      const outs = (arch === 'glonet-bn' ? probeModel.apply(x, { training: true }) : probeModel.predict(x)) as tf.Tensor[];
      const perBlock = outs.slice(0, blocks.length).map((o) => meanCosine(o as tf.Tensor2D));
      const sum = meanCosine(outs[blocks.length] as tf.Tensor2D);
      const logits = outs[blocks.length + 1];
      const rms = Math.sqrt(tf.mean(tf.square(logits)).dataSync()[0]);
      const across = tf.mean(tf.moments(logits, 0).variance).sqrt().dataSync()[0];
      rows.push({ variant: name, seed, blockCosine: perBlock.map((c) => Number(c.toFixed(4))), sumCosine: Number(sum.toFixed(4)), logitRms: Number(rms.toFixed(3)), logitStdAcrossImages: Number(across.toFixed(3)) });
      process.stdout.write(`seed ${seed} ${name}: cosine of the sum ${sum.toFixed(3)}, blocks ${Math.min(...perBlock).toFixed(3)}-${Math.max(...perBlock).toFixed(3)}; logits RMS ${rms.toFixed(2)}, across images ${across.toFixed(2)}\n`);
      tf.dispose(outs);
      model.dispose();
    }
    x.dispose();
  }
  fs.mkdirSync(path.join(ROOT, 'bench', 'bnfree'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench', 'bnfree', 'probe.json'), JSON.stringify({ images: 512, rows }, null, 1) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const [command, study] = argv;
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (!['run', 'summarize', 'time', 'probe'].includes(command ?? '') || !(study in STUDIES) || ((command === 'time' || command === 'probe') && study !== 'cnn')) {
    throw new Error('usage: bnfree-study.js run|summarize cnn|mlp|bn [--out DIR] [--only REGEX] | time cnn [--out DIR] [--only REGEX] [--rounds N] | probe cnn');
  }
  if (command === 'probe') return probe();
  const out = path.resolve(flag('--out') ?? path.join(ROOT, 'runs', 'bnfree', study));
  if (command === 'run') await run(study, out, flag('--only') ? new RegExp(flag('--only')!) : null);
  else if (command === 'time') await time(out, flag('--only') ? new RegExp(flag('--only')!) : TIMED, Number(flag('--rounds') ?? 5));
  else summarize(study, out);
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`bnfree-study: ${e.message}\n`);
  process.exit(1);
});
