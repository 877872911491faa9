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

    conv 5x5 (16) -> pool -> conv 5x5 (32) -> pool -> dense 128 -> 10 by default (~1.1 M multiply-adds an
    image); ``channels`` narrows or widens the conv blocks. ``stem`` is how the first block halves the
    image: ``pool``, a conv at every position then 2x2 max-pooling (LeNet's), or ``stride``, the conv at
    stride 2 and no pooling: the same 12x12 map from a quarter of the positions, so the first block costs
    about a quarter, and a training step about 0.6x. Two choices make either ~2x faster to train on a CPU,
    and change no result:

    * each pooling block pools before its ReLU: max and ReLU commute exactly, and the ReLU (forward and
      backward) then runs on a quarter of the values;
    * the conv weights are channels-last, so oneDNN (and cuDNN) run their NHWC kernels without reordering.
    """

    STEMS = ("pool", "stride")

    def __init__(self, num_classes: int = 10, channels: tuple[int, int] = (16, 32), hidden: int = 128,
                 stem: str = "pool"):
        super().__init__()
        c1, c2 = channels
        if stem == "pool":
            first = [nn.Conv2d(1, c1, 5), nn.MaxPool2d(2)]  # 28 -> 24 -> 12
        elif stem == "stride":
            first = [nn.Conv2d(1, c1, 5, stride=2)]  # 28 -> 12
        else:
            raise ValueError(f"stem must be one of {list(self.STEMS)}, got {stem!r}")
        self.features = nn.Sequential(
            *first, nn.ReLU(),
            nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), nn.ReLU(),  # 12 -> 8 -> 4
        ).to(memory_format=torch.channels_last)
        self.feature_shape = (c2, 4, 4)  # (channels, height, width) of what the head flattens
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.float().reshape(-1, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        return self.head(self.features(images))


def keras_init_(module: nn.Module) -> nn.Module:
    """Keras Dense/Conv2D defaults: glorot_uniform kernel, zero bias (torch's default bound is ~2.3x smaller)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module
