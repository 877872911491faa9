"""The parity levels' side of moving between Keras and KerasNet: flat vectors of a net's parameters (or moving
statistics) in either framework's values, and the optimizer's state. The layouts themselves are
``lit_mnist/model/keras_layout.py``'s.
"""

from __future__ import annotations

import numpy as np
import torch

from lit_mnist.model.keras_layout import find, keras_weights, load_weights, variables
from lit_mnist.model.net import KerasNet
from lit_mnist.model.optimizers import load_state

__all__ = ["flat", "keras_vector", "keras_weights", "load_optimizer_state", "load_weights", "relative_l2",
           "torch_vector"]


def torch_vector(net: KerasNet, moving: bool = False) -> np.ndarray:
    """The net's parameters (or, ``moving``, its moving statistics) as one float64 vector."""
    return flat(t for layer, name, t in variables(net) if (name in layer.spec.moving) == moving)


def keras_vector(net: KerasNet, weights: dict[str, dict[str, np.ndarray]], moving: bool = False) -> np.ndarray:
    """A Keras twin's parameters (or moving statistics) in the order and layout of :func:`torch_vector`."""
    return flat(layer.spec.to_torch(name, find(weights, layer.name, name)) for layer, name, _ in variables(net)
                if (name in layer.spec.moving) == moving)


def load_optimizer_state(optimizer: torch.optim.Optimizer, net: KerasNet, slots: dict, step: int,
                         scalars: dict | None = None) -> None:
    """Give a torch optimizer over ``net``'s parameters Keras's state: every slot of every variable
    (``keras_reference.optimizer_slots``, by Keras's slot names, in torch's layout), the step count and the
    optimizer-wide values (``keras_reference.optimizer_scalars``: Nadam's ``u_product``)."""
    parameters = {id(p) for p in net.parameters()}
    by_parameter = {tensor: {slot: layer.spec.to_torch(name, value) for slot, value in find(slots, layer.name, name).items()}
                    for layer, name, tensor in variables(net)
                    if name not in layer.spec.moving and id(tensor) in parameters}
    load_state(optimizer, by_parameter, step, scalars)


def flat(tensors) -> np.ndarray:
    """Tensors as one float64 vector."""
    parts = [np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64).ravel()
             for t in tensors]
    return np.concatenate(parts) if parts else np.zeros(0)


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / norm) if norm else float(np.linalg.norm(a - b))
