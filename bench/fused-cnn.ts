/**
 * Training throughput of the fused ResNet20 engine (oneDNN, native addon) at batch 128 on
 * CIFAR-10-shaped random data (32x32x3, 10 classes), L2 5e-5 (weight decay 1e-4), for any arch
 * and optimizer (SGD lr 0.1 momentum 0.9, or Adam lr 1e-3), against the PyTorch peer
 * (`pytorch_peer.py cnn --arch ARCH`, SGD: the peer has no other optimizer for cnn) when
 * `import torch` works.
 *
 *   node dist/bench/fused-cnn.js [--arch glonet] [--optimizer sgd] [--depth 20] [--reps 5]
 *                                [--steps 10] [--threads N] [--chunk 16] [--no-torch] [--json]
 *
 * Each figure is the median over `reps` runs of `steps` steps (the machine may be shared:
 * medians, not minimums); our runs and PyTorch's alternate, so both see the same load.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/random.js';
import { buildResNetOfDepth, RESNET20_ARCHS, type ResNet20Arch } from '../src/models/resnet20.js';
import { createFusedResNet20, fusedCnnInfo, fusedCnnLayers } from '../src/engines/cnn/fused-native-cnn.js';
import { readLayers } from '../src/engines/fused-stepper.js';
import { peerStatus, runPeer } from './peer.js';
import { gaussian, median } from './util.js';
import type { OptimizerName } from '../src/vocabulary.js';

interface Args {
  arch: ResNet20Arch;
  optimizer: OptimizerName;
  depth: number;
  reps: number;
  steps: number;
  threads?: number;
  chunk?: number;
  torch: boolean;
  json: boolean;
}

const USAGE = 'node dist/bench/fused-cnn.js [--arch glonet] [--optimizer sgd|adam] [--depth 20] [--reps 5] [--steps 10] [--threads N] [--chunk 16] [--no-torch] [--json]';

function parseArgs(argv: string[]): Args {
  const a: Args = { arch: 'glonet', optimizer: 'sgd', depth: 20, reps: 5, steps: 10, torch: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = (): number => {
      const v = argv[++i];
      if (v == null || !Number.isFinite(Number(v))) throw new Error(`${k} needs a number`);
      return Number(v);
    };
    if (k === '--arch') {
      const v = argv[++i];
      if (!(RESNET20_ARCHS as readonly string[]).includes(v)) throw new Error(`--arch must be one of ${RESNET20_ARCHS.join(', ')}`);
      a.arch = v as ResNet20Arch;
    } else if (k === '--optimizer') {
      const v = argv[++i];
      if (v !== 'sgd' && v !== 'adam') throw new Error('--optimizer must be sgd or adam');
      a.optimizer = v;
    } else if (k === '--depth') a.depth = next();
    else if (k === '--reps') a.reps = next();
    else if (k === '--steps') a.steps = next();
    else if (k === '--threads') a.threads = next();
    else if (k === '--chunk') a.chunk = next();
    else if (k === '--no-torch') a.torch = false;
    else if (k === '--json') a.json = true;
    else if (k === '--help' || k === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${k}\n${USAGE}`);
  }
  if (!Number.isInteger((a.depth - 2) / 6) || a.depth < 8) throw new Error(`--depth must be 6n + 2 (8, 14, 20, ...), got ${a.depth}`);
  return a;
}

const BATCH = 128;
const SHAPE: [number, number, number] = [32, 32, 3];
const CLASSES = 10;

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const n = (args.depth - 2) / 6;
  const info = fusedCnnInfo();
  if (!info.available) {
    console.log(`fused CNN engine unavailable: ${info.reason}`);
    process.exit(0);
  }
  const peer = args.torch ? peerStatus() : null;
  const rng = new Rng(1);
  const x = new Float32Array(2 * BATCH * SHAPE[0] * SHAPE[1] * SHAPE[2]);
  const y = new Float32Array(2 * BATCH);
  for (let i = 0; i < x.length; i++) x[i] = gaussian(rng);
  for (let i = 0; i < y.length; i++) y[i] = rng.int(CLASSES);
  // The model's own initial weights (He-normal kernels, BN gamma 1, beta 0).
  const model = buildResNetOfDepth({ arch: args.arch, depth: args.depth, inputShape: SHAPE, outputs: CLASSES, l2: 5e-5, seed: 1 });
  const shape = { arch: args.arch, inputShape: SHAPE, classes: CLASSES, blocksPerStage: n };
  const initial = readLayers(model, fusedCnnLayers(shape).map((l) => l.name));
  model.dispose();
  tf.disposeVariables();
  const engine = createFusedResNet20({
    ...shape, l2: 5e-5, optimizer: args.optimizer, lr: args.optimizer === 'adam' ? 1e-3 : 0.1, momentum: 0.9,
    threads: args.threads, chunkRows: args.chunk,
  }, initial);
  const size = BATCH * SHAPE[0] * SHAPE[1] * SHAPE[2];
  const batches = [0, 1].map((j) => ({ x: x.subarray(j * size, (j + 1) * size), y: y.subarray(j * BATCH, (j + 1) * BATCH) }));
  let k = 0;
  const step = () => {
    const b = batches[k++ % 2];
    return engine.step(b.x, b.y, BATCH);
  };
  for (let w = 0; w < 2; w++) step();
  if (!args.json) {
    console.log(`${args.arch}-ResNet${args.depth} training step, batch ${BATCH}, ${SHAPE.join('x')}, ${CLASSES} classes, ${args.optimizer} + L2; ` +
      `ours: oneDNN ${info.onednn} ${engine.kernel}, ${engine.threads} threads; ` +
      `PyTorch (SGD): ${peer == null ? 'skipped' : peer.ok ? peer.version : `unavailable (${peer.reason})`}; median of ${args.reps} runs of ${args.steps} steps`);
  }
  const ours: number[] = [];
  const torch: number[] = [];
  for (let r = 0; r < args.reps; r++) {
    const t0 = performance.now();
    for (let s = 0; s < args.steps; s++) step();
    ours.push((performance.now() - t0) / args.steps);
    if (peer?.ok) {
      const p = runPeer(['cnn', '--arch', args.arch, '--blocks', String(n), '--batch', String(BATCH), '--steps', String(args.steps)]);
      if (p) torch.push(p.msPerStep);
    }
  }
  engine.dispose();
  const oursMs = median(ours);
  const torchMs = torch.length ? median(torch) : null;
  const row = {
    arch: args.arch, optimizer: args.optimizer, depth: args.depth, batch: BATCH, threads: engine.threads, kernel: engine.kernel,
    oursMsPerStep: +oursMs.toFixed(2), oursImagesPerSec: +(BATCH / oursMs * 1000).toFixed(1),
    pytorchMsPerStep: torchMs == null ? null : +torchMs.toFixed(2),
    pytorchImagesPerSec: torchMs == null ? null : +(BATCH / torchMs * 1000).toFixed(1),
    speedup: torchMs == null ? null : +(torchMs / oursMs).toFixed(3),
    runs: { ours: ours.map((v) => +v.toFixed(2)), pytorch: torch },
  };
  if (args.json) {
    console.log(JSON.stringify(row));
    return;
  }
  console.log('engine | ms/step | images/s');
  console.log('--- | ---: | ---:');
  console.log(`ours (fused, oneDNN) | ${row.oursMsPerStep} | ${row.oursImagesPerSec}`);
  if (torchMs != null) console.log(`PyTorch ${peer?.ok ? peer.version : ''} | ${row.pytorchMsPerStep} | ${row.pytorchImagesPerSec}`);
  if (row.speedup != null) console.log(`ours / PyTorch throughput: ${row.speedup}x`);
  console.log(`runs (ms/step): ours ${row.runs.ours.join(', ')}${torch.length ? `; PyTorch ${torch.join(', ')}` : ''}`);
}

main();
