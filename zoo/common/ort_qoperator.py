"""An operator-style quantized model from another framework: ONNX Runtime's own `quantize_static`
in its QOperator format (QLinearConv, QLinearAdd, QGemm...: the format of the ONNX Model Zoo's
"-int8" models), applied to a Fashion-MNIST task's committed model, for `cann-quant import` /
`score --qdq` (docs/IMPORT.md).

Run from the repository root: <python> zoo/common/ort_qoperator.py <task> [<task>...]
(task: smoke-fmnist, fmnist-resnet, fmnist-mobilenet, spam-transformer) with the onnxruntime Python package (1.30.0
made the committed files; offline here: `python3 -m venv v && v/bin/pip install --no-index
--find-links /opt/pypi/files onnxruntime==1.30.0 onnx`) and the Debian Fashion-MNIST files.
Writes zoo/<task>/ort-qoperator/model.onnx and ort-qoperator.json.

What it does, as ONNX Runtime's documentation says to:
1. `quant_pre_process` (shape inference and ONNX Runtime's graph optimizations: BatchNorm folded
   into the Conv before it);
2. `quantize_static` with `quant_format=QOperator`, uint8 asymmetric activations, int8 symmetric
   per-channel weights, MinMax calibration on the first 512 images of the task's calibration
   split (train[55000:], normalised as zoo/datasets/fashion-mnist.ts does), the images the
   PyTorch file (pytorch_ptq.py) calibrated on; for spam-transformer on its whole calibration
   split (300 emails, token ids as zoo/common/spam_assassin.py reads them). On the transformer
   ONNX Runtime quantizes every op it can: MatMul, Gemm, Add, Mul, Softmax and the embedding
   Gather; LayerNorm's ops and GELU's Erf stay float between DequantizeLinear/QuantizeLinear.
Calibration is deterministic (MinMax over fixed images), so re-running gives the same bytes.
"""
import os
import sys
import tempfile

import numpy as np
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

COMMON = os.path.dirname(os.path.abspath(__file__))
ZOO = os.path.dirname(COMMON)
sys.path.insert(0, COMMON)
import fmnist  # noqa: E402
from ort_record import write_record  # noqa: E402

TASKS = ("smoke-fmnist", "fmnist-resnet", "fmnist-mobilenet", "spam-transformer")
CALIBRATION_START = 55000
CALIBRATION_IMAGES = 512
BATCH = 64


class Images(CalibrationDataReader):
    def __init__(self, images, name):
        self.batches = [images[i:i + BATCH] for i in range(0, len(images), BATCH)]
        self.name = name
        self.next = 0

    def get_next(self):
        if self.next >= len(self.batches):
            return None
        self.next += 1
        return {self.name: self.batches[self.next - 1]}


def calibration_data(task):
    """The calibration inputs and what the record says about them."""
    if task == "spam-transformer":
        from spam_assassin import load_split

        ids, _, _ = load_split("calibration")
        return ids, {"split": "calibration", "emails": int(len(ids))}
    train_images, _ = fmnist.load("train")
    calib = train_images[CALIBRATION_START:CALIBRATION_START + CALIBRATION_IMAGES]
    return fmnist.normalise(calib).reshape(-1, 1, 28, 28), {
        "split": "train[55000:60000]",
        "images": CALIBRATION_IMAGES,
    }


def main(tasks):
    for task in tasks:
        if task not in TASKS:
            sys.exit(f"usage: ort_qoperator.py <{'|'.join(TASKS)}>...")
        calib, calibration = calibration_data(task)
        src = os.path.join(ZOO, task, "model.onnx")
        out_dir = os.path.join(ZOO, task, "ort-qoperator")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, "model.onnx")
        with tempfile.TemporaryDirectory() as tmp:
            pre = os.path.join(tmp, "pre.onnx")
            quant_pre_process(src, pre)
            name = onnxruntime.InferenceSession(pre).get_inputs()[0].name
            quantize_static(
                pre,
                out,
                Images(calib, name),
                quant_format=QuantFormat.QOperator,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
            )
        write_record(
            os.path.join(out_dir, "ort-qoperator.json"),
            task,
            f"onnxruntime {onnxruntime.__version__} quantize_static (QOperator)",
            "quant_pre_process, then QOperator, activations QUInt8, weights QInt8 per channel, MinMax",
            src,
            out,
            calibration=calibration,
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: ort_qoperator.py <{'|'.join(TASKS)}>...")
    main(sys.argv[1:])
