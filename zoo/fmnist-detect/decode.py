"""CenterNet decoding: the Python twin of zoo/fmnist-detect/decode.ts (bit-identical).

Per canvas, from heatmap [10,16,16] (sigmoid scores), wh [2,16,16], offset [2,16,16]:
  * a cell (c, y, x) is a peak when its score equals the max of its 3x3 neighbourhood in the
    same class plane (cells outside the map are ignored), and its score >= SCORE_THRESHOLD;
  * peaks are ranked by descending score, ties by lower flat index c*256 + y*16 + x; the first
    TOP_K are kept;
  * in doubles: cx = (x + offset[0,y,x]) * 4, cy = (y + offset[1,y,x]) * 4,
    w = wh[0,y,x] * 4, h = wh[1,y,x] * 4, box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    in input pixels (continuous coordinates, x2 exclusive).
"""
import numpy as np

STRIDE = 4
TOP_K = 20
SCORE_THRESHOLD = 0.05


def decode_one(hm, wh, off):
    C, H, W = hm.shape
    pad = np.full((C, H + 2, W + 2), -np.inf, dtype=np.float32)
    pad[:, 1:-1, 1:-1] = hm
    mx = np.full_like(hm, -np.inf)
    for dy in range(3):
        for dx in range(3):
            np.maximum(mx, pad[:, dy:dy + H, dx:dx + W], out=mx)
    flat = hm.reshape(-1).astype(np.float64)
    keep = (hm == mx).reshape(-1) & (flat >= SCORE_THRESHOLD)
    idx = np.flatnonzero(keep)
    order = np.lexsort((idx, -flat[idx]))[:TOP_K]
    dets = []
    for k in idx[order]:
        c, rem = divmod(int(k), H * W)
        y, x = divmod(rem, W)
        cx = (x + float(off[0, y, x])) * STRIDE
        cy = (y + float(off[1, y, x])) * STRIDE
        w = float(wh[0, y, x]) * STRIDE
        h = float(wh[1, y, x]) * STRIDE
        dets.append({"cls": c, "score": float(flat[k]),
                     "x1": cx - w / 2, "y1": cy - h / 2, "x2": cx + w / 2, "y2": cy + h / 2})
    return dets


def decode(heatmap, wh, offset):
    """Batched numpy float32 outputs -> list (per canvas) of detection dicts."""
    return [decode_one(heatmap[i], wh[i], offset[i]) for i in range(heatmap.shape[0])]
