"""Moving weights and optimizer state from Keras's layout to PyTorch's.

* Dense kernels are (in, out) with ``y = x @ kernel + b``; nn.Linear weights are (out, in): transpose.
* Conv2D kernels are (h, w, in, out); nn.Conv2d weights are (out, in, h, w).
* Keras's ``Flatten`` of a channels-last (h, w, c) map numbers its features ``(i * w + j) * c + k``;
  torch's ``nn.Flatten`` of (c, h, w) numbers them ``(k * h + i) * w + j``. The dense layer after it
  must have its input rows permuted to match: without that the weights load without complaint (the
  shapes agree) and the network predicts nonsense.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lit_mnist.model.keras_adam import KerasAdam


def flatten_permutation(feature_shape: tuple[int, int, int]) -> np.ndarray:
    """For torch's flattened feature number ``t`` (of a (c, h, w) map), the Keras feature number it is."""
    c, h, w = feature_shape
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()


def to_torch_layout(arrays: list[np.ndarray], feature_shape: tuple[int, int, int] | None = None) -> list[torch.Tensor]:
    """Keras arrays (trainable weights, or Adam moments shaped like them) in torch's layout.

    ``feature_shape``: the (c, h, w) map the conv layers hand to Flatten (``ConvNet.feature_shape``);
    the first dense kernel after a conv kernel then has its rows reordered.
    """
    tensors, after_conv = [], False
    for a in arrays:
        if a.ndim == 4:
            a, after_conv = a.transpose(3, 2, 0, 1), True
        elif a.ndim == 2:
            if after_conv and feature_shape is not None:
                a = a[flatten_permutation(feature_shape)]
            a, after_conv = a.T, False
        tensors.append(torch.from_numpy(np.ascontiguousarray(a)))
    return tensors


def _feature_shape(net: nn.Module) -> tuple[int, int, int] | None:
    return getattr(net, "feature_shape", None)


def load_weights(net: nn.Module, weights: list[np.ndarray]) -> None:
    params = list(net.parameters())
    tensors = to_torch_layout(weights, _feature_shape(net))
    if [p.shape for p in params] != [t.shape for t in tensors]:
        raise ValueError("the Keras weights do not fit this network")
    with torch.no_grad():
        for p, t in zip(params, tensors):
            p.copy_(t)


def load_adam_state(optimizer: torch.optim.Adam, net: nn.Module, keras_state: dict) -> None:
    """Give a torch Adam (KerasAdam or the stock one) over ``net``'s parameters Keras's moments and step count."""
    step = int(keras_state["step"])
    shape = _feature_shape(net)
    moments = zip(to_torch_layout(keras_state["m"], shape), to_torch_layout(keras_state["v"], shape))
    for p, (m, v) in zip(net.parameters(), moments):
        # in the parameter's memory layout (channels-last conv weights): torch's fused Adam walks the
        # parameter and its moments as flat memory, so a moment laid out otherwise would update the wrong weights
        exp_avg, exp_avg_sq = torch.empty_like(p).copy_(m), torch.empty_like(p).copy_(v)
        optimizer.state[p] = {"step": torch.tensor(float(step)), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    if isinstance(optimizer, KerasAdam):
        for group in optimizer.param_groups:
            KerasAdam.set_step_count(group, step)


def torch_weights(net: nn.Module, keras_weights: list[np.ndarray]) -> np.ndarray:
    """Keras's weights as one float64 vector in the order and layout of ``net``'s parameters."""
    return flat(to_torch_layout(keras_weights, _feature_shape(net)))


def flat(tensors) -> np.ndarray:
    """All parameters as one float64 vector, in torch layout."""
    return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tensors])


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
