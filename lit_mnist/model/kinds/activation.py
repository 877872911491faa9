"""Keras's activation layers: Activation (any of Keras's activations by name), LeakyReLU (slope 0.3, Keras 2's
``alpha`` read) and PReLU (a learned slope); and ReLU, Softmax and ELU, read as the items that compute the same."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_mnist.model.activations import activation
from lit_mnist.model.kinds.arguments import did_you_mean, fmt, number, plain
from lit_mnist.model.kinds.base import Equivalent, Kind, Layer, register, register_equivalent
from lit_mnist.model.kinds.objects import arguments


class Activation(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.act = activation(layer.args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.act is None else self.act(x)


@register
class ActivationKind(Kind):
    name, keras_class, first = "activation", "Activation", "activation"
    required = ("activation",)
    keeps_shape = True

    def acts_per_value(self, args) -> bool:
        return args["activation"] != "softmax"

    def module(self, layer):
        return Activation(layer)


class LeakyReLU(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.negative_slope = float(layer.args["negative_slope"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


def _slope(name, value):
    if not (number(value) and value >= 0):
        raise ValueError(f"negative_slope must be a number of at least 0, got {value!r}")
    return value


@register
class LeakyReLUKind(Kind):
    name, keras_class, first = "leaky_re_lu", "LeakyReLU", "negative_slope"
    aliases = ("leaky_relu",)
    optional = {"negative_slope": 0.3}
    keeps_shape, per_value = True, True
    checks = {"negative_slope": _slope}

    def module(self, layer):
        return LeakyReLU(layer)

    def from_keras(self, config):
        if "alpha" not in config:
            return config
        config = {**config, "negative_slope": config["alpha"]}  # Keras 2's name of the slope
        del config["alpha"]
        return config


class PReLU(nn.Module):
    """``x`` where positive, ``alpha * x`` where not, with a learned ``alpha`` for every value of the input
    (Keras's layout: (features,) or (height, width, channels)), shared along ``shared_axes``."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        shape = [1 if axis in (layer.args["shared_axes"] or ()) else size
                 for axis, size in enumerate(layer.input_shape, start=1)]
        self.alpha = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.permute(2, 0, 1) if self.alpha.dim() == 3 else self.alpha  # (h, w, c) -> (c, h, w)
        return torch.where(x >= 0, x, alpha * x)


def _shared_axes(name, value):
    if value is None:
        return None
    axes = value if isinstance(value, (list, tuple)) else [value]
    if not axes or any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in axes):
        raise ValueError(f"shared_axes must be axes of the input counted from 1 (Keras's: 1, 2 the height and "
                         f"width of an image), got {value!r}")
    return tuple(sorted(set(axes)))


@register
class PReLUKind(Kind):
    name, keras_class, first = "p_re_lu", "PReLU", "alpha_initializer"
    aliases = ("prelu",)
    optional = {"alpha_initializer": "zeros", "shared_axes": None, **arguments("alpha")}
    keeps_shape = True
    checks = {"shared_axes": _shared_axes}
    variables = {"alpha": "alpha"}
    penalized = {"alpha": "alpha"}
    initializers = {"alpha": "alpha_initializer"}

    def output_shape(self, args, shape):
        if args["shared_axes"] and max(args["shared_axes"]) > len(shape):
            raise ValueError(f"shared_axes {list(args['shared_axes'])}: its input, {fmt(shape)}, has axes "
                             f"1-{len(shape)}")
        return shape

    def to_torch(self, variable, array):
        return torch.from_numpy(array.copy())  # Keras's (h, w, c) layout on both sides

    def to_keras(self, variable, tensor):
        return tensor.detach().cpu().numpy().copy()

    def keras_view(self, variable, tensor):
        return tensor

    def torch_view(self, variable, tensor):
        return tensor

    def module(self, layer):
        return PReLU(layer)


def _unknown(name: str, given, defaults) -> None:
    unknown = [k for k in given if k not in defaults]
    if unknown:
        raise ValueError(f"unknown argument {unknown[0]!r} ({did_you_mean(unknown[0], list(defaults))}{name} takes "
                         f"{', '.join(defaults)})")


class _ReLU(Equivalent):
    def item(self, given):
        _unknown(self.name, given, self.defaults)
        args = {**self.defaults, **given}
        slope = _slope("negative_slope", args["negative_slope"])
        if args["threshold"] not in (self.defaults["threshold"], 0):
            raise ValueError(f"threshold is not supported (only Keras's default, {self.defaults['threshold']!r})")
        if args["max_value"] is not None:  # MobileNet's ReLU(6.0)
            if args["max_value"] != 6 or isinstance(args["max_value"], bool) or slope:
                raise ValueError(f"max_value {args['max_value']!r} is not supported (only None, or 6 without a "
                                 "negative_slope: relu6)")
            return {ActivationKind.name: {"activation": "relu6"}}
        return {LeakyReLUKind.name: {"negative_slope": slope}} if slope else {ActivationKind.name: {"activation": "relu"}}


class _Softmax(Equivalent):
    def item(self, given):
        _unknown(self.name, given, self.defaults)
        axis = {**self.defaults, **given}["axis"]
        if plain(axis) not in (-1, (-1,)):
            raise ValueError(f"axis {axis!r} is not supported (only the last axis, -1: the features or channels)")
        return {ActivationKind.name: {"activation": "softmax"}}


class _ELU(Equivalent):
    def item(self, given):
        _unknown(self.name, given, self.defaults)
        alpha = {**self.defaults, **given}["alpha"]
        if alpha != 1.0 or isinstance(alpha, bool):
            raise ValueError(f"alpha is not supported (only Keras's default, 1.0), got {alpha!r}")
        return {ActivationKind.name: {"activation": "elu"}}


register_equivalent(_ReLU("re_lu", "ReLU", "max_value", {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
                          aliases=("relu",)))
register_equivalent(_Softmax("softmax", "Softmax", "axis", {"axis": -1}))
register_equivalent(_ELU("elu", "ELU", "alpha", {"alpha": 1.0}))
