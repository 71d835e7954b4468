"""fmnist-resnet: a small residual CNN with BatchNorm (~300k parameters) on Fashion-MNIST.

Run from the repository root: /usr/bin/python3 zoo/fmnist-resnet/train.py
Writes zoo/fmnist-resnet/model.onnx and zoo/fmnist-resnet/task.json.
"""
import os
import sys

from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import trainer  # noqa: E402

SEED = 20261125


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, plus identity or 1x1 conv+BN shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU())
        self.layers = nn.Sequential(
            BasicBlock(32, 64, 2),   # 14x14
            BasicBlock(64, 128, 2),  # 7x7
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(x.flatten(1))


if __name__ == "__main__":
    trainer.setup(SEED)
    trainer.run(
        task_id="fmnist-resnet",
        title="Residual CNN with BatchNorm on Fashion-MNIST",
        model=ResNet(),
        seed=SEED, epochs=3, batch_size=128, lr=3e-3, weight_decay=0.01,
        model_notes="Model: conv3x3(1->32)+BN+ReLU stem; basic residual blocks 32->64 stride 2 "
                    "(14x14) and 64->128 stride 2 (7x7), 1x1 conv+BN shortcuts; global "
                    "average pool; Linear(128->10).",
        script_dir=HERE,
    )
