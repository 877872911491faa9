"""Adam exactly as Keras 3 computes it, which is not torch.optim.Adam.

Keras adds epsilon to sqrt(v) *before* the bias correction and folds the correction into the
step size (Kingma & Ba's "epsilon hat" form), with epsilon 1e-7:

    m += (g - m) * (1 - beta_1);   v += (g*g - v) * (1 - beta_2)
    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    theta -= alpha * m / (sqrt(v) + epsilon)

torch.optim.Adam divides by sqrt(v / (1 - beta_2**t)) + eps instead: the same only when epsilon
is negligible, which it is not early in training (see keras/src/optimizers/adam.py).
"""

from __future__ import annotations

import numpy as np
import torch


class KerasAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        if lr <= 0 or not 0 <= beta_1 < 1 or not 0 <= beta_2 < 1 or epsilon < 0:
            raise ValueError(f"invalid Adam settings: lr={lr}, beta_1={beta_1}, beta_2={beta_2}, epsilon={epsilon}")
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params)
        return loss

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        b1, b2 = group["beta_1"], group["beta_2"]
        states = [self.state[p] for p in params]
        for p, state in zip(params, states):
            if not state:
                state["step"] = 0  # a host-side count: the step size is known without asking the device
                state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        step = int(states[0]["step"]) + 1
        for state in states:
            state["step"] = step
        grads = [p.grad for p in params]
        ms, vs = [s["m"] for s in states], [s["v"] for s in states]
        # lerp with a weight below 0.5 computes m + w * (g - m): Keras's m += (g - m) * (1 - b1), in one pass
        torch._foreach_lerp_(ms, grads, 1 - b1)
        torch._foreach_lerp_(vs, torch._foreach_mul(grads, grads), 1 - b2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_add_(denom, group["epsilon"])
        dtype = np.float64 if params[0].dtype == torch.float64 else np.float32
        torch._foreach_addcdiv_(params, ms, denom, value=-step_size(group["lr"], b1, b2, step, dtype))


def step_size(lr: float, beta_1: float, beta_2: float, step: int, dtype=np.float32) -> float:
    """Keras's alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), in the variables' dtype as Keras computes it."""
    one, t = dtype(1), dtype(step)
    return float(dtype(lr) * np.sqrt(one - dtype(beta_2) ** t) / (one - dtype(beta_1) ** t))
