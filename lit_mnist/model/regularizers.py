"""Keras 3's weight and activity regularizers (keras/src/regularizers/regularizers.py), computed as Keras computes
them, on a tensor in Keras's layout: a penalty that training adds to the loss.

An item names one as the layer list's grammar does (``l2``, ``{l2: 0.001}``, ``{l1_l2: {l1: 0.01, l2: 0.01}}``,
Keras's class name ``L2``); ``lit_mnist.model.kinds.objects`` parses it into ``{name: {argument: value}}``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Keras's name -> (its class, its arguments with the defaults of that class, in Keras's order). A bare ``l1_l2``
# is Keras 3's ``keras.regularizers.l1_l2()``: the class L1L2, whose defaults are 0 (its docstring's 0.01 is
# Keras 2's string default; Keras 3 no longer reads the string)
REGULARIZERS: dict[str, tuple[str, dict]] = {
    "l1": ("L1", {"l1": 0.01}),
    "l2": ("L2", {"l2": 0.01}),
    "l1_l2": ("L1L2", {"l1": 0.0, "l2": 0.0}),
    "orthogonal_regularizer": ("OrthogonalRegularizer", {"factor": 0.01, "mode": "rows"}),
}
ALIASES = {"l1l2": "l1_l2"}  # Keras's own snake_case key of L1L2
EPSILON = 1e-7  # Keras's backend.epsilon()


def l1_l2(x: torch.Tensor, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
    """``l1 * sum(|x|) + l2 * sum(x ** 2)``; a factor of 0 adds nothing, as Keras skips it."""
    penalty = x.new_zeros(())
    if l1:
        penalty = penalty + l1 * x.abs().sum()
    if l2:
        penalty = penalty + l2 * x.square().sum()
    return penalty


def orthogonal(x: torch.Tensor, factor: float = 0.01, mode: str = "rows") -> torch.Tensor:
    """Keras's OrthogonalRegularizer of a rank-2 tensor: ``factor * 0.5 * mean |<u_i, u_j>|`` over the pairs
    i != j of its rows (``columns``: its columns) scaled to unit norm (``x * min(rsqrt(sum x**2), 1 / epsilon)``,
    Keras's ``normalize``), each pair counted twice over ``n (n - 1) / 2`` pairs, as Keras counts them."""
    if mode == "columns":
        x = x.T
    unit = x * torch.rsqrt(x.square().sum(1, keepdim=True)).clamp(max=1.0 / EPSILON)
    product = unit @ unit.T
    size = unit.shape[0]
    off_diagonal = product * (1.0 - torch.eye(size, dtype=x.dtype, device=x.device))
    return factor * 0.5 * off_diagonal.abs().sum() / (size * (size - 1.0) / 2.0)


def penalty(item: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function of a parsed item (``{name: {argument: value}}``) from a tensor in Keras's layout to its penalty."""
    (name, args), = item.items()
    if name == "orthogonal_regularizer":
        return lambda x: orthogonal(x, **args)
    return lambda x: l1_l2(x, **args)
