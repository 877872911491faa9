"""Keras 3's weight constraints (keras/src/constraints/constraints.py), computed as Keras computes them, on a
tensor in Keras's layout (``axis`` counts Keras's axes: a Dense kernel's (in, out), a Conv2D kernel's (h, w, in,
out)): the projection an optimizer applies to a variable after each step.

An item names one as the layer list's grammar does (``max_norm``, ``{max_norm: 3}``, ``{max_norm: {max_value:
3, axis: [0, 1, 2]}}``, Keras's class name ``MaxNorm``); ``lit_mnist.model.kinds.objects`` parses it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Keras's name -> (its class, its arguments with Keras's defaults, in Keras's order)
CONSTRAINTS: dict[str, tuple[str, dict]] = {
    "max_norm": ("MaxNorm", {"max_value": 2, "axis": 0}),
    "min_max_norm": ("MinMaxNorm", {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}),
    "non_neg": ("NonNeg", {}),
    "unit_norm": ("UnitNorm", {"axis": 0}),
}
ALIASES = {"maxnorm": "max_norm", "minmaxnorm": "min_max_norm", "nonneg": "non_neg", "unitnorm": "unit_norm"}
EPSILON = 1e-7  # Keras's backend.epsilon(), added to the norm in the divisor (not a floor on it)


def _norms(w: torch.Tensor, axis) -> torch.Tensor:
    return w.square().sum(dim=axis, keepdim=True).sqrt()


def max_norm(w: torch.Tensor, max_value=2, axis=0) -> torch.Tensor:
    """``w * clip(norm, 0, max_value) / (epsilon + norm)``: each slice's norm along ``axis`` at most max_value."""
    norms = _norms(w, axis)
    return w * (norms.clamp(0, max_value) / (EPSILON + norms))


def min_max_norm(w: torch.Tensor, min_value=0.0, max_value=1.0, rate=1.0, axis=0) -> torch.Tensor:
    """``w * (rate * clip(norm, min, max) + (1 - rate) * norm) / (epsilon + norm)``."""
    norms = _norms(w, axis)
    desired = rate * norms.clamp(min_value, max_value) + (1 - rate) * norms
    return w * (desired / (EPSILON + norms))


def non_neg(w: torch.Tensor) -> torch.Tensor:
    return w.clamp(min=0)


def unit_norm(w: torch.Tensor, axis=0) -> torch.Tensor:
    """``w / (epsilon + norm)``."""
    return w / (EPSILON + _norms(w, axis))


_FUNCTIONS = {"max_norm": max_norm, "min_max_norm": min_max_norm, "non_neg": non_neg, "unit_norm": unit_norm}


def projection(item: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function of a parsed item (``{name: {argument: value}}``) from a tensor in Keras's layout to the
    constrained tensor; a list of axes is torch's tuple."""
    (name, args), = item.items()
    if isinstance(args.get("axis"), list):
        args = {**args, "axis": tuple(args["axis"])}
    function = _FUNCTIONS[name]
    return lambda w: function(w, **args)
