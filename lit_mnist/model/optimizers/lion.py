"""Keras 3's Lion (keras/src/optimizers/lion.py): the sign of an interpolation of momentum and gradient, at the
rate; then the momentum moves by ``beta_2``. Slot: ``momentum``."""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.base import KerasOptimizer
from lit_mnist.model.optimizers.flow import Flow


class KerasLion(KerasOptimizer):
    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.99, flow: Flow | None = None):
        super().__init__(params, {"lr": lr, "beta_1": beta_1, "beta_2": beta_2}, flow)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        m = self.slot(state, "momentum", p)
        p.sub_((m * group["beta_1"] + g * (1.0 - group["beta_1"])).sign(), alpha=lr)
        m.mul_(group["beta_2"]).add_(g, alpha=1.0 - group["beta_2"])
