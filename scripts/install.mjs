#!/usr/bin/env node
// The package's `install` step (runs when glonet is installed as a dependency). It never fails
// the install: every outcome ends with exit code 0 and one line per engine.
//
//   MLP engine: a prebuilt binary for this platform (prebuilds/, shipped in the package) is used
//               when it loads here; otherwise it is built from source when a C++ compiler and
//               node-gyp are present; otherwise glonet uses its portable JavaScript engine.
//   CNN engine: built from source when oneDNN's headers and library are present (it links the
//               system's oneDNN, so it cannot ship prebuilt); otherwise TF.js trains ResNet20s.
//
// What happened is written to native/build/outcome.json; `glonet info` reports it.
// In a clone of the repository (npm ci at its root) this step does nothing: `prepare` builds
// TypeScript and both engines from source right after it.
//
//   GLONET_SKIP_NATIVE=1   no build; the prebuilt binary is still used when it loads
//   GLONET_SKIP_CNN=1      no CNN engine (no source build when the prebuilt MLP binary loads)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLoads, findOneDnn, recordOutcome } from './build-native.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The prebuilt MLP binary node-gyp-build picks for this platform, or why there is none. */
function prebuilt() {
  try {
    const file = createRequire(path.join(root, 'package.json'))('node-gyp-build').path(root);
    if (!path.basename(file).startsWith('glonet_fused.')) return { reason: `unexpected prebuilt binary ${file}` };
    const simd = checkLoads(file, 'a.info().simd', true);
    if (simd == null) return { reason: `the prebuilt binary ${path.relative(root, file)} does not load here` };
    return { file, simd };
  } catch (e) {
    // node-gyp-build: "No native build was found for platform=linux arch=arm64 ... libc=glibc ...".
    const first = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    const m = /platform=(\S+) arch=(\S+).*libc=(\S+)/.exec(first);
    return { reason: m ? `no prebuilt binary for ${m[1]}-${m[2]} (${m[3]})` : first };
  }
}

function main() {
  if (process.env.INIT_CWD && path.resolve(process.env.INIT_CWD) === root && existsSync(path.join(root, 'tsconfig.json'))) {
    console.error('glonet: installing the repository itself; `prepare` builds the native engines');
    return;
  }
  const pre = prebuilt();
  if (pre.file) console.error(`glonet: native MLP engine: prebuilt binary ${path.relative(root, pre.file)} (${pre.simd} kernels)`);
  const dnnl = pre.file ? findOneDnn() : null;
  if (pre.file && dnnl.reason) {
    // Nothing to build: the MLP engine is prebuilt and the CNN engine cannot be built.
    console.error(`glonet: native CNN engine unavailable (${dnnl.reason}); GloNet-ResNet20 trains with TF.js`);
    recordOutcome({ prebuilt: path.relative(root, pre.file), mlp: { built: false, reason: 'the prebuilt binary is used' }, cnn: { built: false, reason: dnnl.reason } });
    return;
  }
  if (!pre.file) console.error(`glonet: ${pre.reason}; building the native engines from source`);
  // The source build prints its own outcome lines and records them; it never exits non-zero
  // on a failed build, and a crash of it must not fail the install either.
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', env: process.env });
  const outcomeFile = path.join(root, 'native', 'build', 'outcome.json');
  if (r.status !== 0 || !existsSync(outcomeFile)) {
    const reason = `the source build stopped (${r.error?.message ?? `exit code ${r.status}`})`;
    console.error(`glonet: ${reason}; ${pre.file ? 'the prebuilt MLP engine is used' : 'the portable JavaScript engine will be used'}`);
    recordOutcome({ prebuilt: pre.file ? path.relative(root, pre.file) : null, prebuiltReason: pre.reason, mlp: { built: false, reason }, cnn: { built: false, reason } });
    return;
  }
  // Add what the build cannot know: which prebuilt binary exists, or why none is used.
  const outcome = JSON.parse(readFileSync(outcomeFile, 'utf8'));
  recordOutcome({ ...outcome, step: 'install', prebuilt: pre.file ? path.relative(root, pre.file) : null, prebuiltReason: pre.reason });
}

try {
  main();
} catch (e) {
  console.error(`glonet: install step failed (${e instanceof Error ? e.message : String(e)}); the native engines may be unavailable`);
}
process.exit(0);
