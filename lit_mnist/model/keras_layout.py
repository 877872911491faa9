"""Keras's weights in a KerasNet's layout and back, layer by layer, as each layer's kind lays its variables out.

The two nets' layers share their names (``dense``, ``conv2d_1``, ...); within a layer, each Keras variable
(``kernel``, ``bias``, ``gamma``, ...) is a tensor of the layer's module, named in its kind's ``variables`` and
moved by its kind's ``to_torch``/``to_keras`` (a dense kernel transposed, a conv kernel (h, w, in, out) <-> (out,
in, h, w)). KerasNet flattens an image channels-last, as Keras does, so the dense kernel after a ``flatten``
moves as any other: features are numbered alike on both sides. A Keras layout is a mapping
``{layer: {variable: array}}``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from lit_mnist.model.kinds import Layer
from lit_mnist.model.net import KerasNet


def variables(net: KerasNet) -> Iterator[tuple[Layer, str, torch.Tensor]]:
    """(layer, Keras variable name, the torch tensor) of every variable the net has, in the net's order."""
    for layer, module in zip(net.layers, net):
        for keras_name, attribute in layer.spec.variables.items():
            tensor = getattr(module, attribute, None)
            if isinstance(tensor, torch.Tensor):
                yield layer, keras_name, tensor


def pairs(net: KerasNet) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(layer name, Keras variable name, the torch tensor) of every variable the net has, in the net's order."""
    for layer, name, tensor in variables(net):
        yield layer.name, name, tensor


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
        for layer, name, tensor in variables(net):
            value = layer.spec.to_torch(name, find(weights, layer.name, name))
            if value.shape != tensor.shape:
                raise Mismatch(layer.name, f"{layer.name}/{name} is {tuple(value.shape)} in torch's layout there, "
                                           f"{tuple(tensor.shape)} here")
            tensor.copy_(value)


def keras_weights(net: KerasNet) -> dict[str, dict[str, np.ndarray]]:
    """``net``'s variables in Keras's layout."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer, name, tensor in variables(net):
        weights.setdefault(layer.name, {})[name] = layer.spec.to_keras(name, tensor)
    return weights
