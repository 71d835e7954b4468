"""Trains the fmnist-detect CenterNet-style detector and writes model.onnx + task.json.

Run from the repository root:  /usr/bin/python3 zoo/fmnist-detect/train.py
Deterministic: fixed seeds, torch.use_deterministic_algorithms(True), 2 threads.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

# Many trainings share this 2-core machine: let idle OpenMP threads sleep instead of spin
# (does not change any result).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
sys.path.insert(0, HERE)

import canvas as cv  # noqa: E402
import detect_metric  # noqa: E402
import fmnist  # noqa: E402
from decode import STRIDE, decode  # noqa: E402

SEED = 20261125
CLASSES = 10
FEAT = 64 // STRIDE


def cbr(ci, co, s=1, d=1):
    return [nn.Conv2d(ci, co, 3, s, padding=d, dilation=d, bias=False), nn.BatchNorm2d(co),
            nn.ReLU(inplace=True)]


class Res(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.a = nn.Sequential(*cbr(c, c, d=d))
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=False),
                               nn.BatchNorm2d(c))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(x + self.b(self.a(x)))


class CenterNet(nn.Module):
    """Backbone 64x64 -> 16x16 (stride 4) with BatchNorm, three heads."""

    def __init__(self, c1=24, c2=32, c3=64, head=32):
        super().__init__()
        self.backbone = nn.Sequential(*cbr(1, c1, 2), *cbr(c1, c2), *cbr(c2, c3, 2),
                                      Res(c3, 1), Res(c3, 2))

        def mk(o):
            return nn.Sequential(nn.Conv2d(c3, head, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(head, o, 1))

        self.hm, self.wh, self.off = mk(CLASSES), mk(2), mk(2)
        nn.init.constant_(self.hm[-1].bias, -2.19)

    def raw(self, x):
        f = self.backbone(x)
        return self.hm(f), self.wh(f), self.off(f)

    def forward(self, x):
        hm, wh, off = self.raw(x)
        return torch.sigmoid(hm), wh, off


def gaussian_radius(h, w, min_overlap=0.7):
    """CenterNet's radius (feature units) keeping IoU >= min_overlap for a shifted corner."""
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def targets(items_batch):
    n = len(items_batch)
    hm = np.zeros((n, CLASSES, FEAT, FEAT), np.float32)
    wh = np.zeros((n, 2, FEAT, FEAT), np.float32)
    off = np.zeros((n, 2, FEAT, FEAT), np.float32)
    mask = np.zeros((n, 1, FEAT, FEAT), np.float32)
    ys, xs = np.mgrid[0:FEAT, 0:FEAT]
    for i, items in enumerate(items_batch):
        for c, x1, y1, x2, y2 in items:
            w, h = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
            ix, iy = int(cx), int(cy)
            r = max(0, int(gaussian_radius(h, w)))
            sigma = (2 * r + 1) / 6
            g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma * sigma))
            g[np.abs(xs - ix) > r] = 0
            g[np.abs(ys - iy) > r] = 0
            np.maximum(hm[i, c], g.astype(np.float32), out=hm[i, c])
            wh[i, :, iy, ix] = (w, h)
            off[i, :, iy, ix] = (cx - ix, cy - iy)
            mask[i, 0, iy, ix] = 1
    return [torch.from_numpy(a) for a in (hm, wh, off, mask)]


def focal_loss(logits, gt):
    pos = gt.eq(1).float()
    neg_w = torch.pow(1 - gt, 4)
    p = torch.sigmoid(logits)
    pos_loss = F.logsigmoid(logits) * torch.pow(1 - p, 2) * pos
    neg_loss = F.logsigmoid(-logits) * torch.pow(p, 2) * neg_w * (1 - pos)
    num_pos = pos.sum().clamp(min=1)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def to_input(canvases):
    return torch.from_numpy(fmnist.normalise(canvases)[:, None])


def predict(model, canvases, batch=250):
    outs = [[], [], []]
    with torch.no_grad():
        for s in range(0, len(canvases), batch):
            for k, o in enumerate(model(to_input(canvases[s:s + batch]))):
                outs[k].append(o.numpy())
    return [np.concatenate(o) for o in outs]


def as_truth(all_items):
    return [[{"cls": c, "x1": x1, "y1": y1, "x2": x2, "y2": y2} for c, x1, y1, x2, y2 in items]
            for items in all_items]


def load_onnx_weights(onnx_path):
    """A CenterNet in eval mode whose parameters and BN statistics are model.onnx's initializers."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    fresh = CenterNet()
    sd = fresh.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        assert k in inits, f"initializer {k} missing from the ONNX graph"
        sd[k] = torch.from_numpy(inits[k].copy())
    fresh.load_state_dict(sd)
    return fresh.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--canvases", type=int, default=None, help="train on the first N canvases")
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    t_start = time.time()
    cache = {}
    train_x, train_items = cv.compose_split("train", cache)
    if args.canvases:
        train_x, train_items = train_x[:args.canvases], train_items[:args.canvases]
    eval_x, eval_items = cv.compose_split("evaluation", cache)
    canvas_sha, boxes_sha = cv.checksums(eval_x, eval_items)
    print(f"composed {len(train_x)} train / {len(eval_x)} eval canvases in "
          f"{time.time() - t_start:.1f}s; eval canvas sha256 {canvas_sha}", flush=True)

    model = CenterNet()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = len(train_x) // args.batch
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(SEED)
    step = 0
    t_train = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train_x), generator=gen).numpy()
        run = [0.0, 0.0, 0.0]
        for b in range(steps_per_epoch):
            idx = np.sort(perm[b * args.batch:(b + 1) * args.batch])
            x = to_input(train_x[idx])
            hm_t, wh_t, off_t, mask = targets([train_items[i] for i in idx])
            hm, wh, off = model.raw(x)
            n = mask.sum().clamp(min=1)
            l_hm = focal_loss(hm, hm_t)
            l_wh = (F.l1_loss(wh, wh_t, reduction="none") * mask).sum() / n
            l_off = (F.l1_loss(off, off_t, reduction="none") * mask).sum() / n
            loss = l_hm + 0.1 * l_wh + l_off
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run = [r + v.item() for r, v in zip(run, (l_hm, l_wh, l_off))]
            if step % 100 == 0:
                if step % 250 == 0:  # progress only: mAP50 on the first 200 evaluation canvases
                    model.eval()
                    peek = detect_metric.detection_metrics(
                        decode(*predict(model, eval_x[:200])), as_truth(eval_items[:200]))
                    model.train()
                    print(f"  peek mAP50 {peek['mAP50']:.3f} mAP75 {peek['mAP75']:.3f}")
                print(f"epoch {epoch} step {step}/{total} hm {run[0] / 100:.3f} "
                      f"wh {run[1] / 100:.3f} off {run[2] / 100:.3f} "
                      f"{time.time() - t_train:.0f}s", flush=True)
                run = [0.0, 0.0, 0.0]
    train_seconds = time.time() - t_start
    model.eval()

    # Export with BatchNormalization kept as nodes.
    onnx_path = os.path.join(args.out, "model.onnx")
    dummy = to_input(eval_x[:2])
    torch.onnx.export(model, dummy, onnx_path, opset_version=13, input_names=["input"],
                      output_names=["heatmap", "wh", "offset"],
                      dynamic_axes={k: {0: "N"} for k in ("input", "heatmap", "wh", "offset")},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    n_bn = ops.count("BatchNormalization")
    assert n_bn == 7, f"expected 7 BatchNormalization nodes, got {n_bn}"
    # The exported weights are the model's: rebuild the module from the ONNX initializers and
    # check its outputs are identical to the trained module's.
    fresh = load_onnx_weights(onnx_path)

    outs = predict(fresh, eval_x)
    ref_outs = predict(model, eval_x[:250])
    for a, b in zip(outs, ref_outs):
        assert np.array_equal(a[:250], b), "ONNX initializers do not reproduce the model"
    dets = decode(*outs)
    truth = as_truth(eval_items)
    metrics = detection_metrics = detect_metric.detection_metrics(dets, truth)
    print(f"eval mAP50 {metrics['mAP50']:.4f} mAP75 {metrics['mAP75']:.4f} "
          f"params {params} train {train_seconds:.0f}s", flush=True)

    with open("/tmp/cann-quant-fmnist-detect-torch-dets.json", "w") as f:
        json.dump(dets, f)  # for verify-ort.ts

    # Fixture for the ORT unit test: decoded detections of the first 16 evaluation canvases.
    fixture = {"canvases": 16, "detections": dets[:16]}
    with open(os.path.join(args.out, "fixture-first16.json"), "w") as f:
        json.dump(fixture, f)

    with open(onnx_path, "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()
    command = "/usr/bin/python3 zoo/fmnist-detect/train.py" + (
        "" if sys.argv[1:] == [] else " " + " ".join(sys.argv[1:]))
    splits = {
        name: {"part": cv.SPLITS[name][0], "start": cv.SPLITS[name][1],
               "count": cv.SPLITS[name][2], "seed": cv.SPLITS[name][3],
               "canvases": cv.SPLITS[name][4]}
        for name in cv.SPLITS}
    manifest = {
        "id": "fmnist-detect",
        "title": "Fashion-MNIST canvas detection (CenterNet-style, 10 classes)",
        "kind": "detection",
        "model": {
            "file": "model.onnx",
            "sha256": model_sha,
            "parameters": params,
            "inputs": [{"name": "input", "type": "float32", "dims": ["N", 1, 64, 64]}],
            "outputs": [
                {"name": "heatmap", "type": "float32", "dims": ["N", 10, 16, 16]},
                {"name": "wh", "type": "float32", "dims": ["N", 2, 16, 16]},
                {"name": "offset", "type": "float32", "dims": ["N", 2, 16, 16]},
            ],
            "opset": 13,
        },
        "dataset": {
            "name": "Fashion-MNIST canvases",
            "source": "Debian dataset-fashion-mnist (Zalando Research), composed into 64x64 "
                      "canvases of 1-4 items by zoo/common/canvas.py = zoo/datasets/canvas.ts",
            "licence": "MIT",
            "files": ["fashion-mnist/train-images-idx3-ubyte.gz",
                      "fashion-mnist/train-labels-idx1-ubyte.gz",
                      "fashion-mnist/t10k-images-idx3-ubyte.gz",
                      "fashion-mnist/t10k-labels-idx1-ubyte.gz"],
            "canvasSha256": canvas_sha,
            "boxesSha256": boxes_sha,
            "canvasSplits": splits,
        },
        "preprocessing": "64x64 uint8 canvas -> float32 ((p / 255) - 0.286) / 0.353, every step "
                         "rounded to float32 (normalisePixels); input [N,1,64,64]",
        "metric": {
            "primary": "mAP50",
            "reported": ["mAP50", "mAP75"],
            "higherIsBetter": True,
            "definition": "COCO-style mAP (101-point interpolated precision, greedy matching "
                          "by descending score, continuous-coordinate IoU without +1) averaged "
                          "over the classes with ground truth, at IoU 0.5 (mAP50) and 0.75 "
                          "(mAP75); detections from decode.ts: 3x3 peak, score >= 0.05, "
                          "top 20 per canvas (core/metrics/detection.ts)",
        },
        "splits": {
            "calibration": {
                "source": "fashion-mnist train images 55000..59999 (held out from training)",
                "size": cv.SPLITS["calibration"][4],
                "description": "canvases composed with seed 2 from the held-out training images",
            },
            "evaluation": {
                "source": "fashion-mnist t10k images 0..9999",
                "size": cv.SPLITS["evaluation"][4],
                "description": "canvases composed with seed 3 from the test images only",
            },
        },
        "reference": {
            "fp32": {"mAP50": metrics["mAP50"], "mAP75": metrics["mAP75"]},
            "samples": len(eval_x),
            "recordedBy": "zoo/fmnist-detect/train.py: torch outputs of the exported weights, "
                          "decoded by decode.py and scored by zoo/common/detect_metric.py",
        },
        "training": {
            "script": "zoo/fmnist-detect/train.py",
            "command": command,
            "framework": f"torch {torch.__version__}",
            "seed": SEED,
            "epochs": args.epochs,
            "seconds": round(train_seconds, 1),
            "notes": f"{len(train_x)} training canvases (seed 1, train images 0..54999), "
                     f"batch {args.batch}, Adam + one-cycle max lr {args.lr}, CenterNet focal "
                     "loss + 0.1 L1 size + L1 offset, 2 CPU threads, deterministic algorithms",
        },
    }
    with open(os.path.join(args.out, "task.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest["reference"]), flush=True)


if __name__ == "__main__":
    main()
