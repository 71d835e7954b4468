"""Random-weight ResNet-18 / ResNet-50 (torchvision, 10 classes) at a small input size, exported
to ONNX for the scaling benchmark only (bench/perf.ts --sections scaling). Not part of CI: it
needs Debian's PyTorch (/usr/bin/python3). Deterministic (seed 0).

    /usr/bin/python3 bench/make-resnets.py [--size 32] [--out bench/.cache]
"""
import argparse
import os

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=32)
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), ".cache"))
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
for name in ["resnet18", "resnet50"]:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
    x = torch.randn(1, 3, args.size, args.size)
    path = os.path.join(args.out, f"{name}-{args.size}.onnx")
    torch.onnx.export(
        model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    params = sum(p.numel() for p in model.parameters())
    print(f"{path}: {params} parameters, {os.path.getsize(path)} bytes")
