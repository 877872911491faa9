"""The order Keras 3 applies a step in (``BaseOptimizer.apply``), around any torch optimizer's own update:

1. the learning rate of this step: the schedule's at ``iterations`` (0 at the first step), else the group's
   ``lr`` as it stands (which ``reduce_lr_on_plateau`` lowers);
2. the gradients clipped: ``clipnorm`` (each tensor's norm), else ``global_clipnorm`` (all tensors' norm), else
   ``clipvalue`` (elementwise), Keras's precedence;
3. the weights decayed, ``w -= w * weight_decay * lr``, on every variable that has a gradient (biases and
   BatchNormalization's included, as Keras does);
4. the optimizer's update, at that rate;
5. the constraints (``p.copy_(fn(p))``), then ``iterations += 1`` (and, scheduled, each group's ``lr`` is the
   next step's rate, as Keras's ``optimizer.learning_rate`` reads between steps).

Steps 1-3 are a step pre-hook and 5 a post-hook of the torch optimizer (hooks, not a step() override: torch wraps
step() in its own hooks, and a subclass's super().step() would run them twice). ``iterations`` lives in each
param group, so it is in the optimizer's state dict and a resumed run continues the count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Constraints = list[tuple[torch.nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]]


@dataclass
class Flow:
    """Keras's optimizer-wide settings: the schedule (None: a constant rate, read from each group's ``lr``)."""

    schedule: Callable[[int], float] | None = None
    weight_decay: float | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None
    constraints: Constraints = field(default_factory=list)


def attach(optimizer: torch.optim.Optimizer, flow: Flow) -> torch.optim.Optimizer:
    """``optimizer`` stepping in Keras's order (the module docstring); its ``keras_flow`` is ``flow``."""
    optimizer.keras_flow = flow
    for group in optimizer.param_groups:
        group.setdefault("iterations", 0)
    set_schedule(optimizer, flow.schedule)
    optimizer.register_step_pre_hook(_before)
    optimizer.register_step_post_hook(_after)
    optimizer.register_load_state_dict_post_hook(_counted)
    return optimizer


def set_schedule(optimizer: torch.optim.Optimizer, schedule) -> None:
    """The optimizer's schedule (None: a constant rate); each group's ``lr`` its rate at the group's count, where
    it can say it yet (a schedule whose steps are the fit's waits for them: ``Schedule.ready``)."""
    optimizer.keras_flow.schedule = schedule
    if schedule is not None and getattr(schedule, "ready", True):
        for group in optimizer.param_groups:  # the next step's rate, readable before it (the logs, the callbacks)
            group["lr"] = schedule(group["iterations"])


def _with_grads(group: dict) -> list[torch.Tensor]:
    return [p for p in group["params"] if p.grad is not None]


@torch.no_grad()
def _before(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    flow: Flow = optimizer.keras_flow
    if flow.schedule is not None:
        for group in optimizer.param_groups:
            group["lr"] = flow.schedule(group["iterations"])
    if flow.clipnorm or flow.global_clipnorm or flow.clipvalue:  # the default path lists nothing: host time
        clip(flow, [p.grad for group in optimizer.param_groups for p in _with_grads(group)])
    if flow.weight_decay:
        for group in optimizer.param_groups:
            for p in _with_grads(group):
                p.sub_(p * flow.weight_decay * group["lr"])
    prepare = getattr(optimizer, "prepare_step", None)  # a family's own per-step settings (Adam's epsilon)
    if prepare is not None:
        prepare()


def clip(flow: Flow, grads: list[torch.Tensor]) -> None:
    """Keras's ``_clip_gradients``, in place: one kind, in Keras's precedence."""
    if flow.clipnorm:  # g * c / max(|g|, c): a zero gradient stays zero
        for g in grads:
            norm = torch.linalg.vector_norm(g).clamp(min=flow.clipnorm)
            g.mul_(flow.clipnorm).div_(norm)
    elif flow.global_clipnorm and grads:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        scale = flow.global_clipnorm * torch.minimum(1.0 / norm, torch.tensor(1.0 / flow.global_clipnorm))
        for g in grads:
            g.mul_(scale.to(g.dtype))
    elif flow.clipvalue:
        for g in grads:
            g.clamp_(-flow.clipvalue, flow.clipvalue)


@torch.no_grad()
def _after(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    for parameter, constrain in optimizer.keras_flow.constraints:
        parameter.copy_(constrain(parameter))
    schedule = optimizer.keras_flow.schedule
    for group in optimizer.param_groups:
        if any(p.grad is not None for p in group["params"]):  # a group without gradients took no step
            group["iterations"] += 1
        if schedule is not None:  # the next step's rate, as Keras's optimizer.learning_rate reads between steps
            group["lr"] = schedule(group["iterations"])


def _counted(optimizer: torch.optim.Optimizer) -> None:
    """After loading a state dict: the count (an earlier lit-mnist's ``keras_step``; a stock torch optimizer's
    per-parameter ``step``), and the rate a schedule gives the next step."""
    for group in optimizer.param_groups:
        if "iterations" not in group:
            steps = [float(optimizer.state[p]["step"]) for p in group["params"] if "step" in optimizer.state.get(p, {})]
            group["iterations"] = int(group.pop("keras_step", max(steps, default=0)))
        group.pop("keras_step", None)
        for key, value in optimizer.defaults.items():  # settings an earlier version did not keep
            group.setdefault(key, value)
    set_schedule(optimizer, optimizer.keras_flow.schedule)
