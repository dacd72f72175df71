#!/usr/bin/env node
// Builds the prebuilt binaries of the fused MLP engine that ship inside the npm package
// (`prepack` runs it, so `npm pack` and `npm publish` always carry binaries built from the
// sources being packed):
//   prebuilds/<platform>-<arch>/glonet_fused.<libc>.node     (linux-x64: glonet_fused.glibc.node)
// for this machine, and on linux-x64 also for linux-arm64 when Debian's cross compiler is there.
// with prebuildify, named as node-gyp-build expects (Node-API, so one binary serves every Node
// version; tagged with the C library, so a musl system does not pick a glibc binary).
//
// Portability of the binary:
// - any x86-64 CPU: the engine is compiled for the baseline ISA and picks its AVX2/FMA kernels at
//   run time (native/src/mlp/mlp_kernels.h), so no -march flag is passed here; on arm64 the
//   portable kernels run (compiled for ARMv8-A, whose NEON the compiler may use);
// - the C and C++ runtimes are linked as usual (dynamically): the binary needs a glibc and a
//   libstdc++ at least as new as the symbol versions it uses (printed below; built on Debian 12:
//   glibc 2.29 and GCC 12's libstdc++, GLIBCXX_3.4.30). Linking libstdc++ statically was tried
//   and is worse: its archive pulls in glibc 2.34-2.36 symbols. Where the binary does not load,
//   the install step (scripts/install.mjs) builds from source instead.
// The build runs in a temporary copy of native/, so the development build in native/build (both
// engines, built by `prepare`) is left alone. Unlike the install-time build, a failure here is an
// error: a package must not be packed without the binary it promises.
//
//   node scripts/prebuild.mjs        build for this machine (and linux-arm64, see above)
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLoads, findNodeDir, findNodeGyp } from './build-native.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADDON = 'glonet_fused';

function fail(msg) {
  console.error(`glonet prebuild: ${msg}`);
  process.exit(1);
}

/** The newest glibc and libstdc++ symbol versions a binary needs (where it loads), or ''. */
function runtimeNeeds(file, toolPrefix) {
  const r = spawnSync(`${toolPrefix}objdump`, ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return '';
  const newest = (prefix) => {
    const versions = [...new Set(r.stdout.match(new RegExp(`${prefix}_[0-9.]+`, 'g')) ?? [])];
    const key = (v) => v.slice(prefix.length + 1).split('.').map((n) => n.padStart(4, '0')).join('.');
    return versions.sort((a, b) => key(a).localeCompare(key(b))).at(-1);
  };
  return [newest('GLIBC'), newest('GLIBCXX')].filter(Boolean).join(' and ');
}

/**
 * The targets built here: this machine's (required), and on linux-x64 also linux-arm64 when
 * Debian's cross compiler is installed (`apt-get install g++-aarch64-linux-gnu`); a missing
 * cross compiler only skips that target, with a line saying so.
 */
function targets() {
  const host = { platform: os.platform(), arch: os.arch(), required: true };
  const list = [host];
  if (host.platform === 'linux' && host.arch === 'x64') {
    list.push({ platform: 'linux', arch: 'arm64', prefix: 'aarch64-linux-gnu-', elfMachine: 0xb7, hint: 'apt-get install g++-aarch64-linux-gnu' });
  }
  return list;
}

/** The ELF machine field of a binary (0x3e x86-64, 0xb7 aarch64), or -1. */
function elfMachine(file) {
  const b = readFileSync(file);
  return b.length > 20 && b.readUInt32BE(0) === 0x7f454c46 ? b.readUInt16LE(18) : -1;
}

async function build(target, gyp, nodeDir) {
  const work = mkdtempSync(path.join(os.tmpdir(), 'glonet-prebuild-'));
  const saved = { ...process.env };
  try {
    cpSync(path.join(root, 'native', 'binding.gyp'), path.join(work, 'binding.gyp'));
    cpSync(path.join(root, 'native', 'src'), path.join(work, 'src'), { recursive: true });
    // prebuildify runs its node-gyp as a command: a wrapper around npm's node-gyp script.
    const wrapper = path.join(work, 'node-gyp.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(gyp)} "$@"\n`);
    chmodSync(wrapper, 0o755);

    const platformDir = path.join(root, 'prebuilds', `${target.platform}-${target.arch}`);
    if (existsSync(platformDir)) {
      for (const f of readdirSync(platformDir)) if (f.startsWith(`${ADDON}.`)) rmSync(path.join(platformDir, f));
    }
    // Read by prebuildify's node-gyp: local headers (no download), no CNN target, the compilers.
    process.env.npm_config_nodedir = nodeDir;
    delete process.env.GYP_DEFINES;
    if (target.prefix) {
      for (const [k, tool] of [['CC', 'gcc'], ['CXX', 'g++'], ['LINK', 'g++'], ['AR', 'ar']]) process.env[k] = `${target.prefix}${tool}`;
    }

    const prebuildify = createRequire(import.meta.url)('prebuildify');
    // prebuildify copies process.env when called: restore it right away, so that the targets can
    // build at the same time.
    const done = new Promise((resolve, reject) => prebuildify({
      cwd: work,
      out: root,
      name: ADDON,
      arch: target.arch,
      platform: target.platform,
      napi: true,
      strip: true,
      stripBin: `${target.prefix ?? ''}strip`,
      tagLibc: true,
      quiet: !process.env.GLONET_NATIVE_VERBOSE,
      nodeGyp: wrapper,
      cache: path.join(work, 'devdir'),
      targets: [{ runtime: 'node', target: process.versions.node }],
    }, (err) => (err ? reject(err) : resolve())));
    restoreEnv(saved);
    await done;

    const built = readdirSync(platformDir).filter((f) => f.startsWith(`${ADDON}.`));
    if (built.length !== 1) fail(`expected one ${ADDON} binary in ${platformDir}, found ${built.join(', ') || 'none'}`);
    const file = path.join(platformDir, built[0]);
    let what;
    if (target.prefix) {
      // Built for another CPU: it cannot be loaded here (test/package.test.ts runs it under qemu).
      if (elfMachine(file) !== target.elfMachine) fail(`${file} is not an ELF binary for ${target.arch}`);
      what = `cross-compiled with ${target.prefix}g++`;
    } else {
      const simd = checkLoads(file, 'a.info().simd');
      if (simd == null) fail(`the prebuilt binary ${file} does not load`);
      what = `${simd} kernels here`;
    }
    const needs = runtimeNeeds(file, target.prefix ?? '');
    const kb = Math.round(statSync(file).size / 1024);
    console.error(`glonet: prebuilt ${path.relative(root, file)} (${kb} KiB, ${what}${needs ? `, needs ${needs}` : ''})`);
  } finally {
    restoreEnv(saved);
    rmSync(work, { recursive: true, force: true });
  }
}

function restoreEnv(saved) {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
}

async function main() {
  const gyp = findNodeGyp();
  if (!gyp) fail('node-gyp was not found');
  const nodeDir = findNodeDir();
  if (!nodeDir) fail('no Node.js headers (include/node/node_api.h) found for this node');
  const builds = [];
  for (const target of targets()) {
    if (target.prefix && spawnSync(`${target.prefix}g++`, ['--version']).status !== 0) {
      console.error(`glonet: no prebuilt binary for ${target.platform}-${target.arch}: no ${target.prefix}g++ (${target.hint})`);
      continue;
    }
    builds.push(build(target, gyp, nodeDir));
  }
  await Promise.all(builds);
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
