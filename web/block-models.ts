/**
 * The run's model at every depth k: the first k blocks of a GloNet are a working model, made with
 * glonet's `truncateModel` (sharing the trained weights) and kept once made.
 */
import * as tf from '@tensorflow/tfjs';
import { blockView, linearHead, truncateModel, type BlockView, type ModelMetadata } from 'glonet';

interface DepthModel {
  k: number;
  model: tf.LayersModel;
  meta: ModelMetadata;
  view: BlockView;
}

export class BlockModels {
  /** Blocks of the full model (L). */
  readonly count: number;
  readonly isGloNet: boolean;
  /** True when per-block explanations are exact (a GloNet whose head is one linear Dense layer). */
  readonly explainable: boolean;
  private readonly made = new Map<number, DepthModel>();

  constructor(readonly model: tf.LayersModel, readonly meta: ModelMetadata) {
    const view = blockView(model, meta);
    this.count = view.count;
    this.isGloNet = view.isGloNet;
    this.explainable = view.isGloNet && linearHead(view) != null;
    this.made.set(this.count, { k: this.count, model, meta, view });
  }

  /** The k-block model (k = L is the trained model itself). */
  at(k: number): DepthModel {
    let m = this.made.get(k);
    if (!m) {
      const t = truncateModel(this.model, this.meta, k);
      m = { k, model: t.model, meta: t.meta, view: blockView(t.model, t.meta) };
      this.made.set(k, m);
    }
    return m;
  }
}

/** Milliseconds for one prediction of one example: the median of `runs` timed calls after a warm-up. */
export async function msPerPrediction(model: tf.LayersModel, example: Float32Array, inputShape: number[], runs = 7): Promise<number> {
  const x = tf.tensor(example, [1, ...inputShape]);
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
    return performance.now() - t0;
  };
  try {
    await once();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await once());
    times.sort((a, b) => a - b);
    return times[Math.floor(runs / 2)];
  } finally {
    x.dispose();
  }
}
