/** The plain engine: the TF.js model itself trained with a TF.js optimizer on the active backend. */
import * as tf from '@tensorflow/tfjs';
import type { NamedArray, Stepper, StepperOptions } from './types.js';
import type { Task } from '../vocabulary.js';

/** The mean data loss of a batch: MSE, or softmax cross-entropy on integer labels. */
function dataLoss(task: Task, outputs: number, pred: tf.Tensor, y: tf.Tensor): tf.Scalar {
  if (task === 'regression') return tf.losses.meanSquaredError(y, pred) as tf.Scalar;
  const onehot = tf.oneHot(tf.cast(y, 'int32') as tf.Tensor1D, outputs);
  return tf.losses.softmaxCrossEntropy(onehot, pred) as tf.Scalar;
}

function makeOptimizer(o: StepperOptions): tf.Optimizer {
  return o.optimizer === 'adam' ? tf.train.adam(o.lr) : tf.train.momentum(o.lr, o.momentum);
}

/** Fields of TF.js's AdamOptimizer holding beta1^t and beta2^t (float32 variables). */
const ADAM_POWERS = ['accBeta1', 'accBeta2'] as const;

export class TfjsStepper implements Stepper {
  readonly engine = 'tfjs' as const;
  private optimizer: tf.Optimizer;
  private readonly vars: tf.Variable[];

  constructor(private readonly model: tf.LayersModel, private readonly opts: StepperOptions) {
    this.optimizer = makeOptimizer(opts);
    // A fixed variable order keeps the optimizer's slots aligned across save and resume.
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  private batch(x: Float32Array, rows: number): tf.Tensor {
    const size = this.opts.inputShape.reduce((a, b) => a * b, 1);
    return tf.tensor(x.subarray(0, rows * size), [rows, ...this.opts.inputShape]);
  }

  step(x: Float32Array, y: Float32Array, rows: number): number {
    const { task, outputs } = this.opts;
    let lossValue = NaN;
    tf.tidy(() => {
      const xb = this.batch(x, rows);
      const yb = task === 'regression' ? tf.tensor2d(y.subarray(0, rows), [rows, 1]) : tf.tensor1d(y.subarray(0, rows));
      const total = this.optimizer.minimize(() => {
        const pred = this.model.apply(xb, { training: true }) as tf.Tensor;
        const data = dataLoss(task, outputs, pred, yb);
        const reg = this.model.calculateLosses();
        return reg.length ? tf.addN([data, ...reg]) : data;
      }, true, this.vars);
      lossValue = total!.dataSync()[0];
    });
    return lossValue;
  }

  setLearningRate(lr: number): void {
    // SGD and momentum keep the rate in a scalar made by setLearningRate; Adam reads the field.
    const opt = this.optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
    if (opt.setLearningRate) opt.setLearningRate(lr);
    else opt.learningRate = lr;
  }

  predict(x: Float32Array, rows: number): Float32Array {
    return tf.tidy(() => (this.model.predict(this.batch(x, rows)) as tf.Tensor).dataSync() as Float32Array).slice();
  }

  syncToModel(): void {}

  async getOptimizerState(): Promise<NamedArray[]> {
    const named = await this.optimizer.getWeights();
    const out = named.map((n, i) => ({ name: `${i}:${n.name}`, shape: n.tensor.shape, values: (n.tensor.dataSync() as Float32Array).slice() }));
    // getWeights() makes a fresh scalar for the iteration count; the rest are the optimizer's own.
    if (named[0]?.name === 'iter') named[0].tensor.dispose();
    // Adam's bias-correction powers: setWeights() recomputes them with pow(), which differs in the
    // last bits from the running float32 product training keeps, so they are saved as they are.
    for (const acc of ADAM_POWERS) {
      const v = (this.optimizer as unknown as Record<string, tf.Variable | undefined>)[acc];
      if (v) out.push({ name: acc, shape: [], values: (v.dataSync() as Float32Array).slice() });
    }
    return out;
  }

  async setOptimizerState(state: NamedArray[]): Promise<void> {
    const powers = state.filter((s) => (ADAM_POWERS as readonly string[]).includes(s.name));
    const named = state.filter((s) => !powers.includes(s)).map((s) => ({ name: s.name.replace(/^\d+:/, ''), tensor: tf.tensor(s.values, s.shape) }));
    await this.optimizer.setWeights(named);
    named.forEach((n) => n.tensor.dispose());
    for (const p of powers) {
      const v = (this.optimizer as unknown as Record<string, tf.Variable | undefined>)[p.name];
      if (v) tf.tidy(() => v.assign(tf.scalar(p.values[0])));
    }
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
