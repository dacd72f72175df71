/**
 * Training throughput of the fused GloNet-ResNet20 engine (oneDNN, native addon) at batch 128 on
 * CIFAR-10-shaped random data (32x32x3, 10 classes), SGD lr 0.1 momentum 0.9, L2 5e-5 (weight
 * decay 1e-4), against the PyTorch peer (`pytorch_peer.py cnn --arch glonet`) when `import torch`
 * works.
 *
 *   node dist/bench/fused-cnn.js [--depth 20] [--reps 5] [--steps 10] [--threads N] [--chunk 16]
 *                                [--no-torch] [--json]
 *
 * Each figure is the median over `reps` runs of `steps` steps (the machine may be shared:
 * medians, not minimums); our runs and PyTorch's alternate, so both see the same load.
 */
import { Rng } from '../src/random.js';
import { createFusedResNet20, fusedCnnInfo, type FusedCnnWeights } from '../src/engines/fused-cnn.js';
import { peerStatus, runPeer } from './peer.js';
import { gaussian, heNormalArray, median } from './util.js';

interface Args {
  depth: number;
  reps: number;
  steps: number;
  threads?: number;
  chunk?: number;
  torch: boolean;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { depth: 20, reps: 5, steps: 10, torch: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = (): number => {
      const v = argv[++i];
      if (v == null || !Number.isFinite(Number(v))) throw new Error(`${k} needs a number`);
      return Number(v);
    };
    if (k === '--depth') a.depth = next();
    else if (k === '--reps') a.reps = next();
    else if (k === '--steps') a.steps = next();
    else if (k === '--threads') a.threads = next();
    else if (k === '--chunk') a.chunk = next();
    else if (k === '--no-torch') a.torch = false;
    else if (k === '--json') a.json = true;
    else if (k === '--help' || k === '-h') {
      console.log('node dist/bench/fused-cnn.js [--depth 20] [--reps 5] [--steps 10] [--threads N] [--chunk 16] [--no-torch] [--json]');
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  if (!Number.isInteger((a.depth - 2) / 6) || a.depth < 8) throw new Error(`--depth must be 6n + 2 (8, 14, 20, ...), got ${a.depth}`);
  return a;
}

const BATCH = 128;
const SHAPE: [number, number, number] = [32, 32, 3];
const CLASSES = 10;

function weights(n: number): FusedCnnWeights {
  const rng = new Rng(n);
  const blocks = [];
  let cin = 16;
  for (const cout of [16, 32, 64]) {
    for (let i = 0; i < 2 * n; i++) {
      blocks.push({ kernel: heNormalArray(rng, 9 * cin, 9 * cin * cout), bias: new Float32Array(cout) });
      cin = cout;
    }
  }
  return {
    stem: { kernel: heNormalArray(rng, 9 * SHAPE[2], 9 * SHAPE[2] * 16) },
    blocks,
    head: { kernel: heNormalArray(rng, 64, 64 * CLASSES), bias: new Float32Array(CLASSES) },
  };
}

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
  const engine = createFusedResNet20({
    inputShape: SHAPE, classes: CLASSES, blocksPerStage: n, l2: 5e-5, lr: 0.1, momentum: 0.9,
    threads: args.threads, chunkRows: args.chunk,
  }, weights(n));
  const size = BATCH * SHAPE[0] * SHAPE[1] * SHAPE[2];
  const batches = [0, 1].map((j) => ({ x: x.subarray(j * size, (j + 1) * size), y: y.subarray(j * BATCH, (j + 1) * BATCH) }));
  let k = 0;
  const step = () => {
    const b = batches[k++ % 2];
    return engine.step(b.x, b.y, BATCH);
  };
  for (let w = 0; w < 2; w++) step();
  if (!args.json) {
    console.log(`GloNet-ResNet${args.depth} training step, batch ${BATCH}, ${SHAPE.join('x')}, ${CLASSES} classes, SGD momentum + L2; ` +
      `ours: oneDNN ${info.onednn} ${engine.kernel}, ${engine.threads} threads; ` +
      `PyTorch: ${peer == null ? 'skipped' : peer.ok ? peer.version : `unavailable (${peer.reason})`}; median of ${args.reps} runs of ${args.steps} steps`);
  }
  const ours: number[] = [];
  const torch: number[] = [];
  for (let r = 0; r < args.reps; r++) {
    const t0 = performance.now();
    for (let s = 0; s < args.steps; s++) step();
    ours.push((performance.now() - t0) / args.steps);
    if (peer?.ok) {
      const p = runPeer(['cnn', '--arch', 'glonet', '--blocks', String(n), '--batch', String(BATCH), '--steps', String(args.steps)]);
      if (p) torch.push(p.msPerStep);
    }
  }
  engine.dispose();
  const oursMs = median(ours);
  const torchMs = torch.length ? median(torch) : null;
  const row = {
    depth: args.depth, batch: BATCH, threads: engine.threads, kernel: engine.kernel,
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
