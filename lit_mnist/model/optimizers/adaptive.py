"""Keras 3's Adagrad and Adadelta (keras/src/optimizers/adagrad.py, adadelta.py), with Keras's slot names
(``accumulator``; ``accumulated_grad``, ``accumulated_delta_var``). Both put epsilon inside the root; Adagrad's
accumulator starts at ``initial_accumulator_value`` (0.1), and Adadelta keeps Keras's ``learning_rate`` (0.001)
as a factor of its step, where the paper has none."""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.base import KerasOptimizer
from lit_mnist.model.optimizers.flow import Flow


class KerasAdagrad(KerasOptimizer):
    def __init__(self, params, lr: float = 1e-3, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 flow: Flow | None = None):
        super().__init__(params, {"lr": lr, "initial_accumulator_value": initial_accumulator_value,
                                  "epsilon": epsilon}, flow)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        accumulator = self.slot(state, "accumulator", p, group["initial_accumulator_value"])
        accumulator.addcmul_(g, g)
        p.sub_(g * lr / (accumulator + group["epsilon"]).sqrt())


class KerasAdadelta(KerasOptimizer):
    def __init__(self, params, lr: float = 1e-3, rho: float = 0.95, epsilon: float = 1e-7, flow: Flow | None = None):
        super().__init__(params, {"lr": lr, "rho": rho, "epsilon": epsilon}, flow)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        rho, epsilon = group["rho"], group["epsilon"]
        grads, deltas = self.slot(state, "accumulated_grad", p), self.slot(state, "accumulated_delta_var", p)
        grads.mul_(rho).addcmul_(g, g, value=1 - rho)
        delta = -(deltas + epsilon).sqrt() * g / (grads + epsilon).sqrt()
        deltas.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=lr)
