"""Keras's normalising layers, over the last axis (the features, or an image's channels):
BatchNormalization, LayerNormalization, an adapted Normalization and Rescaling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_mnist.model.kinds.arguments import number, numbers, plain
from lit_mnist.model.kinds.base import Kind, Layer, register
from lit_mnist.model.kinds.objects import arguments


def on_channels(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-channel vector shaped to broadcast on dim 1 of (N, C) and (N, C, H, W) alike."""
    return t.view(1, -1, 1, 1) if x.dim() == 4 else t


def _per_channel(values, count: int) -> torch.Tensor:
    """A scalar or a per-feature/per-channel list, as a vector of ``count``."""
    return torch.as_tensor(values, dtype=torch.float32).expand(count).clone()


def last_axis(args, shape) -> None:
    if plain(args["axis"]) not in (-1, len(shape), (-1,), (len(shape),)):
        raise ValueError(f"axis {args['axis']} is not supported (only the last axis, -1: the features or channels)")


def _per_last_axis(args, shape, names) -> None:
    for name in names:
        if isinstance(args[name], tuple) and len(args[name]) not in (1, shape[-1]):
            raise ValueError(f"{name} has {len(args[name])} values; its input's last axis has {shape[-1]}")


def _one_axis(config: dict) -> dict:
    """Keras saves a normalising layer's axis as a list of one."""
    if isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
        return {**config, "axis": config["axis"][0]}
    return config


def _epsilon(name, value):
    if not (number(value) and value > 0):
        raise ValueError(f"epsilon must be positive, got {value!r}")
    return value


class BatchNormalization(nn.Module):
    """Training normalises with the batch's mean and biased variance (as both libraries do) and moves the moving
    statistics towards them by ``1 - momentum``, the variance being the *biased* one, as Keras's is (torch's
    ``running_var`` takes the unbiased one, so torch's BatchNorm is not used for the statistics)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args, features = layer.args, layer.input_shape[-1]
        self.momentum, self.epsilon = float(args["momentum"]), float(args["epsilon"])
        self.gamma = nn.Parameter(torch.ones(features)) if args["scale"] else None
        self.beta = nn.Parameter(torch.zeros(features)) if args["center"] else None
        self.register_buffer("moving_mean", torch.zeros(features))
        self.register_buffer("moving_variance", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta, False, 0.0, self.epsilon)
        with torch.no_grad():
            variance, mean = torch.var_mean(x, dim=[0, 2, 3] if x.dim() == 4 else 0, correction=0)
            self.moving_mean.lerp_(mean.to(self.moving_mean.dtype), 1 - self.momentum)
            self.moving_variance.lerp_(variance.to(self.moving_variance.dtype), 1 - self.momentum)
        return F.batch_norm(x, None, None, self.gamma, self.beta, True, 0.0, self.epsilon)


def _momentum(name, value):
    if not (number(value) and 0 <= value < 1):
        raise ValueError(f"momentum must be in [0, 1), got {value!r}")
    return value


_GAMMA_BETA_DEFAULTS = {"beta_initializer": ("zeros",), "gamma_initializer": ("ones",)}
_GAMMA_BETA = {"gamma": "gamma", "beta": "beta"}  # the variables, and their arguments' prefixes


@register
class BatchNormalizationKind(Kind):
    name, keras_class, first = "batch_normalization", "BatchNormalization", "axis"
    optional = {"axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True,
                **arguments("beta", "gamma")}
    defaults_only = {**_GAMMA_BETA_DEFAULTS, "moving_mean_initializer": ("zeros",),
                     "moving_variance_initializer": ("ones",), "renorm": (False,), "renorm_clipping": (None,),
                     "renorm_momentum": (0.99,), "synchronized": (False,)}
    keeps_shape = True
    checks = {"momentum": _momentum, "epsilon": _epsilon}
    variables = {name: name for name in ("gamma", "beta", "moving_mean", "moving_variance")}
    moving = ("moving_mean", "moving_variance")
    penalized = _GAMMA_BETA

    def output_shape(self, args, shape):
        last_axis(args, shape)
        return shape

    def module(self, layer):
        return BatchNormalization(layer)

    def from_keras(self, config):
        return _one_axis(config)


class LayerNormalization(nn.Module):
    """``(x - mean) / sqrt(variance + epsilon) * gamma + beta`` over each row's features or each pixel's channels,
    the variance biased."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args, features = layer.args, layer.input_shape[-1]
        self.epsilon = float(args["epsilon"])
        self.gamma = nn.Parameter(torch.ones(features)) if args["scale"] else None
        self.beta = nn.Parameter(torch.zeros(features)) if args["center"] else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)  # dim 1: Keras's last axis
        y = (x - mean) * torch.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            y = y * on_channels(self.gamma, y)
        return y if self.beta is None else y + on_channels(self.beta, y)


@register
class LayerNormalizationKind(Kind):
    name, keras_class, first = "layer_normalization", "LayerNormalization", "axis"
    optional = {"axis": -1, "epsilon": 1e-3, "center": True, "scale": True, **arguments("beta", "gamma")}
    defaults_only = {**_GAMMA_BETA_DEFAULTS, "rms_scaling": (False,)}
    keeps_shape = True
    checks = {"epsilon": _epsilon}
    variables = {"gamma": "gamma", "beta": "beta"}
    penalized = _GAMMA_BETA

    def output_shape(self, args, shape):
        last_axis(args, shape)
        return shape

    def module(self, layer):
        return LayerNormalization(layer)

    def from_keras(self, config):
        return _one_axis(config)


class Normalization(nn.Module):
    """``(x - mean) / max(sqrt(variance), 1e-7)``, per feature (the last axis)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        channels = layer.input_shape[-1]
        self.register_buffer("mean", _per_channel(layer.args["mean"], channels))
        self.register_buffer("variance", _per_channel(layer.args["variance"], channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - on_channels(self.mean, x)) / on_channels(self.variance.sqrt().clamp(min=1e-7), x)


def _variance(name, value):
    value = numbers(name, value)
    if min(value if isinstance(value, tuple) else (value,)) < 0:
        raise ValueError("variance must not be negative")
    return value


@register
class NormalizationKind(Kind):
    """An adapted NormalizationKind: its mean and variance given (the importer reads them from the file's weights
    where the config has none)."""

    name, keras_class, first = "normalization", "Normalization", "axis"
    required = ("mean", "variance")
    optional = {"axis": -1}
    defaults_only = {"invert": (False,)}
    keeps_shape = True
    checks = {"mean": numbers, "variance": _variance}
    adapted = ("mean", "variance", "count")  # its weights in a Keras file, in order

    def output_shape(self, args, shape):
        last_axis(args, shape)
        _per_last_axis(args, shape, ("mean", "variance"))
        return shape

    def module(self, layer):
        return Normalization(layer)

    def from_keras(self, config):
        return _one_axis(config)


class Rescaling(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        channels = layer.input_shape[-1]
        self.register_buffer("scale", _per_channel(layer.args["scale"], channels))
        self.register_buffer("offset", _per_channel(layer.args["offset"], channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * on_channels(self.scale, x) + on_channels(self.offset, x)


@register
class RescalingKind(Kind):
    """``x * scale + offset``, a scale and offset per channel or one for all."""

    name, keras_class, first = "rescaling", "Rescaling", "scale"
    required = ("scale",)
    optional = {"offset": 0.0}
    keeps_shape = True
    checks = {"scale": numbers, "offset": numbers}

    def acts_per_value(self, args) -> bool:
        return isinstance(args["scale"], float) and isinstance(args["offset"], float)

    def output_shape(self, args, shape):
        _per_last_axis(args, shape, ("scale", "offset"))
        return shape

    def module(self, layer):
        return Rescaling(layer)
