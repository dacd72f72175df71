/**
 * The package as a user gets it: `npm pack` (with prepack's prebuilt binary), `npm install` of
 * the tarball into a fresh project outside this repository (dependencies from the npm registry,
 * through npm's cache when it has them), a TypeScript program compiled against the installed
 * package under `moduleResolution` NodeNext and Bundler (and a page's program under Bundler with
 * the `browser` export condition), a few training steps, and `glonet info`
 * naming the path taken: the prebuilt binary; with the prebuilt binary removed, a build from
 * source at install; with no build possible either, the JavaScript engine and why. On the way,
 * the prebuilt binaries are run on other CPUs under qemu when it is installed: the x86-64 one on
 * a CPU without AVX, the linux-arm64 one by an arm64 Node.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './helpers.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string; devDependencies: Record<string, string>;
};

/** The environment of a user's shell: no npm run variables, no glonet overrides, no NODE_PATH. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|GLONET_|NODE_PATH$|INIT_CWD$)/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Seconds each step took, reported as test diagnostics (for the suite's time budget). */
const timings: string[] = [];

function run(cmd: string, args: string[], cwd: string, env = userEnv()): SpawnSyncReturns<string> {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  timings.push(`${[cmd === process.execPath ? 'node' : cmd, ...args.slice(0, 2)].map((a) => path.basename(a)).join(' ')}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status ?? r.error?.message}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * Where the throw-away project goes: a RAM file system when there is one (/dev/shm), since
 * writing and then removing its ~400 MB of dependencies (TF.js) costs seconds there and tens of
 * seconds on a busy disk; else the temporary folder. Neither has a node_modules above it.
 */
function scratchDir(): string {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

/** Why this test cannot run here, or null. */
function skipReason(): string | null {
  if (run('c++', ['--version'], ROOT).status !== 0) return 'no C++ compiler: the package cannot be packed with its prebuilt binary';
  const ping = run('npm', ['ping', '--fetch-timeout=10000', '--fetch-retries=0'], ROOT);
  if (ping.status !== 0) return `the npm registry is unreachable (npm ping: ${(ping.stderr || ping.stdout).trim().split('\n').pop()})`;
  return null;
}

const CONSUMER = `
import * as tf from '@tensorflow/tfjs';
import { createFusedMlp, fastPathInfo, glonet, loadSgemm, Rng, type DenseWeights, type FusedMlpOptions } from 'glonet';

// A TF.js GloNet from the public builder (types come from the installed package and TF.js).
const model: tf.LayersModel = glonet({
  inputShape: [14],
  stem: tf.layers.dense({ units: 16 }),
  blocks: [1, 2, 3].map(() => tf.layers.dense({ units: 16, activation: 'relu' })),
  head: tf.layers.dense({ units: 1 }),
});

// A few steps of the fused engine on the bundled SGEMM data.
const ds = await loadSgemm({ subset: 2000, seed: 1 });
const opts: FusedMlpOptions = { nIn: ds.inputShape[0], width: 16, depth: 8, nOut: 1, loss: 'mse', l2: 1e-5, lr: 0.01 };
const rng = new Rng(1);
const dense = (nIn: number, nOut: number): DenseWeights => ({
  kernel: Float32Array.from({ length: nIn * nOut }, () => (rng.next() - 0.5) * Math.sqrt(24 / nIn)),
  bias: new Float32Array(nOut),
});
const mlp = createFusedMlp(opts, {
  stem: dense(opts.nIn, opts.width),
  blocks: Array.from({ length: opts.depth }, () => dense(opts.width, opts.width)),
  head: dense(opts.width, opts.nOut),
});
const losses: number[] = [];
for (let s = 0; s < 30; s++) losses.push(mlp.step(ds.xTrain, ds.yTrain, ds.nTrain));
// skipLibCheck (TF.js's own .d.ts files do not pass a strict check) would hide a broken type in
// glonet's declarations as 'any': these lines do not compile if any of these types is 'any'.
type NotAny<T> = 0 extends 1 & T ? never : true;
const typed: [NotAny<typeof ds>, NotAny<typeof mlp>, NotAny<typeof model>, NotAny<ReturnType<typeof fastPathInfo>>] = [true, true, true, true];
console.log(JSON.stringify({ typed: typed.length, engine: mlp.engine, info: fastPathInfo(), first: losses[0], last: losses[losses.length - 1], params: model.countParams() }));
mlp.dispose();
`;

/**
 * Loads an MLP addon file (argv[2]) through its raw Node-API interface, takes five steps on fixed
 * data and prints the kernels it chose and the last loss.
 */
const ADDON_PROBE = `
const a = require(process.argv[2]);
const n = 4, w = 16, d = 3;
const P = n * w + w + d * (w * w + w) + w + 1;
const params = Float32Array.from({ length: P }, (_, i) => Math.sin(i) * 0.3);
const h = a.create(params, new Float32Array(P), new Float32Array(P),
  { nIn: n, width: w, depth: d, nOut: 1, loss: 0, threads: 1, tileRows: 8, simd: 1, adaptive: 0 });
const x = Float32Array.from({ length: 32 * n }, (_, i) => Math.cos(i));
const y = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i));
const scalars = new Float64Array([1e-5, 0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-7, -0.01]);
let loss = 0;
for (let s = 0; s < 5; s++) loss = a.step(h, x, y, 32, scalars);
console.log(JSON.stringify({ simd: a.info().simd, loss }));
`;

/** A page's use of the browser entry (the `browser` export condition): no Node types in scope. */
const BROWSER_CONSUMER = `
import * as tf from '@tensorflow/tfjs';
import { explain, initBackend, loadModel, type BrowserBackendChoice, type Explanation } from 'glonet';

const choice: BrowserBackendChoice = await initBackend(undefined, { wasmPaths: '/wasm/' });
const { model, meta } = await loadModel('/runs/demo/model/');
const x = tf.zeros([1, ...meta.inputShape]);
const e: Explanation = explain(model, meta, x);
document.title = \`\${choice.name}: \${e.blocks} blocks\`;
`;

/** How each program is compiled: the Node program under NodeNext and Bundler, the page's under Bundler with the browser condition. */
const TSCONFIG = {
  nodenext: { file: 'consumer.ts', options: { module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], outDir: 'out' } },
  bundler: { file: 'consumer.ts', options: { module: 'ESNext', moduleResolution: 'Bundler', types: ['node'], noEmit: true } },
  browser: {
    file: 'browser.ts',
    options: { module: 'ESNext', moduleResolution: 'Bundler', customConditions: ['browser'], lib: ['ES2022', 'DOM'], types: [], noEmit: true },
  },
};

test('the packed package installs in a fresh project, type-checks (NodeNext, Bundler, the browser entry), trains natively, and glonet info says how', { timeout: 240_000 }, async (t) => {
  const skip = skipReason();
  if (skip) {
    t.skip(skip);
    return;
  }
  const work = fs.mkdtempSync(path.join(scratchDir(), 'glonet-pack-'));
  const started = Date.now();
  try {
    // What `npm pack` runs: prepack (the prebuilt binary); prepare's output, dist/, is the
    // compilation this test suite runs from.
    ok(run(process.execPath, [path.join(ROOT, 'scripts', 'prebuild.mjs')], ROOT, process.env), 'prebuild');
    const packed = JSON.parse(ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT), 'npm pack')) as
      Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed[0].files.map((f) => f.path);
    const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';
    const crossCompiler = run('aarch64-linux-gnu-g++', ['--version'], ROOT).status === 0;
    if (onLinuxX64) assert.ok(files.includes('prebuilds/linux-x64/glonet_fused.glibc.node'), 'the linux-x64 prebuilt binary is in the tarball');
    if (onLinuxX64 && crossCompiler) assert.ok(files.includes('prebuilds/linux-arm64/glonet_fused.glibc.node'), 'the linux-arm64 prebuilt binary is in the tarball');
    for (const f of files) assert.ok(!/\.map$|^src\/|^test\/|^dist\/test\/|^web\//.test(f), `${f} does not belong in the package`);
    for (const f of ['dist/src/index.d.ts', 'dist/src/browser.d.ts', 'dist/web/glonet-web.js', 'data/sgemm/sgemm_product.csv.gz', 'data/penguins.csv', 'scripts/install.mjs']) {
      assert.ok(files.includes(f), `${f} is in the package`);
    }
    // The README links the docs pages, so they ship beside it.
    for (const f of fs.readdirSync(path.join(ROOT, 'docs')).filter((n) => n.endsWith('.md'))) {
      assert.ok(files.includes(`docs/${f}`), `docs/${f} is in the package`);
    }

    // The prebuilt binary must run on any x86-64: on an emulated CPU without AVX it picks its
    // portable kernels and computes what the AVX2/FMA kernels compute, up to rounding.
    const prebuiltFile = path.join(ROOT, 'prebuilds', 'linux-x64', 'glonet_fused.glibc.node');
    const qemu = run('qemu-x86_64', ['-version'], ROOT).status === 0;
    fs.writeFileSync(path.join(work, 'probe.cjs'), ADDON_PROBE);
    await t.test('the prebuilt binary runs on an x86-64 without AVX (qemu-x86_64 -cpu Nehalem)', {
      skip: process.arch !== 'x64' ? 'not an x86-64 machine' : !qemu && 'qemu-x86_64 is not installed (Debian: qemu-user)',
    }, () => {
      const nodeArgs = [path.join(work, 'probe.cjs'), prebuiltFile];
      const probe = (cmd: string, args: string[]) => JSON.parse(ok(run(cmd, args, work), `${cmd} probe`)) as { simd: string; loss: number };
      const old = probe('qemu-x86_64', ['-cpu', 'Nehalem', process.execPath, ...nodeArgs]);
      const here = probe(process.execPath, nodeArgs);
      assert.equal(old.simd, 'portable');
      assert.ok(Math.abs(old.loss - here.loss) <= 1e-5 * Math.abs(here.loss), `portable ${old.loss} vs ${here.simd} ${here.loss}`);
    });

    // The linux-arm64 binary, cross-compiled: run by Debian's arm64 Node.js under qemu-aarch64
    // ($GLONET_ARM64_ROOT, made by scripts/arm64-node-root.sh), it computes what the x86-64 one does.
    const arm64Root = process.env.GLONET_ARM64_ROOT;
    const arm64Skip = !onLinuxX64 ? 'not a linux-x64 machine'
      : !crossCompiler ? 'no linux-arm64 binary was built (no aarch64-linux-gnu-g++; Debian: g++-aarch64-linux-gnu)'
        : !(arm64Root && fs.existsSync(path.join(arm64Root, 'usr', 'bin', 'node'))) ? 'no arm64 Node.js: set GLONET_ARM64_ROOT to a folder made by scripts/arm64-node-root.sh'
          : run('qemu-aarch64', ['-version'], ROOT).status !== 0 ? 'qemu-aarch64 is not installed (Debian: qemu-user)' : false;
    await t.test('the linux-arm64 prebuilt binary runs on arm64 (qemu-aarch64, Debian\'s arm64 Node.js)', { skip: arm64Skip }, () => {
      const arm64File = path.join(ROOT, 'prebuilds', 'linux-arm64', 'glonet_fused.glibc.node');
      const probe = (cmd: string, args: string[]) => JSON.parse(ok(run(cmd, args, work), `${cmd} probe`)) as { simd: string; loss: number };
      const arm = probe('qemu-aarch64', ['-L', arm64Root!, path.join(arm64Root!, 'usr', 'bin', 'node'), path.join(work, 'probe.cjs'), arm64File]);
      const here = probe(process.execPath, [path.join(work, 'probe.cjs'), prebuiltFile]);
      assert.equal(arm.simd, 'portable');
      assert.ok(Math.abs(arm.loss - here.loss) <= 1e-5 * Math.abs(here.loss), `arm64 ${arm.loss} vs x86-64 ${here.loss}`);
    });

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // --prefer-offline: npm's cache (filled by `npm ci` of this repository) before the network;
    // --omit=optional: @tensorflow/tfjs-node's install downloads libtensorflow, not a registry package.
    ok(run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=optional',
      path.join(work, packed[0].filename), `typescript@${pkg.devDependencies.typescript}`, `@types/node@${pkg.devDependencies['@types/node']}`],
    app, userEnv({ GLONET_SKIP_CNN: '1' })), 'npm install of the tarball');

    fs.writeFileSync(path.join(app, 'consumer.ts'), CONSUMER);
    fs.writeFileSync(path.join(app, 'browser.ts'), BROWSER_CONSUMER);
    const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const [name, { file, options }] of Object.entries(TSCONFIG)) {
      fs.writeFileSync(path.join(app, `tsconfig.${name}.json`), JSON.stringify({
        compilerOptions: { target: 'ES2022', strict: true, skipLibCheck: true, ...options },
        files: [file],
      }));
      ok(run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], app), `tsc (${name})`);
    }

    const result = JSON.parse(ok(run(process.execPath, ['out/consumer.js'], app), 'the compiled program')) as {
      engine: string; info: { origin?: string }; first: number; last: number; params: number;
    };
    assert.equal(result.engine, 'native');
    assert.ok(result.last < result.first, `training lowers the loss: ${result.first} -> ${result.last}`);
    assert.equal(result.params, 14 * 16 + 16 + 3 * (16 * 16 + 16) + 17);

    // The installed command, as `npx glonet info` runs it (without npx's own start-up).
    const info = () => ok(run(process.execPath, [path.join(app, 'node_modules', '.bin', 'glonet'), 'info'], app), 'glonet info');
    const mlpLine = (s: string) => s.split('\n').find((l) => l.startsWith('MLP training')) ?? '';
    const vitLine = (s: string) => s.split('\n').find((l) => l.startsWith('ViT training')) ?? '';
    const prebuilt = info();
    assert.match(mlpLine(prebuilt), /fused native engine \(.*; prebuilt binary prebuilds\/linux-x64\/glonet_fused\.glibc\.node\)/);
    assert.match(prebuilt, /ResNet20 training \(.*; SGD or Adam\): TF\.js \(fused CNN engine unavailable: .*GLONET_SKIP_CNN is set\)/);
    // The ViT engine ships in the same prebuilt binary.
    assert.match(vitLine(prebuilt), /fused native engine \(.*; prebuilt binary prebuilds\/linux-x64\/glonet_fused\.glibc\.node\)/);

    // The install step again, as on a machine with no fitting prebuilt binary: a source build,
    // and with no build possible (GLONET_SKIP_NATIVE stands in for a missing compiler): the
    // JavaScript engine, with the reason.
    const installed = path.join(app, 'node_modules', 'glonet');
    fs.rmSync(path.join(installed, 'prebuilds'), { recursive: true });
    ok(run('npm', ['rebuild', 'glonet'], app, userEnv({ GLONET_SKIP_CNN: '1' })), 'npm rebuild glonet');
    assert.match(mlpLine(info()), /fused native engine \(.*; built from source at install\)/);
    ok(run('npm', ['rebuild', 'glonet'], app, userEnv({ GLONET_SKIP_NATIVE: '1' })), 'npm rebuild glonet (no build)');
    assert.equal(mlpLine(info()), 'MLP training (Adam, every arch): fused js engine (JavaScript fallback: no prebuilt binary for ' +
      `${process.platform}-${process.arch} (glibc); source build at install: GLONET_SKIP_NATIVE is set)`);
    assert.equal(vitLine(info()), 'ViT training (glonet, plain; Adam): TF.js (fused ViT engine unavailable: no prebuilt binary for ' +
      `${process.platform}-${process.arch} (glibc); source build at install: GLONET_SKIP_NATIVE is set)`);
  } finally {
    const cleanup = Date.now();
    fs.rmSync(work, { recursive: true, force: true });
    timings.push(`removing the project: ${((Date.now() - cleanup) / 1000).toFixed(1)} s`, `total: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.diagnostic(timings.join('; '));
  }
});
