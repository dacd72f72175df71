/**
 * IDX files, the format of MNIST and Fashion-MNIST: a 4-byte magic number (two zero bytes, a data
 * type byte, the number of dimensions), one big-endian uint32 per dimension, then the values.
 * Only the two unsigned-byte kinds these data sets use are accepted:
 *   0x00000803: images [count, rows, cols]
 *   0x00000801: labels [count]
 * A file may be gzipped; that is decided by its first two bytes (1f 8b), not by its name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, checkSubset, type Dataset } from './dataset.js';
import { checkReadable, readFileBounded, readHead } from '../io.js';
import { BadFileError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { Rng } from '../random.js';

type IdxKind = 'images' | 'labels';

interface IdxFile {
  /** The path it was read from, for messages. */
  path: string;
  kind: IdxKind;
  /** [count, rows, cols] for images, [count] for labels. */
  dims: number[];
  /** The values, row-major, `prod(dims)` bytes. */
  data: Uint8Array;
}

const MAGIC: Record<IdxKind, number> = { images: 0x00000803, labels: 0x00000801 };
const UNSIGNED_BYTE = 0x08;

function hex8(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

/** True when the bytes start with the gzip magic 1f 8b. */
function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const IDX_BOUNDS = { what: 'IDX file', maxBytes: LIMITS.imageFileBytes.max, why: LIMITS.imageFileBytes.why };

/**
 * The bytes an IDX file must have from its header (magic number, dimensions), or undefined when
 * `head` is too short to tell; a header that is not an IDX header of the expected kind is a
 * DataError naming the file.
 */
function idxHeader(file: string, head: Uint8Array, expect: IdxKind | undefined): { kind: IdxKind; dims: number[]; headerBytes: number; total: number } | undefined {
  const wanted = expect
    ? `${hex8(MAGIC[expect])} (IDX ${expect}, unsigned bytes)`
    : `${hex8(MAGIC.images)} (IDX images, unsigned bytes) or ${hex8(MAGIC.labels)} (IDX labels, unsigned bytes)`;
  if (head.length < 4) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = view.getUint32(0, false);
  if (head[0] !== 0 || head[1] !== 0) {
    throw new DataError(`${file}: not an IDX file (magic number ${hex8(magic)}); expected ${wanted}`);
  }
  if (head[2] !== UNSIGNED_BYTE) {
    throw new DataError(
      `${file}: IDX data type 0x${head[2].toString(16).padStart(2, '0')} is not supported, only 0x08 (unsigned bytes); expected magic number ${wanted}`,
    );
  }
  let kind: IdxKind;
  if (magic === MAGIC.images) kind = 'images';
  else if (magic === MAGIC.labels) kind = 'labels';
  else throw new DataError(`${file}: IDX file with ${head[3]} dimensions (magic number ${hex8(magic)}); expected ${wanted}`);
  if (expect && kind !== expect) {
    throw new DataError(`${file}: holds IDX ${kind} (magic number ${hex8(magic)}); expected ${wanted}`);
  }
  const headerBytes = 4 + 4 * head[3];
  if (head.length < headerBytes) return undefined;
  const dims: number[] = [];
  for (let i = 0; i < head[3]; i++) dims.push(view.getUint32(4 + 4 * i, false));
  return { kind, dims, headerBytes, total: headerBytes + dims.reduce((a, b) => a * b, 1) };
}

/**
 * Reads and validates one IDX file (raw or gzipped). `expect` names the kind the caller needs;
 * without it either kind is accepted. Every problem is a DataError naming the file and what was
 * expected: a wrong magic number, a data type other than unsigned byte, a file shorter or longer
 * than its dimensions say. Reading is bounded by the header: a raw file is read only when its size
 * is the one its dimensions give, a gzipped one is inflated no further than that size, and no file
 * beyond LIMITS.imageFileBytes is read at all (nor a device, FIFO or link to one).
 */
export function readIdx(file: string, expect?: IdxKind): IdxFile {
  const wanted = expect
    ? `${hex8(MAGIC[expect])} (IDX ${expect}, unsigned bytes)`
    : `${hex8(MAGIC.images)} (IDX images, unsigned bytes) or ${hex8(MAGIC.labels)} (IDX labels, unsigned bytes)`;
  let size: number;
  try {
    size = checkReadable(file, IDX_BOUNDS).size;
  } catch (e) {
    if (e instanceof BadFileError && /it does not exist/.test(e.message)) throw new DataError(`${file}: no such file`);
    throw e;
  }
  const head = readHead(file, Math.min(size, 4 + 4 * 255));
  let bytes: Uint8Array;
  if (!isGzip(head)) {
    const h = idxHeader(file, head, expect);
    if (h && size !== h.total) {
      const what = size < h.total ? 'truncated IDX file' : 'IDX file longer than its header says';
      throw new DataError(`${file}: ${what}: dimensions [${h.dims.join(', ')}] need ${h.total} bytes, found ${size} bytes`);
    }
    bytes = readFileBounded(file, IDX_BOUNDS);
  } else {
    const raw = readFileBounded(file, IDX_BOUNDS);
    // The header first, from as little of the stream as gives it; then the whole file, inflated no
    // further than the size the header announces (a small file that inflates to gigabytes stops there).
    let h: ReturnType<typeof idxHeader>;
    for (let prefix = 4096; ; prefix *= 4) {
      let start: Buffer;
      try {
        start = zlib.gunzipSync(raw.subarray(0, prefix), { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: 64 << 20 });
      } catch (e) {
        throw new DataError(`${file}: starts like a gzip file but does not decompress (${(e as Error).message})`);
      }
      h = idxHeader(file, start, expect);
      if (h || prefix >= raw.length) break;
    }
    if (!h) bytes = gunzipBounded(file, raw, 4 + 4 * 255);
    else {
      if (h.total > LIMITS.imageFileBytes.max) {
        throw new DataError(`${file}: dimensions [${h.dims.join(', ')}] need ${h.total} bytes decompressed; an IDX file can hold at most ${LIMITS.imageFileBytes.max} (${LIMITS.imageFileBytes.why})`);
      }
      bytes = gunzipBounded(file, raw, h.total);
    }
  }
  if (bytes.length < 4) {
    throw new DataError(`${file}: only ${bytes.length} bytes, too short for an IDX file; expected magic number ${wanted}`);
  }
  const ndims = bytes[3];
  const h = idxHeader(file, bytes, expect);
  if (!h) {
    throw new DataError(
      `${file}: truncated IDX file: expected at least ${4 + 4 * ndims} bytes of header, found ${bytes.length} bytes`,
    );
  }
  if (bytes.length !== h.total) {
    const what = bytes.length < h.total ? 'truncated IDX file' : 'IDX file longer than its header says';
    throw new DataError(
      `${file}: ${what}: dimensions [${h.dims.join(', ')}] need ${h.total} bytes (decompressed), found ${bytes.length} bytes`,
    );
  }
  return { path: file, kind: h.kind, dims: h.dims, data: bytes.subarray(h.headerBytes) };
}

/**
 * Gunzip at most `limit` bytes plus one (so that "longer than its header says" can still be told);
 * more is never inflated. Damaged data is a DataError naming the file.
 */
function gunzipBounded(file: string, raw: Uint8Array, limit: number): Uint8Array {
  try {
    return zlib.gunzipSync(raw, { maxOutputLength: limit + 1 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DataError(`${file}: inflates to more than the ${limit} bytes its IDX header says it holds; the file is damaged or not what its header says`);
    }
    throw new DataError(`${file}: starts like a gzip file but does not decompress (${(e as Error).message})`);
  }
}

/** One split (train or test) read from a pair of IDX files. */
interface IdxSplit {
  images: IdxFile;
  labels: IdxFile;
  count: number;
  rows: number;
  cols: number;
}

/** Reads an images file and its labels file and checks they agree and labels are below `classes`. */
export function readIdxPair(imagesPath: string, labelsPath: string, classes: number): IdxSplit {
  const images = readIdx(imagesPath, 'images');
  const labels = readIdx(labelsPath, 'labels');
  const [count, rows, cols] = images.dims;
  if (count === 0) throw new DataError(`${imagesPath}: holds no images; expected at least one`);
  if (rows === 0 || cols === 0) throw new DataError(`${imagesPath}: images of ${rows}x${cols} pixels; expected at least 1x1`);
  if (labels.dims[0] !== count) {
    throw new DataError(
      `${labelsPath}: ${labels.dims[0]} labels, but ${imagesPath} holds ${count} images; expected one label per image`,
    );
  }
  for (let i = 0; i < count; i++) {
    if (labels.data[i] >= classes) {
      throw new DataError(`${labelsPath}: label ${labels.data[i]} at index ${i}; expected 0..${classes - 1}`);
    }
  }
  return { images, labels, count, rows, cols };
}

/** The four files of an MNIST-style folder, by their canonical names. */
export const IDX_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/**
 * Finds the four IDX files in `dir`, each either raw or with `.gz`. A missing folder or missing
 * files give one DataError listing what that folder should hold.
 */
function findIdxFiles(dir: string, what: string): Record<keyof typeof IDX_FILE_NAMES, string> {
  const expectedList = Object.values(IDX_FILE_NAMES).map((n) => `${n}[.gz]`).join(', ');
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new DataError(`${what}: folder ${dir} does not exist; expected a folder holding ${expectedList}`);
  }
  if (!stat.isDirectory()) {
    throw new DataError(`${what}: ${dir} is not a folder; expected a folder holding ${expectedList}`);
  }
  const found: Partial<Record<keyof typeof IDX_FILE_NAMES, string>> = {};
  const missing: string[] = [];
  for (const [key, name] of Object.entries(IDX_FILE_NAMES) as [keyof typeof IDX_FILE_NAMES, string][]) {
    const hit = [name, name + '.gz'].map((n) => path.join(dir, n)).find((p) => fs.existsSync(p));
    if (hit) found[key] = hit;
    else missing.push(`${name}[.gz]`);
  }
  if (missing.length > 0) {
    throw new DataError(
      `${what}: folder ${dir} lacks ${missing.join(', ')}; expected the four IDX files ${expectedList}`,
    );
  }
  return found as Record<keyof typeof IDX_FILE_NAMES, string>;
}

/** The four IDX files of an MNIST-style folder (each raw or .gz), in the order of IDX_FILE_NAMES. */
export function idxFolderFiles(dir: string, what = 'IDX'): string[] {
  return Object.values(findIdxFiles(dir, what));
}

/** 0..255 -> [0, 1], as float32. */
export const BYTE_TO_UNIT: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) t[i] = i / 255;
  return t;
})();

/**
 * Which examples of a split to keep: all of them in file order, or `want` of them picked by a
 * seeded shuffle (in shuffled order). Asking for more than `count` is an error naming `source`
 * (the file or folder holding the split), never a silent clip.
 */
export function pickIndices(count: number, want: number | undefined, rng: Rng, source = 'the data'): Int32Array {
  if (want !== undefined && want > count) {
    throw new DataError(`--subset: ${source} has only ${count} examples, and the subset needs ${want}`);
  }
  if (want === undefined || want === count) {
    const all = new Int32Array(count);
    for (let i = 0; i < count; i++) all[i] = i;
    return all;
  }
  return rng.permutation(count).subarray(0, want);
}

/** The train/test fields of a Dataset from gathered examples ({@link gatherImages}). */
export function splitFields(tr: { x: Float32Array; y: Float32Array }, nTrain: number, te: { x: Float32Array; y: Float32Array }, nTest: number):
  Pick<Dataset, 'xTrain' | 'yTrain' | 'xTest' | 'yTest' | 'nTrain' | 'nTest'> {
  return { xTrain: tr.x, yTrain: tr.y, xTest: te.x, yTest: te.y, nTrain, nTest };
}

/**
 * The chosen examples as float32 pixels in [0, 1], NHWC, and their labels: example k is
 * `bytes(idx[k])` (its pixels, `channels` planes of `plane` bytes each: channel-major, as CIFAR-10
 * stores them; one plane for grayscale) and `label(idx[k])`.
 */
export function gatherImages(idx: Int32Array, plane: number, channels: number, bytes: (i: number) => Uint8Array,
  label: (i: number) => number): { x: Float32Array; y: Float32Array } {
  const size = plane * channels;
  const x = new Float32Array(idx.length * size);
  const y = new Float32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const src = bytes(idx[k]);
    const out = k * size;
    // Pixel p of channel c is byte c * plane + p; NHWC puts a pixel's channels next to each other.
    for (let c = 0; c < channels; c++) {
      const from = c * plane;
      for (let p = 0; p < plane; p++) x[out + p * channels + c] = BYTE_TO_UNIT[src[from + p]];
    }
    y[k] = label(idx[k]);
  }
  return { x, y };
}

/** Gathers examples of an IDX split (one channel). */
function gatherIdx(split: IdxSplit, idx: Int32Array): { x: Float32Array; y: Float32Array } {
  const size = split.rows * split.cols;
  const images = split.images.data;
  return gatherImages(idx, size, 1, (i) => images.subarray(i * size, (i + 1) * size), (i) => split.labels.data[i]);
}

/**
 * Loads an MNIST-style folder (four IDX files, train and test as given) as a Dataset with pixels
 * scaled to [0, 1]. `subset` N keeps a seeded random N of the training examples and
 * round(N / 6) of the test examples (the 60,000 : 10,000 ratio of the official splits); the files
 * must hold that many.
 */
export function loadIdxFolder(opts: {
  dir: string;
  name: string;
  label: string;
  classNames: string[];
  seed?: number;
  subset?: number;
}): Dataset {
  checkSubset(opts.subset);
  const files = findIdxFiles(opts.dir, opts.label);
  const classes = opts.classNames.length;
  const train = readIdxPair(files.trainImages, files.trainLabels, classes);
  const test = readIdxPair(files.testImages, files.testLabels, classes);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new DataError(
      `${files.testImages}: images are ${test.rows}x${test.cols}, but ${files.trainImages} has ${train.rows}x${train.cols}; expected the same size`,
    );
  }
  const rng = new Rng(opts.seed ?? 0);
  const testWant = opts.subset === undefined ? undefined : Math.max(1, Math.round(opts.subset / 6));
  const trainIdx = pickIndices(train.count, opts.subset, rng, files.trainImages);
  const testIdx = pickIndices(test.count, testWant, rng, files.testImages);
  const tr = gatherIdx(train, trainIdx);
  const te = gatherIdx(test, testIdx);
  return {
    name: opts.name,
    task: 'classification',
    inputShape: [train.rows, train.cols, 1],
    outputs: classes,
    ...splitFields(tr, trainIdx.length, te, testIdx.length),
    classNames: opts.classNames.slice(),
    source: opts.dir,
  };
}
