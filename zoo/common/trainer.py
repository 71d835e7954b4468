"""Deterministic training, ONNX export, verification and manifest writing shared by the zoo's
Fashion-MNIST image-classification tasks (zoo/<id>/train.py).

Splits (identical for every task, mirrored by zoo/image-classification.ts):
  train        training images 0..54999
  calibration  held-out training images 55000..59999 (never trained on)
  evaluation   the t10k test set
Tasks may use a prefix of calibration/evaluation (smoke-fmnist does).
"""
import hashlib
import json
import os
import random
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402

TRAIN_COUNT = 55000
CALIBRATION_START = 55000
OPSET = 13
EVAL_BATCH = 50  # same as core/evaluate DEFAULT_BATCH_SIZE
# Zero (black) pixel after normalise(): the value random-crop padding uses.
BACKGROUND = float(fmnist.normalise(np.zeros(1, dtype=np.uint8))[0])


def setup(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)


def to_tensor(images):
    """uint8 [N,28,28] -> normalised float32 tensor [N,1,28,28]."""
    return torch.from_numpy(fmnist.normalise(images)).unsqueeze(1).contiguous()


def load_data():
    train_images, train_labels = fmnist.load("train")
    test_images, test_labels = fmnist.load("t10k")
    return {
        "train": (to_tensor(train_images[:TRAIN_COUNT]),
                  torch.from_numpy(train_labels[:TRAIN_COUNT].astype(np.int64))),
        "heldout": (train_images[CALIBRATION_START:], train_labels[CALIBRATION_START:]),
        "test": (test_images, test_labels),
    }


def augment(x, generator, crop_padding, flip):
    """Standard mild augmentation, every random draw from `generator`:
    random crop with `crop_padding` (pad with the normalised black pixel), horizontal flip."""
    n = x.shape[0]
    if crop_padding:
        p = crop_padding
        padded = F.pad(x, (p, p, p, p), value=BACKGROUND)
        offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=generator)
        x = torch.stack([padded[i, :, oy:oy + 28, ox:ox + 28]
                         for i, (oy, ox) in enumerate(offsets.tolist())])
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def train(model, data, *, seed, epochs, batch_size, lr, weight_decay, crop_padding=0, flip=False,
          log=print):
    """AdamW + per-step cosine decay to 0, cross-entropy, seeded shuffling/augmentation."""
    x, y = data["train"]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (x.shape[0] + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(x.shape[0], generator=generator)
        started = time.time()
        total_loss, correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb = augment(x[idx], generator, crop_padding, flip)
            yb = y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * idx.shape[0]
            correct += int((logits.argmax(1) == yb).sum())
        log(f"epoch {epoch + 1}/{epochs}: loss {total_loss / x.shape[0]:.4f} "
            f"train acc {correct / x.shape[0]:.4f} ({time.time() - started:.0f}s)")


@torch.no_grad()
def logits_of(model, images):
    model.eval()
    x = to_tensor(images)
    return torch.cat([model(x[i:i + EVAL_BATCH]) for i in range(0, x.shape[0], EVAL_BATCH)])


def argmax_first(logits):
    """Row argmax, ties to the lowest index (what torch.argmax and core/metrics do)."""
    return logits.argmax(1).to(torch.int32)


def predictions_sha256(predictions):
    return hashlib.sha256(predictions.numpy().astype("<i4").tobytes()).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def export(model, path):
    """ONNX opset 13, input `input` [N,1,28,28], output `logits` [N,10], BatchNormalization kept
    (PRESERVE with the model in eval() skips torch's eval-mode BN-into-Conv folding)."""
    model.eval()
    dummy = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(
        model, dummy, path, opset_version=OPSET,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    bn_modules = sum(isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) for mod in model.modules())
    assert ops.get("BatchNormalization", 0) == bn_modules, (ops, bn_modules)
    return m, ops


def tensor_spec(value_info):
    t = value_info.type.tensor_type
    dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
    return {"name": value_info.name,
            "type": onnx.TensorProto.DataType.Name(t.elem_type).lower(),
            "dims": dims}


def dump_logits(task_id, logits):
    """Saves torch logits (float32 LE, [N,10]) outside the repo for the ORT-web comparison
    (zoo/common/verify-ort.ts)."""
    path = f"/tmp/cann-quant-{task_id}-torch-logits.f32"
    logits.numpy().astype("<f4").tofile(path)
    return path


def run(*, task_id, title, model, seed, epochs, batch_size, lr, weight_decay, crop_padding=0,
        flip=False, calibration_count=5000, evaluation_count=10000, model_notes="", script_dir):
    """Trains, exports, evaluates and writes task.json for one zoo task."""
    setup(seed)
    started = time.time()
    data = load_data()
    train(model, data, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
          weight_decay=weight_decay, crop_padding=crop_padding, flip=flip)
    train_seconds = time.time() - started

    onnx_path = os.path.join(script_dir, "model.onnx")
    m, ops = export(model, onnx_path)

    test_images, test_labels = data["test"]
    images = test_images[:evaluation_count]
    labels = torch.from_numpy(test_labels[:evaluation_count].astype(np.int64))
    logits = logits_of(model, images)
    predictions = argmax_first(logits)
    correct = int((predictions.long() == labels).sum())
    top1 = correct / evaluation_count
    ties = int((logits == logits.max(1, keepdim=True).values).sum(1).gt(1).sum())
    dump = dump_logits(task_id, logits)
    parameters = sum(p.numel() for p in model.parameters())
    seconds = round(time.time() - started, 1)

    calib_end = CALIBRATION_START + calibration_count
    manifest = {
        "id": task_id,
        "title": title,
        "kind": "image-classification" if task_id != "smoke-fmnist" else "smoke",
        "model": {
            "file": "model.onnx",
            "sha256": sha256_file(onnx_path),
            "parameters": parameters,
            "inputs": [tensor_spec(v) for v in m.graph.input],
            "outputs": [tensor_spec(v) for v in m.graph.output],
            "opset": OPSET,
        },
        "dataset": {
            "name": "Fashion-MNIST",
            "source": "Debian package dataset-fashion-mnist (Zalando Research), /usr/share/datasets/fashion-mnist",
            "licence": "MIT",
            "files": [
                "fashion-mnist/train-images-idx3-ubyte.gz",
                "fashion-mnist/train-labels-idx1-ubyte.gz",
                "fashion-mnist/t10k-images-idx3-ubyte.gz",
                "fashion-mnist/t10k-labels-idx1-ubyte.gz",
            ],
        },
        "preprocessing": (
            "uint8 28x28 grey image -> float32 x = (p / 255 - 0.286) / 0.353, each step rounded to "
            "float32 (normalise() in zoo/common/fmnist.py = normalisePixels() in "
            "zoo/datasets/fashion-mnist.ts); input tensor NCHW [N,1,28,28]"
        ),
        "metric": {
            "primary": "top1",
            "reported": ["top1"],
            "higherIsBetter": True,
            "definition": (
                "top-1 accuracy: fraction of evaluation samples whose argmax over the 10 logits "
                "(ties to the lowest class index) equals the label"
            ),
        },
        "splits": {
            "calibration": {
                "source": f"fashion-mnist/train[{CALIBRATION_START}:{calib_end}]",
                "size": calibration_count,
                "description": (
                    f"held-out training images {CALIBRATION_START}..{calib_end - 1} "
                    "(never trained on; training used images 0..54999)"
                ),
            },
            "evaluation": {
                "source": f"fashion-mnist/t10k[0:{evaluation_count}]",
                "size": evaluation_count,
                "description": (
                    "the full t10k test set" if evaluation_count == 10000
                    else f"the first {evaluation_count} t10k test images"
                ),
            },
        },
        "reference": {
            "fp32": {"top1": top1},
            "samples": evaluation_count,
            "recordedBy": (
                f"zoo/{task_id}/train.py: torch {torch.__version__} CPU eval of the exported "
                f"weights, batches of {EVAL_BATCH}; {correct}/{evaluation_count} correct"
            ),
            "predictionsSha256": predictions_sha256(predictions),
        },
        "training": {
            "script": f"zoo/{task_id}/train.py",
            "command": f"/usr/bin/python3 zoo/{task_id}/train.py",
            "framework": f"torch {torch.__version__} (CPU, 2 threads, deterministic algorithms)",
            "seed": seed,
            "epochs": epochs,
            "seconds": seconds,
            "notes": (
                f"train images 0..54999, batch {batch_size}, AdamW lr {lr} weight decay "
                f"{weight_decay}, per-step cosine decay to 0, cross-entropy; augmentation: "
                + (", ".join(
                    ([f"random crop with padding {crop_padding}"] if crop_padding else [])
                    + (["horizontal flip p=0.5"] if flip else [])) or "none")
                + f". {model_notes} ONNX op counts: {json.dumps(ops, sort_keys=True)}. "
                f"Training took {train_seconds:.0f}s; argmax ties in the evaluation logits: {ties}."
            ),
        },
    }
    with open(os.path.join(script_dir, "task.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"{task_id}: top1 {top1} ({correct}/{evaluation_count}), {parameters} parameters, "
          f"onnx {os.path.getsize(onnx_path)} bytes sha256 {manifest['model']['sha256']}, "
          f"predictions sha256 {manifest['reference']['predictionsSha256']}, ties {ties}, "
          f"logits {dump}, {seconds}s")
    return manifest
