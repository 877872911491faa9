"""What the Keras items share: Keras's epoch-end call with its logs, and its rules for a monitored figure."""

from __future__ import annotations

import numpy as np
from lightning.pytorch.callbacks import Callback, EarlyStopping

from lit_mnist.apps.callbacks.monitors import check_monitor, epoch_logs, keras_name

MODES = ("auto", "min", "max")


class EpochLogs:
    """One logs dict per epoch, handed to the items of a list in turn: as in Keras, an item may add to it for the
    ones after it (reduce_lr_on_plateau adds ``learning_rate``)."""

    def __init__(self) -> None:
        self._key, self._logs, self.validated = None, {}, None

    def of(self, trainer) -> dict[str, float]:
        key = (id(trainer), trainer.current_epoch, trainer.global_step)
        if key != self._key:
            # an epoch without validation (check_val_every_n_epoch) has no val_ figures, as in Keras: Lightning
            # keeps offering the last validation's until the next
            validated = self.validated == (id(trainer), trainer.current_epoch)
            self._key, self._logs = key, epoch_logs(trainer, validated)
        return self._logs


class KerasCallback(EarlyStopping):
    """A Keras callback as a Lightning one: ``on_epoch_end(trainer, module, epoch, logs)`` once an epoch, after
    validation, with Keras's 0-based epoch and logs.

    Lightning runs the epoch-end hook of its EarlyStopping and Checkpoint callbacks after the module's, where the
    module logs the epoch's figures, and every other callback's before it; that list is fixed in Lightning. The
    items are EarlyStopping callbacks by type for that alone: every hook of Lightning's EarlyStopping is
    replaced, none of its behaviour is used (a Checkpoint would stop Lightning from adding its default one)."""

    keras_item = True  # its monitor keeps Keras's name (monitors.translate_lightning_monitors)
    state_attributes: tuple[str, ...] = ()  # what a resumed run carries on

    def __init__(self) -> None:
        Callback.__init__(self)
        self.shared = EpochLogs()
        self.position: int | None = None  # its place in the list: two items alike keep apart states

    @property
    def state_key(self) -> str:
        return self._generate_state_key(item=self.position)

    def setup(self, trainer, pl_module, stage: str) -> None:
        pass

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.shared.validated = (id(trainer), trainer.current_epoch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.on_epoch_end(trainer, pl_module, trainer.current_epoch, self.shared.of(trainer))

    def on_epoch_end(self, trainer, pl_module, epoch: int, logs: dict[str, float]) -> None:
        pass

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.state_attributes}

    def load_state_dict(self, state_dict: dict) -> None:
        for name in self.state_attributes:
            if name in state_dict:
                setattr(self, name, state_dict[name])


class Monitored:
    """Keras's MonitorCallback: the figure watched (by Keras's name), its direction and ``min_delta``.

    ``mode="auto"`` is Keras's rule: a name that is ``loss`` once ``val_`` is taken off is minimised, an
    accuracy maximised; for any other (``learning_rate``) Keras asks for a mode, and so does this, before
    training rather than at the first epoch's end. ``min_delta`` counts as its size, towards the better side."""

    def __init__(self, monitor, mode, baseline=None, min_delta=0) -> None:
        if mode not in MODES:  # Keras warns and falls back to auto: a slip is refused here
            raise ValueError(f"mode must be auto, min or max, got {mode!r}")
        number("min_delta", min_delta)
        if baseline is not None:
            number("baseline", baseline)
        self.monitor = keras_name(check_monitor(monitor))
        self.mode, self.best = mode, baseline
        self.min_delta = abs(min_delta)
        self.compare = self._direction()
        if self.compare is np.less:
            self.min_delta *= -1

    def _direction(self):
        if self.mode != "auto":
            return np.less if self.mode == "min" else np.greater
        name = self.monitor.removeprefix("val_")
        if name in ("loss", "accuracy"):
            return np.less if name == "loss" else np.greater
        raise ValueError(f"monitor {self.monitor!r}: Keras cannot tell whether it should be maximized or minimized; "
                         "give mode max or min")

    def is_improvement(self, value: float, reference: float | None) -> bool:
        return reference is None or bool(self.compare(value - self.min_delta, reference))


def number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")


def flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return value


def count(name: str, value) -> int:
    """A count of epochs (patience, cooldown, ...): a whole number, not negative."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of epochs, 0 or more, got {value!r}")
    return value
