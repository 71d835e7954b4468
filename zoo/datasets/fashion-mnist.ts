import { parseIdx } from './idx.ts';
import { type DataSource, readGunzipped } from './source.ts';

/** Fashion-MNIST (Zalando, MIT licence) as shipped by Debian's `dataset-fashion-mnist`. */
export const FASHION_MNIST_FILES = {
  train: {
    images: 'fashion-mnist/train-images-idx3-ubyte.gz',
    labels: 'fashion-mnist/train-labels-idx1-ubyte.gz',
  },
  test: {
    images: 'fashion-mnist/t10k-images-idx3-ubyte.gz',
    labels: 'fashion-mnist/t10k-labels-idx1-ubyte.gz',
  },
} as const;

/** Class names, index = label. */
export const FASHION_MNIST_CLASSES = [
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
] as const;

/** One Fashion-MNIST part: `count` 28x28 uint8 images, row-major, and their labels. */
export interface FashionMnistPart {
  count: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** Reads the `train` (60,000) or `test` (10,000) part. */
export async function readFashionMnist(
  source: DataSource,
  part: 'train' | 'test',
): Promise<FashionMnistPart> {
  const files = FASHION_MNIST_FILES[part];
  const [images, labels] = await Promise.all([
    readGunzipped(source, files.images).then(parseIdx),
    readGunzipped(source, files.labels).then(parseIdx),
  ]);
  const count = images.dims[0] ?? 0;
  if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
    throw new RangeError(
      `Fashion-MNIST ${part}: images have dims [${images.dims}], want [N,28,28]`,
    );
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== count) {
    throw new RangeError(`Fashion-MNIST ${part}: ${labels.dims[0]} labels for ${count} images`);
  }
  return { count, images: images.data, labels: labels.data };
}

/**
 * The normalisation every Fashion-MNIST task in the zoo uses (and its train.py mirrors):
 * x = (pixel / 255 - MEAN) / STD, computed in float32.
 */
export const FMNIST_MEAN = 0.286;
export const FMNIST_STD = 0.353;

/** Normalises uint8 pixels into a float32 array exactly as zoo/common/fmnist.py does. */
export function normalisePixels(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  const mean = Math.fround(FMNIST_MEAN);
  const std = Math.fround(FMNIST_STD);
  for (let i = 0; i < pixels.length; i++) {
    out[i] = Math.fround(Math.fround(Math.fround(pixels[i]! / 255) - mean) / std);
  }
  return out;
}
