"""The net a layer list describes, as a plain nn.Module whose layers compute what Keras's do.

:func:`build_net` makes it from the list, the class count and the image shape (``lit_mnist.model.layers``).
Each layer is one child module named as Keras names it (``dense``, ``conv2d_1``, ...), so the model summary
reads like Keras's. Keras's semantics where torch's differ (``../docs/layers.md`` lists them):

* "same" padding as TensorFlow pads, the extra row or column at the bottom or right, for any stride;
* "same" average pooling divides by the cells inside the image only;
* images are channels-last: ``Flatten`` numbers an (h, w, c) map's features ``(i * w + j) * c + k``, and
  per-channel arguments act on the last axis;
* BatchNormalization's moving statistics move by ``1 - momentum`` (0.99 by default) towards the batch's
  mean and *biased* variance, with Keras's epsilon 1e-3;
* LayerNormalization normalises the last axis (an image's channels, pixel by pixel), with epsilon 1e-3;
* Normalization divides by ``max(sqrt(variance), 1e-7)``;
* Dense and Conv2D kernels start as Keras's initialisers draw them (Glorot-uniform by default), biases at 0.

Images are held as NCHW tensors in channels-last memory, so that a Keras-order flatten is a free view and
oneDNN (and cuDNN) run their NHWC convolution kernels without reordering.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from lit_mnist.model.layers import Layer, LayerError, resolve, same_padding, signed_margins

_ACTIVATIONS = {
    "linear": None,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,  # exact (erf) in both
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "swish": F.silu,
    "softplus": F.softplus,
    "selu": F.selu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # the activation's default slope (the LeakyReLU layer's: 0.3)
    "relu6": F.relu6,
    "celu": F.celu,
    "mish": F.mish,
    "softsign": F.softsign,
    "exponential": torch.exp,
    "hard_tanh": F.hardtanh,
    "tanh_shrink": F.tanhshrink,
    "log_sigmoid": F.logsigmoid,
    "hard_sigmoid": F.hardsigmoid,  # Keras 3's: relu6(x + 3) / 6 (Keras 2's is another: clip(0.2 x + 0.5, 0, 1))
    "hard_silu": F.hardswish,
    "hard_swish": F.hardswish,
    "hard_shrink": F.hardshrink,  # threshold 0.5 in both
    "soft_shrink": F.softshrink,
}


def activation(name: str):
    """The function of a Keras activation name; softmax acts on the channels, the last axis in Keras's layout."""
    if name == "softmax":
        return lambda x: x.softmax(dim=1)  # (N, C) or (N, C, H, W): dim 1 is Keras's last axis in both
    return _ACTIVATIONS[name]


class Dense(nn.Linear):
    def __init__(self, layer: Layer) -> None:
        args = layer.args
        super().__init__(layer.input_shape[0], args["units"], bias=args["use_bias"])
        # the head's softmax is the loss's to take: the net returns logits
        self.act = None if layer.head else activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return x if self.act is None else self.act(x)


def _pads(layer: Layer, window: tuple[int, int], strides: tuple[int, int]) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) for Keras's padding of this layer's input."""
    if layer.args["padding"] != "same":
        return (0, 0, 0, 0)
    (top, bottom), (left, right) = (same_padding(n, k, s) for n, k, s in zip(layer.input_shape[:2], window, strides))
    return (left, right, top, bottom)


class Conv2D(nn.Conv2d):
    def __init__(self, layer: Layer) -> None:
        args = layer.args
        pads = _pads(layer, args["kernel_size"], args["strides"])
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        super().__init__(layer.input_shape[2], args["filters"], args["kernel_size"], args["strides"],
                         padding=(pads[2], pads[0]) if symmetric else 0, bias=args["use_bias"])
        self.pads = None if symmetric else pads  # an odd total: the extra cell at the bottom/right, as TF pads
        self.act = activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads is not None:
            x = F.pad(x, self.pads)
        x = super().forward(x)
        return x if self.act is None else self.act(x)


class DepthwiseConv2D(nn.Module):
    """Keras's DepthwiseConv2D: each input channel convolved with its own ``depth_multiplier`` kernels, output
    channel ``c * depth_multiplier + j`` (as torch's grouped convolution numbers them). The kernel is held as
    (depth_multiplier, channels, h, w), Keras's (h, w, channels, depth_multiplier) in a conv kernel's torch layout,
    so that it moves and is drawn (Keras's fans) as any conv kernel."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args, channels = layer.args, layer.input_shape[2]
        self.weight = nn.Parameter(torch.zeros(args["depth_multiplier"], channels, *args["kernel_size"]))
        self.bias = nn.Parameter(torch.zeros(channels * args["depth_multiplier"])) if args["use_bias"] else None
        self.strides, self.pads = args["strides"], _pads(layer, args["kernel_size"], args["strides"])
        self.act = activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _depthwise(x, self.weight, self.bias, self.strides, self.pads)
        return x if self.act is None else self.act(x)


class SeparableConv2D(nn.Module):
    """Keras's SeparableConv2D: a depthwise convolution (as :class:`DepthwiseConv2D`, without bias), then a 1x1
    one to ``filters`` channels with the bias; the pointwise kernel held as a 1x1 conv kernel in torch's layout."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args, channels = layer.args, layer.input_shape[2]
        multiplier = args["depth_multiplier"]
        self.depthwise_kernel = nn.Parameter(torch.zeros(multiplier, channels, *args["kernel_size"]))
        self.pointwise_kernel = nn.Parameter(torch.zeros(args["filters"], channels * multiplier, 1, 1))
        self.bias = nn.Parameter(torch.zeros(args["filters"])) if args["use_bias"] else None
        self.strides, self.pads = args["strides"], _pads(layer, args["kernel_size"], args["strides"])
        self.act = activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(_depthwise(x, self.depthwise_kernel, None, self.strides, self.pads), self.pointwise_kernel,
                     self.bias)
        return x if self.act is None else self.act(x)


def _depthwise(x: torch.Tensor, kernel: torch.Tensor, bias, strides, pads) -> torch.Tensor:
    """A depthwise convolution of ``kernel`` (depth_multiplier, channels, h, w), Keras's padding applied."""
    multiplier, channels, height, width = kernel.shape
    grouped = kernel.transpose(0, 1).reshape(channels * multiplier, 1, height, width)  # channel c's j-th: c * m + j
    return F.conv2d(F.pad(x, pads) if any(pads) else x, grouped, bias, strides, groups=channels)


class Pooling2D(nn.Module):
    """MaxPooling2D and AveragePooling2D: "valid" floors; "same" pads as TF, with -inf for max, and the average
    divides by the cells inside the image (each output's count is fixed by the shapes: a buffer)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args = layer.args
        self.window, self.strides = args["pool_size"], args["strides"] or args["pool_size"]
        self.is_max = layer.kind == "max_pooling2d"
        self.pads = _pads(layer, self.window, self.strides)
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


class Margins2D(nn.Module):
    """ZeroPadding2D (zeros around the map) and Cropping2D (rows and columns cut off its edges)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        (top, bottom), (left, right) = signed_margins(layer.kind, layer.args)
        self.pads = (left, right, top, bottom)  # F.pad's order; negative sizes crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class GlobalPooling2D(nn.Module):
    """GlobalAveragePooling2D and GlobalMaxPooling2D: each channel's mean or maximum over the map; ``keepdims``
    keeps a 1x1 map."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.is_max, self.keepdims = layer.kind == "global_max_pooling2d", layer.args["keepdims"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_max:
            return x.amax(dim=(2, 3), keepdim=self.keepdims)
        return x.mean(dim=(2, 3), keepdim=self.keepdims)


class LeakyReLU(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.negative_slope = float(layer.args["negative_slope"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


class PReLU(nn.Module):
    """Keras's PReLU: ``x`` where positive, ``alpha * x`` where not, with a learned ``alpha`` for every value of
    the input (Keras's layout: (features,) or (height, width, channels)), shared along ``shared_axes``."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        shape = [1 if axis in (layer.args["shared_axes"] or ()) else size
                 for axis, size in enumerate(layer.input_shape, start=1)]
        self.alpha = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.permute(2, 0, 1) if self.alpha.dim() == 3 else self.alpha  # (h, w, c) -> (c, h, w)
        return torch.where(x >= 0, x, alpha * x)


class Flatten(nn.Module):
    """Keras's channels-last order: an NCHW tensor in channels-last memory is flattened as (h, w, c) for free."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x


class Reshape(nn.Module):
    """Keras's row-major reshape of the channels-last layout; an (h, w, c) target becomes NCHW in channels-last memory."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.shape = tuple(layer.output_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.shape)
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


class Activation(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.act = activation(layer.args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.act is None else self.act(x)


class GaussianNoise(nn.Module):
    """Keras's GaussianNoise and GaussianDropout, in training only: ``x + N(0, stddev)``, and ``x * N(1, stddev)``
    with ``stddev = sqrt(rate / (1 - rate))``; identity in inference."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.additive = layer.kind == "gaussian_noise"
        rate = layer.args.get("rate", 0.0)
        self.stddev = float(layer.args["stddev"]) if self.additive else math.sqrt(rate / (1 - rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.stddev == 0:
            return x
        noise = torch.randn_like(x) * self.stddev
        return x + noise if self.additive else x * (noise + 1)


def _per_channel(values, count: int) -> torch.Tensor:
    """A scalar or a per-feature/per-channel list, shaped to broadcast on dim 1 of (N, C) and (N, C, H, W) alike."""
    return torch.as_tensor(values, dtype=torch.float32).expand(count).clone()


def _on_channels(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, 1, 1) if x.dim() == 4 else t


class Rescaling(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        channels = layer.input_shape[-1]
        self.register_buffer("scale", _per_channel(layer.args["scale"], channels))
        self.register_buffer("offset", _per_channel(layer.args["offset"], channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * _on_channels(self.scale, x) + _on_channels(self.offset, x)


class Normalization(nn.Module):
    """An adapted Keras Normalization: ``(x - mean) / max(sqrt(variance), 1e-7)``, per feature (the last axis)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        channels = layer.input_shape[-1]
        self.register_buffer("mean", _per_channel(layer.args["mean"], channels))
        self.register_buffer("variance", _per_channel(layer.args["variance"], channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - _on_channels(self.mean, x)) / _on_channels(self.variance.sqrt().clamp(min=1e-7), x)


class BatchNormalization(nn.Module):
    """Keras's BatchNormalization over the last axis (features, or channels of an image).

    Training normalises with the batch's mean and biased variance (as both libraries do) and moves the moving
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


class LayerNormalization(nn.Module):
    """Keras's LayerNormalization over the last axis (each row's features, or each pixel's channels):
    ``(x - mean) / sqrt(variance + epsilon) * gamma + beta``, the variance biased, epsilon 1e-3 by default."""

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
            y = y * _on_channels(self.gamma, y)
        return y if self.beta is None else y + _on_channels(self.beta, y)


def _module(layer: Layer) -> nn.Module:
    if layer.kind == "dense":
        return Dense(layer)
    if layer.kind == "conv2d":
        return Conv2D(layer)
    if layer.kind == "depthwise_conv2d":
        return DepthwiseConv2D(layer)
    if layer.kind == "separable_conv2d":
        return SeparableConv2D(layer)
    if layer.kind in ("max_pooling2d", "average_pooling2d"):
        return Pooling2D(layer)
    if layer.kind in ("global_average_pooling2d", "global_max_pooling2d"):
        return GlobalPooling2D(layer)
    if layer.kind == "dropout":
        return nn.Dropout(layer.args["rate"])  # inverted dropout, as Keras's
    if layer.kind == "spatial_dropout2d":
        return nn.Dropout2d(layer.args["rate"])  # whole channels, inverted, as Keras's
    if layer.kind in ("zero_padding2d", "cropping2d"):
        return Margins2D(layer)
    simple = {"flatten": lambda _: Flatten(), "reshape": Reshape, "activation": Activation, "leaky_re_lu": LeakyReLU,
              "p_re_lu": PReLU,
              "gaussian_noise": GaussianNoise, "gaussian_dropout": GaussianNoise,
              "rescaling": Rescaling, "normalization": Normalization, "batch_normalization": BatchNormalization,
              "layer_normalization": LayerNormalization}
    return simple[layer.kind](layer)


class KerasNet(nn.Sequential):
    """The layers of a resolved list, in order; rows of H*W grey levels in, logits out. ``layers`` keeps the
    resolved list (kinds, arguments, shapes) for whoever moves weights to or from Keras."""

    def __init__(self, layers: list[Layer]) -> None:
        super().__init__(OrderedDict((layer.name, _module(layer)) for layer in layers))
        self.layers = tuple(layers)
        self.to(memory_format=torch.channels_last)  # conv weights NHWC; other tensors are unaffected

    def __getitem__(self, index):
        if isinstance(index, slice):  # some of the layers: a plain Sequential of them (a resolved list is whole)
            return nn.Sequential(OrderedDict(list(self.named_children())[index]))
        return super().__getitem__(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # grey levels, as they come: uint8 rows are made floating point here
        return super().forward(x if x.is_floating_point() else x.to(torch.get_default_dtype()))


def build_net(layers: Iterable | None, num_classes: int, image_shape: tuple[int, int], init: str = "keras") -> KerasNet:
    """The plain nn.Module of a layer list (None: the original's) for ``num_classes`` classes and images of
    ``image_shape``. ``init``: ``keras`` (each layer's initialisers, Keras's by default) or ``torch``
    (PyTorch's defaults for every layer; an item naming an initialiser is then refused)."""
    resolved = resolve(layers, num_classes, image_shape)
    _check_size(resolved)
    net = KerasNet(resolved)
    if init == "keras":
        keras_init_(net)
    elif init == "torch":
        separable = next((layer for layer in resolved if layer.kind in ("depthwise_conv2d", "separable_conv2d")), None)
        if separable is not None:
            raise LayerError(f"model.layers {separable.describe()}: init 'torch' (PyTorch's defaults) has no default "
                             "for a depthwise kernel: use init 'keras'")
        given = next(((layer, name) for layer in resolved if layer.kind in ("dense", "conv2d")
                      for name, default in (("kernel_initializer", "glorot_uniform"), ("bias_initializer", "zeros"))
                      if layer.args[name] != default), None)
        if given is not None:
            layer, name = given
            raise LayerError(f"model.layers {layer.describe()}: {name} {layer.args[name]!r} with init 'torch' "
                             "(PyTorch's defaults for every layer): use init 'keras'")
    else:
        raise LayerError(f"init must be 'keras' or 'torch', got {init!r}")
    return net


MAX_PARAMETERS = 1 << 28  # 1 GiB of float32 weights: a net past it is refused before any of it is allocated


def _check_size(resolved: list[Layer]) -> None:
    """Count the net's parameters on the meta device (shapes alone, no memory), before it is built for real."""
    with torch.device("meta"):
        counts = [(layer, sum(p.numel() for p in _module(layer).parameters())) for layer in resolved]
    total = sum(count for _, count in counts)
    if total > MAX_PARAMETERS:
        layer, count = max(counts, key=lambda pair: pair[1])
        raise LayerError(f"model.layers {layer.describe()}: the net would hold {total:,} parameters ({count:,} of "
                         f"them this layer's), over the limit of {MAX_PARAMETERS:,}")


def keras_init_(net: KerasNet) -> KerasNet:
    """Each Dense and Conv2D kernel and bias drawn as its Keras initialiser draws it (Glorot-uniform and zeros by
    default), and BatchNormalization at gamma 1, beta 0 (already). The fans are Keras's: a conv's receptive field
    times its input or output channels."""
    for layer, module in zip(net.layers, net):
        if layer.kind in ("dense", "conv2d"):
            initialize_(module.weight, layer.args["kernel_initializer"])
            if module.bias is not None:
                initialize_(module.bias, layer.args["bias_initializer"])
        elif layer.kind == "depthwise_conv2d":
            initialize_(module.weight, layer.args["depthwise_initializer"])
            if module.bias is not None:
                initialize_(module.bias, layer.args["bias_initializer"])
        elif layer.kind == "separable_conv2d":
            initialize_(module.depthwise_kernel, layer.args["depthwise_initializer"])
            initialize_(module.pointwise_kernel, layer.args["pointwise_initializer"])
            if module.bias is not None:
                initialize_(module.bias, layer.args["bias_initializer"])
        elif layer.kind == "p_re_lu":
            initialize_(module.alpha, layer.args["alpha_initializer"])
    return net


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
