/**
 * The playground: a GloNet MLP and a vanilla MLP of the same depth and width (glonet's own
 * `buildModel`, He-normal weights, no normalization) train side by side in the page, with Adam
 * (lr 0.01) on mini-batches of 64 from the run's test sample or a two-spirals toy set. The loss
 * curves and the GloNet's block norms (glonet's `blockNorms`) update live.
 */
import * as tf from '@tensorflow/tfjs';
import { blockNorms, blockView, buildModel, Rng, type BlockView, type Dataset, type ModelMetadata } from 'glonet';
import type { SiteData } from './site-data.js';
import { integerAxis, liveChart, named, type LiveChart } from './charts.js';
import { COLORS } from '../src/display.js';
import { byId, fail, show } from './dom.js';

const BATCH = 64;
const EVAL_ROWS = 256;

interface TrainData { x: Float32Array; y: Float32Array; n: number; inputShape: number[]; outputs: number; task: 'regression' | 'classification' }

/** Two interleaved spirals (two classes), 1,000 points with a little noise. */
function spirals(): TrainData {
  const rng = new Rng(11);
  const n = 1000;
  const x = new Float32Array(2 * n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const t = 0.25 * Math.PI + (Math.floor(i / 2) / (n / 2)) * 2.75 * Math.PI;
    const r = t / (3 * Math.PI);
    x[2 * i] = r * Math.cos(t + c * Math.PI) + (rng.next() - 0.5) * 0.06;
    x[2 * i + 1] = r * Math.sin(t + c * Math.PI) + (rng.next() - 0.5) * 0.06;
    y[i] = c;
  }
  return { x, y, n, inputShape: [2], outputs: 2, task: 'classification' };
}

interface Net {
  name: 'glonet' | 'vanilla';
  model: tf.LayersModel;
  meta: ModelMetadata;
  opt: tf.Optimizer;
  recent: number[];
}

export async function setupPlayground(site: SiteData, backend: { name: string; detail: string }): Promise<void> {
  const { header, x, ds } = site.sample;
  const dataSelect = byId<HTMLSelectElement>('pg-data');
  const depthInput = byId<HTMLInputElement>('pg-depth');
  const widthSelect = byId<HTMLSelectElement>('pg-width');
  const trainButton = byId<HTMLButtonElement>('pg-train');
  const section = byId('playground');
  // The form only groups the controls: Enter in it submits nothing (a listener, as the page's content security policy allows no inline handler).
  byId<HTMLFormElement>('pg-form').addEventListener('submit', (e) => e.preventDefault());
  dataSelect.append(
    new Option(`this run's test sample (${header.rows} examples, ${ds.task})`, 'sample'),
    new Option('two spirals (1,000 points, 2 classes)', 'spirals'),
  );
  byId('pg-backend').textContent = backend.name;
  byId('pg-backend-detail').textContent = backend.detail;

  let nets: Net[] = [];
  let data: TrainData | null = null;
  let xAll: tf.Tensor | null = null;
  let yAll: tf.Tensor | null = null;
  let view: BlockView | null = null;
  let evalSet: Dataset | null = null;
  let steps = 0;
  let training = false;
  let rng = new Rng(1);
  let lossChart: LiveChart | null = null;
  let normChart: LiveChart | null = null;
  let lossRows: Array<Record<string, number | string>> = [];

  const dispose = (): void => {
    for (const n of nets) {
      n.model.dispose();
      n.opt.dispose();
    }
    nets = [];
    xAll?.dispose();
    yAll?.dispose();
    xAll = yAll = null;
  };

  /** The latest reset: training steps wait for it, so they never meet half-built networks. */
  let settled: Promise<void> = Promise.resolve();
  const reset = (): Promise<void> => (settled = settled.then(rebuild));

  const rebuild = async (): Promise<void> => {
    dispose();
    data = dataSelect.value === 'spirals' ? spirals() : { x, y: ds.yTest, n: header.rows, inputShape: header.inputShape, outputs: header.outputs, task: header.task };
    const depth = Number(depthInput.value);
    const width = Number(widthSelect.value);
    const shape = { inputShape: data.inputShape, outputs: data.outputs, task: data.task };
    nets = (['glonet', 'vanilla'] as const).map((name) => {
      const built = buildModel({ model: 'mlp', arch: name === 'glonet' ? 'glonet' : 'vanilla-nobn', depth, width, l2: 0, seed: 1 }, shape);
      return { name, model: built.model, meta: built.meta, opt: tf.train.adam(0.01), recent: [] };
    });
    xAll = tf.tensor(data.x, [data.n, ...data.inputShape]);
    yAll = data.task === 'classification' ? tf.oneHot(tf.tensor1d(data.y, 'int32'), data.outputs).toFloat() : tf.tensor2d(data.y, [data.n, 1]);
    view = blockView(nets[0].model, nets[0].meta);
    const size = data.inputShape.reduce((a, b) => a * b, 1);
    const rows = Math.min(EVAL_ROWS, data.n);
    evalSet = { ...ds, inputShape: data.inputShape, outputs: data.outputs, task: data.task, xTest: data.x.subarray(0, rows * size), yTest: data.y.subarray(0, rows), nTest: rows };
    steps = 0;
    rng = new Rng(1);
    lossRows = [];
    byId('pg-steps').textContent = '0';
    for (const id of ['pg-loss-glonet', 'pg-loss-vanilla']) {
      byId(id).textContent = '–';
      delete byId(id).dataset.value;
    }
    const x0 = integerAxis('block', 'GloNet block', depth);
    normChart?.dispose();
    normChart = await liveChart(byId('chart-pg-norms'), {
        data: named('norms', []), mark: { type: 'bar', color: COLORS.blue },
      encoding: { x: { ...x0, scale: { ...(x0.scale as object), domain: [0.5, depth + 0.5] } }, y: { field: 'norm', type: 'quantitative', title: 'mean L1 norm' } },
    }, 'GloNet block output norms during training');
    await lossChart?.set('loss', []);
    await updateNorms();
  };

  const updateNorms = async (): Promise<void> => {
    if (!view || !evalSet) return;
    const norms = blockNorms(view, evalSet, evalSet.nTest);
    await normChart?.set('norms', norms.map((b) => ({ block: b.block, norm: b.mean })));
  };

  const lossOf = (pred: tf.Tensor, y: tf.Tensor): tf.Scalar =>
    data!.task === 'classification' ? tf.losses.softmaxCrossEntropy(y, pred) as tf.Scalar : tf.losses.meanSquaredError(y, pred) as tf.Scalar;

  /** One Adam step of each network on the same mini-batch; returns their losses, still on the backend. */
  const trainStep = (): tf.Tensor => {
    const idx = Int32Array.from({ length: BATCH }, () => rng.int(data!.n));
    return tf.tidy(() => {
      const i = tf.tensor1d(idx, 'int32');
      const xb = tf.gather(xAll!, i);
      const yb = tf.gather(yAll!, i);
      return tf.stack(nets.map((net) => net.opt.minimize(() => lossOf(net.model.apply(xb) as tf.Tensor, yb), true)!));
    });
  };

  /** A few steps, then one read of their losses (each read waits for the backend). */
  const trainSteps = async (count: number): Promise<void> => {
    const losses = Array.from({ length: count }, trainStep);
    const stacked = tf.stack(losses);
    const values = await stacked.data();
    tf.dispose([stacked, ...losses]);
    for (let s = 0; s < count; s++) {
      nets.forEach((net, j) => {
        net.recent.push(values[s * nets.length + j]);
        if (net.recent.length > 20) net.recent.shift();
      });
      steps++;
      await showProgress();
    }
  };

  const showProgress = async (): Promise<void> => {
    byId('pg-steps').textContent = String(steps);
    for (const net of nets) {
      const mean = net.recent.reduce((a, b) => a + b, 0) / net.recent.length;
      if (net.recent.length === 20) show(byId(`pg-loss-${net.name}`), mean, 4);
      if (steps % 10 === 0) lossRows.push({ step: steps, loss: Number.isFinite(mean) ? mean : null as unknown as number, net: net.name === 'glonet' ? 'GloNet' : 'vanilla' });
    }
    if (steps % 10 === 0) await lossChart?.set('loss', lossRows);
    if (steps % 20 === 0) await updateNorms();
  };

  const loop = async (): Promise<void> => {
    while (training) {
      await settled;
      await trainSteps(5);
      await new Promise((r) => setTimeout(r, 0));
    }
  };

  const setTraining = (on: boolean): void => {
    training = on;
    trainButton.textContent = on ? 'Pause' : 'Train';
    trainButton.setAttribute('aria-pressed', String(on));
    section.dataset.state = on ? 'training' : 'idle';
    if (on) void loop().catch((e) => { setTraining(false); fail(e); });
  };

  trainButton.addEventListener('click', () => setTraining(!training));
  byId('pg-reset').addEventListener('click', () => void reset().catch(fail));
  depthInput.addEventListener('input', () => { byId('pg-depth-value').textContent = depthInput.value; });
  for (const el of [dataSelect, depthInput, widthSelect]) el.addEventListener('change', () => void reset().catch(fail));

  lossChart = await liveChart(byId('chart-pg-loss'), {
        data: named('loss', []), mark: { type: 'line', interpolate: 'monotone' },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'training step', axis: { tickCount: 5, format: '~s' } },
        y: { field: 'loss', type: 'quantitative', title: 'training loss (log scale)', scale: { type: 'log' }, axis: { tickCount: 4, format: '~g' } },
        color: { field: 'net', type: 'nominal', title: null, scale: { domain: ['GloNet', 'vanilla'], range: [COLORS.green, COLORS.orange] } },
      },
  }, 'Training loss of the GloNet and the vanilla network');
  await reset();
  section.dataset.state = 'idle';
}
