/**
 * One commit per epoch: everything `--resume` needs after epoch N (the model, the optimizer
 * state, the metrics) is written into a fresh temporary folder, flushed to the disk, listed with
 * the size and SHA-256 of every file in `commit.json`, and then renamed to
 * `DIR/checkpoint/epoch-NNNNNN/` in one step. That rename is the commit: an epoch folder exists
 * complete or not at all, and `--resume` still checks every file against commit.json, so a
 * damaged epoch is found and the previous one used.
 *
 * After the commit the epoch is published: its model is copied to `DIR/model/` and its metrics to
 * `DIR/metrics.json` (each replaced atomically), and only then are older epoch folders removed.
 * So at every moment the last committed epoch is on disk complete, and the public files hold it
 * or the one before.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { checkReadable, hashFile, makeDirs, readFileChecked, readJson, syncDir, tempName, writeDirAtomic, writeFileAtomic, writeFileDurable, writing } from '../io.js';
import { BadFileError, shown } from '../errors.js';
import { LIMITS } from '../limits.js';
import { loadModel, modelFiles } from '../model-io.js';
import type { NamedArray } from '../engines/types.js';
import type { Metrics } from '../contracts.js';
import type { ModelMetadata } from '../model-metadata.js';

const CHECKPOINT_DIR = 'checkpoint';
const COMMIT_FILE = 'commit.json';
const FORMAT = 1;

/** state.json of an epoch folder: the optimizer slots' layout in optimizer.bin. */
interface CheckpointState {
  /** The epoch whose end this folder holds. */
  epoch: number;
  engine: string;
  slots: Array<{ name: string; shape: number[]; offset: number; length: number }>;
}

interface CommitRecord {
  format: number;
  epoch: number;
  files: Array<{ name: string; bytes: number; sha256: string }>;
}

interface EpochContent {
  model: tf.LayersModel;
  meta: ModelMetadata;
  engine: string;
  slots: NamedArray[];
  metrics: Metrics;
}

export const epochFolderName = (epoch: number): string => `epoch-${String(epoch).padStart(6, '0')}`;
const EPOCH_FOLDER = /^epoch-(\d{6,})$/;

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

function optimizerFiles(epoch: number, engine: string, slots: NamedArray[]): { state: CheckpointState; bin: Uint8Array } {
  let offset = 0;
  const state: CheckpointState = { epoch, engine, slots: [] };
  for (const s of slots) {
    state.slots.push({ name: s.name, shape: s.shape, offset, length: s.values.length });
    offset += s.values.length;
  }
  const all = new Float32Array(offset);
  slots.forEach((s, i) => all.set(s.values, state.slots[i].offset));
  return { state, bin: new Uint8Array(all.buffer) };
}

/** Write epoch N's commit under runDir/checkpoint/ and return its folder. */
export async function commitEpoch(runDir: string, epoch: number, c: EpochContent): Promise<CommittedEpoch> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  const name = epochFolderName(epoch);
  const final = path.join(root, name);
  const tmp = tempName(final);
  const { json, weights } = await modelFiles(c.model, { ...c.meta, epoch });
  const { state, bin } = optimizerFiles(epoch, c.engine, c.slots);
  const files: Array<[string, string | Uint8Array]> = [
    ['weights.bin', weights],
    ['model.json', json],
    ['optimizer.bin', bin],
    ['state.json', JSON.stringify(state, null, 2) + '\n'],
    ['metrics.json', JSON.stringify(c.metrics, null, 2) + '\n'],
  ];
  const record: CommitRecord = { format: FORMAT, epoch, files: files.map(([n, d]) => ({ name: n, bytes: typeof d === 'string' ? Buffer.byteLength(d) : d.byteLength, sha256: sha256(d) })) };
  writing(final, () => {
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
      makeDirs(tmp);
      for (const [n, d] of files) writeFileDurable(path.join(tmp, n), d);
      writeFileDurable(path.join(tmp, COMMIT_FILE), JSON.stringify(record, null, 2) + '\n');
      syncDir(tmp);
      // An epoch folder left by a run that went back to an earlier epoch is replaced.
      fs.rmSync(final, { recursive: true, force: true });
      fs.renameSync(tmp, final);
      syncDir(root);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  });
  return { epoch, folder: final };
}

/** The files an epoch folder holds; commit.json may list only these. */
const EPOCH_FILES = ['model.json', 'weights.bin', 'optimizer.bin', 'state.json', 'metrics.json'] as const;
/** The largest file of an epoch folder: weights and the optimizer's slots of the largest model (src/limits.ts). */
const EPOCH_FILE_MAX = 3 * LIMITS.weightBytes.max;

/** The run folder of an epoch folder (DIR/checkpoint/epoch-NNNNNN/ -> DIR). */
const runOf = (epochFolder: string): string => path.dirname(path.dirname(epochFolder));

/** Why an epoch folder cannot be trusted, or undefined when every file matches its commit. */
function epochProblem(folder: string, epoch: number): string | undefined {
  // Every file read lies inside the run folder (DIR/checkpoint/epoch-N/ -> DIR), links followed.
  const within = runOf(folder);
  let record: CommitRecord;
  try {
    record = readJson<CommitRecord>(path.join(folder, COMMIT_FILE), 'commit record', { within, maxBytes: 1 << 20, why: 'it lists five files' });
  } catch (e) {
    return (e as Error).message;
  }
  if (record?.format !== FORMAT || record.epoch !== epoch || !Array.isArray(record.files)) {
    return `${path.join(folder, COMMIT_FILE)}: not a commit record of epoch ${epoch}`;
  }
  for (const f of record.files) {
    // Only the epoch's own file names: an entry such as '../../dev/zero' or '/etc/passwd' is damage, never read.
    const name = (f as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || !(EPOCH_FILES as readonly string[]).includes(name)) {
      return `${path.join(folder, COMMIT_FILE)}: lists ${typeof name === 'string' ? shown(name) : shown(JSON.stringify(name) ?? String(name))}, which is not a file of an epoch folder (${EPOCH_FILES.join(', ')})`;
    }
    if (!Number.isSafeInteger(f.bytes) || f.bytes < 0 || typeof f.sha256 !== 'string') return `${path.join(folder, COMMIT_FILE)}: the entry of ${name} has no size and checksum`;
    const file = path.join(folder, name);
    let size: number;
    try {
      size = checkReadable(file, { what: 'checkpoint file', within, maxBytes: EPOCH_FILE_MAX, why: LIMITS.weightBytes.why }).size;
    } catch (e) {
      return /does not exist/.test((e as Error).message) ? `${file}: missing` : (e as Error).message;
    }
    // The size first: a file of the wrong size is damaged without reading a byte of it.
    if (size !== f.bytes || hashFile(file, { what: 'checkpoint file', within, maxBytes: EPOCH_FILE_MAX }).sha256 !== f.sha256) {
      return `${file}: damaged (its size or checksum is not the committed one)`;
    }
  }
  for (const n of EPOCH_FILES) {
    if (!record.files.some((f) => f?.name === n)) return `${path.join(folder, COMMIT_FILE)}: does not list ${n}`;
  }
  return undefined;
}

export interface CommittedEpoch {
  epoch: number;
  folder: string;
}

/** The epoch folders under runDir/checkpoint/, newest first. */
function epochFolders(runDir: string): CommittedEpoch[] {
  const root = path.join(runDir, CHECKPOINT_DIR);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) return [];
  return fs.readdirSync(root)
    .map((n) => ({ n, m: EPOCH_FOLDER.exec(n) }))
    .filter((e) => e.m)
    .map((e) => ({ epoch: Number(e.m![1]), folder: path.join(root, e.n) }))
    .sort((a, b) => b.epoch - a.epoch);
}

/**
 * The newest epoch whose files all match their commit record, and the newer ones that do not
 * (each with its problem). `found` is undefined when no epoch can be trusted.
 */
export function lastConsistentEpoch(runDir: string): { found?: CommittedEpoch; damaged: Array<CommittedEpoch & { problem: string }> } {
  const damaged: Array<CommittedEpoch & { problem: string }> = [];
  for (const e of epochFolders(runDir)) {
    const problem = epochProblem(e.folder, e.epoch);
    if (!problem) return { found: e, damaged };
    damaged.push({ ...e, problem });
  }
  return { damaged };
}

/** True when runDir/checkpoint/ holds the single-folder checkpoint of glonet before epoch commits. */
export function hasOldCheckpoint(runDir: string): boolean {
  return fs.existsSync(path.join(runDir, CHECKPOINT_DIR, 'state.json'));
}

/** Read a verified epoch folder: its model, optimizer state and metrics. */
export async function readEpoch(e: CommittedEpoch): Promise<{ model: tf.LayersModel; meta: ModelMetadata; state: CheckpointState; slots: NamedArray[]; metrics: Metrics }> {
  const within = { within: runOf(e.folder) };
  const state = readJson<CheckpointState>(path.join(e.folder, 'state.json'), 'checkpoint state', within);
  const metrics = readJson<Metrics>(path.join(e.folder, 'metrics.json'), 'checkpoint metrics', within);
  const binFile = path.join(e.folder, 'optimizer.bin');
  const buf = readFileChecked(binFile, 'optimizer state', { ...within, maxBytes: EPOCH_FILE_MAX, why: LIMITS.weightBytes.why });
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength - (buf.byteLength % 4)));
  if (!Array.isArray(state?.slots) || typeof state.engine !== 'string') throw new BadFileError(`${path.join(e.folder, 'state.json')}: expected {epoch, engine, slots: [...]}`);
  const slots = state.slots.map((s, i) => {
    if (typeof s?.name !== 'string' || !Array.isArray(s.shape) || !Number.isSafeInteger(s.offset) || !Number.isSafeInteger(s.length) ||
      s.offset < 0 || s.length < 0 || s.offset + s.length > all.length) {
      throw new BadFileError(`${path.join(e.folder, 'state.json')}: slot ${i + 1} does not lie within optimizer.bin (${all.length} values)`);
    }
    return { name: s.name, shape: s.shape, values: all.slice(s.offset, s.offset + s.length) };
  });
  const { model, meta } = await loadModel(e.folder);
  return { model, meta, state, slots, metrics };
}

/** Copy a committed epoch to the public files: DIR/model/ first, then DIR/metrics.json. */
export async function publishEpoch(runDir: string, e: CommittedEpoch): Promise<void> {
  await writeDirAtomic(path.join(runDir, 'model'), (tmp) => {
    for (const f of ['model.json', 'weights.bin']) fs.copyFileSync(path.join(e.folder, f), path.join(tmp, f));
  });
  writeFileAtomic(path.join(runDir, 'metrics.json'), readFileChecked(path.join(e.folder, 'metrics.json'), 'checkpoint metrics', { within: runOf(e.folder) }));
}

/** Remove every epoch folder but `keep`, and the checkpoint files of older glonet versions. */
export function pruneEpochs(runDir: string, keep: CommittedEpoch): void {
  const root = path.join(runDir, CHECKPOINT_DIR);
  for (const e of epochFolders(runDir)) if (e.folder !== keep.folder) fs.rmSync(e.folder, { recursive: true, force: true });
  for (const old of ['state.json', 'optimizer.bin']) fs.rmSync(path.join(root, old), { force: true });
}
