"""What a Keras file was compiled with, as ``fit.py``'s model options: training on from an import goes on as
``model.fit`` would have.

Keras keeps ``compile()``'s optimizer and loss in the file (a ``.keras`` file's ``compile_config``, an ``.h5``
file's ``training_config``). Adam, SGD and RMSprop are lit-mnist's own (``--model.optimizer``, computed as
Keras 3 computes them); their learning rate, betas, epsilon, momentum, Nesterov and rho carry over, as does a
cross-entropy's label smoothing. What has no counterpart (another optimizer, a learning-rate schedule,
AMSGrad, weight decay, gradient clipping, EMA, a centred RMSprop, a loss other than cross-entropy) is not
carried, and a note says so: the file is untrusted data, so anything not as Keras writes it is a note too,
never an error.
"""

from __future__ import annotations

import math

import numpy as np

# Keras's class -> (lit-mnist's optimizer, {Keras's argument: lit-mnist's option})
OPTIMIZERS = {
    "Adam": ("keras_adam", {"learning_rate": "lr", "lr": "lr", "beta_1": "betas", "beta_2": "betas",
                            "epsilon": "epsilon"}),
    "SGD": ("sgd", {"learning_rate": "lr", "lr": "lr", "momentum": "momentum", "nesterov": "nesterov"}),
    "RMSprop": ("rmsprop", {"learning_rate": "lr", "lr": "lr", "rho": "rho", "momentum": "momentum",
                            "epsilon": "epsilon"}),
}
# arguments that change the update when set: each names its value that means "off"
_UNCARRIED = {"amsgrad": False, "centered": False, "weight_decay": None, "clipnorm": None, "clipvalue": None,
              "global_clipnorm": None, "use_ema": False, "decay": 0.0, "gradient_accumulation_steps": None}


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
    if cls not in OPTIMIZERS:
        return {}, [f"its optimizer, {cls}, is not one lit-mnist has (Adam, SGD, RMSprop): not carried"]
    name, options = OPTIMIZERS[cls]
    carried, notes = {"optimizer": name}, []
    for key, option in options.items():
        if key not in config:
            continue
        value = config[key]
        if key == "learning_rate" and isinstance(value, dict):
            notes.append(f"its learning-rate schedule ({value.get('class_name', '?')}): not carried; "
                         "--model.lr_decay or --model.one_cycle schedule")
        elif key == "nesterov":
            if isinstance(value, bool):
                carried[option] = value
            else:
                notes.append(f"{key} {value!r}: not carried")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            value = float(str(np.float32(value)))  # Keras holds them in float32: 0.05000000074505806 is 0.05
            if option == "betas":
                carried.setdefault("betas", [0.9, 0.999])[0 if key == "beta_1" else 1] = value
            else:
                carried[option] = value
        else:
            notes.append(f"{key} {value!r}: not carried")
    notes += [f"{key}={config[key]!r}: not carried" for key, off in _UNCARRIED.items()
              if key in config and config[key] not in (off, None, False, 0, 0.0)]
    return carried, notes

