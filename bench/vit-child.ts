/**
 * Run in a child process by bench.ts, one ViT configuration a process (so its peak memory is its
 * own): `vit-child.js ARCH DEPTH SIZE CHANNELS THREADS STEPS`. Trains the family's model (width
 * 128, 4 heads, feed-forward 256, batch 128) on random images with Adam on the engine `glonet
 * train` picks (THREADS 0: createStepper, every core, as a run gets them) or on the fused ViT
 * engine at a fixed thread count, and prints one JSON line: {engine, imagesPerSec, maxRssMB}.
 * images/s is the median of 3 timed runs of STEPS steps after 2 warm-up steps.
 */
import { initBackend } from '../src/backend/index.js';
import { Rng } from '../src/random.js';
import { buildModel, familyDefaults } from '../src/models/index.js';
import { createStepper } from '../src/engines/select.js';
import type { StepperOptions } from '../src/engines/types.js';
import { createFusedVit, vitLayers } from '../src/engines/vit/fused-native-vit.js';
import { vitShapeOf } from '../src/engines/vit/adapter.js';
import { readLayers } from '../src/engines/fused-stepper.js';
import { median, randn } from './util.js';

const [arch, depthS, sizeS, channelsS, threadsS, stepsS] = process.argv.slice(2);
const depth = Number(depthS);
const size = Number(sizeS);
const channels = Number(channelsS);
const threads = Number(threadsS);
const steps = Number(stepsS);
await initBackend('wasm');
const batch = 128;
const rng = new Rng(1);
const inSize = size * size * channels;
const x = randn(batch * 2 * inSize, rng);
const y = new Float32Array(batch * 2).map(() => rng.int(10));
const ds = { inputShape: [size, size, channels], outputs: 10, task: 'classification' as const };
const d = familyDefaults('vit', arch);
const { model, meta } = buildModel({ model: 'vit', arch, depth, width: d.width, l2: d.l2, seed: 0 }, ds);
const opts: StepperOptions = { task: 'classification', outputs: 10, inputShape: ds.inputShape, optimizer: 'adam', lr: d.lr, momentum: 0, l2: d.l2 };
let engine: string;
let step: (x: Float32Array, y: Float32Array, rows: number) => number;
let dispose: () => void;
if (threads === 0) {
  const stepper = createStepper(model, meta, opts, 'auto');
  engine = stepper.engine;
  step = (a, b, r) => stepper.step(a, b, r);
  dispose = () => stepper.dispose();
} else {
  const shape = vitShapeOf(model, meta);
  const fused = createFusedVit({ ...shape, l2: d.l2, lr: d.lr, threads }, readLayers(model, vitLayers(shape).map((l) => l.name)));
  engine = `fused-native-vit (${threads} thread${threads > 1 ? 's' : ''})`;
  step = (a, b, r) => fused.step(a, b, r);
  dispose = () => fused.dispose();
}
const run = (i: number) => step(x.subarray((i % 2) * batch * inSize), y.subarray((i % 2) * batch), batch);
for (let i = 0; i < 2; i++) run(i);
const reps: number[] = [];
for (let r = 0; r < 3; r++) {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) run(i);
  reps.push((performance.now() - t0) / steps);
}
dispose();
model.dispose();
console.log(JSON.stringify({ engine, imagesPerSec: (batch / median(reps)) * 1000, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
