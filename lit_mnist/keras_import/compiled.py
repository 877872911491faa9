"""What a Keras file was compiled with, as ``fit.py``'s model options: training on from an import goes on as
``model.fit`` would have.

Keras keeps ``compile()``'s optimizer and loss in the file (a ``.keras`` file's ``compile_config``, an ``.h5``
file's ``training_config``). Its optimizer is read into lit-mnist's optimizer item (the registry,
``lit_mnist/model/optimizers``: Keras's optimizers by Keras's names and arguments), its learning-rate schedule,
weight decay and clipping included, as is a cross-entropy's label smoothing. What has no counterpart (another
optimizer, EMA, a loss other than cross-entropy) or is not as Keras writes it is not carried, and a note says
so: the file is untrusted data, so anything not as Keras writes it is a note too, never an error.
"""

from __future__ import annotations

import numpy as np

from lit_mnist.model import optimizers
from lit_mnist.model.optimizers.items import snake_case

# Keras 2's spellings of Keras 3's arguments
_RENAMED = {"lr": "learning_rate"}
# Keras 2's arguments with no Keras 3 counterpart: each names its value that means "off"
_GONE = {"decay": 0.0}


CROSS_ENTROPIES = {"SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy"}


def compile_options(optimizer, loss=None) -> tuple[dict, list[str]]:
    """``fit.py``'s model options for the file's optimizer (``{"class_name": ..., "config": {...}}``, or None for
    a model never compiled) and loss (a name, or such a mapping), and notes on what is not carried."""
    options, notes = _optimizer_options(optimizer)
    smoothing, loss_notes = _loss_options(loss)
    return {**options, **smoothing}, notes + loss_notes


def _loss_options(loss) -> tuple[dict, list[str]]:
    """The label smoothing of a cross-entropy (lit-mnist's loss: a binary one is the two-class head's)."""
    if loss is None:
        return {}, []
    cls = loss.get("class_name") if isinstance(loss, dict) else loss
    config = loss.get("config") if isinstance(loss, dict) else {}
    # a loss by name is snake_case: sparse_categorical_crossentropy is SparseCategoricalCrossentropy
    name = "".join(part.capitalize() for part in cls.split("_")) if isinstance(cls, str) and "_" in cls else cls
    if not isinstance(name, str) or name not in CROSS_ENTROPIES:
        return {}, [f"its loss, {cls!r}, is not a cross-entropy: fit.py trains with Keras's cross-entropy"]
    smoothing = config.get("label_smoothing", 0) if isinstance(config, dict) else 0
    if isinstance(smoothing, (int, float)) and not isinstance(smoothing, bool) and 0 < smoothing < 1:
        return {"label_smoothing": float(str(np.float32(smoothing)))}, []
    return {}, [] if smoothing in (0, 0.0, None) else [f"label_smoothing {smoothing!r}: not carried"]


def _optimizer_options(optimizer) -> tuple[dict, list[str]]:
    if optimizer is None:
        return {}, []
    cls = optimizer.get("class_name") if isinstance(optimizer, dict) else None
    config = optimizer.get("config") if isinstance(optimizer, dict) else None
    if not isinstance(cls, str) or not isinstance(config, dict):
        return {}, ["its optimizer is not described as Keras describes one: not carried"]
    cls = cls.removeprefix("Custom>")  # tf-keras 2.11+ writes its optimizers so in .h5 files
    name = snake_case(cls)
    if name not in optimizers.KNOWN or name == "torch_adam":
        keras_names = [n for n in optimizers.KNOWN if n != "torch_adam"]
        return {}, [f"its optimizer, {cls}, is not one lit-mnist has ({', '.join(keras_names)}): not carried"]
    carried, notes = {}, []
    for key, value in config.items():
        key = _RENAMED.get(key, key)
        if key in _GONE:
            if value not in (_GONE[key], None):
                notes.append(f"{key}={value!r}: not carried")
            continue
        if key == "name" or key not in optimizers.KNOWN[name]:
            continue  # Keras's bookkeeping (is_legacy_optimizer, jit_compile, ...)
        value = _schedule(value) if key == "learning_rate" and isinstance(value, dict) else _float32(value)
        if value == optimizers.KNOWN[name][key]:
            continue  # Keras's default, read in float32 (a rate saved as 0.0010000000474974513 is 1e-3)
        try:  # an argument at a time: one Keras would not take is a note, the others still carry
            optimizers.as_item({name: {**carried, key: value}})
        except ValueError as e:
            notes.append(f"{key}={value!r}: not carried ({e})")
            continue
        carried[key] = value
    return {"optimizer": {name: carried}}, notes


def _schedule(value):
    """A Keras schedule, ``{"class_name": "ExponentialDecay", "config": {...}}``, as a schedule item."""
    cls, config = value.get("class_name"), value.get("config")
    if not isinstance(cls, str) or not isinstance(config, dict):
        return value
    return {snake_case(cls.removeprefix("Custom>")): {k: _float32(v) for k, v in config.items() if k != "name"}}


def _float32(value):
    """Keras holds its numbers in float32: 0.05000000074505806 is 0.05."""
    if isinstance(value, list):
        return [_float32(v) for v in value]
    if isinstance(value, float) and np.isfinite(value):
        return float(str(np.float32(value)))
    return value
