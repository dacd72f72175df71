/** The experiments `glonet experiment` knows, in the order `list` prints them. */
import { ExperimentError, type Experiment } from './experiment.js';
import { sgemmDepth } from './sgemm-depth.js';
import { sgemmNorms } from './sgemm-norms.js';
import { mnistDepth } from './mnist-depth.js';
import { mnistTruncation } from './mnist-truncation.js';
import { cnn } from './cnn.js';
import { vit } from './vit.js';
import { csvDepth } from './csv-depth.js';

export const EXPERIMENTS: readonly Experiment[] = [sgemmDepth, sgemmNorms, mnistDepth, mnistTruncation, cnn, vit, csvDepth];

export function getExperiment(name: string): Experiment {
  const e = EXPERIMENTS.find((x) => x.name === name);
  if (!e) throw new ExperimentError(`unknown experiment '${name}': expected one of ${EXPERIMENTS.map((x) => x.name).join(', ')}`);
  return e;
}
