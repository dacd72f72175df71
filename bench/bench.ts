/**
 * `npm run bench [-- --quick] [-- --only mlp|cnn|vit|memory]`: our training speed and memory next
 * to the PyTorch peer, in the same run on the same machine. Prints a table (figure, ours, PyTorch,
 * ratio, target) and writes bench/results.json. Timings are medians of repeated runs; ours and
 * PyTorch's alternate. `--only` runs one section (the MLPs, ResNet20, the ViTs, or the memory
 * checks).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.js';
import { Rng } from '../src/random.js';
import { buildModel, familyDefaults } from '../src/models/index.js';
import { fastPathInfo } from '../src/engines/mlp/pick-core.js';
import { createStepper } from '../src/engines/select.js';
import type { StepperOptions } from '../src/engines/types.js';
import { fusedCnnInfo } from '../src/engines/cnn/fused-native-cnn.js';
import { writeJsonAtomic } from '../src/io.js';
import { fusedVitInfo } from '../src/engines/vit/fused-native-vit.js';
import { peerStatus, runPeer, runPeerWithMemory } from './peer.js';
import { median, randn } from './util.js';
import type { OptimizerName } from '../src/vocabulary.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const quick = process.argv.includes('--quick');
const STEPS = quick ? 3 : 10;
const REPS = quick ? 1 : 3;
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
if (only != null && !['mlp', 'cnn', 'vit', 'memory'].includes(only)) {
  process.stderr.write(`bench: --only takes mlp, cnn, vit or memory, got ${only}\n`);
  process.exit(2);
}
/** Whether this run includes a section. */
const runs = (section: string) => only == null || only === section;

interface Row { figure: string; ours: number | null; pytorch: number | null; ratio: number | null; unit: string; target?: string; pass?: boolean; text?: string }
const rows: Row[] = [];
const cnnEngines: Record<string, string> = {};

/** ms per training step: warm-up, then `steps` timed steps, median over REPS. */
function timeSteps(step: (i: number) => void, steps: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) step(i);
  const reps: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step(i);
    reps.push((performance.now() - t0) / steps);
  }
  return median(reps);
}

/**
 * ms per training step of MLPs at batch 1024 (SGEMM's shape: 14 inputs, width 16, MSE, Adam,
 * L2 1e-5, the paper's protocol), each on the engine `glonet train` picks (the fused one for every
 * MLP arch). Each rep lasts about `msPerRep` (so the engines' adaptive threading settles); the
 * archs' reps alternate, so that archs compared with each other see the same machine load.
 */
function oursMlpSteps(archs: string[], depth: number): Record<string, { ms: number; engine: string }> {
  const rng = new Rng(depth);
  const batch = 1024;
  const x = randn(batch * 4 * 14, rng);
  const y = randn(batch * 4, rng);
  const ds = { inputShape: [14], outputs: 1, task: 'regression' as const };
  const d = familyDefaults('mlp');
  const opts: StepperOptions = { task: 'regression', outputs: 1, inputShape: [14], optimizer: 'adam', lr: d.lr, momentum: 0, l2: d.l2 };
  const msPerRep = quick ? 150 : 500;
  const runs = archs.map((arch) => {
    const { model, meta } = buildModel({ model: 'mlp', arch, depth, width: 16, l2: d.l2, seed: 0 }, ds);
    const stepper = createStepper(model, meta, opts, 'auto');
    const step = (i: number) => stepper.step(x.subarray((i % 4) * batch * 14), y.subarray((i % 4) * batch), batch);
    for (let i = 0; i < 2; i++) step(i);
    const t0 = performance.now();
    step(2);
    const steps = Math.max(STEPS, Math.min(2000, Math.ceil(msPerRep / Math.max(performance.now() - t0, 1e-3))));
    return { arch, model, stepper, step, steps, reps: [] as number[] };
  });
  for (let r = 0; r < (quick ? 2 : 5); r++) {
    for (const run of runs) {
      const t0 = performance.now();
      for (let i = 0; i < run.steps; i++) run.step(i);
      run.reps.push((performance.now() - t0) / run.steps);
    }
  }
  const out: Record<string, { ms: number; engine: string }> = {};
  for (const run of runs) {
    out[run.arch] = { ms: median(run.reps), engine: run.stepper.engine };
    run.stepper.dispose();
    run.model.dispose();
  }
  return out;
}

/** images/s of a ResNet20 arch at batch 128 on the engine `glonet train` picks for it. */
function oursCnnImagesPerSec(arch: string, optimizer: OptimizerName): number {
  const batch = 128;
  const rng = new Rng(1);
  const x = randn(batch * 2 * 32 * 32 * 3, rng);
  const y = new Float32Array(batch * 2).map(() => rng.int(10));
  const ds = { inputShape: [32, 32, 3], outputs: 10, task: 'classification' as const };
  const d = familyDefaults('resnet20');
  const { model, meta } = buildModel({ model: 'resnet20', arch, depth: 20, width: 16, l2: d.l2, seed: 0 }, ds);
  const opts: StepperOptions = { task: 'classification', outputs: 10, inputShape: [32, 32, 3], optimizer, lr: optimizer === 'adam' ? 1e-3 : 0.1, momentum: 0.9, l2: d.l2 };
  // The path `glonet train` takes: the fused oneDNN engine when it was built.
  const stepper = createStepper(model, meta, opts, 'auto');
  cnnEngines[arch] = stepper.engine;
  const ms = timeSteps((i) => stepper.step(x.subarray((i % 2) * batch * 3072), y.subarray((i % 2) * batch), batch), quick ? 2 : 5, 1);
  stepper.dispose();
  model.dispose();
  return (batch / ms) * 1000;
}

/**
 * One table row. `ratio` is ours / PyTorch's unless given; `check` is the value the target is
 * judged on (the ratio by default).
 */
function add(figure: string, ours: number | null, pytorch: number | null, unit: string,
  target?: { max?: number; min?: number; text: string }, opts: { ratio?: number | null; check?: number | null } = {}) {
  const ratio = opts.ratio !== undefined ? opts.ratio : ours != null && pytorch != null ? ours / pytorch : null;
  const check = opts.check !== undefined ? opts.check : ratio;
  const pass = target && check != null ? (target.max == null || check <= target.max) && (target.min == null || check >= target.min) : undefined;
  rows.push({ figure, ours, pytorch, ratio, unit, target: target?.text, pass });
  const f = (v: number | null) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
  process.stderr.write(`  ${figure}: ours ${f(ours)}, PyTorch ${f(pytorch)}, ratio ${ratio == null ? '-' : ratio.toFixed(2)}\n`);
}

interface VitChild { engine: string; imagesPerSec: number; maxRssMB: number }

/** One ViT configuration in a child process of its own (bench/vit-child.ts). */
function vitChild(arch: string, depth: number, size: number, channels: number, threads: number): VitChild | null {
  const r = spawnSync(process.execPath, [path.join(HERE, 'vit-child.js'), arch, String(depth), String(size), String(channels), String(threads), String(quick ? 2 : 8)],
    { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) {
    process.stderr.write(`  vit child failed: ${r.stderr.trim().split('\n').pop()}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as VitChild;
}

/**
 * ViT and GloNet-ViT, 4 and 6 encoders, 28x28x1 and 32x32x3 (width 128, 4 heads, feed-forward
 * 256, batch 128, Adam): images/s on the engine `glonet train` picks and in the peer with every
 * core, then both at one thread; each process's peak resident memory.
 */
function vitRows(peerOk: boolean): void {
  const f = (v: number | null | undefined) => (v == null ? '-' : v.toFixed(0));
  for (const [size, channels] of [[28, 1], [32, 3]]) {
    for (const depth of [4, 6]) {
      for (const arch of ['glonet', 'plain']) {
        const name = `${arch === 'glonet' ? 'GloNet-ViT' : 'ViT'}, ${depth} encoders, ${size}x${size}x${channels}`;
        const peerArgs = ['vit', '--arch', arch, '--depth', String(depth), '--size', String(size), '--channels', String(channels), '--steps', String(quick ? 2 : 8)];
        const all = vitChild(arch, depth, size, channels, 0);
        const theirs = peerOk ? runPeerWithMemory(peerArgs) : null;
        add(`${name} training, batch 128 (images/s; ours: ${all?.engine ?? 'failed'}, every core)`, all?.imagesPerSec ?? null, theirs?.samplesPerSec ?? null,
          'images/s', { min: 3, text: '>= 3 (aim 5)' });
        const one = vitChild(arch, depth, size, channels, 1);
        const theirsOne = peerOk ? runPeerWithMemory([...peerArgs, '--threads', '1']) : null;
        add(`${name} training, batch 128, one thread (images/s)`, one?.imagesPerSec ?? null, theirsOne?.samplesPerSec ?? null, 'images/s');
        rows[rows.length - 1].text = `${f(one?.imagesPerSec)} (every core: x${all && one ? (all.imagesPerSec / one.imagesPerSec).toFixed(2) : '-'}; PyTorch x${theirs && theirsOne ? (theirs.samplesPerSec / theirsOne.samplesPerSec).toFixed(2) : '-'})`;
        add(`${name} training, peak resident memory of the process (MB)`, all?.maxRssMB ?? null, theirs?.maxRssMB ?? null, 'MB');
      }
    }
  }
}

function childMemory(): { maxRssMB: number; tensors: number[] } {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(HERE, 'memory-child.js'), quick ? '--quick' : ''], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`memory child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const fast = fastPathInfo();
  const peer = peerStatus();
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  // Other jobs on the machine slow both sides, PyTorch's BN most (its OpenMP threads wait for
  // each other at every op): the 1-minute load average at the start and the end goes with the figures.
  const loadAtStart = os.loadavg()[0];
  process.stderr.write(`glonet bench${quick ? ' (quick)' : ''}: backend ${backend}, fused engine ${fast.engine}${fast.simd ? ` (${fast.simd}, ${fast.threads} threads)` : ''}\n`);
  const cnn = fusedCnnInfo();
  process.stderr.write(`fused CNN engine: ${cnn.available ? `oneDNN ${cnn.onednn} (${cnn.isa}, ${cnn.threads} threads)` : `unavailable (${cnn.reason})`}\n`);
  process.stderr.write(peer.ok ? `PyTorch peer: torch ${peer.version}, BLAS ${peer.blas} (${peer.path})\n` : `PyTorch peer: not run: ${peer.reason}\n`);

  // MLPs: every arch on our fused engine, each against the peer's same arch in the same run.
  const ours: Record<string, Record<number, number>> = {};
  const theirs: Record<string, Record<number, number | null>> = {};
  const engines: Record<string, string> = {};
  const mlp = (archs: string[], depth: number): void => {
    const o = oursMlpSteps(archs, depth);
    for (const arch of archs) {
      const steps = depth >= 1000 ? Math.min(STEPS, 5) : STEPS;
      (ours[arch] ??= {})[depth] = o[arch].ms;
      (theirs[arch] ??= {})[depth] = peer.ok ? runPeer(['mlp', '--arch', arch, '--depth', String(depth), '--steps', String(steps)])?.msPerStep ?? null : null;
      engines[arch] = o[arch].engine;
    }
  };
  if (runs('mlp')) {
    mlp(['glonet'], 10);
    for (const depth of [100, 1000]) mlp(['glonet', 'resnetv2'], depth);
    for (const depth of [10, 100, 1000]) {
      add(`GloNet MLP training step, depth ${depth} (ms; ours: ${engines.glonet})`, ours.glonet[depth], theirs.glonet[depth], 'ms', { max: 1.0, text: 'ratio <= 1.0 (aim 0.5)' });
    }
    for (const depth of [100, 1000]) {
      add(`ResNetv2 MLP (BN) training step, depth ${depth} (ms; ours: ${engines.resnetv2})`, ours.resnetv2[depth], theirs.resnetv2[depth], 'ms', { max: 1.0, text: 'ratio <= 1.0 (aim 0.3)' });
    }
    for (const depth of [100, 1000]) {
      // The paper's Table 1 figure, on one engine: ours on our fused engine (the two timed in
      // alternation), PyTorch's on PyTorch.
      const t = theirs.glonet[depth] != null && theirs.resnetv2[depth] != null ? theirs.glonet[depth]! / theirs.resnetv2[depth]! : null;
      const o = ours.glonet[depth] / ours.resnetv2[depth];
      add(`GloNet step / ResNetv2 step at depth ${depth}, both on our fused engine (PyTorch: both on PyTorch)`, o, t, 'ratio',
        { max: 0.6, text: 'ours <= 0.6 (paper 0.43-0.64)' }, { ratio: null, check: o });
    }
    const names: Record<string, string> = { 'vanilla': 'Vanilla (BN)', 'vanilla-nobn': 'Vanilla without BN', 'resnetv2-nobn': 'ResNetv2 without BN' };
    for (const arch of ['vanilla', 'vanilla-nobn', 'resnetv2-nobn']) {
      for (const depth of [100, 1000]) {
        mlp([arch], depth);
        add(`${names[arch]} MLP training step, depth ${depth} (ms; ours: ${engines[arch]})`, ours[arch][depth], theirs[arch][depth], 'ms');
      }
    }
  }
  if (runs('cnn')) {
    // ResNet20, every arch, each against the peer's same arch (which trains with SGD lr 0.1
    // momentum 0.9: it has no other optimizer for cnn; the update is under 1% of a step).
    const CNN_ROWS: Array<{ arch: string; optimizer: OptimizerName; target?: { min: number; text: string } }> = [
      { arch: 'glonet', optimizer: 'adam', target: { min: 1.5, text: '>= 1.5' } },
      { arch: 'resnetv2', optimizer: 'sgd', target: { min: 1.0, text: '>= 1.0 (aim 1.5)' } },
      { arch: 'glonet', optimizer: 'sgd' },
      { arch: 'vanilla', optimizer: 'sgd' },
      { arch: 'resnetv2-nobn', optimizer: 'sgd' },
      { arch: 'vanilla-nobn', optimizer: 'sgd' },
    ];
    for (const r of CNN_ROWS) {
      const ours = oursCnnImagesPerSec(r.arch, r.optimizer);
      const theirs = peer.ok ? runPeer(['cnn', '--arch', r.arch, '--steps', String(quick ? 2 : 5)]) : null;
      add(`${r.arch}-ResNet20 training, batch 128, ${r.optimizer === 'adam' ? 'Adam' : 'SGD'} (images/s; ours: ${cnnEngines[r.arch]}; PyTorch: SGD)`,
        ours, theirs?.samplesPerSec ?? null, 'images/s', r.target);
    }
  }
  const vit = fusedVitInfo();
  process.stderr.write(`fused ViT engine: ${vit.available ? `${vit.kernels} kernels, ${vit.threads} threads` : `unavailable (${vit.reason})`}\n`);
  if (runs('vit')) vitRows(peer.ok);
  if (runs('memory')) {
    const mem = childMemory();
    add('peak resident memory, 1000-block GloNet MLP training, batch 1024 (MB)', mem.maxRssMB, null, 'MB', { max: 1024, text: '<= 1024 MB' }, { ratio: null, check: mem.maxRssMB });
    rows.push({ figure: 'tf.memory().numTensors after epoch 1 and after epoch 20', ours: null, pytorch: null, ratio: null, unit: 'tensors',
      target: 'equal', pass: mem.tensors[0] === mem.tensors[1], text: `${mem.tensors[0]} and ${mem.tensors[1]}` });

  }
  const fmt = (v: number | null) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
  const header = '| figure | ours | PyTorch | ratio | target | met |';
  const lines = [header, '| --- | --- | --- | --- | --- | --- |'];
  for (const r of rows) {
    lines.push(`| ${r.figure} | ${r.text ?? fmt(r.ours)} | ${fmt(r.pytorch)} | ${r.ratio == null ? '-' : r.ratio.toFixed(2)} | ${r.target ?? ''} | ${r.pass == null ? '' : r.pass ? 'yes' : 'NO'} |`);
  }
  const table = lines.join('\n');
  const load = `1-minute load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end`;
  process.stdout.write(`\n${table}\n\nmachine: ${machine}; ${load}\n`);
  writeJsonAtomic(path.join(ROOT, 'bench', 'results.json'), {
    date: new Date().toISOString(), quick, machine, load, backend, fusedEngine: fast, fusedCnnEngine: cnn, fusedVitEngine: vit,
    pytorch: peer.ok ? { version: peer.version, blas: peer.blas } : { notRun: peer.reason }, rows, table,
  });
  process.stdout.write(`wrote ${path.join('bench', 'results.json')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
