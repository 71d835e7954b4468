"""smoke-fmnist: a tiny CNN (two conv+BN+ReLU layers, a Gemm) for fast tests.

Run from the repository root: /usr/bin/python3 zoo/smoke-fmnist/train.py
Writes zoo/smoke-fmnist/model.onnx and zoo/smoke-fmnist/task.json.
"""
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import trainer  # noqa: E402

SEED = 20261125


class SmokeCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
        )
        self.classifier = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


if __name__ == "__main__":
    trainer.setup(SEED)
    trainer.run(
        task_id="smoke-fmnist",
        title="Smoke test: tiny CNN on Fashion-MNIST (1,000 evaluation images)",
        model=SmokeCnn(),
        seed=SEED, epochs=3, batch_size=128, lr=3e-3, weight_decay=0.01,
        calibration_count=500, evaluation_count=1000,
        model_notes="Model: conv3x3(1->8)+BN+ReLU+maxpool2, conv3x3(8->8)+BN+ReLU+maxpool2, "
                    "flatten, Linear(392->10).",
        script_dir=HERE,
    )
