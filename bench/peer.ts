/**
 * The PyTorch peer (shared/peers/pytorch_peer.py), run with Debian's /usr/bin/python3.
 *
 * Debian's python3-torch multiplies matrices through the system's libblas.so.3, which is the
 * reference BLAS unless an optimized one is installed (`apt-get install libopenblas0-pthread`):
 * about 14x slower at matrix products, a peer no ratio should be taken against. The peer reports
 * the BLAS it has loaded; a peer on the reference BLAS is refused here (not run, with the reason).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = '/usr/bin/python3';

export function peerPath(): string | null {
  const candidates = [process.env.GLONET_PYTORCH_PEER, path.join(ROOT, '..', 'shared', 'peers', 'pytorch_peer.py')];
  return candidates.find((p): p is string => !!p && existsSync(p)) ?? null;
}

export interface PeerResult {
  msPerStep: number;
  samplesPerSec: number;
  params: number;
  threads: number;
  version: string;
  /** The BLAS library (or libraries) the peer's process loaded. */
  blas: string;
}

/** Whether the peer's BLAS is an optimized one (OpenBLAS, MKL, BLIS), not the reference BLAS. */
export function optimizedBlas(blas: string): boolean {
  return /openblas|mkl|blis/i.test(blas);
}

/** Runs the peer; its result line, or null (no peer, a failure, or the reference BLAS). */
export function runPeer(args: string[]): PeerResult | null {
  const r = runPeerRaw(args);
  return r != null && optimizedBlas(r.blas) ? r : null;
}

function runPeerRaw(args: string[]): PeerResult | null {
  const p = peerPath();
  if (!p) return null;
  const r = spawnSync(PYTHON, [p, ...args], { encoding: 'utf8', timeout: 1800000 });
  if (r.status !== 0) return null;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as PeerResult;
  } catch {
    return null;
  }
}

/**
 * Runs the peer as runPeer does, and adds the peak resident memory of its process (Python's
 * getrusage after the peer's own main has run; the peer script itself is unchanged).
 */
export function runPeerWithMemory(args: string[]): (PeerResult & { maxRssMB: number }) | null {
  const p = peerPath();
  if (!p) return null;
  const wrapper = 'import json, resource, runpy, sys\n' +
    'sys.argv = sys.argv[1:]\n' +
    'runpy.run_path(sys.argv[0], run_name="__main__")\n' +
    'print(json.dumps({"maxRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n';
  const r = spawnSync(PYTHON, ['-c', wrapper, p, ...args], { encoding: 'utf8', timeout: 1800000 });
  if (r.status !== 0) return null;
  const lines = r.stdout.trim().split('\n');
  try {
    const result = JSON.parse(lines[lines.length - 2]) as PeerResult;
    const mem = JSON.parse(lines[lines.length - 1]) as { maxRssMB: number };
    return optimizedBlas(result.blas) ? { ...result, maxRssMB: mem.maxRssMB } : null;
  } catch {
    return null;
  }
}

/** torch's version and BLAS, or why the peer cannot run (or must not be compared against). */
export function peerStatus(): { ok: true; version: string; blas: string; path: string } | { ok: false; reason: string } {
  const p = peerPath();
  if (!p) return { ok: false, reason: 'the PyTorch peer script was not found (set GLONET_PYTORCH_PEER to pytorch_peer.py)' };
  if (!existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} is missing` };
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 180000 });
  if (r.status !== 0) return { ok: false, reason: 'torch is not installed for /usr/bin/python3 (apt-get install -y python3-torch libopenblas0-pthread)' };
  // A one-step run of the peer reports its torch version and the BLAS it loaded.
  const probe = runPeerRaw(['mlp', '--arch', 'glonet', '--depth', '2', '--steps', '1', '--warmup', '0']);
  if (probe == null) return { ok: false, reason: `the PyTorch peer (${p}) failed to run` };
  if (!optimizedBlas(probe.blas)) {
    return { ok: false, reason: `PyTorch multiplies matrices with the reference BLAS (${probe.blas}), about 14x slower than it can; no ratio is taken against it (apt-get install -y libopenblas0-pthread)` };
  }
  return { ok: true, version: probe.version, blas: probe.blas, path: p };
}
