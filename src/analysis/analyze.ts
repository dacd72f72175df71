/**
 * `glonet analyze`: block output norms (the paper's Fig. 4), the truncation curve (test error of
 * the model that sums only the first k blocks, no retraining; Fig. 6a), each block's contribution
 * through a linear head beside the error it removes, and the effective depths.
 *
 * Which effective depth to trust: a trained GloNet's norms fall to near zero after its first
 * blocks, but many tiny norms add up and a small norm need not mean a small effect on the error
 * (when the remaining error is itself small, a few percent of the signal is most of it). So the
 * analysis states three numbers, each defined in `effectiveDepth.definitions`: `byError` (the
 * blocks a truncated model needs to stay within a tolerance of the full model: what `truncate`
 * should keep), `normShare` (where the signal sits, with its share named) and `byNorm` (the last
 * block above 1% of the largest norm, kept because it detects scattered active blocks in the
 * tail), and `blockEffects` puts each block's contribution beside the error it removes.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset.js';
import { exampleSize } from '../data/dataset.js';
import { gloNetSum } from '../layers/glonet.js';
import { applyHead, blockOutputs, blockView, linearHead, type BlockView } from './blocks.js';
import { explain } from './explain.js';
import type { Analysis, BlockEffect, BlockNorm, ContributionSample, EffectiveDepth, TruncationPoint } from '../contracts.js';
import type { Task } from '../vocabulary.js';
import { scoreOutputs } from '../scoring.js';
import type { ModelMetadata } from '../model-metadata.js';

/** How much {@link analyzeModel} computes. */
export interface AnalyzeOptions {
  /** Test samples for the block norms (default 5000, or all if fewer). */
  samples?: number;
  /** Default: 0.05 (5% relative) for regression, 0.005 (0.5 points) for classification. */
  tolerance?: number;
  /** How many test samples get a contribution breakdown (default 4). */
  explainSamples?: number;
  /** Rows per forward pass (memory against speed; results do not depend on it). Default 2048. */
  chunk?: number;
}

/** L1 norm of each row of a [rows, ...] tensor. */
function rowL1(t: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.abs(t).reshape([t.shape[0], -1]).sum(1).dataSync() as Float32Array);
}

/** Call `fn` with every block's output on the first n test examples, a chunk at a time (tensors disposed after). */
function forEachBlockOutput(view: BlockView, ds: Dataset, n: number, chunk: number, fn: (output: tf.Tensor, block: number, rows: number) => void): void {
  const size = exampleSize(ds);
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    tf.tidy(() => {
      const x = tf.tensor(ds.xTest.subarray(start * size, (start + rows) * size), [rows, ...ds.inputShape]);
      blockOutputs(view, x).forEach((o, l) => fn(o, l, rows));
    });
  }
}

/**
 * Mean and standard deviation of each block output's L1 norm over the first `samples` test
 * examples, `chunk` rows per forward pass.
 */
export function blockNorms(view: BlockView, ds: Dataset, samples: number, chunk = 2048): BlockNorm[] {
  const n = Math.min(samples, ds.nTest);
  const sum = new Float64Array(view.count);
  const sq = new Float64Array(view.count);
  forEachBlockOutput(view, ds, n, chunk, (o, l) => {
    for (const v of rowL1(o)) {
      sum[l] += v;
      sq[l] += v * v;
    }
  });
  return Array.from(sum, (s, l) => {
    const mean = s / n;
    return { block: l + 1, mean, std: Math.sqrt(Math.max(0, sq[l] / n - mean * mean)) };
  });
}

/** Test error for every k = 1..L in one pass over the test set (running sums of block outputs). */
export function truncationCurve(view: BlockView, ds: Dataset, chunk = 2048): TruncationPoint[] {
  const L = view.count;
  const size = exampleSize(ds);
  const lossSum = new Float64Array(L);
  const errSum = new Float64Array(L);
  const correct = new Float64Array(L);
  for (let start = 0; start < ds.nTest; start += chunk) {
    const rows = Math.min(chunk, ds.nTest - start);
    const y = ds.yTest.subarray(start, start + rows);
    tf.tidy(() => {
      const x = tf.tensor(ds.xTest.subarray(start * size, (start + rows) * size), [rows, ...ds.inputShape]);
      const outs = blockOutputs(view, x);
      let running: tf.Tensor | null = null;
      for (let k = 0; k < L; k++) {
        const next: tf.Tensor = gloNetSum(running ? [running, outs[k]] : [outs[k]], view.sumWidth);
        running?.dispose();
        running = next;
        const pred = tf.tidy(() => applyHead(view, running!).dataSync() as Float32Array);
        const s = scoreOutputs(ds.task, ds.outputs, pred, y, rows);
        lossSum[k] += s.lossSum;
        errSum[k] += s.errSum;
        correct[k] += s.correct;
      }
    });
  }
  return Array.from(lossSum, (l, k) => {
    const testLoss = l / ds.nTest;
    if (ds.task === 'regression') return { blocks: k + 1, testError: errSum[k] / ds.nTest, testLoss };
    const acc = correct[k] / ds.nTest;
    return { blocks: k + 1, testError: 1 - acc, testAccuracy: acc, testLoss };
  });
}

function effectiveDepthByError(curve: TruncationPoint[], task: Task, tolerance: number): number {
  const full = curve[curve.length - 1];
  for (const p of curve) {
    const ok = task === 'regression'
      ? p.testError <= full.testError * (1 + tolerance)
      : (p.testAccuracy ?? 0) >= (full.testAccuracy ?? 0) - tolerance;
    if (ok) return p.blocks;
  }
  return full.blocks;
}

/** The share of the summed mean block norm that `normShare` reports. */
const NORM_SHARE = 0.95;

/** Smallest k whose first k blocks hold `share` of the summed mean L1 norm of all blocks. */
export function effectiveDepthByNormShare(norms: BlockNorm[], share = NORM_SHARE): number {
  const total = norms.reduce((s, b) => s + b.mean, 0);
  let running = 0;
  for (const b of norms) {
    running += b.mean;
    if (running >= share * total) return b.block;
  }
  return norms.length;
}

export function effectiveDepthByNorm(norms: BlockNorm[], fraction = 0.01): number {
  const max = Math.max(...norms.map((b) => b.mean));
  let last = 1;
  for (const b of norms) if (b.mean >= fraction * max) last = b.block;
  return last;
}

/**
 * Each block's mean |x_l K| over the first `samples` test examples (K the linear head's kernel,
 * averaged over outputs) and the test error it removes: err(first l-1 blocks) - err(first l),
 * where 0 blocks is the head's bias alone.
 */
export function blockEffects(view: BlockView, ds: Dataset, samples: number, curve: TruncationPoint[], chunk = 2048): BlockEffect[] | undefined {
  const head = linearHead(view);
  if (!head) return undefined;
  const n = Math.min(samples, ds.nTest);
  const width = head.kernel.shape[0];
  const outputs = head.kernel.shape[1];
  const sum = new Float64Array(view.count);
  forEachBlockOutput(view, ds, n, chunk, (o, l, rows) => {
    const flat = o.reshape([rows, -1]);
    const c = flat.shape[1] as number;
    const padded = c === width ? flat : tf.pad(flat, [[0, 0], [0, width - c]]);
    sum[l] += tf.abs(tf.matMul(padded, head.kernel)).sum().dataSync()[0];
  });
  const bias = head.bias ? (head.bias.dataSync() as Float32Array) : new Float32Array(outputs);
  const pred = new Float32Array(ds.nTest * outputs);
  for (let i = 0; i < ds.nTest; i++) pred.set(bias, i * outputs);
  const s = scoreOutputs(ds.task, ds.outputs, pred, ds.yTest, ds.nTest);
  const biasOnly = ds.task === 'regression' ? s.errSum / ds.nTest : 1 - s.correct / ds.nTest;
  return curve.map((p, l) => ({
    block: p.blocks,
    contribution: sum[l] / (n * outputs),
    errorRemoved: (l === 0 ? biasOnly : curve[l - 1].testError) - p.testError,
  }));
}

/** The definitions `analysis.json` states beside its effective depths. */
function definitions(task: Task, tolerance: number): EffectiveDepth['definitions'] {
  const within = task === 'regression'
    ? `test MSE at most ${(tolerance * 100).toFixed(1)}% above the full model's`
    : `test accuracy at most ${(tolerance * 100).toFixed(1)} points below the full model's`;
  return {
    byError: `the smallest k such that the model summing only the first k blocks (no retraining) has ${within}: the blocks glonet truncate should keep`,
    normShare: `the smallest k such that the first k blocks hold ${(NORM_SHARE * 100).toFixed(0)}% of the sum over blocks of the mean L1 norm of the block output: where the signal sits, not what the error needs`,
    byNorm: 'the last block whose mean L1 output norm is at least 1% of the largest block\'s: a tail detector (a few scattered blocks just above 1% move it), not a depth to truncate at',
    blockEffects: 'contribution: the mean over test samples and outputs of |x_l K|, block l\'s additive share of the prediction through the linear head K; errorRemoved: the test error of the first l-1 blocks minus that of the first l (0 blocks: the head\'s bias alone)',
  };
}

/**
 * What `glonet analyze` computes for a model on a data set's test split: every block's output
 * norms, and for GloNet models the truncation curve (the test error of the model summing only
 * the first k blocks, for every k, in one pass), the effective depth and a few per-block
 * explanations.
 *
 * @throws {@link AnalysisError} when the model's blocks cannot be found from `meta`.
 */
export function analyzeModel(model: tf.LayersModel, meta: ModelMetadata, ds: Dataset, opts: AnalyzeOptions = {}): Analysis {
  const view = blockView(model, meta);
  const samples = Math.min(opts.samples ?? 5000, ds.nTest);
  const tolerance = opts.tolerance ?? (ds.task === 'regression' ? 0.05 : 0.005);
  const norms = blockNorms(view, ds, samples, opts.chunk);
  const analysis: Analysis = {
    samples,
    blockNorms: norms,
    effectiveDepth: {
      byError: null,
      normShare: { share: NORM_SHARE, blocks: effectiveDepthByNormShare(norms) },
      byNorm: effectiveDepthByNorm(norms),
      tolerance,
      toleranceKind: ds.task === 'regression' ? 'relative' : 'accuracy-points',
      definitions: definitions(ds.task, tolerance),
    },
  };
  if (view.isGloNet) {
    analysis.truncation = truncationCurve(view, ds, opts.chunk);
    analysis.effectiveDepth.byError = effectiveDepthByError(analysis.truncation, ds.task, tolerance);
    const effects = blockEffects(view, ds, samples, analysis.truncation, opts.chunk);
    if (effects) analysis.blockEffects = effects;
    const count = Math.min(opts.explainSamples ?? 4, ds.nTest);
    if (linearHead(view) && count > 0) {
      const size = exampleSize(ds);
      const x = tf.tensor(ds.xTest.subarray(0, count * size), [count, ...ds.inputShape]);
      const e = explain(model, meta, x, view);
      x.dispose();
      const out = e.outputs;
      analysis.contributions = {
        task: ds.task,
        bias: Array.from(e.bias),
        samples: Array.from({ length: count }, (_, r) => {
          const prediction = Array.from(e.prediction.subarray(r * out, (r + 1) * out));
          const blocks = Array.from({ length: e.blocks }, (_, l) =>
            Array.from(e.contributions.subarray((r * e.blocks + l) * out, (r * e.blocks + l + 1) * out)));
          const sample: ContributionSample = { index: r, target: ds.yTest[r], prediction, blocks };
          if (ds.task === 'classification') sample.predictedClass = prediction.indexOf(Math.max(...prediction));
          return sample;
        }),
      };
    }
  }
  return analysis;
}
