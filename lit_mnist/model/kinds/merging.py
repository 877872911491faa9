"""Keras's merge layers, which join the outputs of several earlier layers (named by an item's ``inputs``): Add,
Subtract, Multiply, Average, Maximum, Minimum (value by value, broadcasting as Keras does: a size of 1 stretches,
and an input of fewer axes gains them after the batch axis) and Concatenate (along ``axis``, the channels by
default)."""

from __future__ import annotations

import functools

import torch
from torch import nn

from lit_mnist.model.kinds.arguments import fmt
from lit_mnist.model.kinds.base import Kind, Layer, register


def _as_rank(x: torch.Tensor, rank: int) -> torch.Tensor:
    """Keras adds the missing axes after the batch axis: a (N, C) row beside (N, C, H, W) maps is (N, C, 1, 1)."""
    return x.view(*x.shape, *(1,) * (rank - x.dim())) if x.dim() < rank else x


class Elementwise(nn.Module):
    def __init__(self, operation) -> None:
        super().__init__()
        self.operation = operation

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        rank = max(x.dim() for x in inputs)
        return self.operation([_as_rank(x, rank) for x in inputs])


def _add(xs):
    return functools.reduce(torch.add, xs)


def _subtract(xs):
    return xs[0] - xs[1]


def _multiply(xs):
    return functools.reduce(torch.mul, xs)


def _average(xs):
    return _add(xs) / len(xs)


def _maximum(xs):
    return functools.reduce(torch.maximum, xs)


def _minimum(xs):
    return functools.reduce(torch.minimum, xs)


class _Elementwise(Kind):
    merge, keeps_shape, per_value = True, True, True
    operation = staticmethod(_add)
    arity = (2, None)

    def merged_shape(self, args, shapes):
        rank = max(len(s) for s in shapes)
        out = [1] * rank
        for shape in shapes:
            for axis, size in enumerate((1,) * (rank - len(shape)) + tuple(shape)):
                if size != 1 and out[axis] not in (1, size):
                    raise ValueError(f"its inputs' shapes {', '.join(fmt(s) for s in shapes)} do not match (each "
                                     "axis must be equal, or 1 in all but one)")
                out[axis] = max(out[axis], size)
        return tuple(out)

    def module(self, layer):
        return Elementwise(type(self).operation)


@register
class AddKind(_Elementwise):
    name, keras_class = "add", "Add"


@register
class SubtractKind(_Elementwise):
    name, keras_class, operation, arity = "subtract", "Subtract", staticmethod(_subtract), (2, 2)


@register
class MultiplyKind(_Elementwise):
    name, keras_class, operation = "multiply", "Multiply", staticmethod(_multiply)


@register
class AverageKind(_Elementwise):
    name, keras_class, operation = "average", "Average", staticmethod(_average)


@register
class MaximumKind(_Elementwise):
    name, keras_class, operation = "maximum", "Maximum", staticmethod(_maximum)


@register
class MinimumKind(_Elementwise):
    name, keras_class, operation = "minimum", "Minimum", staticmethod(_minimum)


_TORCH_DIM = {1: (1,), 3: (2, 3, 1)}  # Keras's axis k (1-based, after the batch) of a rank: torch's dim


class Concatenate(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)


def _axis(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise ValueError(f"axis must be a non-zero integer (-1: the last axis, the channels), got {value!r}")
    return value


@register
class ConcatenateKind(Kind):
    name, keras_class, first = "concatenate", "Concatenate", "axis"
    optional = {"axis": -1}
    merge = True
    arity = (2, None)
    checks = {"axis": _axis}

    def merged_shape(self, args, shapes):
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"its inputs' shapes {', '.join(fmt(s) for s in shapes)} have different numbers of axes")
        axis = args["axis"]
        if not -rank <= axis <= rank:
            raise ValueError(f"axis {axis}: its inputs have axes 1-{rank} (or -1 to -{rank})")
        index = axis - 1 if axis > 0 else rank + axis
        if any(s[:index] + s[index + 1:] != shapes[0][:index] + shapes[0][index + 1:] for s in shapes):
            raise ValueError(f"its inputs' shapes {', '.join(fmt(s) for s in shapes)} differ on an axis other than "
                             f"the one joined ({axis})")
        return (*shapes[0][:index], sum(s[index] for s in shapes), *shapes[0][index + 1:])

    def module(self, layer: Layer):
        rank, axis = len(layer.input_shape), layer.args["axis"]
        return Concatenate(_TORCH_DIM[rank][(axis - 1 if axis > 0 else rank + axis)])
