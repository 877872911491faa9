"""Keras's convolutions: Conv2D, DepthwiseConv2D and SeparableConv2D, with TensorFlow's "same" padding (the extra
row or column at the bottom or right, for any stride). Kernels are held in torch's conv layout (out, in, h, w),
Keras's (h, w, in, out), so that they move, and are drawn with Keras's fans, alike."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_mnist.model.activations import activation
from lit_mnist.model.kinds.base import CHANNELS_LAST, Kind, Layer, register
from lit_mnist.model.kinds.objects import arguments


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: ``max((ceil(n / s) - 1) * s + k - n, 0)`` in all, the smaller half
    before and the extra cell after (at the bottom or right)."""
    total = max((-(-size // stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def window_output(shape, window, strides, padding, what: str) -> tuple[int, int]:
    """Keras's output size of a convolution or pooling window: "valid" floor((n - k) / s) + 1, "same" ceil(n / s)."""
    sizes = shape[:2]
    if padding == "same":
        return tuple(-(-n // s) for n, s in zip(sizes, strides))
    if any(n < k for n, k in zip(sizes, window)):
        raise ValueError(f"{what} {window[0]}x{window[1]} does not fit its {sizes[0]}x{sizes[1]} input map "
                         "(padding 'valid'; 'same' pads)")
    return tuple((n - k) // s + 1 for n, k, s in zip(sizes, window, strides))


def pads(layer: Layer, window: tuple[int, int], strides: tuple[int, int]) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) for Keras's padding of this layer's input."""
    if layer.args["padding"] != "same":
        return (0, 0, 0, 0)
    (top, bottom), (left, right) = (same_padding(n, k, s) for n, k, s in zip(layer.input_shape[:2], window, strides))
    return (left, right, top, bottom)


class Conv2D(nn.Conv2d):
    def __init__(self, layer: Layer) -> None:
        args = layer.args
        margins = pads(layer, args["kernel_size"], args["strides"])
        symmetric = margins[0] == margins[1] and margins[2] == margins[3]
        super().__init__(layer.input_shape[2], args["filters"], args["kernel_size"], args["strides"],
                         padding=(margins[2], margins[0]) if symmetric else 0, bias=args["use_bias"])
        self.pads = None if symmetric else margins  # an odd total: the extra cell at the bottom/right, as TF pads
        self.act = activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads is not None:
            x = F.pad(x, self.pads)
        x = super().forward(x)
        return x if self.act is None else self.act(x)


def depthwise(x: torch.Tensor, kernel: torch.Tensor, bias, strides, margins) -> torch.Tensor:
    """A depthwise convolution of ``kernel`` (depth_multiplier, channels, h, w), Keras's padding applied."""
    multiplier, channels, height, width = kernel.shape
    grouped = kernel.transpose(0, 1).reshape(channels * multiplier, 1, height, width)  # channel c's j-th: c * m + j
    return F.conv2d(F.pad(x, margins) if any(margins) else x, grouped, bias, strides, groups=channels)


class DepthwiseConv2D(nn.Module):
    """Each input channel convolved with its own ``depth_multiplier`` kernels, output channel ``c *
    depth_multiplier + j`` (as torch's grouped convolution numbers them). The kernel is held as (depth_multiplier,
    channels, h, w), Keras's (h, w, channels, depth_multiplier) in a conv kernel's torch layout."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args, channels = layer.args, layer.input_shape[2]
        self.weight = nn.Parameter(torch.zeros(args["depth_multiplier"], channels, *args["kernel_size"]))
        self.bias = nn.Parameter(torch.zeros(channels * args["depth_multiplier"])) if args["use_bias"] else None
        self.strides, self.pads = args["strides"], pads(layer, args["kernel_size"], args["strides"])
        self.act = activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = depthwise(x, self.weight, self.bias, self.strides, self.pads)
        return x if self.act is None else self.act(x)


class SeparableConv2D(nn.Module):
    """A depthwise convolution (as DepthwiseConv2D's, without bias), then a 1x1 one to ``filters`` channels with
    the bias; the pointwise kernel held as a 1x1 conv kernel in torch's layout."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        args, channels = layer.args, layer.input_shape[2]
        multiplier = args["depth_multiplier"]
        self.depthwise_kernel = nn.Parameter(torch.zeros(multiplier, channels, *args["kernel_size"]))
        self.pointwise_kernel = nn.Parameter(torch.zeros(args["filters"], channels * multiplier, 1, 1))
        self.bias = nn.Parameter(torch.zeros(args["filters"])) if args["use_bias"] else None
        self.strides, self.pads = args["strides"], pads(layer, args["kernel_size"], args["strides"])
        self.act = activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(depthwise(x, self.depthwise_kernel, None, self.strides, self.pads), self.pointwise_kernel, self.bias)
        return x if self.act is None else self.act(x)


_CONV_DEFAULTS_ONLY = {"data_format": CHANNELS_LAST, "dilation_rate": (1, (1, 1)), "groups": (1,)}


class _Convolution(Kind):
    image_only = True
    torch_init = None  # PyTorch has no default of a depthwise kernel

    def output_shape(self, args, shape):
        channels = self.channels(args, shape)
        return (*window_output(shape, args["kernel_size"], args["strides"], args["padding"], "kernel"), channels)

    def channels(self, args, shape) -> int:
        return args["filters"]


@register
class Conv2DKind(_Convolution):
    name, keras_class, first = "conv2d", "Conv2D", "filters"
    aliases = ("Convolution2D",)
    positional = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
                  "activation", "use_bias", "kernel_initializer", "bias_initializer")
    required = ("filters", "kernel_size")
    optional = {"strides": (1, 1), "padding": "valid", "activation": "linear", "use_bias": True,
                "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros", **arguments("kernel", "bias")}
    defaults_only = _CONV_DEFAULTS_ONLY
    variables = {"kernel": "weight", "bias": "bias"}
    penalized = {"kernel": "kernel", "bias": "bias"}
    initializers = {"kernel": "kernel_initializer", "bias": "bias_initializer"}
    torch_init = ("kernel_initializer", "bias_initializer")  # nn.Conv2d's own draw stands for Keras's defaults

    def module(self, layer):
        return Conv2D(layer)


@register
class DepthwiseConv2DKind(_Convolution):
    name, keras_class, first = "depthwise_conv2d", "DepthwiseConv2D", "kernel_size"
    positional = ("kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate",
                  "activation", "use_bias", "depthwise_initializer", "bias_initializer")
    required = ("kernel_size",)
    optional = {"strides": (1, 1), "padding": "valid", "depth_multiplier": 1, "activation": "linear", "use_bias": True,
                "depthwise_initializer": "glorot_uniform", "bias_initializer": "zeros",
                **arguments("depthwise", "bias")}
    defaults_only = _CONV_DEFAULTS_ONLY
    variables = {"kernel": "weight", "bias": "bias"}
    penalized = {"kernel": "depthwise", "bias": "bias"}  # Keras's variable is "kernel", its arguments depthwise_*
    initializers = {"kernel": "depthwise_initializer", "bias": "bias_initializer"}

    def channels(self, args, shape) -> int:
        return shape[2] * args["depth_multiplier"]

    def module(self, layer):
        return DepthwiseConv2D(layer)


@register
class SeparableConv2DKind(_Convolution):
    name, keras_class, first = "separable_conv2d", "SeparableConv2D", "filters"
    aliases = ("SeparableConvolution2D",)
    positional = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier",
                  "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer")
    required = ("filters", "kernel_size")
    optional = {"strides": (1, 1), "padding": "valid", "depth_multiplier": 1, "activation": "linear", "use_bias": True,
                "depthwise_initializer": "glorot_uniform", "pointwise_initializer": "glorot_uniform",
                "bias_initializer": "zeros", **arguments("depthwise", "pointwise", "bias")}
    defaults_only = _CONV_DEFAULTS_ONLY
    variables = {"depthwise_kernel": "depthwise_kernel", "pointwise_kernel": "pointwise_kernel", "bias": "bias"}
    penalized = {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise", "bias": "bias"}
    initializers = {"depthwise_kernel": "depthwise_initializer", "pointwise_kernel": "pointwise_initializer",
                    "bias": "bias_initializer"}

    def module(self, layer):
        return SeparableConv2D(layer)
