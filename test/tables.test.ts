/**
 * Your own table, as it comes (issue 19): class labels, categorical columns and missing values in
 * CSV files, on the real tables of ../shared/datasets/tables (penguins, also bundled as
 * data/penguins.csv; arrests and prestige, GPL, read from ../shared only and skipped without it),
 * and the CSV-reading problems of issue 20. Each test trains little: few epochs, small tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { familyDefaults } from '../src/models/index.js';
import { runTraining, type RunResult } from '../src/train/run.js';
import { createProgress } from '../src/train/progress.js';
import { loadCsv } from '../src/data/csv-dataset.js';
import { readCsvTable, rawCell } from '../src/data/csv.js';
import { DataError } from '../src/data/dataset.js';
import { decodeRow, encodeRow, encodingProblem, inputCount, parseCell, type Cell } from '../src/data/table-encoding.js';
import { loadModel } from '../src/model-io.js';
import { explain } from '../src/analysis/explain.js';
import { analyzeRun, truncateRun } from '../src/analysis/run.js';
import { getExperiment } from '../src/experiments/index.js';
import type { ExperimentCell, Metrics } from '../src/contracts.js';
import type { RunConfig } from '../src/vocabulary.js';
import { phaseProgress } from '../src/cli/phase-progress.js';
import { ROOT, runCli, tmpDir } from './helpers.js';

await initBackend('cpu');

const PENGUINS = path.join(ROOT, 'data', 'penguins.csv');
const SHARED = path.join(ROOT, '..', 'shared', 'datasets', 'tables');
const ARRESTS = path.join(SHARED, 'arrests.csv');
const PRESTIGE = path.join(SHARED, 'prestige.csv');
const NO_SHARED = fs.existsSync(ARRESTS) && fs.existsSync(PRESTIGE) ? false
  : `the GPL tables arrests.csv and prestige.csv are read from ${SHARED} (never bundled); not found, so these checks are skipped`;

const quiet = { progress: createProgress({ quiet: true }), log: () => {} };

function cfg(over: Partial<RunConfig>): RunConfig {
  return { ...familyDefaults('mlp'), model: 'mlp', arch: 'glonet', dataset: 'csv', depth: 10, epochs: 20, batchSize: 32, seed: 0, augment: false, backend: 'cpu', fast: 'auto', ...over };
}

/** What glonet said on stderr: its own lines (TF.js prints a banner there on the cpu backend). */
const said = (stderr: string): string => stderr.split('\n').filter((l) => l.startsWith('glonet')).map((l) => `${l}\n`).join('');

function writeCsv(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The majority class of the training rows and its share of the test rows (the constant guess's accuracy). */
function constantGuess(ds: RunResult['dataset']): { accuracy: number; logLoss: number } {
  const counts = new Array<number>(ds.outputs).fill(0);
  for (let i = 0; i < ds.nTrain; i++) counts[ds.yTrain[i]]++;
  const majority = counts.indexOf(Math.max(...counts));
  let hits = 0;
  let logLoss = 0;
  for (let i = 0; i < ds.nTest; i++) {
    if (ds.yTest[i] === majority) hits++;
    logLoss -= Math.log(counts[ds.yTest[i]] / ds.nTrain);
  }
  return { accuracy: hits / ds.nTest, logLoss: logLoss / ds.nTest };
}

// ---------------------------------------------------------------------------------------------
// Reading the real tables.

test('penguins: species from words, island and sex one-hot, empty cells imputed, every class on both sides of the split', async () => {
  const ds = await loadCsv({ data: PENGUINS, target: 'species', seed: 0 });
  assert.equal(ds.task, 'classification');
  assert.deepEqual(ds.classNames, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.equal(ds.nTrain + ds.nTest, 344, 'no species is missing: every row is kept');
  const enc = ds.encoding!;
  assert.deepEqual(enc.columns.map((c) => `${c.name}:${c.kind}`), ['island:categorical', 'bill_length_mm:numeric', 'bill_depth_mm:numeric', 'flipper_length_mm:numeric', 'body_mass_g:numeric', 'sex:categorical', 'year:numeric']);
  const sex = enc.columns[5];
  assert.ok(sex.kind === 'categorical' && sex.missingLevel && sex.levels.join() === 'female,male', 'sex: a (missing) level besides female and male');
  const bill = enc.columns[1];
  assert.ok(bill.kind === 'numeric' && bill.indicator, 'the measurements have empty cells: a missing indicator');
  assert.deepEqual(ds.inputShape, [inputCount(enc)]);
  for (const [y, n] of [[ds.yTrain, ds.nTrain], [ds.yTest, ds.nTest]] as const) {
    assert.deepEqual(new Set(Array.from(y.subarray(0, n))), new Set([0, 1, 2]), 'all three species');
  }
  // Stratified: each class's test share is 20% of its rows, to the row.
  const all = [0, 1, 2].map((k) => Array.from(ds.yTrain).filter((v) => v === k).length + Array.from(ds.yTest).filter((v) => v === k).length);
  [0, 1, 2].forEach((k) => assert.equal(Array.from(ds.yTest).filter((v) => v === k).length, Math.round(all[k] * 0.2)));
  // The same seed gives the same split and inputs; another seed another split.
  const again = await loadCsv({ data: PENGUINS, target: 'species', seed: 0 });
  assert.deepEqual(again.xTest, ds.xTest);
  assert.notDeepEqual((await loadCsv({ data: PENGUINS, target: 'species', seed: 1 })).rows!.test, ds.rows!.test);
});

test('penguins: every test row decodes back to its raw cells, and encoding the raw cells gives the inputs bit for bit', async () => {
  const ds = await loadCsv({ data: PENGUINS, target: 'species', seed: 0 });
  const enc = ds.encoding!;
  const table = await readCsvTable(PENGUINS);
  const cols = enc.columns.map((c) => table.columns.find((t) => t.name === c.name)!);
  const d = inputCount(enc);
  let missing = 0;
  ds.rows!.test.forEach((r, i) => {
    const raw: Cell[] = cols.map((c) => rawCell(c, r));
    missing += raw.filter((v) => v === null).length;
    const out = new Float32Array(d);
    encodeRow(enc, raw, out, 0, () => `row ${r}`);
    assert.deepEqual(out, ds.xTest.subarray(i * d, (i + 1) * d), `test row ${i}`);
    // Categorical levels and numbers come back; a missing value comes back as null.
    const back = decodeRow(enc, ds.xTest, i * d);
    back.forEach((v, k) => (enc.columns[k].kind === 'numeric' && raw[k] !== null
      ? assert.ok(Math.abs((v as number) - (raw[k] as number)) <= 1e-6 * Math.abs(raw[k] as number), `${enc.columns[k].name}: ${v} vs ${raw[k]}`)
      : assert.equal(v, raw[k])));
  });
  assert.ok(missing > 0, 'the test rows include empty cells');
});

test('prestige: the unnamed first column is \'column 1\', left out as names with a note; --drop and --categorical accept its name', { skip: NO_SHARED }, async () => {
  const ds = await loadCsv({ data: PRESTIGE, target: 'prestige', seed: 0 });
  assert.equal(ds.task, 'regression');
  assert.ok(ds.notes!.some((n) => /left out 'column 1' \(no header\): its 82 values in the training rows are all different, like names or IDs; keep it with --categorical 'column 1'/.test(n)), ds.notes!.join('; '));
  assert.deepEqual(ds.encoding!.columns.map((c) => c.name), ['education', 'income', 'women', 'census', 'type']);
  const type = ds.encoding!.columns[4];
  assert.ok(type.kind === 'categorical' && type.levels.join() === 'bc,prof,wc' && type.missingLevel, 'type: bc, prof, wc and (missing)');
  const dropped = await loadCsv({ data: PRESTIGE, target: 'prestige', seed: 0, drop: ['column 1'] });
  assert.deepEqual(dropped.notes, []);
  assert.deepEqual(dropped.xTest, ds.xTest);
  const kept = await loadCsv({ data: PRESTIGE, target: 'prestige', seed: 0, categorical: ['column 1'] });
  assert.equal(kept.encoding!.columns[0].name, 'column 1');
});

test('arrests: released Yes/No from four word columns and three numbers, no notes', { skip: NO_SHARED }, async () => {
  const ds = await loadCsv({ data: ARRESTS, target: 'released', seed: 0 });
  assert.deepEqual(ds.classNames, ['No', 'Yes']);
  assert.deepEqual(ds.encoding!.columns.map((c) => `${c.name}:${c.kind}`), ['colour:categorical', 'year:numeric', 'age:numeric', 'sex:categorical', 'employed:categorical', 'citizen:categorical', 'checks:numeric']);
  assert.equal(ds.nTrain + ds.nTest, 5226);
  assert.deepEqual(ds.notes, []);
  // --categorical reads a numeric column's values as levels: year has six.
  const byYear = await loadCsv({ data: ARRESTS, target: 'released', seed: 0, categorical: ['year'] });
  const year = byYear.encoding!.columns[1];
  assert.ok(year.kind === 'categorical');
  assert.deepEqual(year.levels, ['1997', '1998', '1999', '2000', '2001', '2002']);
});

// ---------------------------------------------------------------------------------------------
// Bad tables: one clear line each, naming the file, column and row.

test('bad tables get one line naming the file, column and row', async () => {
  const dir = tmpDir();
  const rows = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('\n') + '\n';
  const fails = async (file: string, o: Parameters<typeof loadCsv>[0], re: RegExp) => {
    await assert.rejects(loadCsv({ data: file, seed: 0, ...o }), (e: Error) => {
      assert.ok(e instanceof DataError, `${e.name}: ${e.message}`);
      assert.doesNotMatch(e.message, /\n/);
      assert.match(e.message, re);
      return true;
    });
  };
  const one = writeCsv(dir, 'one.csv', 'x,y\n' + rows(20, (i) => `${i},same`));
  await fails(one, { target: 'y' }, /one\.csv: the target column 'y' has the single class 'same' in every row; a classifier needs at least two classes/);
  const lonely = writeCsv(dir, 'lonely.csv', 'x,y\n' + rows(20, (i) => `${i},${i === 7 ? 'rare' : i % 2 ? 'a' : 'b'}`));
  await fails(lonely, { target: 'y' }, /lonely\.csv: class 'rare' of the target has 1 row \(line 9\); each class needs at least 2 \(one to train on, one to test on\)/);
  const many = writeCsv(dir, 'many.csv', 'x,y\n' + rows(40, (i) => `${i % 3},c${i % 20}`));
  await fails(many, { target: 'y', maxClasses: 10 }, /many\.csv: the target column 'y' has 20 distinct values, more than 10 classes; raise the limit with --max-classes 20/);
  assert.equal((await loadCsv({ data: many, target: 'y', maxClasses: 20 })).outputs, 20, '--max-classes lifts the limit');
  // The library checks the options the command line checks.
  await fails(many, { target: 'y', maxClasses: 1 }, /--max-classes: expected an integer of at least 2, got 1/);
  await fails(many, { target: 'y', maxLevels: 0.5 }, /--max-levels: expected a positive integer, got 0\.5/);
  await fails(many, { target: 'y', task: 'clustering' as never }, /--task: expected classification or regression, got 'clustering'/);
  const codes = writeCsv(dir, 'codes.csv', 'x,y\n' + rows(30, (i) => `${i},${i % 3}`));
  assert.equal((await loadCsv({ data: codes, target: 'y' })).task, 'regression', 'numbers are regression by default');
  const asClasses = await loadCsv({ data: codes, target: 'y', task: 'classification' });
  assert.deepEqual(asClasses.classNames, ['0', '1', '2'], '--task classification reads numeric codes as classes');
  const words = writeCsv(dir, 'words.csv', 'x,y\n' + rows(30, (i) => `${i},w${i % 3}`));
  await fails(words, { target: 'y', task: 'regression' }, /words\.csv line 2: the target column 'y' holds words \('w0'\); a regression target must be numeric/);
  const empty = writeCsv(dir, 'emptycol.csv', 'x,blank,y\n' + rows(20, (i) => `${i},,${i % 4}`));
  await fails(empty, { target: 'y' }, /emptycol\.csv: column 'blank' is empty in every row; leave it out with --drop 'blank'/);
  assert.equal((await loadCsv({ data: empty, target: 'y', drop: ['blank'] })).inputShape[0], 1);
  const dup = writeCsv(dir, 'dup.csv', 'x,x,y\n' + rows(20, (i) => `${i},${i},${i % 4}`));
  await fails(dup, { target: 'y' }, /dup\.csv line 1: column name 'x' appears twice/);
  const stray = writeCsv(dir, 'stray.csv', 'x,y\n' + rows(20, (i) => `${i === 4 ? 'unknown' : i},${i % 4}`));
  await fails(stray, { target: 'y' }, /stray\.csv line 6: column 'x' holds numbers \(19 of 20 values\) but here has the word 'unknown'; .*--categorical 'x'.*--drop 'x'/);
  const constant = writeCsv(dir, 'constant.csv', 'x,y\n' + rows(20, (i) => `${i},3.5`));
  await fails(constant, { target: 'y' }, /constant\.csv: the target column 'y' has the same value 3\.5 in every row; there is nothing to predict/);
  const noTarget = writeCsv(dir, 'notarget.csv', 'x,y\n' + rows(20, (i) => `${i},`));
  await fails(noTarget, { target: 'y' }, /notarget\.csv: the target column 'y' is empty in every row/);
  // Empty targets are left out and counted; --missing refuse names the first one instead.
  const gaps = writeCsv(dir, 'gaps.csv', 'x,y\n' + rows(30, (i) => `${i},${i % 10 === 3 ? 'NA' : i % 3}`));
  const kept = await loadCsv({ data: gaps, target: 'y', seed: 0 });
  assert.equal(kept.nTrain + kept.nTest, 27);
  assert.deepEqual(kept.notes, ['left out 3 of 30 rows whose target \'y\' is missing']);
  await fails(gaps, { target: 'y', missing: 'refuse' }, /gaps\.csv line 5: the target column 'y' is empty; expected a value in every row \(--missing refuse\)/);
  // Past --max-levels, the rarer levels share one (other) input, where an unseen level goes too.
  const wide = writeCsv(dir, 'wide.csv', 'city,y\n' + rows(120, (i) => `${i < 60 ? 'big' : `town${i % 30}`},${i % 2}`));
  const pooled = await loadCsv({ data: wide, target: 'y', task: 'classification', maxLevels: 5 });
  const city = pooled.encoding!.columns[0];
  assert.ok(city.kind === 'categorical' && city.otherLevel && city.levels.length === 5 && city.levels.includes('big'));
  const out = new Float32Array(inputCount(pooled.encoding!));
  const notes = encodeRow(pooled.encoding!, ['atlantis'], out, 0, () => 'a row');
  assert.deepEqual(Array.from(out), [0, 0, 0, 0, 0, 1], 'an unseen level is (other)');
  assert.deepEqual(notes, { unknown: [{ column: 'city', level: 'atlantis' }] });
});

// ---------------------------------------------------------------------------------------------
// Issue 20, CSV reading.

test('issue 20: hex and binary are words, a trailing comma names its column by position, blank lines, tabs, an unclosed quote, a constant target, --augment', async () => {
  const dir = tmpDir();
  const body = Array.from({ length: 20 }, (_, i) => [i, (i * 7) % 5, i % 3]);
  // 0x10 and 0b101 are not numbers: refused in a numeric column, words where the column is words.
  assert.equal(parseCell('0x10'), '0x10');
  assert.equal(parseCell('0b101'), '0b101');
  assert.equal(parseCell(' 1.5e3 '), 1500);
  const hex = writeCsv(dir, 'hex.csv', 'a,b,y\n' + body.map(([a, b, y], i) => `${i === 2 ? '0x10' : a},${b},${y}`).join('\n'));
  await assert.rejects(loadCsv({ data: hex, target: 'y' }), /hex\.csv line 4: column 'a' holds numbers \(19 of 20 values\) but here has the word '0x10'/);
  const hexWords = writeCsv(dir, 'hexwords.csv', 'code,y\n' + body.map(([, b, y], i) => `0b10${i % 4},${y + b}`).join('\n'));
  const hw = await loadCsv({ data: hexWords, target: 'y' });
  const code = hw.encoding!.columns[0];
  assert.ok(code.kind === 'categorical' && code.levels.join() === '0b100,0b101,0b102,0b103', 'a column of 0b.. values is a column of words');
  // The numeric-only reader (SGEMM's) refuses them too.
  const { readNumericCsv } = await import('../src/data/csv.js');
  await assert.rejects(readNumericCsv(hex), /hex\.csv line 4: column 'a' has the non-numeric value '0x10'/);

  // A trailing comma: an empty header is 'column 4'; with no values it is left out with a note...
  const trailing = writeCsv(dir, 'trailing.csv', 'a,b,y,\n' + body.map((r) => `${r.join(',')},`).join('\n'));
  const t1 = await loadCsv({ data: trailing, target: 'y' });
  assert.deepEqual(t1.encoding!.columns.map((c) => c.name), ['a', 'b']);
  assert.deepEqual(t1.notes, ['left out \'column 4\': it has no header and no values (a trailing separator in the header?)']);
  // ...and with values it is a column like any other, which --drop 'column 4' leaves out.
  const named = writeCsv(dir, 'named.csv', 'a,b,y,\n' + body.map((r, i) => `${r.join(',')},${i % 2}`).join('\n'));
  assert.deepEqual((await loadCsv({ data: named, target: 'y' })).encoding!.columns.map((c) => c.name), ['a', 'b', 'column 4']);
  assert.deepEqual((await loadCsv({ data: named, target: 'y', drop: ['column 4'] })).encoding!.columns.map((c) => c.name), ['a', 'b']);
  // A column that holds one value in every training row (here the probe's trailing comma with a
  // 1 on every line, and a named one) carries nothing: left out, each with a note.
  const ones = writeCsv(dir, 'ones.csv', 'a,b,k,y,\n' + body.map((r) => `${r[0]},${r[1]},same,${r[2]},1`).join('\n'));
  const o1 = await loadCsv({ data: ones, target: 'y' });
  assert.deepEqual(o1.encoding!.columns.map((c) => c.name), ['a', 'b']);
  assert.deepEqual(o1.notes, [
    'left out \'k\': it holds \'same\' in every training row, so it carries nothing to learn from',
    'left out \'column 5\' (no header): it holds \'1\' in every training row, so it carries nothing to learn from',
  ]);
  const cli = runCli(['train', '--dataset', 'csv', '--data', named, '--target', 'y', '--drop', 'column 4', '--depth', '2', '--epochs', '1', '--no-report', '--backend', 'cpu', '--out', path.join(dir, 'drop-run')]);
  assert.equal(cli.code, 0, cli.stderr);

  // Blank lines before the header, tabs, and the plain file give the same data.
  const plain = await loadCsv({ data: writeCsv(dir, 'plain.csv', 'a,b,y\n' + body.map((r) => r.join(',')).join('\n')), target: 'y' });
  const blank = await loadCsv({ data: writeCsv(dir, 'blank.csv', '\n  \r\n\na,b,y\n' + body.map((r) => r.join(',')).join('\n')), target: 'y' });
  const tabs = await loadCsv({ data: writeCsv(dir, 'tabs.tsv', 'a\tb\ty\n' + body.map((r) => r.join('\t')).join('\n')), target: 'y' });
  assert.deepEqual(blank.xTest, plain.xTest);
  assert.deepEqual(tabs.xTest, plain.xTest);
  assert.deepEqual(tabs.encoding!.columns.map((c) => c.name), ['a', 'b']);

  // An unclosed quote is named where it opens, not at the end of the file.
  const quote = writeCsv(dir, 'quote.csv', 'a,b,y\n1,2,3\n4,"5,6\n' + body.map((r) => r.join(',')).join('\n') + '\n');
  await assert.rejects(loadCsv({ data: quote, target: 'y' }), /quote\.csv line 3: a quoted field opens here and is never closed/);
  const quoted = await loadCsv({ data: writeCsv(dir, 'quoted.csv', '"a","b","y"\n' + body.map((r) => `"${r[0]}",${r[1]},"${r[2]}"`).join('\n')), target: 'y' });
  assert.deepEqual(quoted.xTest, plain.xTest, 'quoted numbers are numbers');

  // A constant target is refused (above); --augment with a table is refused before anything is written.
  const out = path.join(dir, 'augment-run');
  const aug = runCli(['train', '--dataset', 'csv', '--data', named, '--target', 'y', '--depth', '2', '--epochs', '1', '--augment', '--out', out]);
  assert.equal(aug.code, 2);
  assert.match(said(aug.stderr), /^glonet: --augment: random flips and crops apply to image data sets; csv is a table\n$/);
  assert.ok(!fs.existsSync(out));
  await assert.rejects(runTraining(cfg({ data: named, target: 'y', augment: true }), path.join(dir, 'api-augment'), quiet), /--augment: random flips and crops apply to images; csv is a table/);
  // The CSV options are refused for other data sets, naming only those given.
  assert.match(said(runCli(['train', '--depth', '2', '--categorical', 'a', '--missing', 'refuse', '--out', path.join(dir, 'sg')]).stderr), /^glonet: --categorical, --missing: these options apply to --dataset csv only\n$/);
});

// ---------------------------------------------------------------------------------------------
// Training, saving, predicting.

test('penguins and arrests classify above the constant guess at depths 10 and 50', async (t) => {
  const dir = tmpDir();
  const tables: Array<[string, string, string | false]> = [['penguins', PENGUINS, false], ['arrests', ARRESTS, NO_SHARED]];
  for (const [name, file, skip] of tables) {
    if (skip) {
      t.diagnostic(`${name}: ${skip}`);
      continue;
    }
    for (const depth of [10, 50]) {
      const epochs = name === 'penguins' ? 30 : 12;
      const r = await runTraining(cfg({ data: file, target: name === 'penguins' ? 'species' : 'released', depth, epochs, batchSize: name === 'penguins' ? 32 : 128 }), path.join(dir, `${name}-${depth}`), quiet);
      const guess = constantGuess(r.dataset);
      const last = r.metrics.epochs[r.metrics.epochs.length - 1];
      const best = r.metrics.epochs.find((e) => e.epoch === r.metrics.best!.epoch)!;
      t.diagnostic(`${name} depth ${depth}: last-epoch accuracy ${(last.testAccuracy! * 100).toFixed(1)}%, best ${(best.testAccuracy! * 100).toFixed(1)}%, test cross-entropy ${last.testLoss.toFixed(3)}; constant guess ${(guess.accuracy * 100).toFixed(1)}%, cross-entropy ${guess.logLoss.toFixed(3)}`);
      assert.ok(Math.abs(r.metrics.data!.constantError! - (1 - guess.accuracy)) < 1e-12, 'metrics.json records the constant guess');
      if (name === 'penguins') {
        // Three species, 44% for the constant guess: GloNet separates them.
        assert.ok(last.testAccuracy! >= 0.95, `penguins depth ${depth}: ${last.testAccuracy}`);
      } else {
        // 83% of the arrested are released: accuracy stays near that for every model (scikit-learn's
        // logistic regression scores 82.7% on this split), so the learning shows in the probabilities.
        assert.ok(last.testLoss < guess.logLoss - 0.02, `arrests depth ${depth}: cross-entropy ${last.testLoss} vs ${guess.logLoss}`);
        assert.ok(best.testAccuracy! >= guess.accuracy, `arrests depth ${depth}: best accuracy ${best.testAccuracy} vs ${guess.accuracy}`);
      }
      const cm = r.metrics.confusion!;
      assert.equal(cm.epoch, last.epoch);
      const diagonal = cm.matrix.reduce((s, row, k) => s + row[k], 0);
      const total = cm.matrix.flat().reduce((a, b) => a + b, 0);
      assert.equal(total, r.dataset.nTest);
      assert.ok(Math.abs(diagonal / total - last.testAccuracy!) < 1e-12, 'the confusion matrix agrees with the accuracy');
      r.model.dispose();
    }
  }
});

test('penguins end to end: the encoding round-trips through save, load and predict; an unseen level and empty cells predict; explanations add up', async () => {
  const dir = tmpDir();
  const run = path.join(dir, 'run');
  const r = await runTraining(cfg({ data: PENGUINS, target: 'species', depth: 10, epochs: 25 }), run, quiet);
  const { model, meta } = await loadModel(path.join(run, 'model'));
  assert.deepEqual(meta.encoding, r.dataset.encoding, 'the encoding is saved with the model');
  assert.equal(encodingProblem(meta.encoding, meta.inputShape[0], meta.outputs), undefined);

  // The test rows, raw, through glonet predict: the same probabilities as the model on the training-time inputs.
  const lines = fs.readFileSync(PENGUINS, 'utf8').trimEnd().split('\n');
  const testRows = Array.from(r.dataset.rows!.test);
  const input = writeCsv(dir, 'rows.csv', [lines[0], ...testRows.map((i) => lines[i + 1])].join('\n') + '\n');
  const p = runCli(['predict', run, '--input', input, '--backend', 'cpu']);
  assert.equal(p.code, 0, p.stderr);
  const got = JSON.parse(p.stdout) as Array<{ row: number; label: string; class: number; probability: number; probabilities: Record<string, number>; missing?: string[] }>;
  assert.equal(got.length, testRows.length);
  const direct = tf.tidy(() => tf.softmax(model.predict(tf.tensor(r.dataset.xTest, [r.dataset.nTest, meta.inputShape[0]])) as tf.Tensor).dataSync());
  got.forEach((g, i) => {
    assert.equal(g.row, i + 1);
    assert.equal(g.label, meta.classNames![g.class]);
    ['Adelie', 'Chinstrap', 'Gentoo'].forEach((c, k) => assert.ok(Math.abs(g.probabilities[c] - direct[i * 3 + k]) < 1e-6, `row ${i + 1} p(${c})`));
    assert.ok(Math.abs(Object.values(g.probabilities).reduce((a, b) => a + b, 0) - 1) < 1e-9);
  });
  const right = got.filter((g, i) => g.class === r.dataset.yTest[i]).length;
  assert.ok(right / got.length >= 0.95, `${right} of ${got.length} right`);

  // Rows with an island never seen in training and with empty cells (as written in the file and as NA).
  const odd = writeCsv(dir, 'odd.csv', [
    'sex,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,year,extra',
    'female,Atlantis,39.5,17.4,186,3800,2007,ignored',
    ',Biscoe,NA,,217,,2009,ignored',
    'male,Dream,49.0,19.5,210,3950,2008,ignored',
  ].join('\n') + '\n');
  const q = runCli(['predict', run, '--input', odd, '--explain', '--backend', 'cpu']);
  assert.equal(q.code, 0, q.stderr);
  const rows = JSON.parse(q.stdout) as Array<{ label: string; probability: number; logits: number[]; class: number; missing?: string[]; unknown?: Array<{ column: string; level: string }>; explanation: { bias: number; blocks: number[] } }>;
  assert.deepEqual(rows[0].unknown, [{ column: 'island', level: 'Atlantis' }]);
  assert.deepEqual(rows[1].missing, ['bill_length_mm', 'bill_depth_mm', 'body_mass_g']);
  assert.equal(rows[2].missing, undefined);
  assert.match(said(q.stderr), /^glonet: --input .*odd\.csv: 1 row with missing values, filled in as in training \('bill_length_mm' 1, 'bill_depth_mm' 1, 'body_mass_g' 1\); 1 row with a level not seen in training \('island': 'Atlantis' 1, as no level\)\n$/);
  for (const row of rows) {
    assert.ok(['Adelie', 'Chinstrap', 'Gentoo'].includes(row.label));
    const sum = row.explanation.bias + row.explanation.blocks.reduce((a, b) => a + b, 0);
    assert.equal(row.explanation.blocks.length, 10);
    assert.ok(Math.abs(sum - row.logits[row.class]) <= 1e-4 * Math.max(1, Math.abs(sum)), `bias + blocks ${sum} vs the predicted class's logit ${row.logits[row.class]}`);
  }
  // The same rows in Node: encodeRow and explain give the same explanation.
  const cells: Cell[][] = [['Atlantis', 39.5, 17.4, 186, 3800, 'female', 2007], ['Biscoe', null, null, 217, null, null, 2009]];
  cells.forEach((c, i) => {
    const x = new Float32Array(inputCount(meta.encoding!));
    encodeRow(meta.encoding!, c, x, 0, () => 'node');
    const t = tf.tensor(x, [1, x.length]);
    const e = explain(model, meta, t);
    t.dispose();
    e.contributions.filter((_, j) => j % 3 === rows[i].class).forEach((v, l) => assert.ok(Math.abs(v - rows[i].explanation.blocks[l]) < 1e-5, `row ${i + 1} block ${l + 1}`));
  });
  // --format csv: the label and one probability column per class.
  const c = runCli(['predict', run, '--input', odd, '--format', 'csv', '--backend', 'cpu']);
  assert.equal(c.code, 0, c.stderr);
  const csvLines = c.stdout.trimEnd().split('\n');
  assert.equal(csvLines[0], 'row,label,probability,p_Adelie,p_Chinstrap,p_Gentoo');
  assert.equal(csvLines.length, 4);
  assert.equal(csvLines[1].split(',')[1], rows[0].label);
  // A CSV without a training column, and a word in a numeric column, are named.
  const bad = writeCsv(dir, 'bad.csv', 'island,bill_length_mm\nDream,40\n');
  assert.match(said(runCli(['predict', run, '--input', bad, '--backend', 'cpu']).stderr), /^glonet: --input: .*bad\.csv: missing columns 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g', 'sex', 'year'; expected the training columns/);
  const word = writeCsv(dir, 'word.csv', lines[0] + '\n"Adelie","Dream",forty,18,190,3700,"male",2008\n');
  const w = runCli(['predict', run, '--input', word, '--backend', 'cpu']);
  assert.equal(w.code, 2);
  assert.match(said(w.stderr), /^glonet: --input: .*word\.csv line 2: column 'bill_length_mm' has 'forty', a word; expected a number or an empty cell \(the model reads this column as numeric\)\n$/);
  // JSON rows keyed by column, with null for a missing value.
  const json = writeCsv(dir, 'rows.json', JSON.stringify([{ island: 'Dream', bill_length_mm: 49, bill_depth_mm: 19.5, flipper_length_mm: 210, body_mass_g: null, sex: 'male', year: 2008 }]));
  const j = runCli(['predict', run, '--input', json, '--backend', 'cpu']);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout)[0].missing, ['body_mass_g']);
  model.dispose();
  r.model.dispose();

  // analyze and truncate read the run through its saved encoding: accuracy curves; the report has the confusion matrix.
  const a = await analyzeRun(run, { backend: 'cpu' });
  assert.equal(a.truncation!.length, 10);
  const full = a.truncation![9];
  const metrics = JSON.parse(fs.readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Metrics;
  assert.ok(Math.abs(full.testAccuracy! - metrics.epochs[metrics.epochs.length - 1].testAccuracy!) < 1e-12, 'k = L is the last epoch\'s accuracy');
  const html = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
  assert.match(html, /<h3>Confusion matrix<\/h3>/);
  assert.match(html, /<th scope="row">Chinstrap<\/th>/);
  assert.match(html, /Always guessing the most frequent training class would score 43\.5%/);
  const t3 = await truncateRun(run, 3, path.join(dir, 'first3'), { backend: 'cpu' });
  assert.ok(Math.abs(t3.metrics.epochs[0].testAccuracy! - a.truncation![2].testAccuracy!) < 1e-12, 'truncate agrees with the truncation curve');
  const tp = runCli(['predict', path.join(dir, 'first3'), '--input', odd, '--backend', 'cpu']);
  assert.equal(tp.code, 0, tp.stderr);
  assert.equal(JSON.parse(tp.stdout)[0].unknown[0].level, 'Atlantis', 'a truncated model keeps the encoding');
});

test('predict is batched: more rows than one batch give what one forward pass gives, in order', async () => {
  const dir = tmpDir();
  const n = 9000; // more than two batches of 4096
  const lines = ['a,b,kind,y'];
  for (let i = 0; i < n; i++) lines.push(`${(i * 37) % 101},${((i * 11) % 17) / 3},${['p', 'q', 'r'][i % 3]},${((i * 37) % 101) / 10 - ((i * 11) % 17) / 3 + (i % 3)}`);
  const file = writeCsv(dir, 'many.csv', lines.join('\n') + '\n');
  const run = path.join(dir, 'run');
  const r = await runTraining(cfg({ data: file, target: 'y', depth: 4, epochs: 2, batchSize: 512 }), run, quiet);
  const p = runCli(['predict', run, '--input', file, '--format', 'csv', '--backend', 'cpu']);
  assert.equal(p.code, 0, p.stderr);
  const out = p.stdout.trimEnd().split('\n');
  assert.equal(out[0], 'row,prediction');
  assert.equal(out.length, n + 1);
  // Every row in Node, in one forward pass, through the saved encoding.
  const { model, meta } = await loadModel(path.join(run, 'model'));
  const enc = meta.encoding!;
  const d = inputCount(enc);
  const x = new Float32Array(n * d);
  lines.slice(1).forEach((l, i) => {
    const [a, b, kind] = l.split(',');
    encodeRow(enc, [Number(a), Number(b), kind], x, i * d, () => `row ${i}`);
  });
  const y = tf.tidy(() => (model.predict(tf.tensor(x, [n, d])) as tf.Tensor).dataSync());
  const t = meta.standardization!.target!;
  for (let i = 0; i < n; i += 97) {
    const [row, pred] = out[i + 1].split(',').map(Number);
    assert.equal(row, i + 1);
    assert.ok(Math.abs(pred - (y[i] * t.std + t.mean)) <= 1e-5 * Math.max(1, Math.abs(pred)), `row ${i + 1}: ${pred}`);
  }
  model.dispose();
  r.model.dispose();
});

test('the progress bar: on a terminal for long inputs only, on stderr', () => {
  const written: string[] = [];
  const fake = Object.assign(Object.create(process.stderr) as NodeJS.WriteStream, {
    isTTY: true, columns: 80,
    write: (s: string) => { written.push(String(s)); return true; },
    cursorTo: () => true, clearLine: () => true, moveCursor: () => true,
  });
  const bar = phaseProgress(true, fake);
  bar.phase('predicting', 100);
  bar.update(50);
  bar.stop();
  assert.ok(written.some((s) => /predicting/.test(s)), `a bar was drawn: ${JSON.stringify(written.slice(0, 3))}`);
  const none: string[] = [];
  const short = phaseProgress(false, Object.assign(Object.create(process.stderr) as NodeJS.WriteStream, { isTTY: true, write: (s: string) => { none.push(s); return true; } }));
  short.phase('predicting', 100);
  short.update(50);
  short.stop();
  const pipe = phaseProgress(true, Object.assign(Object.create(process.stderr) as NodeJS.WriteStream, { isTTY: false, write: (s: string) => { none.push(s); return true; } }));
  pipe.phase('predicting', 100);
  pipe.stop();
  assert.deepEqual(none, [], 'no bar for short inputs or when stderr is not a terminal');
});

test('a model.json whose encoding is damaged is refused in one line', async () => {
  const dir = tmpDir();
  const run = path.join(dir, 'run');
  const r = await runTraining(cfg({ data: PENGUINS, target: 'species', depth: 2, epochs: 1 }), run, quiet);
  r.model.dispose();
  const file = path.join(run, 'model', 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const enc = json.userDefinedMetadata.glonet.encoding;
  enc.columns[0].levels.push('Biscoe');
  fs.writeFileSync(file, JSON.stringify(json));
  const p = runCli(['predict', run, '--input', PENGUINS, '--backend', 'cpu']);
  assert.equal(p.code, 2);
  assert.match(said(p.stderr), /^glonet: .*model\.json: .*encoding column 'island': a categorical column needs distinct levels/);
  enc.columns[0].levels.pop();
  enc.target.classes = ['Adelie', 'Gentoo'];
  fs.writeFileSync(file, JSON.stringify(json));
  assert.match(runCli(['predict', run, '--input', PENGUINS, '--backend', 'cpu']).stderr, /encoding\.target has 2 classes, but the model has 3 outputs/);
});

test('csv-depth judges a table of classes by accuracy and a numeric one by MSE', () => {
  const exp = getExperiment('csv-depth');
  const cell = (arch: string, depth: number, acc: number | null, err: number): ExperimentCell => ({
    id: `${arch}-${depth}`, model: 'mlp', arch, depth, seed: 0, dataset: 'csv', nTrain: 275, nTest: 69, constantError: 0.5, epochs: 10,
    bestTestError: err, ...(acc != null ? { bestTestAccuracy: acc } : {}), bestEpoch: 5, meanEpochSeconds: 0.1, seconds: 1, engine: 'fused-native', backend: 'cpu', effectiveDepth: null,
  });
  const cls = [cell('glonet', 10, 0.97, 0.03), cell('glonet', 50, 0.96, 0.04), cell('vanilla', 10, 0.9, 0.1), cell('vanilla', 50, 0.5, 0.5), cell('vanilla-nobn', 50, 0.505, 0.495), cell('resnetv2-nobn', 10, 0.95, 0.05), cell('resnetv2-nobn', 50, 0.9, 0.1)];
  const judged = Object.fromEntries(exp.claims.map((c) => [c.id, c.judge(cls)]));
  // 1 point apart, worth less than one of 69 test rows (1.45 points): flat.
  assert.equal(judged['glonet-depth-flat'].verdict, 'holds', judged['glonet-depth-flat'].ours);
  assert.equal(judged['vanilla-collapse'].verdict, 'holds', judged['vanilla-collapse'].ours);
  assert.match(judged['vanilla-collapse'].ours, /the constant guess scores 50%/);
  assert.equal(judged['resnetv2-nobn-degrades'].verdict, 'holds', judged['resnetv2-nobn-degrades'].ours);
  const versus = exp.claims.find((c) => c.id === 'glonet-vs-resnetv2')!;
  const vr = (g: number, r: number, depth = 50) => versus.judge([cell('glonet', depth, g, 1 - g), cell('resnetv2', depth, r, 1 - r)]);
  assert.equal(vr(0.96, 0.965).verdict, 'holds', 'half a point behind, under one test row');
  assert.equal(vr(0.9, 0.97).verdict, 'fails');
  assert.equal(vr(0.9, 0.89, 200).verdict, 'holds', 'ahead from 200 blocks');
  assert.match(vr(0.96, 0.965).ours, /GloNet minus ResNetv2 best accuracy, points/);
  // The same cells 20 points apart: not flat. A numeric target's cells keep the MSE rules.
  assert.equal(exp.claims[0].judge([cell('glonet', 10, 0.97, 0.03), cell('glonet', 50, 0.77, 0.23)]).verdict, 'fails');
  assert.equal(exp.claims[0].judge([cell('glonet', 10, null, 0.02), cell('glonet', 50, null, 0.021)]).verdict, 'holds');
  assert.match(exp.claims[0].rule, /a numeric target: .*; a target of classes: /);
});
