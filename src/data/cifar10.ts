/**
 * CIFAR-10 from its official binary batches ("CIFAR-10 binary version"): a folder holding
 * data_batch_1.bin .. data_batch_5.bin (10,000 training images each) and test_batch.bin
 * (10,000 test images). Each record is 1 label byte (0..9) then 3072 pixel bytes: the 1024 red
 * values of the 32x32 image row by row, then the 1024 green, then the 1024 blue. They become
 * NHWC [32, 32, 3] float32.
 *
 * Scaling, the usual one for CIFAR-10: pixels / 255, then each channel standardized with the
 * mean and std of that channel over the training images loaded here (after any subset), applied
 * to train and test alike. On the full training set these are the familiar
 * mean ~ (0.491, 0.482, 0.447), std ~ (0.247, 0.243, 0.262). They are computed, not hard-coded,
 * and returned in `standardization` (featureNames red/green/blue: the last, channel, axis of NHWC)
 * so new images can be scaled the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError, checkSubset, type Dataset } from './dataset.js';
import { checkReadable, readFileBounded } from '../io.js';
import { LIMITS } from '../limits.js';
import { gatherImages, pickIndices, splitFields } from './idx.js';
import { Rng } from '../random.js';

const CIFAR10_CLASS_NAMES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

const CIFAR10_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const CIFAR10_TEST_FILE = 'test_batch.bin';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;
/** Bytes per record: 1 label + 3072 pixels. */
export const CIFAR10_RECORD_BYTES = 1 + PIXELS;

interface Cifar10Options {
  /** The folder holding the binary batches. Required: CIFAR-10 is not bundled. */
  data?: string;
  /** Seeds the subset. Default 0. */
  seed?: number;
  /** Keep a seeded random N training examples and round(N / 5) test examples (the official 50,000 : 10,000 ratio); the files must hold that many. */
  subset?: number;
}

/** Reads one batch file; checks its size (before reading it: a regular file, a whole number of records) and labels. */
function readBatch(file: string): Uint8Array {
  const bounds = { what: 'CIFAR-10 batch', maxBytes: LIMITS.imageFileBytes.max, why: LIMITS.imageFileBytes.why };
  const { size } = checkReadable(file, bounds);
  if (size === 0 || size % CIFAR10_RECORD_BYTES !== 0) {
    throw new DataError(
      `${file}: size ${size} bytes is not a positive multiple of the CIFAR-10 record size ` +
        `${CIFAR10_RECORD_BYTES} (1 label byte + 3072 pixel bytes); is it the binary version of CIFAR-10?`,
    );
  }
  const bytes = readFileBounded(file, bounds);
  if (bytes.length !== size) throw new DataError(`${file}: changed size while it was read (${size} bytes, then ${bytes.length}); read it again once nothing writes it`);
  const n = bytes.length / CIFAR10_RECORD_BYTES;
  for (let i = 0; i < n; i++) {
    const label = bytes[i * CIFAR10_RECORD_BYTES];
    if (label > 9) {
      throw new DataError(`${file}: record ${i} has label ${label}; expected 0..9`);
    }
  }
  return bytes;
}

/** The batch files of a CIFAR-10 folder that a run reads: the training batches present, then test_batch.bin. */
export function cifar10Files(dir: string): string[] {
  return [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE].map((f) => path.join(dir, f)).filter((p) => fs.existsSync(p));
}

/** Records of several batches, addressed as one list. */
class Records {
  private readonly starts: number[] = [];
  readonly count: number;
  constructor(private readonly batches: Uint8Array[]) {
    let c = 0;
    for (const b of batches) {
      this.starts.push(c);
      c += b.length / CIFAR10_RECORD_BYTES;
    }
    this.count = c;
  }
  /** The bytes of record i (label first). */
  record(i: number): Uint8Array {
    let b = this.batches.length - 1;
    while (this.starts[b] > i) b--;
    const off = (i - this.starts[b]) * CIFAR10_RECORD_BYTES;
    return this.batches[b].subarray(off, off + CIFAR10_RECORD_BYTES);
  }
}

/** Planar RGB records -> NHWC pixels in [0, 1] and labels. */
function gather(recs: Records, idx: Int32Array): { x: Float32Array; y: Float32Array } {
  return gatherImages(idx, PLANE, 3, (i) => recs.record(i).subarray(1), (i) => recs.record(i)[0]);
}

/** Per-channel mean and (population) std of NHWC pixels with 3 channels. */
function channelStats(x: Float32Array): { mean: number[]; std: number[] } {
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  for (let i = 0; i < x.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = x[i + c];
      sum[c] += v;
      sq[c] += v * v;
    }
  }
  const m = x.length / 3;
  const mean = sum.map((s) => s / m);
  const std = sq.map((s, c) => {
    const sd = Math.sqrt(Math.max(0, s / m - mean[c] * mean[c]));
    return sd > 1e-8 ? sd : 1; // a constant channel is only centred
  });
  return { mean, std };
}

function standardize(x: Float32Array, mean: number[], std: number[]): void {
  for (let i = 0; i < x.length; i += 3) {
    for (let c = 0; c < 3; c++) x[i + c] = (x[i + c] - mean[c]) / std[c];
  }
}

/** CIFAR-10 as a Dataset: NHWC [32, 32, 3], per-channel standardized, labels 0..9 as floats. */
export function loadCifar10(opts: Cifar10Options): Dataset {
  const expected = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE].join(', ');
  const dir = opts?.data;
  if (dir === undefined || dir === '') {
    throw new DataError(
      `CIFAR-10 is not bundled: pass --data DIR, a folder with the official binary batches ${expected} ` +
        '(the "CIFAR-10 binary version" from https://www.cs.toronto.edu/~kriz/cifar.html)',
    );
  }
  checkSubset(opts.subset);
  if (!fs.existsSync(dir)) throw new DataError(`CIFAR-10: folder ${dir} does not exist; expected a folder holding ${expected}`);
  if (!fs.statSync(dir).isDirectory()) throw new DataError(`--data: ${dir} is a file; CIFAR-10 is read from a folder holding ${expected}`);
  const trainFiles = CIFAR10_TRAIN_FILES.map((f) => path.join(dir, f)).filter((p) => fs.existsSync(p));
  const testPath = path.join(dir, CIFAR10_TEST_FILE);
  const missing: string[] = [];
  if (trainFiles.length === 0) missing.push(`at least one of ${CIFAR10_TRAIN_FILES.join(', ')}`);
  if (!fs.existsSync(testPath)) missing.push(CIFAR10_TEST_FILE);
  if (missing.length > 0) {
    throw new DataError(`CIFAR-10: folder ${dir} lacks ${missing.join(' and ')}; expected ${expected}`);
  }
  const train = new Records(trainFiles.map(readBatch));
  const test = new Records([readBatch(testPath)]);

  const rng = new Rng(opts.seed ?? 0);
  const testWant = opts.subset === undefined ? undefined : Math.max(1, Math.round(opts.subset / 5));
  const trainIdx = pickIndices(train.count, opts.subset, rng, `${dir} (training batches)`);
  const testIdx = pickIndices(test.count, testWant, rng, testPath);
  const tr = gather(train, trainIdx);
  const te = gather(test, testIdx);
  const { mean, std } = channelStats(tr.x);
  standardize(tr.x, mean, std);
  standardize(te.x, mean, std);

  // Using fewer than the 5 training batches is allowed (a quick run, a partial download); the
  // source says which were used.
  const used = trainFiles.map((p) => path.basename(p));
  const note = used.length < CIFAR10_TRAIN_FILES.length ? `, only ${used.length} of 5 training batches` : '';
  return {
    name: 'cifar10',
    task: 'classification',
    inputShape: [SIDE, SIDE, 3],
    outputs: 10,
    ...splitFields(tr, trainIdx.length, te, testIdx.length),
    standardization: { featureNames: ['red', 'green', 'blue'], mean, std },
    classNames: CIFAR10_CLASS_NAMES.slice(),
    source: `${dir} (${used.join(', ')}${note}; ${CIFAR10_TEST_FILE})`,
  };
}
