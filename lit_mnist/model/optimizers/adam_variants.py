"""Keras 3's Nadam and Adamax (keras/src/optimizers/nadam.py, adamax.py), Adam's relatives, with Keras's slot
names (Nadam: ``momentum``, ``velocity``; Adamax: ``momentum``, ``norm``).

Nadam's momentum factor is scheduled, ``u_t = beta_1 * (1 - 0.5 * 0.96**t)``, and the product of the factors up
to t (Keras's ``u_product``, a variable updated once a step before the variables) is kept in the param group,
so a checkpoint keeps it.
"""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.base import KerasOptimizer
from lit_mnist.model.optimizers.flow import Flow


class KerasNadam(KerasOptimizer):
    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 flow: Flow | None = None):
        super().__init__(params, {"lr": lr, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon,
                                  "u_product": 1.0}, flow)

    def begin(self, group: dict, t: int) -> None:
        group["u_product"] *= group["beta_1"] * (1.0 - 0.5 * 0.96 ** t)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        beta_1, beta_2, u_product = group["beta_1"], group["beta_2"], group["u_product"]
        u_t = beta_1 * (1.0 - 0.5 * 0.96 ** t)
        u_next = beta_1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        m, v = self.slot(state, "momentum", p), self.slot(state, "velocity", p)
        m.add_(g - m, alpha=1 - beta_1)
        v.add_(g.square() - v, alpha=1 - beta_2)
        m_hat = m * (u_next / (1 - u_product * u_next)) + g * ((1 - u_t) / (1 - u_product))
        v_hat = v / (1 - beta_2 ** t)
        p.sub_(m_hat * lr / (v_hat.sqrt() + group["epsilon"]))


class KerasAdamax(KerasOptimizer):
    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 flow: Flow | None = None):
        super().__init__(params, {"lr": lr, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}, flow)

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        beta_1 = group["beta_1"]
        m, u = self.slot(state, "momentum", p), self.slot(state, "norm", p)  # Keras's slot names
        m.add_(g - m, alpha=1 - beta_1)
        torch.maximum(u * group["beta_2"], g.abs(), out=u)
        p.sub_(m * lr / ((1 - beta_1 ** t) * (u + group["epsilon"])))
