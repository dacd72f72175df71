/**
 * Training-step time of the fused GloNet MLP engines (native addon, portable JavaScript) at
 * batch 1024, width 16, SGEMM's 14 inputs, MSE + L2 + Adam, against the PyTorch peer
 * (shared/peers/pytorch_peer.py beside the repository, or $GLONET_PYTORCH_PEER) when `import torch` works.
 *
 *   node dist/bench/fused-mlp.js [--depths 10,100,1000] [--engines native,js] [--reps 5]
 *                                [--threads N] [--no-torch] [--json]
 *
 * Each figure is the median over `reps` timed runs (the machine may be shared: medians, not
 * minimums). Ours and PyTorch's runs alternate, so both see the same load. To time another build
 * of the native addon (e.g. before/after a change), point GLONET_NATIVE_ADDON at its .node file.
 */
import { Rng } from '../src/random.js';
import { createFusedMlp, type FusedMlpWeights } from '../src/engines/mlp/glonet-mlp.js';
import { fastPathInfo } from '../src/engines/mlp/pick-core.js';
import { peerStatus, runPeer } from './peer.js';
import { gaussian, heNormalArray, median } from './util.js';

interface Args {
  depths: number[];
  engines: Array<'native' | 'js'>;
  reps: number;
  threads?: number;
  torch: boolean;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { depths: [10, 100, 1000], engines: ['native', 'js'], reps: 5, torch: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v == null) throw new Error(`${k} needs a value`);
      return v;
    };
    if (k === '--depths') a.depths = next().split(',').map(Number);
    else if (k === '--engines') a.engines = next().split(',') as Args['engines'];
    else if (k === '--reps') a.reps = Number(next());
    else if (k === '--threads') a.threads = Number(next());
    else if (k === '--no-torch') a.torch = false;
    else if (k === '--json') a.json = true;
    else if (k === '--help' || k === '-h') {
      console.log('node dist/bench/fused-mlp.js [--depths 10,100,1000] [--engines native,js] [--reps 5] [--threads N] [--no-torch] [--json]');
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  return a;
}

const BATCH = 1024;
const WIDTH = 16;
const N_IN = 14;

function weights(depth: number): FusedMlpWeights {
  const rng = new Rng(depth);
  return {
    stem: { kernel: heNormalArray(rng, N_IN, N_IN * WIDTH), bias: new Float32Array(WIDTH) },
    blocks: Array.from({ length: depth }, () => ({ kernel: heNormalArray(rng, WIDTH, WIDTH * WIDTH), bias: new Float32Array(WIDTH) })),
    head: { kernel: heNormalArray(rng, WIDTH, WIDTH), bias: new Float32Array(1) },
  };
}

/** One timed run: median-free mean ms/step over enough steps to last ~0.5 s (at least 3). */
function timeOurs(engine: 'native' | 'js', depth: number, threads: number | undefined): () => number {
  const rng = new Rng(1);
  const x = new Float32Array(4 * BATCH * N_IN);
  const y = new Float32Array(4 * BATCH);
  for (let i = 0; i < x.length; i++) x[i] = gaussian(rng);
  for (let i = 0; i < y.length; i++) y[i] = gaussian(rng);
  const model = createFusedMlp({
    nIn: N_IN, width: WIDTH, depth, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01, engine, threads,
  }, weights(depth));
  const batches = [0, 1, 2, 3].map((j) => ({
    x: x.subarray(j * BATCH * N_IN, (j + 1) * BATCH * N_IN), y: y.subarray(j * BATCH, (j + 1) * BATCH),
  }));
  let i = 0;
  const step = () => {
    const b = batches[i++ % 4];
    return model.step(b.x, b.y, BATCH);
  };
  for (let w = 0; w < 2; w++) step();
  // Steps per run from one probe step.
  const t0 = performance.now();
  step();
  const probe = performance.now() - t0;
  const steps = Math.max(3, Math.min(2000, Math.round(500 / Math.max(probe, 1e-3))));
  return () => {
    const s = performance.now();
    for (let k = 0; k < steps; k++) step();
    return (performance.now() - s) / steps;
  };
}

function timeTorch(depth: number): number | null {
  const steps = depth >= 1000 ? 5 : depth >= 100 ? 10 : 40;
  return runPeer(['mlp', '--arch', 'glonet', '--depth', String(depth), '--steps', String(steps)])?.msPerStep ?? null;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const info = fastPathInfo();
  const engines = args.engines.filter((e) => e === 'js' || info.engine === 'native');
  if (args.engines.includes('native') && info.engine !== 'native') {
    console.log(`native engine unavailable (${info.reason}); timing the JavaScript engine only`);
  }
  const peer = args.torch ? peerStatus() : null;
  const torchVersion = peer?.ok ? peer.version : null;
  // No --threads: the engine's default (all cores or one per step, whichever is faster here).
  const threads = args.threads;
  const threadNote = threads != null ? `${threads} threads` : `up to ${info.threads} threads, adaptive`;
  if (!args.json) {
    console.log(`fused GloNet MLP step, batch ${BATCH}, width ${WIDTH}, ${N_IN} inputs, MSE + L2 + Adam; ` +
      `native: ${info.engine === 'native' ? `${info.simd}, ${threadNote}` : 'unavailable'}; ` +
      `PyTorch: ${torchVersion ?? (args.torch ? 'unavailable' : 'skipped')}; median of ${args.reps} runs`);
    console.log('depth | native ms/step | js ms/step | PyTorch ms/step | native/PyTorch | js/PyTorch');
    console.log('---: | ---: | ---: | ---: | ---: | ---:');
  }
  const results = [];
  for (const depth of args.depths) {
    const runners = engines.map((e) => ({ e, run: timeOurs(e, depth, e === 'native' ? threads : undefined) }));
    const ours: Record<string, number[]> = { native: [], js: [] };
    const torch: number[] = [];
    for (let r = 0; r < args.reps; r++) {
      for (const { e, run } of runners) {
        // The JavaScript engine at depth 1000 takes a while: fewer runs there.
        if (e === 'js' && depth >= 1000 && r >= 3) continue;
        ours[e].push(run());
      }
      if (torchVersion && (depth < 1000 || r < 3)) {
        const t = timeTorch(depth);
        if (t != null) torch.push(t);
      }
    }
    const row = {
      depth,
      nativeMs: ours.native.length ? median(ours.native) : null,
      jsMs: ours.js.length ? median(ours.js) : null,
      pytorchMs: torch.length ? median(torch) : null,
      threads: threads ?? `adaptive<=${info.threads}`,
      simd: info.simd ?? null,
      runs: { native: ours.native, js: ours.js, pytorch: torch },
    };
    results.push(row);
    const fmt = (v: number | null) => (v == null ? '-' : v < 10 ? v.toFixed(3) : v.toFixed(1));
    const ratio = (a: number | null, b: number | null) => (a == null || b == null ? '-' : (a / b).toFixed(3));
    if (args.json) console.log(JSON.stringify(row));
    else {
      console.log(`${depth} | ${fmt(row.nativeMs)} | ${fmt(row.jsMs)} | ${fmt(row.pytorchMs)} | ` +
        `${ratio(row.nativeMs, row.pytorchMs)} | ${ratio(row.jsMs, row.pytorchMs)}`);
    }
  }
}

main();
