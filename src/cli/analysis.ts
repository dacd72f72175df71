/** `glonet analyze`, `glonet truncate` and `glonet predict`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { BACKENDS, initBackend } from '../backend/index.js';
import { openRun } from '../analysis/run-folder.js';
import { analyzeRun, describeAnalysis, truncateRun } from '../analysis/run.js';
import { checkOutputs, readModelInput } from '../analysis/inputs.js';
import { csvHeader, csvLine, predictAll, Predictions, PREDICT_BATCH } from '../analysis/predictions.js';
import type { RowNotes, TableEncoding } from '../data/table-encoding.js';
import { modelEncoding } from '../analysis/model-encoding.js';
import { shown } from '../errors.js';
import { phaseProgress } from './phase-progress.js';
import { nonNegativeNumber, positiveInt } from './parse.js';

const backendOption = () => new Option('--backend <name>', 'TF.js backend (default: the fastest that loads)').choices(BACKENDS);

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description('block norms, truncation curve and effective depth of a trained run: writes DIR/analysis.json and refreshes DIR/report.html')
    .argument('<dir>', 'run folder written by glonet train')
    .option('--samples <n>', 'test samples for the block norms (default 5000, or all if fewer)', positiveInt)
    .option('--tolerance <t>', 'effective depth: relative MSE tolerance (default 0.05) or accuracy points as a fraction (default 0.005)', nonNegativeNumber)
    .addOption(backendOption())
    .action(async (dir: string, o: { samples?: number; tolerance?: number; backend?: string }) => {
      const a = await analyzeRun(dir, o);
      const run = await openRun(dir);
      for (const l of describeAnalysis(a, run.metrics, dir)) process.stdout.write(l + '\n');
      process.stdout.write(`wrote ${path.join(dir, 'analysis.json')} and ${path.join(dir, 'report.html')}\n`);
    });
}

export function truncateCommand(): Command {
  return new Command('truncate')
    .description('keep the first K blocks of a trained GloNet (no retraining) and save the smaller model')
    .argument('<dir>', 'run folder written by glonet train')
    .requiredOption('--blocks <k>', 'blocks to keep', positiveInt)
    .requiredOption('--out <dir2>', 'folder for the truncated model (never the run itself)')
    .option('--overwrite', 'replace the run or model --out holds; without it such a folder is refused')
    .addOption(backendOption())
    .action(async (dir: string, o: { blocks: number; out: string; backend?: string; overwrite?: boolean }) => {
      const r = await truncateRun(dir, o.blocks, o.out, { backend: o.backend, overwrite: o.overwrite });
      const test = r.metrics.epochs[0];
      const err = r.metrics.task === 'classification' ? `test accuracy ${((test.testAccuracy ?? 0) * 100).toFixed(2)}%` : `test MSE ${test.testError.toFixed(4)}`;
      process.stdout.write(`kept ${o.blocks} of ${r.metrics.truncatedFrom!.of} blocks: ${r.metrics.params} parameters (was ${r.fullParams}), ${err}\nwrote ${path.join(o.out, 'model')} and ${path.join(o.out, 'metrics.json')}\n`);
    });
}

/** Write to stdout, waiting while its buffer is full; false once stdout is closed (its reader left). */
async function writeOut(text: string): Promise<boolean> {
  const out = process.stdout;
  if (out.destroyed || out.writableEnded) return false;
  if (out.write(text)) return true;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
  return !out.destroyed;
}

/** One line for stderr about the cells predict filled in or did not recognise, or undefined. */
function notesSummary(file: string, notes: Map<number, RowNotes>, enc: TableEncoding | undefined): string | undefined {
  const missing = new Map<string, number>();
  const unknown = new Map<string, Map<string, number>>();
  let missingRows = 0;
  let unknownRows = 0;
  for (const n of notes.values()) {
    if (n.missing) missingRows++;
    if (n.unknown) unknownRows++;
    for (const c of n.missing ?? []) missing.set(c, (missing.get(c) ?? 0) + 1);
    for (const u of n.unknown ?? []) {
      const m = unknown.get(u.column) ?? new Map<string, number>();
      m.set(u.level, (m.get(u.level) ?? 0) + 1);
      unknown.set(u.column, m);
    }
  }
  const parts: string[] = [];
  const rows = (n: number) => `${n} row${n === 1 ? '' : 's'}`;
  if (missingRows) parts.push(`${rows(missingRows)} with missing values, filled in as in training (${[...missing].map(([c, n]) => `${shown(c)} ${n}`).join(', ')})`);
  if (unknownRows) {
    const pooled = (c: string) => enc?.columns.some((col) => col.name === c && col.kind === 'categorical' && col.otherLevel) === true;
    const levels = [...unknown].map(([c, m]) => `${shown(c)}: ${[...m].slice(0, 5).map(([l, n]) => `${shown(l, 30)} ${n}`).join(', ')}${m.size > 5 ? ` and ${m.size - 5} more` : ''}${pooled(c) ? ', as (other)' : ', as no level'}`);
    parts.push(`${rows(unknownRows)} with a level not seen in training (${levels.join('; ')})`);
  }
  return parts.length ? `--input ${file}: ${parts.join('; ')}` : undefined;
}

/** Inputs this large get a progress bar on a terminal. */
const LONG_INPUT_BYTES = 8 << 20;

export function predictCommand(): Command {
  return new Command('predict')
    .description('predict the rows of a CSV (raw rows with the training columns) or a JSON array with a trained or truncated model: the label and each class\'s probability, or the value')
    .argument('<dir>', 'run folder (glonet train or truncate)')
    .requiredOption('--input <file>', 'CSV with the training columns (raw units, words and empty cells as in training), or JSON: array of objects keyed by column, or of arrays')
    .option('--explain', 'add each block\'s additive contribution to the predicted class\'s logit or the prediction (GloNet models with a linear head)')
    .addOption(new Option('--format <f>', 'output format: json, or csv (row, label, probability, p_CLASS for each class; or row, prediction)').choices(['json', 'csv']).default('json'))
    .addOption(backendOption())
    .action(async (dir: string, o: { input: string; explain?: boolean; format: 'json' | 'csv'; backend?: string }) => {
      await initBackend(o.backend);
      const run = await openRun(dir);
      const meta = run.meta;
      let size = 0;
      try {
        size = fs.statSync(o.input).size;
      } catch {
        // readModelInput names the problem.
      }
      const bar = phaseProgress(size > LONG_INPUT_BYTES);
      try {
        bar.phase('reading', size);
        const input = await readModelInput(o.input, meta, (done, total) => (total ? bar.update(done) : undefined));
        bar.phase('predicting', input.rows);
        const raw = predictAll(run.model, meta.inputShape, input.x, input.rows, (done) => bar.update(done));
        checkOutputs(raw, input, meta);
        const p = new Predictions(run.model, meta, Boolean(o.explain));
        const summary = notesSummary(o.input, input.notes, modelEncoding(meta));
        bar.phase('writing', input.rows);
        for (let start = 0; start < input.rows; start += PREDICT_BATCH) {
          const count = Math.min(PREDICT_BATCH, input.rows - start);
          const rows = p.rows(raw, input.x, start, count, input.notes);
          let text: string;
          if (o.format === 'json') {
            text = (start === 0 ? '[\n' : ',\n') + rows.map((r) => JSON.stringify(r, null, 2).replace(/^/gm, '  ')).join(',\n');
          } else {
            const blocks = rows[0].explanation?.blocks.length ?? 0;
            text = (start === 0 ? csvHeader(meta, p.classNames, blocks) + '\n' : '') + rows.map((r) => csvLine(r, p.classNames)).join('\n') + '\n';
          }
          if (!(await writeOut(text))) break;
          bar.update(start + count);
        }
        if (o.format === 'json') await writeOut('\n]\n');
        bar.stop();
        if (summary) process.stderr.write(`glonet: ${summary}\n`);
      } finally {
        bar.stop();
      }
    });
}
