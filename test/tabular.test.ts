import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadSgemm } from '../src/data/tabular.js';
import { loadCsv } from '../src/data/csv-dataset.js';
import { DataError } from '../src/data/dataset.js';
import { tmpDir } from './helpers.js';

function colStats(x: Float32Array, cols: number, c: number): { mean: number; std: number } {
  const n = x.length / cols;
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i * cols + c];
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (x[i * cols + c] - mean) ** 2;
  return { mean, std: Math.sqrt(q / n) };
}

test('SGEMM: 241,600 rows, 14 features, 80/20 split, z-scored with training statistics', async () => {
  const ds = await loadSgemm({ seed: 0 });
  assert.equal(ds.nTrain + ds.nTest, 241600);
  assert.equal(ds.nTrain, 193280);
  assert.equal(ds.nTest, 48320);
  assert.deepEqual(ds.inputShape, [14]);
  assert.equal(ds.xTrain.length, 193280 * 14);
  assert.equal(ds.standardization!.featureNames.length, 14);
  for (let c = 0; c < 14; c++) {
    const s = colStats(ds.xTrain, 14, c);
    assert.ok(Math.abs(s.mean) < 1e-4 && Math.abs(s.std - 1) < 1e-4, `feature ${c}: ${JSON.stringify(s)}`);
    // Test data uses the training statistics: close to, but not exactly, standard.
    const t = colStats(ds.xTest, 14, c);
    assert.ok(Math.abs(t.mean) < 0.05 && Math.abs(t.std - 1) < 0.05);
  }
  const y = colStats(ds.yTrain, 1, 0);
  assert.ok(Math.abs(y.mean) < 1e-4 && Math.abs(y.std - 1) < 1e-4);
  // Target = ln(mean of the 4 runs): the first row (runs 115.26, 115.87, 118.55, 115.8) in original units.
  const tgt = ds.standardization!.target!;
  assert.equal(tgt.transform, 'ln');
  assert.ok(tgt.mean > 4 && tgt.mean < 5.5, `mean ln(ms) ${tgt.mean}`);
});

test('SGEMM: seeded subset before the split, deterministic per seed', async () => {
  const a = await loadSgemm({ seed: 1, subset: 1000 });
  const b = await loadSgemm({ seed: 1, subset: 1000 });
  const c = await loadSgemm({ seed: 2, subset: 1000 });
  assert.equal(a.nTrain, 800);
  assert.equal(a.nTest, 200);
  assert.deepEqual(a.xTrain, b.xTrain);
  assert.notDeepEqual(a.xTrain, c.xTrain);
  await assert.rejects(loadSgemm({ subset: 300000 }), /--subset: .* has only 241600 rows/);
});

function writeCsv(name: string, text: string): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, text);
  return file;
}

test('CSV: comma or semicolon, quoted headers, --drop, regression on the target', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => [i, i * 2 % 7, 3 * i + 1]);
  const comma = writeCsv('a.csv', '"x one",x2,"y"\n' + rows.map((r) => r.join(',')).join('\n') + '\n');
  const semi = writeCsv('b.csv', 'x one;x2;label;y\n' + rows.map((r) => [r[0], r[1], 'cat', r[2]].join(';')).join('\n'));
  const a = await loadCsv({ data: comma, target: 'y', seed: 0 });
  const b = await loadCsv({ data: semi, target: 'y', drop: ['label'], seed: 0 });
  assert.equal(a.task, 'regression');
  assert.deepEqual(a.inputShape, [2]);
  assert.deepEqual(a.standardization!.featureNames, ['x one', 'x2']);
  assert.equal(a.nTrain, 40);
  assert.deepEqual(a.xTrain, b.xTrain);
  assert.deepEqual(a.yTest, b.yTest);
});

test('CSV: every bad input gets a clear error naming the file, line or column', async () => {
  const rows = Array.from({ length: 12 }, (_, i) => `${i},${i % 5},${(i * 7) % 3}`).join('\n');
  const f = writeCsv('c.csv', `a,b,y\n${rows}\n`);
  await assert.rejects(loadCsv({ data: f, target: 'zz' }), /--target: .* has no column 'zz' \(columns: 'a', 'b', 'y'\)/);
  await assert.rejects(loadCsv({ data: f, target: 'a', drop: ['nope'] }), /--drop: .* has no column 'nope'/);
  await assert.rejects(loadCsv({ data: f, target: 'a', drop: ['a'] }), /--drop: the target column 'a' cannot be dropped/);
  await assert.rejects(loadCsv({ data: f }), /--target/);
  await assert.rejects(loadCsv({ target: 'a' }), /--data/);
  await assert.rejects(loadCsv({ data: '/nonexistent.csv', target: 'a' }), /--data: \/nonexistent\.csv does not exist/);
  const ragged = writeCsv('d.csv', 'a,b\n1,2\n3\n');
  await assert.rejects(loadCsv({ data: ragged, target: 'a' }), /d\.csv line 3: .*(expected 2 fields|Invalid Record Length)/);
  const empty = writeCsv('e.csv', '');
  await assert.rejects(loadCsv({ data: empty, target: 'a' }), /e\.csv: empty file; a header row/);
  const blanks = writeCsv('e2.csv', '\n  \n\n');
  await assert.rejects(loadCsv({ data: blanks, target: 'a' }), /e2\.csv: empty file; a header row/);
  const few = writeCsv('g.csv', 'a,y\n1,2\n3,4\n');
  await assert.rejects(loadCsv({ data: few, target: 'y' }), /g\.csv: too few rows \(2\) for a train\/test split/);
  // --missing refuse keeps the old strictness: an empty cell is named.
  const missing = writeCsv('f.csv', `a,b,y\n${rows}\n1,,3\n`);
  await assert.rejects(loadCsv({ data: missing, target: 'y', missing: 'refuse' }), /f\.csv line 14: column 'b' is empty; expected a value in every row \(--missing refuse\)/);
});
