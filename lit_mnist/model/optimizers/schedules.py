"""Keras 3's learning-rate schedules (keras/src/optimizers/schedules/learning_rate_schedule.py), by Keras's
argument names and defaults, as a function of Keras's step count: the optimizer's ``iterations``, 0 at the first
step. Plus torch's ``one_cycle`` (OneCycleLR's cosine form, step for step), the fast CNN's.

Two step counts may be the fit's, resolved when the fit is known (the optimizer is made): ``exponential_decay``'s
``decay_steps: epoch`` (one epoch's optimizer steps: with ``staircase``, a decay after every epoch) and
``one_cycle``'s ``total_steps: null`` (the whole fit's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lit_mnist.model.optimizers.items import check_flag, check_number, check_steps, parse

SCHEDULES: dict[str, dict] = {
    "exponential_decay": {"initial_learning_rate": None, "decay_steps": None, "decay_rate": None, "staircase": False},
    "piecewise_constant_decay": {"boundaries": None, "values": None},
    "cosine_decay": {"initial_learning_rate": None, "decay_steps": None, "alpha": 0.0, "warmup_target": None,
                     "warmup_steps": 0},
    "cosine_decay_restarts": {"initial_learning_rate": None, "first_decay_steps": None, "t_mul": 2.0, "m_mul": 1.0,
                              "alpha": 0.0},
    "inverse_time_decay": {"initial_learning_rate": None, "decay_steps": None, "decay_rate": None, "staircase": False},
    "polynomial_decay": {"initial_learning_rate": None, "decay_steps": None, "end_learning_rate": 0.0001,
                         "power": 1.0, "cycle": False},
    "one_cycle": {"max_lr": None, "total_steps": None, "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4},
}


@dataclass(frozen=True)
class Fit:
    """The fit's step counts a schedule may refer to."""

    steps_per_epoch: int
    total_steps: int


@dataclass(frozen=True)
class Schedule:
    """A schedule item, callable at Keras's step count: ``schedule(iterations)`` is that step's learning rate."""

    name: str
    args: dict  # every argument, as the item is written out (``epoch`` and null kept: the fit resolves them)
    fit: Fit | None = None

    @property
    def needs_fit(self) -> bool:
        """Whether a step count is the fit's (``epoch``, one_cycle's null), to be known before it is called."""
        return self.args.get("decay_steps") == "epoch" or (self.name == "one_cycle" and self.args["total_steps"] is None)

    @property
    def ready(self) -> bool:
        return self.fit is not None or not self.needs_fit

    def __call__(self, step: int) -> float:
        return _FORMULAS[self.name](self.resolved(), step)

    def resolved(self) -> dict:
        """The arguments with the fit's step counts in place of ``epoch`` and null."""
        args = dict(self.args)
        if self.needs_fit:
            if self.fit is None:
                raise ValueError(f"learning_rate {self.name}: its steps are the fit's, not yet known")
            if args.get("decay_steps") == "epoch":
                args["decay_steps"] = self.fit.steps_per_epoch
            if self.name == "one_cycle" and args["total_steps"] is None:
                args["total_steps"] = self.fit.total_steps
        return args

    def item(self) -> dict:
        return {self.name: dict(self.args)}


def schedule(item, fit: Fit | None = None) -> Schedule:
    """A schedule item, checked (one-line ValueError naming it), every argument written out."""
    name, args = parse(item, "learning_rate", SCHEDULES)
    where = f"learning_rate {name}"
    missing = next((k for k, v in args.items() if v is None and k not in ("warmup_target", "total_steps")), None)
    if missing is not None:
        raise ValueError(f"{where}: {missing} is required")
    _CHECKS[name](where, args)
    return Schedule(name, args, fit)


def is_schedule(value) -> bool:
    return isinstance(value, (str, Mapping))


def _check_decay(where: str, args: dict) -> None:
    check_number(where, "initial_learning_rate", args["initial_learning_rate"], 0, low_open=True)
    check_steps(where, "decay_steps", args["decay_steps"], epoch=True)
    check_number(where, "decay_rate", args["decay_rate"], 0)
    check_flag(where, "staircase", args["staircase"])


def _check_piecewise(where: str, args: dict) -> None:
    boundaries, values = args["boundaries"], args["values"]
    if not isinstance(boundaries, list) or not isinstance(values, list) or len(values) != len(boundaries) + 1:
        raise ValueError(f"{where}: values must be a list one longer than boundaries, got {boundaries!r}, {values!r}")
    for b in boundaries:
        check_steps(where, "a boundary", b + 1 if isinstance(b, int) and not isinstance(b, bool) else b)
    for v in values:
        check_number(where, "a value", v, 0)


def _check_cosine(where: str, args: dict) -> None:
    check_number(where, "initial_learning_rate", args["initial_learning_rate"], 0)
    check_steps(where, "decay_steps", args["decay_steps"])
    check_number(where, "alpha", args["alpha"], 0, 1)
    check_number(where, "warmup_target", args["warmup_target"], 0, none=True)
    if args["warmup_steps"] != 0:
        check_steps(where, "warmup_steps", args["warmup_steps"])


def _check_restarts(where: str, args: dict) -> None:
    check_number(where, "initial_learning_rate", args["initial_learning_rate"], 0, low_open=True)
    check_steps(where, "first_decay_steps", args["first_decay_steps"])
    check_number(where, "t_mul", args["t_mul"], 0, low_open=True)
    check_number(where, "m_mul", args["m_mul"], 0)
    check_number(where, "alpha", args["alpha"], 0, 1)


def _check_polynomial(where: str, args: dict) -> None:
    check_number(where, "initial_learning_rate", args["initial_learning_rate"], 0)
    check_steps(where, "decay_steps", args["decay_steps"])
    check_number(where, "end_learning_rate", args["end_learning_rate"], 0)
    check_number(where, "power", args["power"], 0, low_open=True)
    check_flag(where, "cycle", args["cycle"])


def _check_one_cycle(where: str, args: dict) -> None:
    check_number(where, "max_lr", args["max_lr"], 0, low_open=True)
    if args["total_steps"] is not None:
        check_steps(where, "total_steps", args["total_steps"])
    check_number(where, "pct_start", args["pct_start"], 0, 1, low_open=True, high_open=True)
    check_number(where, "div_factor", args["div_factor"], 0, low_open=True)
    check_number(where, "final_div_factor", args["final_div_factor"], 0, low_open=True)


def exponential_decay(a: dict, step: int) -> float:
    p = step / a["decay_steps"]
    return a["initial_learning_rate"] * a["decay_rate"] ** (math.floor(p) if a["staircase"] else p)


def inverse_time_decay(a: dict, step: int) -> float:
    p = step / a["decay_steps"]
    return a["initial_learning_rate"] / (1 + a["decay_rate"] * (math.floor(p) if a["staircase"] else p))


def piecewise_constant_decay(a: dict, step: int) -> float:
    # Keras: values[0] up to and including boundaries[0], values[i + 1] in (boundaries[i], boundaries[i + 1]]
    return a["values"][sum(step > b for b in a["boundaries"])]


def polynomial_decay(a: dict, step: int) -> float:
    decay_steps = a["decay_steps"]
    if a["cycle"]:
        decay_steps *= 1 if step == 0 else math.ceil(step / decay_steps)
    else:
        step = min(step, decay_steps)
    start, end = a["initial_learning_rate"], a["end_learning_rate"]
    return (start - end) * (1 - step / decay_steps) ** a["power"] + end


def _cosine(fraction: float, alpha: float) -> float:
    return (1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + alpha


def cosine_decay(a: dict, step: int) -> float:
    decay_steps, warmup_steps, target = a["decay_steps"], a["warmup_steps"], a["warmup_target"]
    if target is None:
        return a["initial_learning_rate"] * _cosine(min(step, decay_steps) / decay_steps, a["alpha"])
    step = min(step, decay_steps + warmup_steps)
    if step < warmup_steps:  # a linear warm-up from initial_learning_rate to warmup_target
        return (target - a["initial_learning_rate"]) * step / warmup_steps + a["initial_learning_rate"]
    return target * _cosine((step - warmup_steps) / decay_steps, a["alpha"])


def cosine_decay_restarts(a: dict, step: int) -> float:
    fraction, t_mul = step / a["first_decay_steps"], a["t_mul"]
    if t_mul == 1.0:
        restart = math.floor(fraction)
        fraction -= restart
    else:  # the periods grow by t_mul: which one the step is in, and how far into it
        restart = math.floor(math.log(1 - fraction * (1 - t_mul)) / math.log(t_mul))
        fraction = (fraction - (1 - t_mul ** restart) / (1 - t_mul)) / t_mul ** restart
    alpha = a["alpha"]
    decayed = (1 - alpha) * 0.5 * a["m_mul"] ** restart * (1 + math.cos(math.pi * fraction)) + alpha
    return a["initial_learning_rate"] * decayed


def one_cycle(a: dict, step: int) -> float:
    """torch's OneCycleLR (two phases, cosine annealing), in its own arithmetic, so a run keeps its figures."""
    total, peak = a["total_steps"], a["max_lr"]
    start = peak / a["div_factor"]
    phases = ((float(a["pct_start"] * total) - 1, start, peak), (total - 1, peak, start / a["final_div_factor"]))
    step, begin = min(step, total), 0
    for i, (end, rate_from, rate_to) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            pct = (step - begin) / (end - begin)
            return rate_to + (rate_from - rate_to) / 2.0 * (math.cos(math.pi * pct) + 1)
        begin = end
    raise AssertionError("unreachable")


_FORMULAS = {"exponential_decay": exponential_decay, "piecewise_constant_decay": piecewise_constant_decay,
             "cosine_decay": cosine_decay, "cosine_decay_restarts": cosine_decay_restarts,
             "inverse_time_decay": inverse_time_decay, "polynomial_decay": polynomial_decay, "one_cycle": one_cycle}
_CHECKS = {"exponential_decay": _check_decay, "inverse_time_decay": _check_decay,
           "piecewise_constant_decay": _check_piecewise, "cosine_decay": _check_cosine,
           "cosine_decay_restarts": _check_restarts, "polynomial_decay": _check_polynomial,
           "one_cycle": _check_one_cycle}
