"""Keras's activations by name, as torch functions (the names a list may give are
``kinds.arguments.ACTIVATIONS``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_FUNCTIONS = {
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
    """The function of a Keras activation name (None: linear); softmax acts on the channels, the last axis in
    Keras's layout."""
    if name == "softmax":
        return lambda x: x.softmax(dim=1)  # (N, C) or (N, C, H, W): dim 1 is Keras's last axis in both
    return _FUNCTIONS[name]
