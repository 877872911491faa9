"""Adam exactly as Keras 3 computes it, on torch's own fused Adam kernel.

Keras adds epsilon to sqrt(v) *before* the bias correction and folds the correction into the
step size (Kingma & Ba's "epsilon hat" form), with epsilon 1e-7 (keras/src/optimizers/adam.py):

    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    theta -= alpha * m / (sqrt(v) + epsilon)

torch.optim.Adam divides by sqrt(v) / sqrt(1 - beta_2**t) + eps instead, which is the same update
when eps = epsilon / sqrt(1 - beta_2**t). So KerasAdam sets that eps before every step and lets
torch's fused kernel (one pass over each tensor) do the rest. The moment updates are the same
formulas in both libraries.
"""

from __future__ import annotations

import math

import torch


class KerasAdam(torch.optim.Adam):
    """torch.optim.Adam with Keras's epsilon placement. ``fused`` as in torch (on by default: fastest)."""

    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 fused: bool | None = True):
        if lr <= 0 or not 0 <= beta_1 < 1 or not 0 <= beta_2 < 1 or epsilon < 0:
            raise ValueError(f"invalid Adam settings: lr={lr}, beta_1={beta_1}, beta_2={beta_2}, epsilon={epsilon}")
        super().__init__(params, lr=lr, betas=(beta_1, beta_2), eps=epsilon, fused=fused)
        self.defaults.update(epsilon=epsilon, keras_step=0)
        # a hook rather than a step() override: torch wraps step() in its own hooks, and a subclass's
        # super().step() would run them twice
        self.register_step_post_hook(_count_step)

    def add_param_group(self, param_group: dict) -> None:
        # Keras's epsilon and the step count live in each group, so checkpoints keep them; the count is on
        # the host, so a step's eps is known without asking the device
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("epsilon", group["eps"])  # groups made in __init__, before the defaults know it
        self.set_step_count(group, group.get("keras_step", 0))

    @staticmethod
    def set_step_count(group: dict, steps_taken: int) -> None:
        """Record that ``steps_taken`` steps were taken and set eps for the next one, the (steps_taken + 1)-th."""
        group["keras_step"] = steps_taken
        group["eps"] = group["epsilon"] / math.sqrt(1 - group["betas"][1] ** (steps_taken + 1))


def _count_step(optimizer: KerasAdam, args, kwargs) -> None:
    for group in optimizer.param_groups:
        if any(p.grad is not None for p in group["params"]):  # groups without gradients took no step
            KerasAdam.set_step_count(group, group["keras_step"] + 1)
