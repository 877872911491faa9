"""Keras's initialisers by name, drawn in place into a torch tensor of torch's layout (Keras's fans: a conv's
receptive field times its input or output channels)."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def initialize_(tensor: torch.Tensor, initializer: str) -> None:
    """Keras's initialiser of that name, in place: the VarianceScaling family, or one of fixed scale (Keras's
    defaults: normal and truncated normal of std 0.05, the truncated one redrawn beyond 2 std, uniform in
    +-0.05), or orthogonal (gain 1; Keras's (in, out) and torch's (out, in) layouts draw alike)."""
    if initializer in ("zeros", "ones"):
        tensor.fill_(float(initializer == "ones"))
    elif initializer == "random_normal":
        tensor.normal_(0.0, 0.05)
    elif initializer == "random_uniform":
        tensor.uniform_(-0.05, 0.05)
    elif initializer == "truncated_normal":
        nn.init.trunc_normal_(tensor, 0.0, 0.05, -0.1, 0.1)
    elif initializer == "orthogonal":
        nn.init.orthogonal_(tensor)
    else:
        variance_scaling_(tensor, initializer)


_VARIANCE_SCALING = {"glorot": (1.0, "fan_avg"), "he": (2.0, "fan_in"), "lecun": (1.0, "fan_in")}
_TRUNCATED_NORMAL_STD = 0.87962566103423978  # the std of a unit normal truncated at +-2, which Keras divides by


@torch.no_grad()
def variance_scaling_(weight: torch.Tensor, initializer: str) -> None:
    """Keras's VarianceScaling family (glorot_*, he_*, lecun_*), uniform or truncated normal, in place."""
    family, distribution = initializer.split("_")
    scale, mode = _VARIANCE_SCALING[family]
    receptive = weight[0, 0].numel() if weight.dim() > 2 else 1
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale / n)
        weight.uniform_(-limit, limit)
    else:
        std = math.sqrt(scale / n) / _TRUNCATED_NORMAL_STD
        nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std)
