"""The base of the optimizers written here (every Keras one but Adam, which is torch's kernel): each parameter
updated by its family's ``update``, elementwise and in place, with its slots by Keras's names in the
parameter's state (``momentum``, ``velocity``, ...), so the parity suite moves them across as they are. The
step order around it (schedule, clipping, weight decay, constraints, the count) is the flow's."""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.flow import Flow, attach


class KerasOptimizer(torch.optim.Optimizer):
    """``update(p, g, group, state, lr, t)`` takes one parameter's step, ``t`` being Keras's ``iterations + 1``."""

    def __init__(self, params, defaults: dict, flow: Flow | None = None):
        super().__init__(params, defaults)
        attach(self, flow or Flow())

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            t = group["iterations"] + 1
            self.begin(group, t)
            for p in (p for p in group["params"] if p.grad is not None):
                self.update(p, p.grad, group, self.state[p], group["lr"], t)
        return loss

    def begin(self, group: dict, t: int) -> None:
        """A group's work before its parameters' updates (Nadam's product of momentum factors)."""

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict, state: dict, lr: float, t: int) -> None:
        raise NotImplementedError

    @staticmethod
    def slot(state: dict, name: str, like: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """The parameter's slot ``name``, created at ``value`` (Keras's initial value) on first use."""
        if name not in state:
            state[name] = torch.full_like(like, value)
        return state[name]
