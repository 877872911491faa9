"""SGD and RMSprop as Keras 3 computes them (keras/src/optimizers/sgd.py, rmsprop.py), with Keras's slot names.

Where torch's own optimizers differ, Keras's formulas are the ones written here:

* SGD's momentum accumulates *steps*, ``m = momentum * m - lr * g; theta += m`` (Nesterov:
  ``theta += momentum * m - lr * g``). torch accumulates gradients and multiplies by the current rate,
  which is the same update only while the rate is constant: under a schedule the two drift apart.
* RMSprop divides by ``sqrt(v + epsilon)``, epsilon (1e-7) *inside* the root; torch by ``sqrt(v) + eps``. Its
  momentum, too, accumulates steps (``m = momentum * m + lr * g / sqrt(v + epsilon); theta -= m``).

Each parameter's state holds Keras's slots by Keras's names (``momentum``, ``velocity``), so the parity suite
moves them across as they are. The updates are a few elementwise operations per tensor, in place.
"""

from __future__ import annotations

import torch


def keras_default_lr(optimizer: str) -> float:
    """Keras's default learning rate of an optimizer by lit-mnist's name for it: SGD's 0.01, the others' 1e-3."""
    return 0.01 if optimizer == "sgd" else 1e-3


class KerasSGD(torch.optim.Optimizer):
    """Keras's SGD: ``lr`` (Keras's default 0.01), ``momentum`` (0: none), ``nesterov``."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"invalid SGD settings: lr={lr}, momentum={momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in (p for p in group["params"] if p.grad is not None):
                if momentum == 0:
                    p.sub_(p.grad, alpha=lr)
                    continue
                m = self.state[p].setdefault("momentum", torch.zeros_like(p))
                m.mul_(momentum).sub_(p.grad, alpha=lr)
                if group["nesterov"]:
                    p.add_(m, alpha=momentum).sub_(p.grad, alpha=lr)
                else:
                    p.add_(m)
        return loss


class KerasRMSprop(torch.optim.Optimizer):
    """Keras's RMSprop: ``lr`` (0.001), ``rho`` (0.9), ``momentum`` (0), ``epsilon`` (1e-7, inside the root)."""

    def __init__(self, params, lr: float = 1e-3, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7):
        if lr <= 0 or not 0 <= rho < 1 or not 0 <= momentum < 1 or epsilon < 0:
            raise ValueError(f"invalid RMSprop settings: lr={lr}, rho={rho}, momentum={momentum}, epsilon={epsilon}")
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "epsilon": epsilon})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            lr, rho, momentum = group["lr"], group["rho"], group["momentum"]
            for p in (p for p in group["params"] if p.grad is not None):
                state = self.state[p]
                velocity = state.setdefault("velocity", torch.zeros_like(p))
                velocity.mul_(rho).addcmul_(p.grad, p.grad, value=1 - rho)
                increment = p.grad * lr / (velocity + group["epsilon"]).sqrt()
                if momentum > 0:
                    m = state.setdefault("momentum", torch.zeros_like(p))
                    increment = m.mul_(momentum).add_(increment)
                p.sub_(increment)
        return loss
