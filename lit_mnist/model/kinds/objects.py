"""Regularizer and constraint arguments (``kernel_regularizer``, ``bias_constraint``, ...) in the layer list's
grammar, as an item names a layer: Keras's name with its defaults (``l2``: Keras's factor 0.01), or a mapping of
the name to its first argument (``{l2: 0.001}``, ``{max_norm: 3}``) or to its arguments (``{l1_l2: {l1: 0.01,
l2: 0.001}}``); Keras's class names (``L2``, ``MaxNorm``) and Keras's saved form (``{class_name: L2, config:
{l2: 0.001}}``) are read too. Parsed, an argument is ``{name: {argument: value}}``, every argument written out.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from lit_mnist.model import constraints, regularizers
from lit_mnist.model.kinds.arguments import did_you_mean, number

_FAMILIES = {"regularizer": (regularizers.REGULARIZERS, regularizers.ALIASES),
             "constraint": (constraints.CONSTRAINTS, constraints.ALIASES)}


def family(argument: str) -> str | None:
    """``regularizer`` or ``constraint`` for an argument of that kind (by its name's ending), else None."""
    ending = argument.rsplit("_", 1)[-1]
    return ending if ending in _FAMILIES else None


def _known(what: str) -> dict[str, str]:
    """Every spelling of the family's names -> the snake_case name."""
    table, aliases = _FAMILIES[what]
    spellings = {**aliases, **{name: name for name in table}}
    spellings.update({keras_class: name for name, (keras_class, _) in table.items()})
    return spellings


def arguments(*prefixes: str, activity: bool = True) -> dict:
    """The arguments (each None by default, Keras's) of a kind whose variables ``prefixes`` name: ``kernel`` ->
    ``kernel_regularizer`` and ``kernel_constraint``; ``activity``: an ``activity_regularizer`` too."""
    names = [f"{prefix}_regularizer" for prefix in prefixes] + ["activity_regularizer"] * activity
    return dict.fromkeys(names + [f"{prefix}_constraint" for prefix in prefixes])


def check_object(argument: str, value) -> dict | None:
    """The argument's value parsed (None stays None), or ValueError in one line listing the known names."""
    if value is None:
        return None
    what = family(argument)
    table, _ = _FAMILIES[what]
    if isinstance(value, Mapping) and "class_name" in value:  # Keras's saved form
        value = {value["class_name"]: value.get("config") or {}}
    if isinstance(value, str):
        name, given = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        (name, given), = value.items()
    else:
        raise ValueError(f"{argument} must be a {what}'s name or {{name: arguments}}, got {value!r}")
    spellings = _known(what)
    if not isinstance(name, str) or name not in spellings:
        raise ValueError(f"{argument} {name!r} is not a known {what} ({did_you_mean(name, list(spellings))}known: "
                         f"{', '.join(table)})")
    name = spellings[name]
    defaults = table[name][1]
    if given is None:
        given = {}
    elif not isinstance(given, Mapping):
        if not defaults:
            raise ValueError(f"{argument} {name} takes no arguments, got {given!r}")
        given = {next(iter(defaults)): given}  # the first positional argument, as in Keras's call
    unknown = [key for key in given if key not in defaults]
    if unknown:
        raise ValueError(f"{argument} {name}: unknown argument {unknown[0]!r} ({name} takes "
                         f"{', '.join(defaults) or 'no arguments'})")
    args = {**defaults, **given}
    return {name: {key: _CHECKS[key](f"{argument} {name}'s {key}", v) for key, v in args.items()}}


def _factor(what: str, value) -> float:
    if not (number(value) and value >= 0):
        raise ValueError(f"{what} must be a number of at least 0, got {value!r}")
    return float(value)


def _number(what: str, value):
    if not number(value):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return value


def _axis(what: str, value):
    axes = list(value) if isinstance(value, (list, tuple)) else value
    if isinstance(axes, list):
        if axes and all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            return axes
    elif isinstance(axes, int) and not isinstance(axes, bool):
        return axes
    raise ValueError(f"{what} must be an axis or a list of axes of Keras's layout, got {value!r}")


def _mode(what: str, value) -> str:
    if value not in ("rows", "columns"):
        raise ValueError(f"{what} must be 'rows' or 'columns', got {value!r}")
    return value


_CHECKS = {"l1": _factor, "l2": _factor, "factor": _factor, "mode": _mode, "max_value": _number,
           "min_value": _number, "rate": _number, "axis": _axis}


def check_fits(argument: str, item: dict, rank: int) -> None:
    """ValueError where the parsed ``item`` cannot act on a tensor of ``rank`` axes (Keras's layout; an activity
    regularizer's output counts its batch axis): an axis it has not, an orthogonal regularizer of other than a
    matrix (Keras refuses it at the first step)."""
    (name, args), = item.items()
    if name == "orthogonal_regularizer" and rank != 2:
        raise ValueError(f"{argument} orthogonal_regularizer needs a matrix (rank 2), and this one has rank {rank}")
    axes = args.get("axis", [])
    for axis in axes if isinstance(axes, list) else [axes]:
        if not -rank <= axis < rank:
            raise ValueError(f"{argument} {name}'s axis {axis} is not an axis of its variable, of rank {rank} "
                             "(Keras's layout)")
    if isinstance(axes, list) and len({a % rank for a in axes}) != len(axes):
        raise ValueError(f"{argument} {name}'s axis names an axis twice: {axes}")


def to_keras(item: dict | None) -> dict | None:
    """A parsed argument as Keras's saved form, which Keras's layers deserialize (``{class_name, config}``)."""
    if item is None:
        return None
    (name, args), = item.items()
    for what, (table, _) in _FAMILIES.items():
        if name in table:
            return {"module": f"keras.{what}s", "class_name": table[name][0], "config": dict(args),
                    "registered_name": None}
    raise KeyError(name)


def check_layer(layer) -> None:
    """ValueError where a regularizer or constraint of ``layer`` (a resolved Layer) cannot act on its variable or
    output (see :func:`check_fits`); the variables' ranks are read off the layer's module built on the meta device."""
    given = {name: value for name, value in layer.args.items() if value is not None and family(name)}
    if not given:
        return
    if "activity_regularizer" in given:
        check_fits("activity_regularizer", given["activity_regularizer"], len(layer.output_shape) + 1)
    spec = layer.spec
    with torch.device("meta"):
        module = spec.module(layer)
    for variable, prefix in spec.penalized.items():
        tensor = getattr(module, spec.variables[variable], None)
        for argument in (f"{prefix}_regularizer", f"{prefix}_constraint"):
            if argument in given and tensor is not None:
                check_fits(argument, given[argument], tensor.dim())
