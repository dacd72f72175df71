#!/usr/bin/env node
// Builds the optional native training engines with the node-gyp that ships inside npm, using node
// headers found on this machine (no download when they are present):
//   native/build/Release/glonet_fused.node   the GloNet MLP engine (no dependencies)
//   native/build/Release/glonet_cnn.node     the ResNet20 engine (every arch), only when oneDNN's
//                                            headers and library are found (Debian/Ubuntu:
//                                            `apt-get install libdnnl-dev`)
// It never fails the install: on any problem it prints one line per engine and exits 0; glonet
// then uses its portable JavaScript MLP engine, and TF.js for ResNet20 models. A CNN engine that
// does not build never costs the MLP engine: the build is retried without it.
//
//   node scripts/build-native.mjs            build (quiet; one line of outcome per engine)
//   GLONET_NATIVE_VERBOSE=1 ...              show node-gyp's output
//   GLONET_SKIP_NATIVE=1 ...                 skip the build
//   GLONET_SKIP_CNN=1 ...                    build the MLP engine only
//   GLONET_DNNL_DIR=/opt/onednn ...          a oneDNN install prefix (include/, lib/) to use
//
// The outcome is also written to native/build/outcome.json ({step, mlp, cnn}: each {built} or
// {built: false, reason}), which `glonet info` reads to say why an engine is missing.
// scripts/install.mjs and scripts/prebuild.mjs import the helpers exported here; the build runs
// only when this file is the script node was started with.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const addon = path.join(nativeDir, 'build', 'Release', 'glonet_fused.node');
const cnnAddon = path.join(nativeDir, 'build', 'Release', 'glonet_cnn.node');
const verbose = !!process.env.GLONET_NATIVE_VERBOSE;
const FALLBACK = 'the portable JavaScript engine will be used';
const CNN_FALLBACK = 'ResNet20 models train with TF.js';

/** Why the CNN engine was not built (printed once the MLP engine's outcome is known). */
let cnnNote = null;

/** native/build/outcome.json: what this build produced and why not, for `glonet info`. */
export function recordOutcome(outcome) {
  const dir = path.join(nativeDir, 'build');
  mkdirSync(dir, { recursive: true });
  const record = { step: process.env.npm_lifecycle_event ?? 'manual', ...outcome };
  writeFileSync(path.join(dir, 'outcome.json'), JSON.stringify(record, null, 2) + '\n');
}

function unavailable(reason) {
  console.error(`glonet: native fast path unavailable (${reason}); ${FALLBACK}`);
  if (cnnNote) console.error(`glonet: native CNN engine unavailable (${cnnNote}); ${CNN_FALLBACK}`);
  // Addons left by an earlier build must not be loaded as if this one had built them.
  for (const f of [addon, cnnAddon]) rmSync(f, { force: true });
  recordOutcome({ mlp: { built: false, reason }, cnn: { built: false, reason: cnnNote ?? reason } });
  process.exit(0);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: verbose ? 'inherit' : 'pipe',
    timeout: 10 * 60 * 1000,
    ...opts,
  });
}

function npmQuery(args) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, args, { encoding: 'utf8', timeout: 30000, shell: process.platform === 'win32' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** node-gyp's entry script: npm's own (npm tells scripts where it is), then common places. */
export function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const rel = path.join('node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  candidates.push(path.join(prefix, 'lib', rel), path.join(path.dirname(process.execPath), rel));
  if (process.env.npm_execpath) {
    // .../npm/bin/npm-cli.js -> .../npm/node_modules/node-gyp/bin/node-gyp.js
    const npmDir = path.resolve(path.dirname(process.env.npm_execpath), '..');
    candidates.push(path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  candidates.push(path.join('/usr/lib', rel), path.join('/usr/local/lib', rel));
  try {
    candidates.push(createRequire(path.join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not installed locally */
  }
  for (const c of candidates) if (c && existsSync(c)) return c;
  const globalRoot = npmQuery(['root', '-g']);
  if (globalRoot) {
    const c = path.join(globalRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(c)) return c;
  }
  return null;
}

/** A directory with include/node/node_api.h for this node, so node-gyp needs no download. */
export function findNodeDir() {
  const has = (d) => d && existsSync(path.join(d, 'include', 'node', 'node_api.h'));
  const candidates = [
    process.env.npm_config_nodedir,
    path.resolve(path.dirname(process.execPath), '..'),
  ];
  for (const c of candidates) if (has(c)) return c;
  const configured = npmQuery(['config', 'get', 'nodedir']);
  if (configured && configured !== 'undefined' && has(configured)) return configured;
  for (const c of ['/usr', '/usr/local']) if (has(c)) return c;
  // node-gyp's own header cache from an earlier (online) build.
  const version = process.versions.node;
  const caches = [
    path.join(os.homedir(), '.cache', 'node-gyp', version),
    path.join(os.homedir(), '.node-gyp', version),
    process.env.LOCALAPPDATA && path.join(process.env.LOCALAPPDATA, 'node-gyp', 'Cache', version),
  ];
  for (const c of caches) if (has(c)) return c;
  return null;
}

/** One line of the first error in a failed tool's output. */
function firstError(r) {
  const lines = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').map((l) => l.trim());
  return (lines.find((l) => /error/i.test(l)) ?? lines.find((l) => l) ?? '').slice(0, 160);
}

/**
 * oneDNN for the CNN engine: a test program that includes <oneapi/dnnl/dnnl.hpp>, links -ldnnl
 * and runs. Returns {dir} ('' = the compiler's default paths) or {reason}.
 */
export function findOneDnn() {
  if (process.env.GLONET_SKIP_CNN) return { reason: 'GLONET_SKIP_CNN is set' };
  if (process.platform === 'win32') return { reason: 'not supported on Windows' };
  const cxx = process.env.CXX || 'c++';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'glonet-dnnl-'));
  try {
    const src = path.join(tmp, 'probe.cc');
    const exe = path.join(tmp, 'probe');
    writeFileSync(src, [
      '#include <oneapi/dnnl/dnnl.hpp>',
      '#include <cstdio>',
      'int main() {',
      '  dnnl::engine eng(dnnl::engine::kind::cpu, 0);',
      '  const dnnl_version_t* v = dnnl_version();',
      '  std::printf("%d.%d.%d", v->major, v->minor, v->patch);',
      '  return 0;',
      '}',
    ].join('\n'));
    const prefixes = [process.env.GLONET_DNNL_DIR, '', '/usr/local', '/opt/homebrew/opt/onednn', '/usr/local/opt/onednn']
      .filter((d, i, a) => d != null && a.indexOf(d) === i);
    let last = '';
    for (const dir of prefixes) {
      if (dir && !existsSync(path.join(dir, 'include', 'oneapi', 'dnnl', 'dnnl.hpp'))) continue;
      const flags = dir
        ? [`-I${dir}/include`, `-L${dir}/lib`, `-L${dir}/lib64`, `-Wl,-rpath,${dir}/lib`, `-Wl,-rpath,${dir}/lib64`]
        : [];
      const c = spawnSync(cxx, ['-std=c++17', src, '-o', exe, ...flags, '-ldnnl'], { encoding: 'utf8', timeout: 120000 });
      if (c.error) return { reason: `no C++ compiler (${cxx}): ${c.error.message}` };
      if (c.status !== 0) {
        last = /dnnl\.hpp/.test(`${c.stderr}`) ? 'oneDNN headers not found (apt-get install libdnnl-dev)' : `oneDNN test build failed: ${firstError(c)}`;
        continue;
      }
      const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 30000 });
      if (r.status !== 0) {
        last = 'a program linked with oneDNN does not run';
        continue;
      }
      return { dir, version: r.stdout.trim() };
    }
    return { reason: last || 'oneDNN headers not found (apt-get install libdnnl-dev)' };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function gypBuild(gyp, nodeDir, defines) {
  const args = [gyp, 'rebuild', `--directory=${nativeDir}`, '--release', '--loglevel=warn'];
  if (nodeDir) args.push(`--nodedir=${nodeDir}`);
  const jobs = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 4));
  args.push(`--jobs=${jobs}`);
  const env = { ...process.env };
  if (defines.length) env.GYP_DEFINES = [process.env.GYP_DEFINES, ...defines].filter(Boolean).join(' ');
  return run(process.execPath, args, { cwd: nativeDir, env });
}

/**
 * Loads an addon in a child process: `expr` (over the addon `a`) as text, or null, and then the
 * file is removed unless `keep` (a broken build must not be loaded later; a shipped file stays).
 */
export function checkLoads(file, expr, keep = false) {
  const check = spawnSync(
    process.execPath,
    ['-e', `const a = require(${JSON.stringify(file)}); process.stdout.write(${expr})`],
    { encoding: 'utf8', timeout: 30000 },
  );
  if (check.status === 0) return check.stdout.trim();
  if (keep) return null;
  try {
    rmSync(file);
  } catch {
    /* ignore */
  }
  return null;
}

function main() {
  if (process.env.GLONET_SKIP_NATIVE) unavailable('GLONET_SKIP_NATIVE is set');
  if (!existsSync(path.join(nativeDir, 'binding.gyp'))) unavailable('native/binding.gyp is missing');
  const gyp = findNodeGyp();
  if (!gyp) {
    cnnNote = 'node-gyp was not found';
    unavailable('node-gyp was not found');
  }
  const nodeDir = findNodeDir();
  const dnnl = findOneDnn();
  let r;
  if (dnnl.reason) {
    cnnNote = dnnl.reason;
    r = gypBuild(gyp, nodeDir, []);
  } else {
    r = gypBuild(gyp, nodeDir, ['glonet_cnn=1', ...(dnnl.dir ? [`dnnl_dir=${dnnl.dir}`] : [])]);
    if (r.error || r.status !== 0) {
      // Keep the MLP engine: build again without the CNN engine.
      cnnNote = `its build failed${r.error ? '' : `: ${firstError(r)}`}`;
      r = gypBuild(gyp, nodeDir, []);
    }
  }
  if (r.error || r.status !== 0) {
    if (!verbose && (r.stderr || r.stdout)) {
      const err = firstError(r);
      unavailable(`node-gyp failed${err ? `: ${err}` : ''}`);
    }
    unavailable(r.error ? `node-gyp did not run: ${r.error.message}` : `node-gyp exited with ${r.status}`);
  }
  if (!existsSync(addon)) unavailable('the build produced no addon');
  // Load each addon once in a child process, so a broken binary is found now and removed.
  const simd = checkLoads(addon, 'a.info().simd');
  if (simd == null) {
    cnnNote ??= 'the MLP engine does not load';
    unavailable('the built addon does not load');
  }
  console.error(`glonet: native fast path built (${path.relative(root, addon)}, ${simd})`);
  if (!cnnNote) {
    const info = existsSync(cnnAddon) ? checkLoads(cnnAddon, '`oneDNN ${a.info().onednn}, ${a.info().isa}`') : null;
    if (info != null) console.error(`glonet: native CNN engine built (${path.relative(root, cnnAddon)}, ${info})`);
    else cnnNote = existsSync(cnnAddon) ? 'the built addon does not load' : 'the build produced no addon';
  }
  if (cnnNote) {
    console.error(`glonet: native CNN engine unavailable (${cnnNote}); ${CNN_FALLBACK}`);
    rmSync(cnnAddon, { force: true });
  }
  recordOutcome({ mlp: { built: true }, cnn: cnnNote ? { built: false, reason: cnnNote } : { built: true } });
}

/** Builds the engines; never throws (exits 0 when the MLP engine cannot be built). */
function buildNative() {
  try {
    main();
  } catch (e) {
    unavailable(e instanceof Error ? e.message : String(e));
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) buildNative();
