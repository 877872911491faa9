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
                # on the parameter's device, so a GPU step never waits on the host
                state["step"] = torch.zeros((), dtype=p.dtype, device=p.device)
                state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        step = states[0]["step"] + 1
        for state in states:
            state["step"] = step
        grads = [p.grad for p in params]
        ms, vs = [s["m"] for s in states], [s["v"] for s in states]
        # Keras's forms, op for op: m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2)
        torch._foreach_add_(ms, torch._foreach_mul(torch._foreach_sub(grads, ms), 1 - b1))
        torch._foreach_add_(vs, torch._foreach_mul(torch._foreach_sub(torch._foreach_mul(grads, grads), vs), 1 - b2))
        # Keras keeps lr and the powers in the variable's dtype (float32); so do we.
        lr = torch.tensor(group["lr"], dtype=step.dtype)  # a 0-d CPU tensor acts as a scalar on any device
        alpha = lr * torch.sqrt(1 - torch.pow(b2, step)) / (1 - torch.pow(b1, step))
        denom = torch._foreach_add(torch._foreach_sqrt(vs), group["epsilon"])
        updates = torch._foreach_div(torch._foreach_mul(ms, alpha), denom)
        torch._foreach_sub_(params, updates)
