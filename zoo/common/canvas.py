"""Deterministic detection canvases composed from real Fashion-MNIST items.

Bit-exact twin of zoo/datasets/canvas.ts: same PRNG, same integer-only arithmetic, same
order of draws. Any change here must be made there too (the checksum test in
zoo/datasets/canvas.test.ts compares the two through zoo/fmnist-detect/task.json).

Specification (all integers; uint32 arithmetic is done mod 2**32):
  * PRNG: mulberry32 on a uint32 state. next(): s += 0x6D2B79F5; t = imul(s ^ (s >>> 15), s | 1);
    t = (t + imul(t ^ (t >>> 7), t | 61)) ^ t; return t ^ (t >>> 14).
    int(n) = floor(next() * n / 2**32) (exact: next() * n < 2**53 for n < 2**21).
  * Canvas i of a split with seed S starts from state fmix32(S ^ imul(i + 1, 0x9E3779B1))
    (murmur3's finaliser), so every canvas can be composed on its own.
  * Canvas: 64x64 uint8, zero background. n = 1 + int(4) items. For each item, in order:
      idx = start + int(count)            image from the split's index range [start, start+count)
      side = 16 + int(21)                 scaled side length, 16..36
      patch[y][x] = img[(y*28)//side][(x*28)//side] for y, x < side (integer nearest neighbour)
      crop the patch to the tight box of its nonzero pixels (an empty patch is skipped);
      up to 10 tries: x = int(64 - w + 1); y = int(64 - h + 1); box = [x, y, x+w, y+h);
        accept the first box whose IoU with every earlier accepted box is <= 0.3, tested in
        integers as 10 * inter <= 3 * union; if no try is accepted the item is dropped.
      accepted items are pasted with pixel-wise max.
  * Ground truth per item: [x1, y1, x2, y2) in pixels (x2, y2 exclusive, i.e. continuous
    coordinates: width = x2 - x1) and the item's Fashion-MNIST label.
"""
import hashlib

import numpy as np

M32 = 0xFFFFFFFF
CANVAS = 64
MAX_ITEMS = 4
MIN_SIDE = 16
MAX_SIDE = 36
TRIES = 10

# Split definitions: (fashion-mnist part, first image, image count, seed, canvases).
SPLITS = {
    "train": ("train", 0, 55000, 1, 48000),
    "calibration": ("train", 55000, 5000, 2, 1000),
    "evaluation": ("t10k", 0, 10000, 3, 2000),
}


def imul(a, b):
    return (a * b) & M32


def fmix32(h):
    h &= M32
    h ^= h >> 16
    h = imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def canvas_seed(seed, i):
    return fmix32(seed ^ imul(i + 1, 0x9E3779B1))


class Mulberry32:
    def __init__(self, state):
        self.s = state & M32

    def next(self):
        self.s = (self.s + 0x6D2B79F5) & M32
        s = self.s
        t = imul(s ^ (s >> 15), s | 1)
        t = ((t + imul(t ^ (t >> 7), t | 61)) & M32) ^ t
        return (t ^ (t >> 14)) & M32

    def int(self, n):
        return (self.next() * n) >> 32


def _scale_indices(side):
    return (np.arange(side) * 28) // side


def compose_one(images, labels, start, count, seed, i):
    """Returns (canvas uint8 [64,64], items [(cls, x1, y1, x2, y2), ...])."""
    rng = Mulberry32(canvas_seed(seed, i))
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    items = []
    n = 1 + rng.int(MAX_ITEMS)
    for _ in range(n):
        idx = start + rng.int(count)
        side = MIN_SIDE + rng.int(MAX_SIDE - MIN_SIDE + 1)
        ix = _scale_indices(side)
        patch = images[idx][ix[:, None], ix[None, :]]
        rows = np.flatnonzero(patch.any(axis=1))
        cols = np.flatnonzero(patch.any(axis=0))
        if rows.size == 0:
            continue
        py1, py2, px1, px2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        crop = patch[py1:py2, px1:px2]
        h, w = crop.shape
        for _t in range(TRIES):
            x = rng.int(CANVAS - w + 1)
            y = rng.int(CANVAS - h + 1)
            box = (x, y, x + w, y + h)
            if all(_iou_ok(box, it[1:]) for it in items):
                region = canvas[y:y + h, x:x + w]
                np.maximum(region, crop, out=region)
                items.append((int(labels[idx]), x, y, x + w, y + h))
                break
    return canvas, items


def _iou_ok(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih if iw > 0 and ih > 0 else 0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 10 * inter <= 3 * union


def compose(images, labels, start, count, seed, n_canvases):
    """Returns (canvases uint8 [n,64,64], items list of lists)."""
    canvases = np.zeros((n_canvases, CANVAS, CANVAS), dtype=np.uint8)
    all_items = []
    for i in range(n_canvases):
        canvases[i], items = compose_one(images, labels, start, count, seed, i)
        all_items.append(items)
    return canvases, all_items


def compose_split(name, data=None):
    """Composes a named split. data: optional {part: (images, labels)} cache."""
    from fmnist import load  # noqa: E402 (zoo/common on sys.path)

    part, start, count, seed, n = SPLITS[name]
    if data is not None and part in data:
        images, labels = data[part]
    else:
        images, labels = load(part)
        if data is not None:
            data[part] = (images, labels)
    return compose(images, labels, start, count, seed, n)


def boxes_table(all_items):
    """int32 [rows, 6]: (canvas, cls, x1, y1, x2, y2) for every item, canvas by canvas."""
    rows = [(i, *it) for i, items in enumerate(all_items) for it in items]
    return np.asarray(rows, dtype=np.int32).reshape(-1, 6)


def checksums(canvases, all_items):
    """sha256 of the canvases' bytes ([n,64,64] uint8, row-major) and of boxes_table() as
    little-endian int32."""
    pix = hashlib.sha256(np.ascontiguousarray(canvases).tobytes()).hexdigest()
    box = hashlib.sha256(boxes_table(all_items).astype("<i4").tobytes()).hexdigest()
    return pix, box


if __name__ == "__main__":
    import json
    import sys
    import time

    names = sys.argv[1:] or ["evaluation"]
    cache = {}
    for name in names:
        t0 = time.time()
        c, it = compose_split(name, cache)
        p, b = checksums(c, it)
        counts = np.bincount([len(x) for x in it], minlength=5).tolist()
        print(json.dumps({"split": name, "canvasSha256": p, "boxesSha256": b,
                          "items": int(sum(len(x) for x in it)), "itemsPerCanvas": counts,
                          "seconds": round(time.time() - t0, 2)}))
