"""Keras 3's RMSprop (keras/src/optimizers/rmsprop.py): it divides by ``sqrt(v + epsilon)``, epsilon (1e-7)
*inside* the root, where torch divides by ``sqrt(v) + eps``; centred, by ``sqrt(v - mean_g**2 + epsilon)``. Its
momentum accumulates steps (``m = momentum * m + lr * g / sqrt(...); theta -= m``)."""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.base import KerasOptimizer
from lit_mnist.model.optimizers.flow import Flow


class KerasRMSprop(KerasOptimizer):
    def __init__(self, params, lr: float = 1e-3, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, flow: Flow | None = None):
        if lr < 0 or not 0 <= rho < 1 or not 0 <= momentum < 1 or epsilon < 0:
            raise ValueError(f"invalid RMSprop settings: lr={lr}, rho={rho}, momentum={momentum}, epsilon={epsilon}")
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "epsilon": epsilon,
                                  "centered": centered}, flow)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        rho, momentum = group["rho"], group["momentum"]
        velocity = self.slot(state, "velocity", p)
        velocity.mul_(rho).addcmul_(g, g, value=1 - rho)
        if group.get("centered"):
            average = self.slot(state, "average_gradient", p)
            average.mul_(rho).add_(g, alpha=1 - rho)
            denominator = velocity - average.square() + group["epsilon"]
        else:
            denominator = velocity + group["epsilon"]
        increment = g * lr / denominator.sqrt()
        if momentum > 0:
            increment = self.slot(state, "momentum", p).mul_(momentum).add_(increment)
        p.sub_(increment)
