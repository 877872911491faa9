"""Moving weights and optimizer state from Keras's layout to PyTorch's and back.

Keras kernels are (in, out) with ``y = x @ kernel + b``; nn.Linear weights are (out, in): transpose.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lit_mnist.model.keras_adam import KerasAdam


def to_torch_layout(arrays: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a.T if a.ndim == 2 else a)) for a in arrays]


def load_weights(net: nn.Module, weights: list[np.ndarray]) -> None:
    params = list(net.parameters())
    tensors = to_torch_layout(weights)
    if [p.shape for p in params] != [t.shape for t in tensors]:
        raise ValueError("the Keras weights do not fit this network")
    with torch.no_grad():
        for p, t in zip(params, tensors):
            p.copy_(t)


def load_adam_state(optimizer: torch.optim.Adam, params: list[nn.Parameter], keras_state: dict) -> None:
    """Give a torch Adam (KerasAdam or the stock one) Keras's moments and step count."""
    step = int(keras_state["step"])
    for p, m, v in zip(params, to_torch_layout(keras_state["m"]), to_torch_layout(keras_state["v"])):
        optimizer.state[p] = {"step": torch.tensor(float(step)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    if isinstance(optimizer, KerasAdam):
        for group in optimizer.param_groups:
            KerasAdam.set_step_count(group, step)


def flat(tensors) -> np.ndarray:
    """All parameters as one float64 vector, in torch layout."""
    return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tensors])


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
