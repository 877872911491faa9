"""Moving weights, moving statistics and Adam's state between a Keras twin's layout and its KerasNet's, both ways.

The two nets' layers share their names (``dense``, ``conv2d_1``, ...); within a layer the variables pair up as

* Dense ``kernel`` (in, out), ``y = x @ kernel + b`` <-> nn.Linear ``weight`` (out, in): transposed;
* Conv2D ``kernel`` (h, w, in, out) <-> ``weight`` (out, in, h, w);
* ``bias``; BatchNormalization's ``gamma``, ``beta``, ``moving_mean`` and ``moving_variance``, as they are.

KerasNet flattens an image channels-last, as Keras does, so the dense kernel after a ``flatten`` moves as any
other: features are numbered alike on both sides. A Keras layout is a mapping ``{layer: {variable: array}}``
(``keras_reference.layer_weights``), so none of this needs TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from lit_mnist.model.keras_adam import KerasAdam
from lit_mnist.model.net import KerasNet

TORCH_NAMES = {"kernel": "weight", "bias": "bias", "gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
               "moving_variance": "moving_variance"}
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


def _pairs(net: KerasNet) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(layer, Keras variable name, the torch tensor) of every variable the net has."""
    for layer, module in zip(net.layers, net):
        for keras_name, torch_name in TORCH_NAMES.items():
            tensor = getattr(module, torch_name, None)
            if isinstance(tensor, torch.Tensor):
                yield layer.name, keras_name, tensor


def load_weights(net: KerasNet, weights: dict[str, dict[str, np.ndarray]]) -> None:
    """Copy a Keras twin's variables (weights and moving statistics) into ``net``."""
    with torch.no_grad():
        for layer, name, tensor in _pairs(net):
            value = to_torch(_find(weights, layer, name))
            if value.shape != tensor.shape:
                raise ValueError(f"the Keras weights do not fit this network: {layer}/{name} is {tuple(value.shape)} "
                                 f"in torch's layout there, {tuple(tensor.shape)} here")
            tensor.copy_(value)


def _find(weights: dict, layer: str, name: str):
    try:
        return weights[layer][name]
    except KeyError:
        raise ValueError(f"the Keras weights do not fit this network: no {layer}/{name} there") from None


def keras_weights(net: KerasNet) -> dict[str, dict[str, np.ndarray]]:
    """``net``'s variables in Keras's layout (for ``keras_reference.assign``)."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer, name, tensor in _pairs(net):
        weights.setdefault(layer, {})[name] = to_keras(tensor)
    return weights


def torch_vector(net: KerasNet, moving: bool = False) -> np.ndarray:
    """The net's parameters (or, ``moving``, its moving statistics) as one float64 vector."""
    return flat(t for _, name, t in _pairs(net) if (name in MOVING) == moving)


def keras_vector(net: KerasNet, weights: dict[str, dict[str, np.ndarray]], moving: bool = False) -> np.ndarray:
    """A Keras twin's parameters (or moving statistics) in the order and layout of :func:`torch_vector`."""
    return flat(to_torch(_find(weights, layer, name)) for layer, name, _ in _pairs(net) if (name in MOVING) == moving)


def load_adam_state(optimizer: torch.optim.Adam, net: KerasNet, slots: dict, step: int) -> None:
    """Give a torch Adam (KerasAdam or the stock one) over ``net``'s parameters Keras's moments and step count."""
    parameters = {id(p) for p in net.parameters()}
    for layer, name, tensor in _pairs(net):
        if name in MOVING or id(tensor) not in parameters:
            continue
        m, v = (to_torch(a) for a in _find(slots, layer, name))
        # in the parameter's memory layout (channels-last conv weights): torch's fused Adam walks the
        # parameter and its moments as flat memory, so a moment laid out otherwise would update the wrong weights
        exp_avg, exp_avg_sq = torch.empty_like(tensor).copy_(m), torch.empty_like(tensor).copy_(v)
        optimizer.state[tensor] = {"step": torch.tensor(float(step)), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    if isinstance(optimizer, KerasAdam):
        for group in optimizer.param_groups:
            KerasAdam.set_step_count(group, step)


def flat(tensors) -> np.ndarray:
    """Tensors as one float64 vector."""
    parts = [np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64).ravel()
             for t in tensors]
    return np.concatenate(parts) if parts else np.zeros(0)


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / norm) if norm else float(np.linalg.norm(a - b))
