"""fmnist-mobilenet: a MobileNetV2-style network (inverted residual blocks) on Fashion-MNIST.

Run from the repository root: /usr/bin/python3 zoo/fmnist-mobilenet/train.py
Writes zoo/fmnist-mobilenet/model.onnx and zoo/fmnist-mobilenet/task.json.
"""
import os
import sys

from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import trainer  # noqa: E402

SEED = 20261125

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
# The stem has stride 2 (as in MobileNetV2), so the blocks run at 14x14 then 7x7.
CONFIG = [
    (6, 16, 1, 1),  # 14x14
    (6, 24, 2, 2),  # 7x7
    (6, 32, 3, 1),
    (6, 64, 2, 1),
    (6, 96, 1, 1),
]


class InvertedResidual(nn.Module):
    """1x1 expand conv+BN+ReLU6, depthwise 3x3 conv+BN+ReLU6, 1x1 linear projection+BN;
    residual when stride is 1 and channels match."""

    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
        cin = 16
        for t, c, n, s in CONFIG:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [nn.Conv2d(cin, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(256, 10)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


if __name__ == "__main__":
    trainer.setup(SEED)
    trainer.run(
        task_id="fmnist-mobilenet",
        title="MobileNetV2-style network (inverted residuals, depthwise convs) on Fashion-MNIST",
        model=MobileNetV2(),
        seed=SEED, epochs=4, batch_size=128, lr=3e-3, weight_decay=0.01,
        model_notes="Model: conv3x3(1->16, stride 2)+BN+ReLU6 stem; inverted residual blocks (t,c,n,s) = "
                    f"{CONFIG} (1x1 expand+BN+ReLU6, depthwise 3x3+BN+ReLU6, 1x1 linear "
                    "projection+BN, residual when shapes match); 1x1 conv(96->256)+BN+ReLU6; "
                    "global average pool; Linear(256->10). ReLU6 exports as Clip(0,6).",
        script_dir=HERE,
    )
