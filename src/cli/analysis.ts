/** `glonet analyze`, `glonet truncate` and `glonet predict`. */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command, Option } from 'commander';
import { BACKENDS, initBackend } from '../backend/index.js';
import { openRun } from '../analysis/run-folder.js';
import { analyzeRun, describeAnalysis, truncateRun } from '../analysis/run.js';
import { explain } from '../analysis/explain.js';
import { checkOutputs, readModelInput } from '../analysis/inputs.js';
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

function softmax(logits: number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

export function predictCommand(): Command {
  return new Command('predict')
    .description('predict the rows of a CSV (training columns) or a JSON array with a trained or truncated model')
    .argument('<dir>', 'run folder (glonet train or truncate)')
    .requiredOption('--input <file>', 'CSV with the training columns (raw units), or JSON: array of objects keyed by column, or of arrays')
    .option('--explain', 'add each block\'s additive contribution (GloNet models with a linear head)')
    .addOption(new Option('--format <f>', 'output format').choices(['json', 'csv']).default('json'))
    .addOption(backendOption())
    .action(async (dir: string, o: { input: string; explain?: boolean; format: 'json' | 'csv'; backend?: string }) => {
      await initBackend(o.backend);
      const run = await openRun(dir);
      const meta = run.meta;
      const input = await readModelInput(o.input, meta);
      const x = tf.tensor(input.x, [input.rows, ...meta.inputShape]);
      let raw: Float32Array;
      let e: ReturnType<typeof explain> | undefined;
      if (o.explain) {
        e = explain(run.model, meta, x);
        raw = e.prediction;
      } else {
        raw = tf.tidy(() => (run.model.predict(x) as tf.Tensor).dataSync() as Float32Array).slice();
      }
      x.dispose();
      checkOutputs(raw, input, meta);
      const out = meta.outputs;
      const target = meta.standardization?.target;
      // Regression outputs are z-scores of the target; the map back is affine, so contributions
      // scale by std and the mean joins the bias: the sum still equals the prediction.
      const scale = meta.task === 'regression' && target ? target.std : 1;
      const shift = meta.task === 'regression' && target ? target.mean : 0;
      const results = Array.from({ length: input.rows }, (_, r) => {
        const logits = Array.from(raw.subarray(r * out, (r + 1) * out));
        const res: Record<string, unknown> = { row: r + 1 };
        let k = 0;
        if (meta.task === 'regression') {
          res.prediction = logits[0] * scale + shift;
          if (target) res.target = target.name;
          if (target?.transform === 'ln') res.predictionExp = Math.exp(res.prediction as number);
        } else {
          const p = softmax(logits);
          k = p.indexOf(Math.max(...p));
          res.class = k;
          if (meta.classNames) res.className = meta.classNames[k];
          res.probability = p[k];
          res.logits = logits;
        }
        if (e) {
          const blocks = Array.from({ length: e.blocks }, (_, l) => e!.contributions[(r * e!.blocks + l) * out + k] * scale);
          res.explanation = { output: meta.task === 'regression' ? 'prediction' : `logit of class ${k}`, bias: e.bias[k] * scale + shift, blocks };
        }
        return res;
      });
      if (o.format === 'json') {
        process.stdout.write(JSON.stringify(results, null, 2) + '\n');
      } else {
        const L = e?.blocks ?? 0;
        const head = meta.task === 'regression' ? ['row', 'prediction'] : ['row', 'class', 'probability'];
        if (e) head.push('bias', ...Array.from({ length: L }, (_, l) => `block_${l + 1}`));
        const lines = [head.join(',')];
        for (const res of results) {
          const cells = meta.task === 'regression' ? [res.row, res.prediction] : [res.row, res.class, res.probability];
          if (e) {
            const ex = res.explanation as { bias: number; blocks: number[] };
            cells.push(ex.bias, ...ex.blocks);
          }
          lines.push(cells.join(','));
        }
        process.stdout.write(lines.join('\n') + '\n');
      }
    });
}
