"""A quantized model from another framework: PyTorch's own post-training quantization of a
Fashion-MNIST task model, exported as a QDQ ONNX file for `cann-quant import` / `score --qdq`.

Run from the repository root: /usr/bin/python3 zoo/common/pytorch_ptq.py <task>
(task: fmnist-resnet, smoke-fmnist or fmnist-mobilenet). Needs Debian's python3-torch 1.13 and
python3-onnx. Writes zoo/<task>/pytorch-ptq/model.onnx and ptq.json.

What it does, all with PyTorch's own tools (torch.ao.quantization, FX graph mode):
1. rebuilds the task's network (zoo/<task>/train.py) and loads the weights of the committed
   zoo/<task>/model.onnx, so the float model is the task's, bit for bit;
2. prepare_fx with a QConfig of PyTorch's standard observers: HistogramObserver for activations
   (quint8, asymmetric, full 8-bit range: reduce_range off so the ONNX scales mean what they say)
   and the per-channel symmetric MinMax observer for weights (qint8); conv + BN + ReLU fused;
3. calibrates on the first 512 images of the task's calibration split (train[55000:]);
4. records PyTorch's INT8 accuracy on the full evaluation split twice: with the reference
   (simulated) model, whose arithmetic is ONNX QDQ semantics in fp32, and with the converted
   model on PyTorch's own int8 kernels (oneDNN);
5. exports the reference model with torch.onnx (opset 13): QuantizeLinear/DequantizeLinear
   around every quantized op, weights as int8 initializers behind DequantizeLinear.
"""
import importlib.util
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch.ao.quantization import QConfig, QConfigMapping
from torch.ao.quantization.observer import HistogramObserver, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, convert_to_reference_fx, prepare_fx

COMMON = os.path.dirname(os.path.abspath(__file__))
ZOO = os.path.dirname(COMMON)
sys.path.insert(0, COMMON)
import trainer  # noqa: E402

# The network class of each task's training script.
NETWORKS = {"fmnist-resnet": "ResNet", "smoke-fmnist": "SmokeCnn", "fmnist-mobilenet": "MobileNetV2"}

SEED = 20261129
CALIBRATION_IMAGES = 512
OPSET = 13
# Debian's torch 1.13 build has no fbgemm; oneDNN is its x86 int8 engine.
ENGINE = "onednn"


def task_network(task):
    spec = importlib.util.spec_from_file_location("task_train", os.path.join(ZOO, task, "train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, NETWORKS[task])()


def load_onnx_weights(model, path):
    """Copies every parameter and BN buffer from the task's ONNX file (names are the state_dict
    keys; torch's exporter dedups equal initializers into Identity nodes, resolved here)."""
    graph = onnx.load(path).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    state = model.state_dict()
    loaded = {}
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            loaded[key] = tensor
            continue
        if key in values:
            loaded[key] = torch.from_numpy(values[key].copy())
    missing = [k for k in state if k not in loaded]
    if missing:
        raise SystemExit(f"weights not found in {path}: {missing}")
    model.load_state_dict(loaded)
    return model


def qconfig():
    return QConfig(
        activation=HistogramObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                               reduce_range=False),
        weight=default_per_channel_weight_observer,
    )


@torch.no_grad()
def top1(model, images, labels):
    logits = trainer.logits_of(model, images)
    predictions = trainer.argmax_first(logits)
    correct = int((predictions.long() == torch.from_numpy(labels.astype(np.int64))).sum())
    return correct / len(labels), trainer.predictions_sha256(predictions)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in NETWORKS:
        raise SystemExit(f"usage: pytorch_ptq.py <{'|'.join(NETWORKS)}>")
    task = sys.argv[1]
    here = os.path.join(ZOO, task, "pytorch-ptq")
    os.makedirs(here, exist_ok=True)
    trainer.setup(SEED)
    started = time.time()
    task_model = os.path.join(ZOO, task, "model.onnx")
    float_model = load_onnx_weights(task_network(task), task_model).eval()
    data = trainer.load_data()
    calib_images, _ = data["heldout"]
    # The task's evaluation split: the first `size` t10k images (all 10,000 but for smoke-fmnist).
    with open(os.path.join(ZOO, task, "task.json")) as f:
        count = json.load(f)["splits"]["evaluation"]["size"]
    test_images, test_labels = (a[:count] for a in data["test"])
    fp32_top1, fp32_sha = top1(float_model, test_images, test_labels)

    torch.backends.quantized.engine = ENGINE
    example = (torch.zeros(1, 1, 28, 28),)
    prepared = prepare_fx(float_model, QConfigMapping().set_global(qconfig()), example)
    calib = trainer.to_tensor(calib_images[:CALIBRATION_IMAGES])
    with torch.no_grad():
        for i in range(0, CALIBRATION_IMAGES, 64):
            prepared(calib[i:i + 64])
    reference = convert_to_reference_fx(prepared).eval()
    engine = convert_fx(prepared).eval()
    reference_top1, reference_sha = top1(reference, test_images, test_labels)
    engine_top1, engine_sha = top1(engine, test_images, test_labels)

    out = os.path.join(here, "model.onnx")
    torch.onnx.export(engine, torch.zeros(2, 1, 28, 28), out, opset_version=OPSET,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    m = onnx.load(out)
    onnx.checker.check_model(m)
    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1

    record = {
        "task": task,
        "framework": f"torch {torch.__version__} (torch.ao.quantization, FX graph mode), onnx {onnx.__version__}",
        "command": f"/usr/bin/python3 zoo/common/pytorch_ptq.py {task}",
        "model": {"file": "model.onnx", "sha256": trainer.sha256_file(out), "opset": OPSET,
                  "ops": ops},
        "source_model_sha256": trainer.sha256_file(task_model),
        "qconfig": {
            "activations": "HistogramObserver, quint8, per-tensor affine, reduce_range=False",
            "weights": "default_per_channel_weight_observer: MinMax, qint8, per-channel symmetric",
            "fusion": "prepare_fx default fusion (conv+bn+relu, conv+bn)",
        },
        "calibration": {"split": "train[55000:60000]", "images": CALIBRATION_IMAGES},
        "evaluation": {
            "split": f"t10k[0:{count}]",
            "samples": int(len(test_labels)),
            "fp32_top1": fp32_top1,
            "fp32_predictions_sha256": fp32_sha,
            "reference_top1": reference_top1,
            "reference_predictions_sha256": reference_sha,
            "engine_top1": engine_top1,
            "engine_predictions_sha256": engine_sha,
            "definitions": {
                "reference": "convert_to_reference_fx: quantize/dequantize in fp32 around float ops (the exported graph's semantics)",
                "engine": f"convert_fx on torch.backends.quantized.engine = '{ENGINE}' (x86 int8 kernels)",
            },
        },
        "seconds": round(time.time() - started, 1),
    }
    with open(os.path.join(here, "ptq.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(json.dumps(record["evaluation"], indent=2))


if __name__ == "__main__":
    main()
