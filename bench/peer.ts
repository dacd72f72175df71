/** The PyTorch peer (shared/peers/pytorch_peer.py), run with Debian's /usr/bin/python3. */
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

/** torch's version, or why the peer cannot run. */
export function peerStatus(): { ok: true; version: string; path: string } | { ok: false; reason: string } {
  const p = peerPath();
  if (!p) return { ok: false, reason: 'the PyTorch peer script was not found (set GLONET_PYTORCH_PEER to pytorch_peer.py)' };
  if (!existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} is missing` };
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 180000 });
  if (r.status !== 0) return { ok: false, reason: 'torch is not installed for /usr/bin/python3 (apt-get install -y python3-torch)' };
  return { ok: true, version: r.stdout.trim(), path: p };
}

export interface PeerResult {
  msPerStep: number;
  samplesPerSec: number;
  params: number;
  threads: number;
}

export function runPeer(args: string[]): PeerResult | null {
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
