#!/usr/bin/env node
// Builds the prebuilt binary of the fused MLP engine that ships inside the npm package
// (`prepack` runs it, so `npm pack` and `npm publish` always carry a binary built from the
// sources being packed):
//   prebuilds/<platform>-<arch>/glonet_fused.<libc>.node     (linux-x64: glonet_fused.glibc.node)
// with prebuildify, named as node-gyp-build expects (Node-API, so one binary serves every Node
// version; tagged with the C library, so a musl system does not pick a glibc binary).
//
// Portability of the binary:
// - any x86-64 CPU: the engine is compiled for the baseline ISA and picks its AVX2/FMA kernels at
//   run time (native/src/glonet_fused.cc), so no -march flag is passed here;
// - the C and C++ runtimes are linked as usual (dynamically): the binary needs a glibc and a
//   libstdc++ at least as new as the symbol versions it uses (printed below; built on Debian 12:
//   glibc 2.29 and GCC 12's libstdc++, GLIBCXX_3.4.30). Linking libstdc++ statically was tried
//   and is worse: its archive pulls in glibc 2.34-2.36 symbols. Where the binary does not load,
//   the install step (scripts/install.mjs) builds from source instead.
// The build runs in a temporary copy of native/, so the development build in native/build (both
// engines, built by `prepare`) is left alone. Unlike the install-time build, a failure here is an
// error: a package must not be packed without the binary it promises.
//
//   node scripts/prebuild.mjs        build for this machine's platform and architecture
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
function runtimeNeeds(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return '';
  const newest = (prefix) => {
    const versions = [...new Set(r.stdout.match(new RegExp(`${prefix}_[0-9.]+`, 'g')) ?? [])];
    const key = (v) => v.slice(prefix.length + 1).split('.').map((n) => n.padStart(4, '0')).join('.');
    return versions.sort((a, b) => key(a).localeCompare(key(b))).at(-1);
  };
  return [newest('GLIBC'), newest('GLIBCXX')].filter(Boolean).join(' and ');
}

async function main() {
  const gyp = findNodeGyp();
  if (!gyp) fail('node-gyp was not found');
  const nodeDir = findNodeDir();
  if (!nodeDir) fail('no Node.js headers (include/node/node_api.h) found for this node');

  const work = mkdtempSync(path.join(os.tmpdir(), 'glonet-prebuild-'));
  try {
    cpSync(path.join(root, 'native', 'binding.gyp'), path.join(work, 'binding.gyp'));
    cpSync(path.join(root, 'native', 'src'), path.join(work, 'src'), { recursive: true });
    // prebuildify runs its node-gyp as a command: a wrapper around npm's node-gyp script.
    const wrapper = path.join(work, 'node-gyp.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(gyp)} "$@"\n`);
    chmodSync(wrapper, 0o755);

    const platformDir = path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`);
    if (existsSync(platformDir)) {
      for (const f of readdirSync(platformDir)) if (f.startsWith(`${ADDON}.`)) rmSync(path.join(platformDir, f));
    }
    // Read by prebuildify's node-gyp: local headers (no download), no CNN target.
    process.env.npm_config_nodedir = nodeDir;
    delete process.env.GYP_DEFINES;

    const prebuildify = createRequire(import.meta.url)('prebuildify');
    await new Promise((resolve, reject) => prebuildify({
      cwd: work,
      out: root,
      name: ADDON,
      napi: true,
      strip: true,
      tagLibc: true,
      quiet: !process.env.GLONET_NATIVE_VERBOSE,
      nodeGyp: wrapper,
      cache: path.join(work, 'devdir'),
      targets: [{ runtime: 'node', target: process.versions.node }],
    }, (err) => (err ? reject(err) : resolve())));

    const built = readdirSync(platformDir).filter((f) => f.startsWith(`${ADDON}.`));
    if (built.length !== 1) fail(`expected one ${ADDON} binary in ${platformDir}, found ${built.join(', ') || 'none'}`);
    const file = path.join(platformDir, built[0]);
    const simd = checkLoads(file, 'a.info().simd');
    if (simd == null) fail(`the prebuilt binary ${file} does not load`);
    const needs = runtimeNeeds(file);
    const kb = Math.round(statSync(file).size / 1024);
    console.log(`glonet: prebuilt ${path.relative(root, file)} (${kb} KiB, ${simd} kernels here${needs ? `, needs ${needs}` : ''})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
