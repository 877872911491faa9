"""Keras's pooling: MaxPooling2D and AveragePooling2D ("same" pads as TensorFlow does, and the average divides by
the cells inside the image), GlobalAveragePooling2D and GlobalMaxPooling2D."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lit_mnist.model.kinds.arguments import pair
from lit_mnist.model.kinds.base import CHANNELS_LAST, Kind, Layer, register
from lit_mnist.model.kinds.convolution import pads, window_output


class Pooling2D(nn.Module):
    """"valid" floors; "same" pads as TF, with -inf for max, and the average divides by the cells inside the image
    (each output's count is fixed by the shapes: a buffer)."""

    def __init__(self, layer: Layer, is_max: bool) -> None:
        super().__init__()
        args = layer.args
        self.window, self.strides = args["pool_size"], args["strides"] or args["pool_size"]
        self.is_max = is_max
        self.pads = pads(layer, self.window, self.strides)
        self.register_buffer("inverse_count", None, persistent=False)
        if not self.is_max and any(self.pads):
            height, width, _ = layer.input_shape
            inside = F.avg_pool2d(F.pad(torch.ones(1, 1, height, width), self.pads), self.window, self.strides)
            self.inverse_count = 1.0 / inside  # the fraction of the window inside the image, inverted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_max:
            if any(self.pads):
                x = F.pad(x, self.pads, value=-math.inf)
            return F.max_pool2d(x, self.window, self.strides)
        if any(self.pads):
            return F.avg_pool2d(F.pad(x, self.pads), self.window, self.strides) * self.inverse_count
        return F.avg_pool2d(x, self.window, self.strides)


def _strides(name: str, value):
    return None if value is None else pair(name, value)  # None: the pool's size


class _Pooling(Kind):
    first, image_only = "pool_size", True
    optional = {"pool_size": (2, 2), "strides": None, "padding": "valid"}
    defaults_only = {"data_format": CHANNELS_LAST}
    checks = {"strides": _strides}
    is_max: bool

    def output_shape(self, args, shape):
        strides = args["strides"] or args["pool_size"]
        return (*window_output(shape, args["pool_size"], strides, args["padding"], "pool"), shape[2])

    def module(self, layer):
        return Pooling2D(layer, self.is_max)


@register
class MaxPooling2DKind(_Pooling):
    name, keras_class, is_max = "max_pooling2d", "MaxPooling2D", True
    aliases = ("MaxPool2D", "max_pool2d")


@register
class AveragePooling2DKind(_Pooling):
    name, keras_class, is_max = "average_pooling2d", "AveragePooling2D", False
    aliases = ("AvgPool2D", "avg_pool2d")
    required = ("pool_size",)
    optional = {"strides": None, "padding": "valid"}


class GlobalPooling2D(nn.Module):
    """Each channel's mean or maximum over the map; ``keepdims`` keeps a 1x1 map."""

    def __init__(self, layer: Layer, is_max: bool) -> None:
        super().__init__()
        self.is_max, self.keepdims = is_max, layer.args["keepdims"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_max:
            return x.amax(dim=(2, 3), keepdim=self.keepdims)
        return x.mean(dim=(2, 3), keepdim=self.keepdims)


class _GlobalPooling(Kind):
    first, image_only = "data_format", True
    optional = {"keepdims": False}
    defaults_only = {"data_format": CHANNELS_LAST}
    is_max: bool

    def output_shape(self, args, shape):
        return (1, 1, shape[2]) if args["keepdims"] else (shape[2],)

    def module(self, layer):
        return GlobalPooling2D(layer, self.is_max)


@register
class GlobalAveragePooling2DKind(_GlobalPooling):
    name, keras_class, is_max = "global_average_pooling2d", "GlobalAveragePooling2D", False
    aliases = ("GlobalAvgPool2D", "global_avg_pool2d")


@register
class GlobalMaxPooling2DKind(_GlobalPooling):
    name, keras_class, is_max = "global_max_pooling2d", "GlobalMaxPooling2D", True
    aliases = ("GlobalMaxPool2D", "global_max_pool2d")
