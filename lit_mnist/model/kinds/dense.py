"""Keras's Dense: ``activation(x @ kernel + bias)``; the kernel (in, out) is nn.Linear's weight (out, in)."""

from __future__ import annotations

import torch
from torch import nn

from lit_mnist.model.activations import activation
from lit_mnist.model.kinds.arguments import fmt
from lit_mnist.model.kinds.base import Kind, Layer, register
from lit_mnist.model.kinds.objects import arguments


class Dense(nn.Linear):
    def __init__(self, layer: Layer) -> None:
        args = layer.args
        super().__init__(layer.input_shape[0], args["units"], bias=args["use_bias"])
        # the head's softmax is the loss's to take: the net returns logits
        self.act = None if layer.head else activation(args["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return x if self.act is None else self.act(x)


@register
class DenseKind(Kind):
    name, keras_class, first = "dense", "Dense", "units"
    positional = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer")
    required = ("units",)
    optional = {"activation": "linear", "use_bias": True, "kernel_initializer": "glorot_uniform",
                "bias_initializer": "zeros", **arguments("kernel", "bias")}
    defaults_only = {"lora_rank": (None,), "quantization_config": (None,)}
    variables = {"kernel": "weight", "bias": "bias"}
    penalized = {"kernel": "kernel", "bias": "bias"}
    initializers = {"kernel": "kernel_initializer", "bias": "bias_initializer"}
    torch_init = ("kernel_initializer", "bias_initializer")  # nn.Linear's own draw stands for Keras's defaults

    def output_shape(self, args, shape):
        if len(shape) != 1:
            raise ValueError(f"its input is a {fmt(shape)} map: a flatten item must come first")
        return (args["units"],)

    def module(self, layer):
        return Dense(layer)
