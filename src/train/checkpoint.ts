/** Optimizer state saved next to the model after every epoch, so `--resume` continues exactly. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic, readJson } from '../io.js';
import type { NamedArray } from '../engines/types.js';

export interface CheckpointState {
  /** The last finished epoch (the model in DIR/model holds its weights). */
  epoch: number;
  engine: string;
  slots: Array<{ name: string; shape: number[]; offset: number; length: number }>;
}

export async function saveCheckpoint(dir: string, epoch: number, engine: string, slots: NamedArray[]): Promise<void> {
  let offset = 0;
  const state: CheckpointState = { epoch, engine, slots: [] };
  for (const s of slots) {
    state.slots.push({ name: s.name, shape: s.shape, offset, length: s.values.length });
    offset += s.values.length;
  }
  const all = new Float32Array(offset);
  slots.forEach((s, i) => all.set(s.values, state.slots[i].offset));
  await writeDirAtomic(dir, (tmp) => {
    fs.writeFileSync(path.join(tmp, 'optimizer.bin'), new Uint8Array(all.buffer));
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify(state, null, 2));
  });
}

export function loadCheckpoint(dir: string): { state: CheckpointState; slots: NamedArray[] } {
  const state = readJson<CheckpointState>(path.join(dir, 'state.json'), 'checkpoint');
  const buf = fs.readFileSync(path.join(dir, 'optimizer.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const slots = state.slots.map((s) => ({ name: s.name, shape: s.shape, values: all.slice(s.offset, s.offset + s.length) }));
  return { state, slots };
}
