/**
 * Finding and loading an optional native addon of this package (native/build/Release/NAME.node,
 * built by `node scripts/build-native.mjs`), or the file an environment variable names.
 */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonLoad<T> = { addon: T; path: string } | { addon: null; reason: string };

function addonPath(file: string, envVar: string): string | null {
  if (process.env[envVar]) return process.env[envVar]!;
  // This file is src/engines/ (sources) or dist/src/engines/ (compiled): walk up to the package root.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'native', 'build', 'Release', file);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return null;
}

/**
 * Load the addon and check it answers `info()`. `what` names it in reasons ("native addon");
 * `missing` is the reason given when no file was built.
 */
export function loadAddon<T extends { info(): unknown }>(file: string, envVar: string, what: string, missing: string): AddonLoad<T> {
  const found = addonPath(file, envVar);
  if (found == null) return { addon: null, reason: missing };
  try {
    const addon = createRequire(import.meta.url)(found) as T;
    addon.info();
    return { addon, path: found };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { addon: null, reason: `${what} failed to load: ${msg}` };
  }
}

/** Threads a native engine uses by default: the available cores, at most 8. */
export function defaultThreads(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, n));
}
