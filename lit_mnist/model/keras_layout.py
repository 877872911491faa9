"""Keras's weights in a KerasNet's layout and back: the one place that knows how the two lay out a layer.

The two nets' layers share their names (``dense``, ``conv2d_1``, ...); within a layer the variables pair up as

* Dense ``kernel`` (in, out), ``y = x @ kernel + b`` <-> nn.Linear ``weight`` (out, in): transposed;
* Conv2D ``kernel`` (h, w, in, out) <-> ``weight`` (out, in, h, w), and so a depthwise kernel (h, w, in,
  depth_multiplier) and a separable one's ``depthwise_kernel`` and ``pointwise_kernel``;
* ``bias``; BatchNormalization's ``gamma``, ``beta``, ``moving_mean`` and ``moving_variance``, and PReLU's
  ``alpha`` (kept in Keras's (h, w, c) layout on both sides), as they are.

KerasNet flattens an image channels-last, as Keras does, so the dense kernel after a ``flatten`` moves as any
other: features are numbered alike on both sides. A Keras layout is a mapping ``{layer: {variable: array}}``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from lit_mnist.model.net import KerasNet

TORCH_NAMES = {"kernel": "weight", "bias": "bias", "gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
               "moving_variance": "moving_variance", "alpha": "alpha", "depthwise_kernel": "depthwise_kernel",
               "pointwise_kernel": "pointwise_kernel"}
MOVING = ("moving_mean", "moving_variance")


def to_torch(array: np.ndarray) -> torch.Tensor:
    """A Keras variable in torch's layout: a dense kernel transposed, a conv kernel (h, w, in, out) -> (out, in, h, w)."""
    if array.ndim == 2:
        array = array.T
    elif array.ndim == 4:
        array = array.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def to_keras(tensor: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`to_torch`."""
    array = tensor.detach().cpu().numpy()
    if array.ndim == 2:
        return np.ascontiguousarray(array.T)
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    return array.copy()


def pairs(net: KerasNet) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(layer, Keras variable name, the torch tensor) of every variable the net has, in the net's order."""
    for layer, module in zip(net.layers, net):
        for keras_name, torch_name in TORCH_NAMES.items():
            tensor = getattr(module, torch_name, None)
            if isinstance(tensor, torch.Tensor):
                yield layer.name, keras_name, tensor


class Mismatch(ValueError):
    """Keras's weights do not fit the net: ``layer``'s variable is missing or of another shape."""

    def __init__(self, layer: str, detail: str) -> None:
        super().__init__(f"the Keras weights do not fit this network: {detail}")
        self.layer, self.detail = layer, detail


def find(weights: dict, layer: str, name: str) -> np.ndarray:
    try:
        return weights[layer][name]
    except KeyError:
        raise Mismatch(layer, f"no {layer}/{name} there") from None


def load_weights(net: KerasNet, weights: dict[str, dict[str, np.ndarray]]) -> None:
    """Copy Keras's variables (weights and moving statistics) into ``net``; :class:`Mismatch` naming a variable
    that is missing or of another shape."""
    with torch.no_grad():
        for layer, name, tensor in pairs(net):
            value = to_torch(find(weights, layer, name))
            if value.shape != tensor.shape:
                raise Mismatch(layer, f"{layer}/{name} is {tuple(value.shape)} in torch's layout there, "
                                      f"{tuple(tensor.shape)} here")
            tensor.copy_(value)


def keras_weights(net: KerasNet) -> dict[str, dict[str, np.ndarray]]:
    """``net``'s variables in Keras's layout."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer, name, tensor in pairs(net):
        weights.setdefault(layer, {})[name] = to_keras(tensor)
    return weights
