/**
 * The API documentation is complete: TypeDoc (typedoc.json, as `npm run docs` runs it) converts
 * both package entries with its validation on (every exported symbol documented, every type the
 * API names exported, every {@link} resolved) and warnings as errors, without writing the site.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './helpers.js';

test('npm run docs finds every export documented (TypeDoc validation, warnings as errors)', () => {
  // A checkout without an "origin" remote (a local clone of a clone, a CI copy) cannot link to its
  // sources, and TypeDoc warns about that; this test is about the documentation, so such a
  // checkout converts without source links.
  const origin = spawnSync('git', ['-C', ROOT, 'remote', 'get-url', 'origin'], { encoding: 'utf8' });
  const noSources = origin.status === 0 ? [] : ['--disableSources'];
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none', ...noSources], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const warnings = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => /\[(warning|error)\]/.test(l));
  assert.deepEqual(warnings, []);
  assert.equal(r.status, 0, `typedoc exited with ${r.status}`);
});
