"""Keras's layers of random masks and noise, which act in training only: Dropout and SpatialDropout2D (inverted,
as torch's), GaussianNoise and GaussianDropout."""

from __future__ import annotations

import math

import torch
from torch import nn

from lit_mnist.model.kinds.arguments import number, rate
from lit_mnist.model.kinds.base import CHANNELS_LAST, Kind, Layer, register


@register
class DropoutKind(Kind):
    name, keras_class, first = "dropout", "Dropout", "rate"
    required = ("rate",)
    defaults_only = {"noise_shape": (None,), "seed": (None,)}
    keeps_shape, per_value, randomness = True, True, "rate"
    checks = {"rate": rate}

    def module(self, layer):
        return nn.Dropout(layer.args["rate"])  # inverted dropout, as Keras's


@register
class SpatialDropout2DKind(Kind):
    name, keras_class, first = "spatial_dropout2d", "SpatialDropout2D", "rate"
    required = ("rate",)
    defaults_only = {"seed": (None,), "noise_shape": (None,), "data_format": CHANNELS_LAST}
    image_only, randomness = True, "rate"
    checks = {"rate": rate}

    def module(self, layer):
        return nn.Dropout2d(layer.args["rate"])  # whole channels, inverted, as Keras's


class GaussianNoise(nn.Module):
    """In training only: ``x + N(0, stddev)``, or ``x * N(1, stddev)`` (not ``additive``); identity in inference."""

    def __init__(self, stddev: float, additive: bool) -> None:
        super().__init__()
        self.stddev, self.additive = stddev, additive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.stddev == 0:
            return x
        noise = torch.randn_like(x) * self.stddev
        return x + noise if self.additive else x * (noise + 1)


def _stddev(name: str, value) -> float:
    if not (number(value) and 0 <= value <= 1):
        raise ValueError(f"stddev must be a number in [0, 1], as Keras's is (on raw grey levels 0-255, after a "
                         f"rescaling item), got {value!r}")
    return value


@register
class GaussianNoiseKind(Kind):
    name, keras_class, first = "gaussian_noise", "GaussianNoise", "stddev"
    required = ("stddev",)
    defaults_only = {"seed": (None,)}
    keeps_shape, per_value, randomness = True, True, "stddev"
    checks = {"stddev": _stddev}

    def module(self, layer):
        return GaussianNoise(float(layer.args["stddev"]), additive=True)


@register
class GaussianDropoutKind(Kind):
    name, keras_class, first = "gaussian_dropout", "GaussianDropout", "rate"
    required = ("rate",)
    defaults_only = {"seed": (None,)}
    keeps_shape, per_value, randomness = True, True, "rate"
    checks = {"rate": rate}

    def module(self, layer: Layer):
        rate_ = layer.args["rate"]
        return GaussianNoise(math.sqrt(rate_ / (1 - rate_)), additive=False)
