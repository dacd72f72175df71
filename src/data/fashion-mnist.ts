/**
 * Fashion-MNIST (Zalando, MIT): 60,000 + 10,000 28x28 grey images of clothes in 10 classes, in
 * the same four IDX files as MNIST. Default folder: where the Debian package
 * `dataset-fashion-mnist` installs them, /usr/share/datasets/fashion-mnist/
 * (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
 * t10k-labels-idx1-ubyte.gz).
 */
import * as fs from 'node:fs';
import { DataError, type Dataset } from './dataset.js';
import { IDX_FILE_NAMES, loadIdxFolder } from './idx.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

const FASHION_MNIST_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

interface FashionMnistOptions {
  /** A folder with the four IDX files. Default /usr/share/datasets/fashion-mnist. */
  data?: string;
  /** Seeds the subset. Default 0. */
  seed?: number;
  /** Keep a seeded random N training examples and round(N / 6) test examples. */
  subset?: number;
}

/** Fashion-MNIST as a Dataset: NHWC [28, 28, 1] pixels in [0, 1], labels 0..9 as floats. */
export function loadFashionMnist(opts: FashionMnistOptions = {}): Dataset {
  const dir = opts.data ?? FASHION_MNIST_DIR;
  if (!fs.existsSync(dir)) {
    const files = Object.values(IDX_FILE_NAMES).map((n) => `${n}.gz`).join(', ');
    throw new DataError(
      `Fashion-MNIST not found: folder ${dir} does not exist. Get it with ` +
        '`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; installs it in ' +
        `${FASHION_MNIST_DIR}), or pass --data DIR with the four IDX files ${files} ` +
        '(from https://github.com/zalandoresearch/fashion-mnist; gzipped or not)',
    );
  }
  return loadIdxFolder({
    dir,
    name: 'fashion-mnist',
    label: 'Fashion-MNIST',
    classNames: FASHION_MNIST_CLASS_NAMES,
    seed: opts.seed,
    subset: opts.subset,
  });
}
