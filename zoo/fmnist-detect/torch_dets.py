"""Rebuilds the torch model from model.onnx's initializers, runs it over the evaluation split,
decodes (decode.py) and writes the detections to /tmp for verify-ort.ts; prints the metrics.

  /usr/bin/python3 zoo/fmnist-detect/torch_dets.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train import as_truth, cv, decode, detect_metric, load_onnx_weights, predict  # noqa: E402

OUT = "/tmp/cann-quant-fmnist-detect-torch-dets.json"

if __name__ == "__main__":
    import torch

    torch.set_num_threads(2)
    model = load_onnx_weights(os.path.join(HERE, "model.onnx"))
    eval_x, eval_items = cv.compose_split("evaluation")
    dets = decode(*predict(model, eval_x))
    with open(OUT, "w") as f:
        json.dump(dets, f)
    print(json.dumps(detect_metric.detection_metrics(dets, as_truth(eval_items))), "->", OUT)
