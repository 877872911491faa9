"""Keras's names of the epoch's figures beside the ones the model logs, wherever a monitor is named.

The model logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc`` (and ``learning_rate``); a Keras user
names them ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``. Either spelling is
accepted; the Keras items keep Keras's names (their logs, csv_logger's columns), Lightning's callbacks get the
model's.
"""

from __future__ import annotations

import numpy as np

from lit_mnist.errors import DataError

# Keras's name -> the model's (the figures of every epoch, in Keras's order of its logs)
KERAS_TO_LOGGED = {"loss": "train/loss", "accuracy": "train/acc", "val_loss": "val/loss", "val_accuracy": "val/acc",
                   "learning_rate": "learning_rate"}
LOGGED_TO_KERAS = {logged: keras for keras, logged in KERAS_TO_LOGGED.items()}
LEARNING_RATE = "learning_rate"


class MonitorError(DataError):
    pass


def accepted() -> str:
    """The names a monitor may be, for the errors that list them."""
    return ", ".join(f"{keras} ({logged})" if logged != keras else keras for keras, logged in KERAS_TO_LOGGED.items())


def check_monitor(monitor, where: str | None = None) -> str:
    """``monitor`` if the model logs it under either spelling, else a one-line :class:`MonitorError` (its text
    begins with ``where``, when given)."""
    if not isinstance(monitor, str) or monitor not in KERAS_TO_LOGGED and monitor not in LOGGED_TO_KERAS:
        raise MonitorError(f"{where + ': ' if where else ''}monitor {monitor!r} is neither logged by the model nor "
                           f"Keras's name of it; the names: {accepted()}")
    return monitor


def keras_name(monitor: str) -> str:
    return LOGGED_TO_KERAS.get(monitor, monitor)


def logged_name(monitor: str) -> str:
    return KERAS_TO_LOGGED.get(monitor, monitor)


def epoch_logs(trainer, validated: bool = True) -> dict[str, float]:
    """The epoch's figures as Keras's ``fit`` hands them to its callbacks: its names, Python floats of the float32
    values, only what the epoch logged (``validated``: the validation's too). ``learning_rate`` is not among them:
    in Keras it is a callback's entry (ReduceLROnPlateau adds it for those after it)."""
    metrics = trainer.callback_metrics
    return {keras: float(metrics[logged]) for keras, logged in KERAS_TO_LOGGED.items()
            if keras != LEARNING_RATE and logged in metrics and (validated or not keras.startswith("val_"))}


def current_lr(trainer) -> float:
    """The first optimizer's rate as Keras reads its float32 variable."""
    return float(np.float32(trainer.optimizers[0].param_groups[0]["lr"]))


def translate_lightning_monitors(callbacks) -> None:
    """Lightning's own callbacks (``--trainer.callbacks``, ``--checkpoint``) given a Keras name: their public
    ``monitor`` becomes the model's name (the Keras items keep Keras's names)."""
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and not getattr(callback, "keras_item", False):
            callback.monitor = logged_name(monitor)
