/**
 * `glonet analyze`: block output norms (the paper's Fig. 4), the truncation curve (test error of
 * the model that sums only the first k blocks, no retraining; Fig. 6a) and the effective depth.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Task } from '../data/dataset.js';
import { exampleSize } from '../data/dataset.js';
import type { ModelMetadata } from '../model-io.js';
import { scoreOutputs } from '../train/trainer.js';
import { gloNetSum } from '../layers/glonet.js';
import { applyHead, blockOutputs, blockView, linearHead, type BlockView } from './blocks.js';
import { explain } from './explain.js';
import type { Analysis, BlockNorm, ContributionSample, TruncationPoint } from '../contracts.js';

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

/**
 * Mean and standard deviation of each block output's L1 norm over the first `samples` test
 * examples, `chunk` rows per forward pass.
 */
export function blockNorms(view: BlockView, ds: Dataset, samples: number, chunk = 2048): BlockNorm[] {
  const n = Math.min(samples, ds.nTest);
  const size = exampleSize(ds);
  const sum = new Float64Array(view.count);
  const sq = new Float64Array(view.count);
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    tf.tidy(() => {
      const x = tf.tensor(ds.xTest.subarray(start * size, (start + rows) * size), [rows, ...ds.inputShape]);
      blockOutputs(view, x).forEach((o, l) => {
        for (const v of rowL1(o)) {
          sum[l] += v;
          sq[l] += v * v;
        }
      });
    });
  }
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

export function effectiveDepthByError(curve: TruncationPoint[], task: Task, tolerance: number): number {
  const full = curve[curve.length - 1];
  for (const p of curve) {
    const ok = task === 'regression'
      ? p.testError <= full.testError * (1 + tolerance)
      : (p.testAccuracy ?? 0) >= (full.testAccuracy ?? 0) - tolerance;
    if (ok) return p.blocks;
  }
  return full.blocks;
}

export function effectiveDepthByNorm(norms: BlockNorm[], fraction = 0.01): number {
  const max = Math.max(...norms.map((b) => b.mean));
  let last = 1;
  for (const b of norms) if (b.mean >= fraction * max) last = b.block;
  return last;
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
      byNorm: effectiveDepthByNorm(norms),
      tolerance,
      toleranceKind: ds.task === 'regression' ? 'relative' : 'accuracy-points',
    },
  };
  if (view.isGloNet) {
    analysis.truncation = truncationCurve(view, ds, opts.chunk);
    analysis.effectiveDepth.byError = effectiveDepthByError(analysis.truncation, ds.task, tolerance);
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
