/**
 * Finding and loading an optional native addon of this package, in node-gyp-build's order:
 *   1. the file an environment variable names;
 *   2. a source build, native/build/Release/NAME.node (`npm ci`'s prepare, the package's install
 *      step, or `node scripts/build-native.mjs`);
 *   3. a prebuilt binary shipped in the package, prebuilds/<platform>-<arch>/NAME.<tags>.node,
 *      chosen by node-gyp-build (platform, architecture, C library).
 * When none loads, the reason says why, with what the last build or install step recorded in
 * native/build/outcome.json (scripts/build-native.mjs, scripts/install.mjs).
 */
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** An addon that loaded and how it got here, or why none did. */
export type AddonLoad<T> =
  | { addon: T; path: string; origin: string }
  | { addon: null; reason: string };

/** What to look for: the addon's file name (without .node) and how to talk about it. */
interface AddonSpec {
  /** 'glonet_fused' or 'glonet_cnn'. */
  name: string;
  /** Its key in native/build/outcome.json. */
  engine: 'mlp' | 'cnn';
  /** An environment variable that may name the addon file. */
  envVar: string;
  /** How reasons name it ("native addon"). */
  what: string;
  /** What to do when nothing was ever built, for the reason. */
  hint: string;
}

/** native/build/outcome.json as the build scripts write it. */
interface BuildOutcome {
  step?: string;
  prebuilt?: string | null;
  prebuiltReason?: string;
  mlp?: { built: boolean; reason?: string };
  cnn?: { built: boolean; reason?: string };
}

const requireHere = createRequire(import.meta.url);

/** This package's root: the nearest folder above this file whose package.json is glonet's. */
function packageRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      if (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'glonet') return dir;
    } catch {
      /* no package.json here */
    }
    dir = path.dirname(dir);
  }
  return null;
}

function readOutcome(root: string): BuildOutcome | null {
  try {
    return JSON.parse(readFileSync(path.join(root, 'native', 'build', 'outcome.json'), 'utf8')) as BuildOutcome;
  } catch {
    return null;
  }
}

/** node-gyp-build's "No native build was found for platform=linux arch=arm64 ... libc=glibc ...", shortened. */
function shortPrebuildReason(message: string): string {
  const first = message.split('\n')[0];
  const m = /platform=(\S+) arch=(\S+).*libc=(\S+)/.exec(first);
  return m ? `no prebuilt binary for ${m[1]}-${m[2]} (${m[3]})` : first;
}

/** node-gyp-build's choice among prebuilds/ for this platform, if it is this addon; else why not. */
function prebuiltPath(root: string, name: string): { file: string } | { reason: string } {
  try {
    const file = (requireHere('node-gyp-build') as { path(dir: string): string }).path(root);
    if (path.basename(file).startsWith(`${name}.`)) return { file };
    return { reason: `no prebuilt ${name} binary` };
  } catch (e) {
    return { reason: shortPrebuildReason(e instanceof Error ? e.message : String(e)) };
  }
}

function originOfBuild(outcome: BuildOutcome | null): string {
  if (outcome?.step === 'install') return 'built from source at install';
  return outcome?.step && outcome.step !== 'manual' ? `built from source (npm ${outcome.step})` : 'built from source';
}

/**
 * Why no addon loaded: a source build that failed to load, or else what the last build or install
 * step recorded (or the spec's hint when nothing was ever built); and why no prebuilt binary was
 * used (MLP engine only: the CNN engine is never prebuilt).
 */
function missingReason(spec: AddonSpec, outcome: BuildOutcome | null, builtError: string | null, prebuilt: string | null): string {
  const record = outcome?.[spec.engine];
  const parts: string[] = [];
  if (prebuilt) parts.push(prebuilt);
  if (builtError) parts.push(builtError);
  else if (record && !record.built && record.reason) parts.push(`source build${outcome?.step === 'install' ? ' at install' : ''}: ${record.reason}`);
  else parts.push(`${spec.what} not built (${spec.hint})`);
  return parts.join('; ');
}

function tryLoad<T extends { info(): unknown }>(file: string, spec: AddonSpec): { addon: T } | { error: string } {
  try {
    const addon = requireHere(file) as T;
    addon.info();
    return { addon };
  } catch (e) {
    return { error: `${spec.what} failed to load: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}` };
  }
}

/** Load the addon (see the file comment for the order) and check it answers `info()`. */
export function loadAddon<T extends { info(): unknown }>(spec: AddonSpec): AddonLoad<T> {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    const r = tryLoad<T>(fromEnv, spec);
    return 'addon' in r ? { addon: r.addon, path: fromEnv, origin: `$${spec.envVar}` } : { addon: null, reason: r.error };
  }
  const root = packageRoot();
  if (root == null) return { addon: null, reason: `${spec.what}: the glonet package folder was not found` };
  const outcome = readOutcome(root);
  const built = path.join(root, 'native', 'build', 'Release', `${spec.name}.node`);
  let failed: string | null = null;
  if (existsSync(built)) {
    const r = tryLoad<T>(built, spec);
    if ('addon' in r) return { addon: r.addon, path: built, origin: originOfBuild(outcome) };
    failed = r.error;
  }
  const pre = prebuiltPath(root, spec.name);
  let prebuiltNote = spec.engine === 'mlp' && 'reason' in pre ? pre.reason : null;
  if ('file' in pre) {
    const r = tryLoad<T>(pre.file, spec);
    if ('addon' in r) return { addon: r.addon, path: pre.file, origin: `prebuilt binary ${path.relative(root, pre.file)}` };
    prebuiltNote = `prebuilt ${r.error}`;
  }
  return { addon: null, reason: missingReason(spec, outcome, failed, prebuiltNote) };
}

/** Threads a native engine uses by default: the available cores, at most 8. */
export function defaultThreads(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, n));
}
