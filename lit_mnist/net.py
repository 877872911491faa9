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


def keras_init_(module: nn.Module) -> nn.Module:
    """Keras Dense defaults: glorot_uniform kernel, zero bias (torch's default bound is ~2.3x smaller)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module
