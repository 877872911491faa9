"""Keras 3's SGD (keras/src/optimizers/sgd.py). Its momentum accumulates *steps*, ``m = momentum * m - lr * g;
theta += m`` (Nesterov: ``theta += momentum * m - lr * g``); torch's accumulates gradients and multiplies by the
current rate, which is the same update only while the rate is constant: under a schedule the two drift apart."""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.base import KerasOptimizer
from lit_mnist.model.optimizers.flow import Flow


class KerasSGD(KerasOptimizer):
    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 flow: Flow | None = None):
        if lr < 0 or not 0 <= momentum < 1:
            raise ValueError(f"invalid SGD settings: lr={lr}, momentum={momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov}, flow)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        momentum = group["momentum"]
        if momentum == 0:
            p.sub_(g, alpha=lr)
            return
        m = self.slot(state, "momentum", p)
        m.mul_(momentum).sub_(g, alpha=lr)
        if group["nesterov"]:
            p.add_(m, alpha=momentum).sub_(g, alpha=lr)
        else:
            p.add_(m)
