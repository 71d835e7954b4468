"""A dynamically quantized model from another framework: ONNX Runtime's own `quantize_dynamic`
applied to a task's committed model, for `cann-quant import` / `score --qdq` on the dynamic
target cpu-wasm-dynamic (docs/IMPORT.md, docs/DYNAMIC.md).

Run from the repository root: <python> zoo/common/ort_dynamic.py <task> [<task>...]
with the onnxruntime Python package (1.30.0 made the committed files; offline here:
`python3 -m venv v && v/bin/pip install --no-index --find-links /opt/pypi/files onnxruntime==1.30.0 onnx`).
Writes zoo/<task>/ort-dynamic/model.onnx and ort-dynamic.json.

quantize_dynamic is called with its defaults, as a user would call it: int8 symmetric weights
per tensor, uint8 activations quantized per input at run time (DynamicQuantizeLinear), every op
type it knows (Conv -> ConvInteger, MatMul and Gemm -> MatMulInteger, Gather's table), no model
pre-processing (so BatchNormalization stays after the Conv it follows). Nothing is calibrated,
so the file depends only on the task model and the onnxruntime version: re-running it gives
the same bytes.
"""
import os
import sys

import onnxruntime
from onnxruntime.quantization import quantize_dynamic

COMMON = os.path.dirname(os.path.abspath(__file__))
ZOO = os.path.dirname(COMMON)
sys.path.insert(0, COMMON)
from ort_record import write_record  # noqa: E402


def main(tasks):
    for task in tasks:
        src = os.path.join(ZOO, task, "model.onnx")
        out_dir = os.path.join(ZOO, task, "ort-dynamic")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, "model.onnx")
        quantize_dynamic(src, out)
        write_record(
            os.path.join(out_dir, "ort-dynamic.json"),
            task,
            f"onnxruntime {onnxruntime.__version__} quantize_dynamic",
            "defaults (per_channel=False, reduce_range=False, weight_type=QInt8)",
            src,
            out,
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: ort_dynamic.py <task> [<task>...]")
    main(sys.argv[1:])
