"""The optimizers by Keras's names, with Keras 3's arguments and defaults (keras/src/optimizers/*.py): one
registry, read by the module, the importer and the parity twin.

``adam`` (``keras_adam``, its former name, an alias), ``adamw``, ``sgd``, ``rmsprop``, ``nadam``, ``adamax``,
``adagrad``, ``adadelta`` and ``lion`` are Keras's, computed as Keras computes them, in Keras's step order
(``flow.py``), each with Keras's common arguments: ``learning_rate`` (a number or a schedule item,
``schedules.py``), ``weight_decay``, one of ``clipnorm``, ``clipvalue`` and ``global_clipnorm``. ``torch_adam`` is
the stock ``torch.optim.Adam`` with torch's arguments (``lr``, a number or a schedule item, ``betas``, ``eps``,
``weight_decay``: torch's, added to the gradient, ``amsgrad``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from lit_mnist.model.optimizers.adam import KerasAdam
from lit_mnist.model.optimizers.adam_variants import KerasAdamax, KerasNadam
from lit_mnist.model.optimizers.adaptive import KerasAdadelta, KerasAdagrad
from lit_mnist.model.optimizers.flow import Constraints, Flow, attach
from lit_mnist.model.optimizers.items import check_flag, check_number, parse, snake_case
from lit_mnist.model.optimizers.lion import KerasLion
from lit_mnist.model.optimizers.rmsprop import KerasRMSprop
from lit_mnist.model.optimizers.schedules import Fit, Schedule, is_schedule, schedule
from lit_mnist.model.optimizers.sgd import KerasSGD

# every Keras optimizer's own arguments after its own, with Keras's defaults
COMMON = {"weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None, "use_ema": False,
          "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
          "gradient_accumulation_steps": None, "name": None}
_ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
# name -> (the class, its own arguments with Keras's defaults, learning_rate first)
KERAS = {
    "adam": (KerasAdam, {"learning_rate": 0.001, **_ADAM, "amsgrad": False}),
    "adamw": (KerasAdam, {"learning_rate": 0.001, "weight_decay": 0.004, **_ADAM, "amsgrad": False}),
    "sgd": (KerasSGD, {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
    "rmsprop": (KerasRMSprop, {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                               "centered": False}),
    "nadam": (KerasNadam, {"learning_rate": 0.001, **_ADAM}),
    "adamax": (KerasAdamax, {"learning_rate": 0.001, **_ADAM}),
    "adagrad": (KerasAdagrad, {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7}),
    "adadelta": (KerasAdadelta, {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}),
    "lion": (KerasLion, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.99}),
}
TORCH_ADAM = {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
ALIASES = {"keras_adam": "adam"}
KNOWN = {**{name: {**args, **COMMON, **args} for name, (_, args) in KERAS.items()}, "torch_adam": TORCH_ADAM}
# Keras's own arguments that would change training and that lit-mnist does not compute: refused when set
_NOT_OFFERED = {"use_ema": False, "loss_scale_factor": None, "gradient_accumulation_steps": None}
_CLIPS = ("clipnorm", "clipvalue", "global_clipnorm")


def parse_optimizer(item) -> tuple[str, dict]:
    """An optimizer item as (its name, every argument), checked: a one-line ValueError naming what is wrong."""
    if isinstance(item, str) and item.strip() in ALIASES:
        item = ALIASES[item.strip()]
    elif isinstance(item, Mapping) and len(item) == 1 and next(iter(item)) in ALIASES:
        item = {ALIASES[next(iter(item))]: next(iter(item.values()))}
    name, args = parse(item, "optimizer", KNOWN)
    rate = "lr" if name == "torch_adam" else "learning_rate"
    where = f"optimizer {name}"
    if is_schedule(args[rate]):
        args[rate] = schedule(args[rate]).item()
    else:
        args[rate] = check_number(where, rate, args[rate], 0)
    (_check_torch_adam if name == "torch_adam" else _check_keras)(where, args)
    return name, args


def as_item(item) -> dict:
    """The item written out whole, ``{name: {every argument}}``: what the hyper-parameters keep."""
    name, args = parse_optimizer(item)
    return {name: args}


def _check_keras(where: str, args: dict) -> None:
    for key, off in _NOT_OFFERED.items():
        if args[key] != off:
            raise ValueError(f"{where}: {key} is not offered (lit-mnist does not compute it); leave it out")
    clips = [key for key in _CLIPS if args[key] is not None]
    if len(clips) > 1:
        raise ValueError(f"{where}: only one of clipnorm, clipvalue and global_clipnorm can be set (as Keras says); "
                         f"got {', '.join(clips)}")
    for key in ("weight_decay", *_CLIPS):
        args[key] = check_number(where, key, args[key], 0, none=True)
    for key in ("beta_1", "beta_2", "rho", "momentum"):
        if key in args:
            args[key] = check_number(where, key, args[key], 0, 1, high_open=True)
    for key in ("epsilon", "initial_accumulator_value"):
        if key in args:
            args[key] = check_number(where, key, args[key], 0)
    for key in ("amsgrad", "nesterov", "centered"):
        if key in args:
            check_flag(where, key, args[key])


def _check_torch_adam(where: str, args: dict) -> None:
    betas = args["betas"]
    if not isinstance(betas, (list, tuple)) or len(betas) != 2:
        raise ValueError(f"{where}: betas must be two values in [0, 1), got {betas!r}")
    args["betas"] = [check_number(where, "betas", b, 0, 1, high_open=True) for b in betas]
    args["eps"] = check_number(where, "eps", args["eps"], 0)
    args["weight_decay"] = check_number(where, "weight_decay", args["weight_decay"], 0)
    check_flag(where, "amsgrad", args["amsgrad"])


def learning_rate(item) -> float | dict:
    """The item's learning rate: a number, or its schedule item."""
    name, args = parse_optimizer(item)
    return args["lr" if name == "torch_adam" else "learning_rate"]


def lr_schedule(item, fit: Fit | None = None) -> Schedule | None:
    """The item's schedule (the fit's step counts resolved where given), or None for a constant rate."""
    rate = learning_rate(item)
    return schedule(rate, fit) if is_schedule(rate) else None


def build(item, params: Iterable, constraints: Constraints = (), fit: Fit | None = None) -> torch.optim.Optimizer:
    """The optimizer of an item over ``params``, constraints applied after each step, the schedule's step
    counts from ``fit`` where the item leaves them to it."""
    name, args = parse_optimizer(item)
    plan = lr_schedule(item, fit)
    rate = 0.0 if plan is not None else args["lr" if name == "torch_adam" else "learning_rate"]
    if name == "torch_adam":
        optimizer = torch.optim.Adam(params, lr=rate, betas=tuple(args["betas"]), eps=args["eps"],
                                     weight_decay=args["weight_decay"], amsgrad=args["amsgrad"], fused=True)
        return attach(optimizer, Flow(schedule=plan, constraints=list(constraints)))
    cls, own = KERAS[name]
    flow = Flow(plan, args["weight_decay"], args["clipnorm"], args["clipvalue"], args["global_clipnorm"],
                list(constraints))
    extra = {key: args[key] for key in own if key not in ("learning_rate", "weight_decay")}
    return cls(params, rate, **extra, flow=flow)


def default_learning_rate(name: str) -> float:
    """Keras's default learning rate of an optimizer (SGD's 0.01, the others' 1e-3)."""
    name = ALIASES.get(name, name)
    return KNOWN[name if name in KNOWN else snake_case(name)]["lr" if name == "torch_adam" else "learning_rate"]
