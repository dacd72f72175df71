/**
 * TF.js 4.22's Adam bookkeeping for the fused engines: the step count, the float32 running
 * products beta1^t and beta2^t (TF.js's accBeta1/accBeta2 variables, which start at beta and are
 * multiplied by beta after every step; bias correction divides by 1 - accBeta), and the scalars
 * an engine core takes for one step, as float32 values in TF.js's order (see StepScalars).
 */
/**
 * Adam's scalars for one step, as TF.js 4.22's AdamOptimizer uses them (float32 scalars):
 * `[l2, beta1, 1-beta1, beta2, 1-beta2, 1-beta1^t, 1-beta2^t, epsilon, -lr]`.
 */
export type StepScalars = Float64Array;

const f = Math.fround;

export class AdamClock {
  /** Adam steps taken (TF.js `iterations`). */
  steps = 0;
  private accB1: number;
  private accB2: number;
  private readonly out = new Float64Array(9);

  constructor(private lr: number, private readonly l2: number, private readonly beta1 = 0.9,
    private readonly beta2 = 0.999, private readonly epsilon = 1e-7) {
    this.accB1 = f(beta1);
    this.accB2 = f(beta2);
  }

  setLearningRate(lr: number): void {
    this.lr = lr;
  }

  /** `[l2, beta1, 1-beta1, beta2, 1-beta2, 1-beta1^t, 1-beta2^t, epsilon, -lr]` for the next step. */
  scalars(): StepScalars {
    const s = this.out;
    s[0] = f(this.l2);
    s[1] = f(this.beta1);
    s[2] = f(1 - this.beta1);
    s[3] = f(this.beta2);
    s[4] = f(1 - this.beta2);
    s[5] = f(1 - this.accB1);
    s[6] = f(1 - this.accB2);
    s[7] = f(this.epsilon);
    s[8] = f(-this.lr);
    return s;
  }

  /** After a step. */
  tick(): void {
    this.steps++;
    this.accB1 = f(this.accB1 * f(this.beta1));
    this.accB2 = f(this.accB2 * f(this.beta2));
  }

  /** As if `steps` steps had been taken (restoring optimizer state). */
  reset(steps: number): void {
    this.steps = 0;
    this.accB1 = f(this.beta1);
    this.accB2 = f(this.beta2);
    for (let i = 0; i < steps; i++) this.tick();
  }
}
