/**
 * Fuzzing the readers of files users hand to glonet, with fast-check (seeded: every run tries the
 * same inputs, so this never flakes): random and mutated CSV (plain and gzipped), IDX files, model
 * folders, experiment folders and run folders' metrics.json must end in success or in one of
 * glonet's one-line errors of bad input (DataError, BadFileError, ExperimentFileError...):
 * never another exception (which the CLI would report as an internal error), never a crash, and
 * each within a time box.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { loadCsv } from '../src/data/csv-dataset.js';
import { readIdx, loadIdxFolder, IDX_FILE_NAMES } from '../src/data/idx.js';
import { DataError } from '../src/data/dataset.js';
import { BadFileError, GlonetError, OutFolderError } from '../src/errors.js';
import { fakeExperiment } from './experiment-fixtures.js';
import { gatherResults } from '../src/experiments/results.js';
import { writeExperimentReport } from '../src/experiments/report.js';
import { openRun } from '../src/analysis/run-folder.js';
import { writeReport } from '../src/report/report.js';
import { refuseIfHoldsRun } from '../src/out-folder.js';
import { loadModel, saveModel } from '../src/model-io.js';
import { buildMlp } from '../src/models/mlp.js';
import { initBackend } from '../src/backend/index.js';
import { tmpDir } from './helpers.js';

const SEED = 20261129;
const TIME_BOX_MS = 10_000;

/** How the inputs of one test ended, to check the fuzzing reaches both sides. */
type Tally = { ok: number; refused: number };

/** Run one input; the result must be success or a one-line DataError/BadFileError, in time. */
async function mustEndWell(what: string, fn: () => unknown, tally: Tally): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${TIME_BOX_MS} ms`)), TIME_BOX_MS);
  });
  try {
    await Promise.race([Promise.resolve().then(fn), timeout]);
    tally.ok++;
  } catch (e) {
    // Bad input of any kind (a DataError, a BadFileError, an ExperimentFileError...): a one-line glonet error, exit code 2.
    if (!(e instanceof DataError || e instanceof BadFileError || (e instanceof GlonetError && e.kind === 'input'))) {
      throw new Error(`${what}: ended in ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    assert.ok(!e.message.includes('\n'), `${what}: a one-line message, got ${JSON.stringify(e.message)}`);
    tally.refused++;
  } finally {
    clearTimeout(timer);
  }
}

/** Edits applied to bytes: delete, insert or overwrite at a position, or cut the tail. */
type Edit = { kind: 'delete' | 'insert' | 'set' | 'cut'; at: number; byte: number };
const edits = fc.array(fc.record({ kind: fc.constantFrom('delete', 'insert', 'set', 'cut'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }) as fc.Arbitrary<Edit>, { minLength: 1, maxLength: 6 });

function applyEdits(bytes: Uint8Array, list: Edit[]): Uint8Array {
  let b = Array.from(bytes);
  for (const e of list) {
    const at = b.length ? e.at % (b.length + 1) : 0;
    if (e.kind === 'delete') b.splice(at, 1);
    else if (e.kind === 'insert') b.splice(at, 0, e.byte);
    else if (e.kind === 'set' && at < b.length) b[at] = e.byte;
    else if (e.kind === 'cut') b = b.slice(0, at);
  }
  return Uint8Array.from(b);
}

function validCsv(rows: number): string {
  const lines = ['a,b,y'];
  for (let i = 0; i < rows; i++) lines.push(`${i % 7},${(i * 3) % 5}.5,${(i % 7) - ((i * 3) % 5)}`);
  return lines.join('\n') + '\n';
}

test('fuzz: random and mutated CSV files (plain and gzipped) load or fail in one line', async () => {
  const dir = tmpDir();
  let n = 0;
  const tally: Tally = { ok: 0, refused: 0 };
  const csvChars = fc.constantFrom('1', '0', '-', '.', 'e', '9', 'E', '+', ',', ';', '\n', '\r', '"', ' ', 'a', 'y', 'b', '\u0000', '\uFEFF', 'Infinity', 'NaN', '1e308', '1e999');
  // Well-formed tables of any numbers (huge, tiny, negative zero: the values must be checked).
  const value = fc.oneof(fc.integer({ min: -9, max: 9 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e308, -1e308, 1e200, 5e-324, -0, 3.5e38));
  const table = fc.array(fc.tuple(value, value, value), { minLength: 10, maxLength: 40 })
    .map((rows) => ['a,b,y', ...rows.map((r) => r.join(','))].join('\n') + '\n');
  const inputs = fc.oneof(
    table.map((t) => ({ bytes: Buffer.from(t), gz: false })),
    fc.tuple(table, fc.boolean()).map(([t, gz]) => ({ bytes: Buffer.from(t), gz })),
    fc.string({ unit: csvChars, maxLength: 300 }).map((s) => ({ bytes: Buffer.from(s), gz: false })),
    fc.tuple(fc.integer({ min: 10, max: 40 }), edits, fc.boolean()).map(([rows, e, gz]) => ({ bytes: applyEdits(Buffer.from(validCsv(rows)), e), gz })),
    fc.tuple(fc.integer({ min: 10, max: 40 }), edits).map(([rows, e]) => ({ bytes: applyEdits(zlib.gzipSync(validCsv(rows)), e), gz: false })),
  );
  await fc.assert(fc.asyncProperty(inputs, async ({ bytes, gz }) => {
    const file = path.join(dir, `in-${n++}.csv${gz ? '.gz' : ''}`);
    fs.writeFileSync(file, gz ? zlib.gzipSync(bytes) : bytes);
    await mustEndWell(file, () => loadCsv({ data: file, target: 'y', seed: 1 }), tally);
  }), { seed: SEED, numRuns: 250 });
  assert.ok(tally.ok > 10 && tally.refused > 10, `both outcomes reached: ${JSON.stringify(tally)}`);
});

function idxBytes(kind: 'images' | 'labels', dims: number[], fill: (i: number) => number): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(kind === 'images' ? 0x803 : 0x801, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  return Buffer.concat([h, Buffer.from(Array.from({ length: n }, (_, i) => fill(i)))]);
}

test('fuzz: random and mutated IDX files read or fail in one line; folders of them load or fail in one line', async () => {
  const dir = tmpDir();
  let n = 0;
  const tally: Tally = { ok: 0, refused: 0 };
  const images = idxBytes('images', [30, 4, 4], (i) => (i * 37) % 256);
  const labels = idxBytes('labels', [30], (i) => i % 10);
  const valid = fc.record({ count: fc.integer({ min: 1, max: 40 }), rows: fc.integer({ min: 1, max: 5 }), cols: fc.integer({ min: 1, max: 5 }), labels: fc.boolean() })
    .map((d) => (d.labels ? idxBytes('labels', [d.count], (i) => i % 12) : idxBytes('images', [d.count, d.rows, d.cols], (i) => i % 256)));
  const oneFile = fc.oneof(
    valid,
    valid.map((b) => zlib.gzipSync(b)),
    fc.uint8Array({ maxLength: 64 }),
    edits.map((e) => applyEdits(images, e)),
    edits.map((e) => applyEdits(labels, e)),
    edits.map((e) => applyEdits(zlib.gzipSync(images), e)),
    // Headers with random dimensions: sizes must be checked before anything is allocated.
    fc.array(fc.nat({ max: 0xffffffff }), { minLength: 0, maxLength: 4 }).map((dims) => {
      const h = Buffer.alloc(4 + 4 * dims.length);
      h.writeUInt32BE(0x800 + dims.length, 0);
      dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
      return Buffer.concat([h, Buffer.alloc(16)]);
    }),
  );
  await fc.assert(fc.asyncProperty(oneFile, fc.constantFrom(...Object.values(IDX_FILE_NAMES)), async (bytes, name) => {
    const file = path.join(dir, `f-${n++}`);
    fs.writeFileSync(file, bytes);
    await mustEndWell(file, () => readIdx(file), tally);
    // The same file in place of one of a valid folder's four.
    const folder = path.join(dir, `d-${n}`);
    fs.mkdirSync(folder);
    for (const [key, base] of Object.entries(IDX_FILE_NAMES)) fs.writeFileSync(path.join(folder, base), key.endsWith('Images') ? images : labels);
    fs.writeFileSync(path.join(folder, name), bytes);
    await mustEndWell(folder, () => loadIdxFolder({ dir: folder, name: 'fuzz', label: 'fuzz', classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], subset: 12, seed: 1 }), tally);
  }), { seed: SEED, numRuns: 200 });
  assert.ok(tally.ok > 10 && tally.refused > 10, `both outcomes reached: ${JSON.stringify(tally)}`);
});

/** Every place in a JSON value, as a path of keys and indices. */
function jsonPaths(v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  const here = [at];
  if (Array.isArray(v)) return here.concat(...v.map((x, i) => jsonPaths(x, [...at, i])));
  if (v && typeof v === 'object') return here.concat(...Object.entries(v).map(([k, x]) => jsonPaths(x, [...at, k])));
  return here;
}

/** Replace or remove the value at a path (a path that an earlier edit removed is left alone). */
function setAt(root: unknown, p: Array<string | number>, value: unknown, remove: boolean): unknown {
  if (p.length === 0) return value;
  let o = root as Record<string | number, unknown>;
  for (const k of p.slice(0, -1)) {
    if (typeof o !== 'object' || o === null) return root;
    o = o[k] as Record<string | number, unknown>;
  }
  if (typeof o !== 'object' || o === null) return root;
  const last = p[p.length - 1];
  if (remove && Array.isArray(o)) o.splice(last as number, 1);
  else if (remove) delete o[last];
  else o[last] = value;
  return root;
}

test('fuzz: mutated model folders (model.json values, weights paths, weights.bin) load or fail in one line', async () => {
  await initBackend('cpu');
  const base = tmpDir();
  const model = buildMlp({ arch: 'glonet', depth: 2, inputShape: [3], outputs: 1, seed: 1 });
  await saveModel(model, base, { model: 'mlp', arch: 'glonet', depth: 2, task: 'regression', inputShape: [3], outputs: 1, blockLayers: [], epoch: 1 });
  const json = JSON.parse(fs.readFileSync(path.join(base, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(base, 'weights.bin'));
  const places = jsonPaths(json);
  const outside = path.join(tmpDir(), 'outside.bin');
  fs.writeFileSync(outside, weights);
  // Replacement values: JSON of every kind, kept small (a layer of a billion units is another
  // matter: it is TF.js that allocates it while building the model).
  const smallJson = fc.oneof(
    fc.constantFrom(null, true, false, '', 'x', '../outside.bin', '/etc/passwd', './weights.bin', 'float32', 'int32', 'string', 'uint8', -1, 0, 1, 3, 2.5, 1e300, [], {}, [1, 2], ['./weights.bin', './weights.bin']),
    fc.integer({ min: -2, max: 64 }),
    fc.string({ maxLength: 8 }),
  );
  const mutation = fc.oneof(
    fc.record({ json: fc.array(fc.record({ place: fc.nat(), value: smallJson, remove: fc.boolean() }), { minLength: 1, maxLength: 3 }), weights: fc.constant<Edit[]>([]), bytes: fc.constant<Edit[]>([]) }),
    fc.record({ json: fc.constant([]), weights: edits, bytes: fc.constant<Edit[]>([]) }),
    fc.record({ json: fc.constant([]), weights: fc.constant<Edit[]>([]), bytes: edits }),
  );
  let n = 0;
  const tally: Tally = { ok: 0, refused: 0 };
  await fc.assert(fc.asyncProperty(mutation, async (m) => {
    const dir = path.join(base, `m-${n++}`);
    fs.mkdirSync(dir);
    let doc: unknown = structuredClone(json);
    for (const { place, value, remove } of m.json) doc = setAt(doc, places[place % places.length], value, remove);
    let text = Buffer.from(JSON.stringify(doc));
    if (m.bytes.length) text = Buffer.from(applyEdits(text, m.bytes));
    fs.writeFileSync(path.join(dir, 'model.json'), text);
    fs.writeFileSync(path.join(dir, 'weights.bin'), applyEdits(weights, m.weights));
    fs.symlinkSync(outside, path.join(dir, 'link.bin'));
    await mustEndWell(dir, async () => {
      const { model: loaded } = await loadModel(dir);
      loaded.dispose();
    }, tally);
  }), { seed: SEED, numRuns: 200 });
  assert.ok(tally.ok > 10 && tally.refused > 10, `both outcomes reached: ${JSON.stringify(tally)}`);
  assert.ok(tf.memory().numTensors < 100, `loaded models are disposed: ${tf.memory().numTensors} tensors`);
});

test('fuzz: mutated experiment folders (experiment.json, each cell\'s metrics.json, analysis.json, cell.json, failed.json) report or fail in one line naming the file', async () => {
  const base = tmpDir('glonet-fuzz-exp-');
  const ids = fakeExperiment(base);
  const files = ['experiment.json', ...ids.flatMap((id) => ['metrics.json', 'analysis.json', 'cell.json', 'failed.json'].map((f) => path.join('cells', id, f)))];
  const docs = new Map(files.map((f) => [f, fs.existsSync(path.join(base, f)) ? JSON.parse(fs.readFileSync(path.join(base, f), 'utf8')) : { id: ids[0], error: 'fixture' }]));
  const smallJson = fc.oneof(
    fc.constantFrom(null, true, false, '', 'abc', '../../../runs/base1', '..', '/etc/passwd', -5, -1, 0, 1, 0.5, 2, 1e300, -1e300, 1e-300, [], {}, [1, 2], ['a', 'a']),
    fc.integer({ min: -3, max: 40 }),
    fc.double({ noNaN: true }),
    fc.string({ maxLength: 8 }),
  );
  const mutation = fc.record({
    file: fc.nat(),
    json: fc.array(fc.record({ place: fc.nat(), value: smallJson, remove: fc.boolean() }), { minLength: 0, maxLength: 3 }),
    bytes: fc.oneof(fc.constant<Edit[]>([]), edits),
    unlink: fc.boolean(),
  });
  let n = 0;
  const tally: Tally = { ok: 0, refused: 0 };
  await fc.assert(fc.asyncProperty(mutation, async (m) => {
    const dir = path.join(base, '..', `${path.basename(base)}-m${n++}`);
    fs.cpSync(base, dir, { recursive: true });
    const name = files[m.file % files.length];
    const file = path.join(dir, name);
    if (m.unlink && m.json.length === 0 && m.bytes.length === 0) {
      fs.rmSync(file, { force: true });
    } else {
      let doc: unknown = structuredClone(docs.get(name));
      const places = jsonPaths(doc);
      for (const { place, value, remove } of m.json) doc = setAt(doc, places[place % places.length], value, remove);
      let text = Buffer.from(JSON.stringify(doc));
      if (m.bytes.length) text = Buffer.from(applyEdits(text, m.bytes));
      fs.writeFileSync(file, text);
    }
    await mustEndWell(`${name} of ${dir}`, async () => {
      const { results } = gatherResults(dir);
      // What was read must be what the contracts say: numbers where numbers are, verdicts from the list.
      for (const c of results.cells) {
        assert.ok(c.bestTestError === null || (typeof c.bestTestError === 'number' && c.bestTestError >= 0), `${c.id}: bestTestError ${c.bestTestError}`);
        assert.ok(Number.isFinite(c.seconds) && c.seconds >= 0, `${c.id}: seconds ${c.seconds}`);
      }
      for (const cl of results.claims) assert.ok(['holds', 'partly', 'fails', 'not-measured'].includes(cl.verdict), cl.verdict);
      if (n % 10 === 0) await writeExperimentReport(dir);
    }, tally);
    fs.rmSync(dir, { recursive: true, force: true });
  }), { seed: SEED, numRuns: 150 });
  assert.ok(tally.ok > 10 && tally.refused > 10, `both outcomes reached: ${JSON.stringify(tally)}`);
});

test('fuzz: mutated metrics.json of a run folder: opening the run, its report and the out-folder check end well or in one line', async () => {
  await initBackend('cpu');
  const base = tmpDir('glonet-fuzz-run-');
  const model = buildMlp({ arch: 'glonet', depth: 2, inputShape: [3], outputs: 1, seed: 1 });
  await saveModel(model, path.join(base, 'model'), { model: 'mlp', arch: 'glonet', depth: 2, task: 'regression', inputShape: [3], outputs: 1, blockLayers: ['block_1', 'block_2'], epoch: 2 });
  model.dispose();
  const metrics = {
    config: { model: 'mlp', arch: 'glonet', dataset: 'csv', data: '/nonexistent/data.csv', target: 'y', depth: 2, width: 16, epochs: 2, batchSize: 64, optimizer: 'adam', lr: 0.01, momentum: 0, l2: 1e-5, schedule: 'constant', seed: 0, augment: false, backend: 'cpu', fast: 'off' },
    task: 'regression', params: 100, backend: 'cpu', engine: 'tfjs',
    data: { source: '/nonexistent/data.csv', nTrain: 160, nTest: 40, inputShape: [3], outputs: 1, fingerprint: { files: [{ path: '/nonexistent/data.csv', bytes: 10, sha256: '00' }] } },
    epochs: [{ epoch: 1, trainLoss: 2, testLoss: 1, testError: 1, seconds: 0.1, lr: 0.01 }, { epoch: 2, trainLoss: 1, testLoss: 0.5, testError: 0.5, seconds: 0.1, lr: 0.01 }],
    best: { epoch: 2, testError: 0.5 }, meanEpochSeconds: 0.1,
  };
  const places = jsonPaths(metrics);
  const smallJson = fc.oneof(
    fc.constantFrom(null, true, false, '', 'abc', '../x', '/dev/zero', -5, -1, 0, 1, 2.5, 1e300, -1e300, [], {}, [1, 2], 'regression', 'classification'),
    fc.integer({ min: -3, max: 10 }),
    fc.string({ maxLength: 8 }),
  );
  const mutation = fc.record({
    json: fc.array(fc.record({ place: fc.nat(), value: smallJson, remove: fc.boolean() }), { minLength: 1, maxLength: 4 }),
    bytes: fc.oneof(fc.constant<Edit[]>([]), edits),
  });
  let n = 0;
  const tally: Tally = { ok: 0, refused: 0 };
  await fc.assert(fc.asyncProperty(mutation, async (m) => {
    const dir = path.join(base, `r-${n++}`);
    fs.mkdirSync(dir);
    fs.cpSync(path.join(base, 'model'), path.join(dir, 'model'), { recursive: true });
    let doc: unknown = structuredClone(metrics);
    for (const { place, value, remove } of m.json) doc = setAt(doc, places[place % places.length], value, remove);
    let text = Buffer.from(JSON.stringify(doc));
    if (m.bytes.length) text = Buffer.from(applyEdits(text, m.bytes));
    fs.writeFileSync(path.join(dir, 'metrics.json'), text);
    await mustEndWell(`${dir}/metrics.json`, async () => {
      // Each reader on its own: one refusing must not hide another one crashing.
      const ends: Array<unknown> = [];
      for (const read of [
        async () => (await openRun(dir)).model.dispose(),
        () => writeReport(dir),
        () => refuseIfHoldsRun(dir, '--out', 'choose another --out'),
      ]) {
        try {
          await read();
          ends.push(null);
        } catch (e) {
          ends.push(e);
        }
      }
      const bad = ends.find((e) => e !== null && !(e instanceof GlonetError && e.kind === 'input'));
      if (bad) throw bad;
      assert.ok(ends[2] instanceof OutFolderError, 'a folder holding a run is refused as --out, whatever its metrics');
      // Counted as refused when the run itself could not be opened.
      if (ends[0] !== null) throw ends[0];
    }, tally);
  }), { seed: SEED, numRuns: 120 });
  assert.ok(tally.ok > 10 && tally.refused > 10, `both outcomes reached: ${JSON.stringify(tally)}`);
});
