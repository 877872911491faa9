"""Keras's Flatten and Reshape, in Keras's channels-last order: an NCHW tensor in channels-last memory is
flattened as (h, w, c) for free, and an (h, w, c) target becomes NCHW in channels-last memory again."""

from __future__ import annotations

import math

import torch
from torch import nn

from lit_mnist.model.kinds.arguments import fmt
from lit_mnist.model.kinds.base import CHANNELS_LAST, Kind, Layer, register


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x


class Reshape(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.shape = tuple(layer.output_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.shape)
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


@register
class FlattenKind(Kind):
    name, keras_class, first = "flatten", "Flatten", "data_format"
    defaults_only = {"data_format": CHANNELS_LAST}
    per_value = True  # the one layer that takes a declared HxW grid as Keras does

    def output_shape(self, args, shape):
        return (math.prod(shape),)

    def module(self, layer):
        return Flatten()


def _target_shape(name: str, value) -> tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 3) or any(isinstance(v, bool) or not isinstance(v, int) or v == 0 or v < -1
                                        for v in values) or values.count(-1) > 1:
        raise ValueError(f"target_shape must be [features] or [height, width, channels] (positive, one -1 allowed), "
                         f"got {value!r}")
    return tuple(values)


@register
class ReshapeKind(Kind):
    name, keras_class, first = "reshape", "Reshape", "target_shape"
    required = ("target_shape",)
    checks = {"target_shape": _target_shape}

    def output_shape(self, args, shape):
        target, size = args["target_shape"], math.prod(shape)
        known = math.prod(v for v in target if v != -1)
        if -1 in target:
            if size % known:
                raise ValueError(f"cannot reshape {fmt(shape)} ({size} values) to {list(target)}")
            target = tuple(size // known if v == -1 else v for v in target)
        if math.prod(target) != size:
            raise ValueError(f"cannot reshape {fmt(shape)} ({size} values) to {list(target)} ({math.prod(target)} "
                             "values)")
        return target

    def module(self, layer):
        return Reshape(layer)
