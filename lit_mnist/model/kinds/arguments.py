"""Checks of the values Keras's layer arguments take, shared by the kinds: each takes the argument's name and
value and returns the value in one form (pairs as tuples, names lower-case, numbers as numbers), or raises
ValueError saying what it must be."""

from __future__ import annotations

import difflib
import math

ACTIVATIONS = ("linear", "relu", "elu", "gelu", "tanh", "sigmoid", "softmax", "silu", "swish", "softplus", "selu",
               "leaky_relu", "relu6", "celu", "mish", "softsign", "exponential", "hard_tanh", "tanh_shrink",
               "log_sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "hard_shrink", "soft_shrink")
BIAS_INITIALIZERS = ("zeros", "ones", "random_normal", "random_uniform", "truncated_normal")
KERNEL_INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                       "orthogonal", *BIAS_INITIALIZERS)
_INITIALIZER_ALIASES = {"normal": "random_normal", "uniform": "random_uniform"}  # Keras's own aliases
MAX_SIZE = 1 << 24  # a layer's size (units, filters, a kernel's side) or an image's pixels: past it, no digit net


def did_you_mean(name, known: list[str]) -> str:
    """``"did you mean 'x'? "`` for the known name ``name`` is likely a slip of (its case, a letter or two), else ""."""
    if not isinstance(name, str):
        return ""
    alike = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f"did you mean {alike[0]!r}? " if alike else ""


def plain(value):
    """Lists as tuples, all the way down: values compared whatever sequence a config gave."""
    return tuple(plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > MAX_SIZE:
        raise ValueError(f"{name} must be a positive integer at most 2**24, got {value}")
    return value


def pair(name: str, value) -> tuple[int, int]:
    values = [value, value] if not isinstance(value, (list, tuple)) else list(value)
    if len(values) != 2:
        raise ValueError(f"{name} must be an integer or two, got {value!r}")
    return tuple(positive_int(name, v) for v in values)


def margins(name: str, value) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's ((top, bottom), (left, right)), from one size, (rows, columns) or the pairs themselves."""
    wrong = ValueError(f"{name} must be sizes of at least 0: n, [rows, columns] or [[top, bottom], [left, right]]; "
                       f"got {value!r}")

    def size(v) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise wrong
        return v

    if not isinstance(value, (list, tuple)):
        return ((size(value),) * 2,) * 2
    if len(value) != 2:
        raise wrong
    if all(isinstance(v, (list, tuple)) for v in value):
        if any(len(v) != 2 for v in value):
            raise wrong
        return tuple((size(a), size(b)) for a, b in value)
    return tuple((size(v), size(v)) for v in value)


def choice(name: str, value, choices: tuple[str, ...]) -> str:
    text = value.lower() if isinstance(value, str) else value
    if text not in choices:
        raise ValueError(f"{name} {value!r} is not supported ({did_you_mean(text, list(choices))}one of: "
                         f"{', '.join(choices)})")
    return text


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")  # noqa: TRY004 (a user's value: the layer's one-line error)
    return value


def numbers(name: str, value):
    """A number, or a list of them (one per feature or channel, on the last axis)."""
    if number(value):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(number(v) for v in value):
        return tuple(float(v) for v in value)
    raise ValueError(f"{name} must be a number or a list of numbers, got {value!r}")


def rate(name: str, value) -> float:
    if not (number(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return value


def activation(name: str, value) -> str:
    return choice(name, "linear" if value is None else value, ACTIVATIONS)


def initializer(choices: tuple[str, ...]):
    def check(name: str, value) -> str:
        return choice(name, _INITIALIZER_ALIASES.get(value, value) if isinstance(value, str) else value, choices)
    return check


def padding(name: str, value) -> str:
    return choice(name, value, ("valid", "same"))


# the checks of the arguments many kinds share, by the argument's name; a kind may check one otherwise
COMMON = {"units": positive_int, "filters": positive_int, "depth_multiplier": positive_int, "kernel_size": pair,
          "pool_size": pair, "strides": pair, "padding": padding, "activation": activation, "use_bias": boolean,
          "keepdims": boolean, "center": boolean, "scale": boolean,
          "kernel_initializer": initializer(KERNEL_INITIALIZERS), "depthwise_initializer": initializer(KERNEL_INITIALIZERS),
          "pointwise_initializer": initializer(KERNEL_INITIALIZERS), "bias_initializer": initializer(BIAS_INITIALIZERS),
          "alpha_initializer": initializer(BIAS_INITIALIZERS)}


def fmt(shape: tuple[int, ...]) -> str:
    """A Keras shape as messages say it: ``784 features`` or ``28x28x1``."""
    return f"{shape[0]} features" if len(shape) == 1 else "x".join(map(str, shape))
