#!/usr/bin/env node
// Builds the optional native training engine (native/ -> native/build/Release/glonet_fused.node)
// with the node-gyp that ships inside npm, using node headers found on this machine (no
// download when they are present). It never fails the install: on any problem it prints one line
// and exits 0, and glonet then uses its portable JavaScript engine.
//
//   node scripts/build-native.mjs            build (quiet; one line of outcome)
//   GLONET_NATIVE_VERBOSE=1 ...              show node-gyp's output
//   GLONET_SKIP_NATIVE=1 ...                 skip the build
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const addon = path.join(nativeDir, 'build', 'Release', 'glonet_fused.node');
const verbose = !!process.env.GLONET_NATIVE_VERBOSE;
const FALLBACK = 'the portable JavaScript engine will be used';

function unavailable(reason) {
  console.log(`glonet: native fast path unavailable (${reason}); ${FALLBACK}`);
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
function findNodeGyp() {
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
function findNodeDir() {
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

function main() {
  if (process.env.GLONET_SKIP_NATIVE) unavailable('GLONET_SKIP_NATIVE is set');
  if (!existsSync(path.join(nativeDir, 'binding.gyp'))) unavailable('native/binding.gyp is missing');
  const gyp = findNodeGyp();
  if (!gyp) unavailable('node-gyp was not found');
  const nodeDir = findNodeDir();
  const args = [gyp, 'rebuild', `--directory=${nativeDir}`, '--release', '--loglevel=warn'];
  if (nodeDir) args.push(`--nodedir=${nodeDir}`);
  const jobs = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 4));
  args.push(`--jobs=${jobs}`);
  const r = run(process.execPath, args, { cwd: nativeDir });
  if (r.error || r.status !== 0) {
    if (!verbose && (r.stderr || r.stdout)) {
      const lines = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').map((l) => l.trim());
      const err = lines.find((l) => /error/i.test(l)) ?? lines.find((l) => l) ?? '';
      unavailable(`node-gyp failed${err ? `: ${err.slice(0, 160)}` : ''}`);
    }
    unavailable(r.error ? `node-gyp did not run: ${r.error.message}` : `node-gyp exited with ${r.status}`);
  }
  if (!existsSync(addon)) unavailable('the build produced no addon');
  // Load it once in a child process, so a broken binary is found now and removed.
  const check = spawnSync(
    process.execPath,
    ['-e', `const a = require(${JSON.stringify(addon)}); process.stdout.write(a.info().simd)`],
    { encoding: 'utf8', timeout: 30000 },
  );
  if (check.status !== 0) {
    try {
      rmSync(addon);
    } catch {
      /* ignore */
    }
    unavailable('the built addon does not load');
  }
  console.log(`glonet: native fast path built (${path.relative(root, addon)}, ${check.stdout.trim()})`);
}

try {
  main();
} catch (e) {
  unavailable(e instanceof Error ? e.message : String(e));
}
