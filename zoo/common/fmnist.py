"""Fashion-MNIST reading shared by the zoo's training scripts (mirrors zoo/datasets/*.ts)."""
import gzip
import numpy as np

ROOT = "/usr/share/datasets/fashion-mnist"
MEAN = np.float32(0.2860)
STD = np.float32(0.3530)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    assert data[0] == 0 and data[1] == 0 and data[2] == 8, path
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(part):
    """part: 'train' (60k) or 't10k' (10k). Returns (images uint8 [N,28,28], labels uint8 [N])."""
    images = read_idx(f"{ROOT}/{part}-images-idx3-ubyte.gz")
    labels = read_idx(f"{ROOT}/{part}-labels-idx1-ubyte.gz")
    return images, labels


def normalise(pixels):
    """float32 exactly as normalisePixels() in zoo/datasets/fashion-mnist.ts:
    ((p / 255) - MEAN) / STD with every step rounded to float32."""
    x = pixels.astype(np.float32) / np.float32(255)
    return ((x - MEAN) / STD).astype(np.float32)
