"""Adam exactly as Keras 3 computes it (``adam``, ``adamw``, with ``amsgrad``), on torch's own fused Adam kernel.

Keras adds epsilon to sqrt(v) *before* the bias correction and folds the correction into the
step size (Kingma & Ba's "epsilon hat" form), with epsilon 1e-7 (keras/src/optimizers/adam.py):

    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    theta -= alpha * m / (sqrt(v) + epsilon)          (AMSGrad: v_hat = max(v_hat, v) in place of v)

torch.optim.Adam divides by sqrt(v) / sqrt(1 - beta_2**t) + eps instead, which is the same update
when eps = epsilon / sqrt(1 - beta_2**t). So KerasAdam sets that eps before every step and lets
torch's fused kernel (one pass over each tensor) do the rest. The moment updates are the same
formulas in both libraries. Keras's weight decay is the flow's (``flow.py``), never torch's coupled one.
"""

from __future__ import annotations

import math

import torch

from lit_mnist.model.optimizers.flow import Flow, attach

# Keras's slot names -> those torch's Adam kernel keeps them under (every other optimizer here keeps Keras's)
TORCH_ADAM_SLOTS = {"momentum": "exp_avg", "velocity": "exp_avg_sq", "velocity_hat": "max_exp_avg_sq"}


class KerasAdam(torch.optim.Adam):
    """torch.optim.Adam with Keras's epsilon placement and step order. ``fused`` as in torch (on by default)."""

    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, fused: bool | None = True, flow: Flow | None = None):
        if lr < 0 or not 0 <= beta_1 < 1 or not 0 <= beta_2 < 1 or epsilon < 0:
            raise ValueError(f"invalid Adam settings: lr={lr}, beta_1={beta_1}, beta_2={beta_2}, epsilon={epsilon}")
        super().__init__(params, lr=lr, betas=(beta_1, beta_2), eps=epsilon, amsgrad=amsgrad, fused=fused)
        self.defaults.update(epsilon=epsilon)
        for group in self.param_groups:  # groups made in __init__, before the defaults know it
            group.setdefault("epsilon", epsilon)
        attach(self, flow or Flow())
        self.prepare_step()

    def prepare_step(self) -> None:
        """Each group's eps for its next step, the (iterations + 1)-th: the count is on the host, so a step's eps
        is known without asking the device."""
        for group in self.param_groups:
            group["eps"] = group["epsilon"] / math.sqrt(1 - group["betas"][1] ** (group["iterations"] + 1))
