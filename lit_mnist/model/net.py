"""The original network as a plain nn.Module: Dense 128-64-128-10 with ReLU, returning logits."""

from __future__ import annotations

import torch
from torch import nn


class DenseNet(nn.Module):
    """784 -> 128 -> 64 -> 128 -> 10. Softmax is left to the caller: the loss wants logits."""

    def __init__(self, in_features: int = 784, hidden: tuple[int, ...] = (128, 64, 128), num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1).float())


class ConvNet(nn.Module):
    """The original's stated next step, a small LeNet-style CNN: two conv blocks and a dense head.

    conv 5x5 (16) -> pool -> conv 5x5 (32) -> pool -> dense 128 -> 10; ~1.1 M multiply-adds an image,
    small enough to train on a CPU in minutes.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 24 -> 12
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # 12 -> 8 -> 4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.float().reshape(-1, 1, 28, 28)))


def keras_init_(module: nn.Module) -> nn.Module:
    """Keras Dense/Conv2D defaults: glorot_uniform kernel, zero bias (torch's default bound is ~2.3x smaller)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module
