/** Shared test helpers: temporary folders and running the CLI in a child process. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RunResult } from '../src/train/run.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'glonet.js');

export function tmpDir(prefix = 'glonet-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string>; uid?: number; gid?: number; timeout?: number } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...opts.env },
    uid: opts.uid, gid: opts.gid, timeout: opts.timeout,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Run a Node ES module's source in a fresh process (from the repo root) and return its stdout. */
export function runNode(source: string): string {
  // Inside the repository, so the script resolves packages from its node_modules.
  const dir = path.join(ROOT, 'test-output', 'scripts');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `script-${process.pid}-${Date.now()}.mjs`);
  fs.writeFileSync(file, source);
  const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') } });
  if (r.status !== 0) throw new Error(`script failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(1e-6, scale);
}

/** The test MSE of the model a run saved in DIR/model, computed in TF.js from the run's test set. */
export async function savedModelTestMse(dir: string, r: Pick<RunResult, 'dataset'>): Promise<number> {
  const tf = await import('@tensorflow/tfjs');
  const { loadModel } = await import('../src/model-io.js');
  const { model } = await loadModel(path.join(dir, 'model'));
  const ds = r.dataset;
  const pred = tf.tidy(() => (model.predict(tf.tensor(ds.xTest, [ds.nTest, ...ds.inputShape])) as import('@tensorflow/tfjs').Tensor).dataSync());
  model.dispose();
  let mse = 0;
  for (let i = 0; i < ds.nTest; i++) mse += (pred[i] - ds.yTest[i]) ** 2;
  return mse / ds.nTest;
}
