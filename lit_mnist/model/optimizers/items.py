"""The grammar of an optimizer or schedule item, the layer list's: a Keras name in snake_case or Keras's class
name (``adamw``, ``AdamW``; ``exponential_decay``, ``ExponentialDecay``), bare, or as a one-key mapping to its
arguments by Keras's names (``{adamw: {weight_decay: 0.01}}``), every argument left out taking Keras's default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from lit_mnist.model.kinds.arguments import did_you_mean


def snake_case(name: str) -> str:
    """Keras's class name as its snake_case name: ``AdamW`` -> ``adamw``, ``CosineDecayRestarts`` ->
    ``cosine_decay_restarts``, ``RMSprop`` -> ``rmsprop``, ``SGD`` -> ``sgd``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()


def parse(item, what: str, known: Mapping[str, Mapping]) -> tuple[str, dict]:
    """``item`` as (its name, every argument: the given ones over ``known[name]``'s defaults), or a one-line
    ValueError naming ``what`` (``optimizer``, ``learning_rate``) and the known names or arguments."""
    if isinstance(item, str):
        name, given = item.strip(), {}
    elif isinstance(item, Mapping) and len(item) == 1:
        (name, given), = item.items()
        given = {} if given is None else given
    else:
        raise ValueError(f"{what}: expected a name or {{name: {{argument: value}}}}, got {item!r}")
    key = name if name in known else snake_case(name) if isinstance(name, str) else name
    if key not in known:
        raise ValueError(f"{what}: unknown {name!r} ({did_you_mean(name, list(known))}known: {', '.join(known)})")
    if not isinstance(given, Mapping):
        raise ValueError(f"{what} {key}: arguments must be a mapping, got {given!r}")  # noqa: TRY004 (a user's option: its one-line error)
    unknown = next((arg for arg in given if arg not in known[key]), None)
    if unknown is not None:
        raise ValueError(f"{what} {key}: unknown argument {unknown!r} "
                         f"({did_you_mean(unknown, list(known[key]))}known: {', '.join(known[key])})")
    return key, {**known[key], **given}


def check_number(where: str, name: str, value, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, none: bool = False):
    """``value`` as a float within the bounds (``none``: None passes), or a one-line ValueError."""
    if value is None and none:
        return None
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if not bad:
        bad = value < low or value > high or (low_open and value == low) or (high_open and value == high)
    if bad:
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{where}: {name} must be a number in {bounds}, got {value!r}")
    return float(value)


def check_flag(where: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {name} must be true or false, got {value!r}")  # noqa: TRY004 (a user's option: its one-line error)
    return value


def check_steps(where: str, name: str, value, epoch: bool = False):
    """A count of steps (positive integer); ``epoch``: the word ``epoch`` too (one epoch's optimizer steps)."""
    if epoch and value == "epoch":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        also = " or 'epoch'" if epoch else ""
        raise ValueError(f"{where}: {name} must be a positive integer{also}, got {value!r}")
    return value
