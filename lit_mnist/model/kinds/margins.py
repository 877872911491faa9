"""Keras's ZeroPadding2D (zeros around the map) and Cropping2D (rows and columns cut off its edges), each taking
Keras's three forms of margins: n, (rows, columns) or ((top, bottom), (left, right))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_mnist.model.kinds.arguments import margins
from lit_mnist.model.kinds.base import CHANNELS_LAST, Kind, Layer, register


class Margins2D(nn.Module):
    def __init__(self, layer: Layer, signed) -> None:
        super().__init__()
        (top, bottom), (left, right) = signed
        self.pads = (left, right, top, bottom)  # F.pad's order; negative sizes crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class _Margins(Kind):
    image_only = True
    defaults_only = {"data_format": CHANNELS_LAST}

    def signed(self, args) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) rows and columns added (positive) or cut (negative)."""
        raise NotImplementedError

    def output_shape(self, args, shape):
        (top, bottom), (left, right) = self.signed(args)
        height, width = shape[0] + top + bottom, shape[1] + left + right
        if height < 1 or width < 1:
            raise ValueError(f"cropping {-top - bottom} rows and {-left - right} columns leaves nothing of its "
                             f"{shape[0]}x{shape[1]} input map")
        return (height, width, shape[2])

    def module(self, layer):
        return Margins2D(layer, self.signed(layer.args))


@register
class ZeroPadding2DKind(_Margins):
    name, keras_class, first = "zero_padding2d", "ZeroPadding2D", "padding"
    optional = {"padding": ((1, 1), (1, 1))}
    checks = {"padding": margins}

    def signed(self, args):
        return args["padding"]


@register
class Cropping2DKind(_Margins):
    name, keras_class, first = "cropping2d", "Cropping2D", "cropping"
    optional = {"cropping": ((0, 0), (0, 0))}
    checks = {"cropping": margins}

    def signed(self, args):
        return tuple((-a, -b) for a, b in args["cropping"])
