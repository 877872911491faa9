"""Keras's ReduceLROnPlateau: lower the learning rate when the monitored figure stops improving."""

from __future__ import annotations

import warnings

import numpy as np

from lit_mnist.apps.callbacks.base import KerasCallback, Monitored, count
from lit_mnist.apps.callbacks.monitors import LEARNING_RATE, current_lr


class ScheduleError(ValueError):
    pass


def schedule_of(pl_module) -> str | None:
    """The schedule that gives the module's learning rate, in words, or None where the rate is constant."""
    schedule = getattr(pl_module, "lr_schedule", None)
    return None if schedule is None else f"a learning-rate schedule ({schedule.name})"


class KerasReduceLROnPlateau(Monitored, KerasCallback):
    """Keras 3's ReduceLROnPlateau, its arguments and defaults. The rate is every optimizer param group's
    ``lr``, stored as Keras stores it, a float32. As Keras does, it refuses a rate a schedule sets."""

    state_attributes = ("best", "wait", "cooldown_counter")

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0) -> None:
        KerasCallback.__init__(self)
        Monitored.__init__(self, monitor, mode, min_delta=min_delta)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor < 1:
            raise ValueError(f"factor must be a number in [0, 1) (Keras refuses a factor >= 1.0), got {factor!r}")
        if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or min_lr < 0:
            raise ValueError(f"min_lr must be a number, 0 or more, got {min_lr!r}")
        self.factor, self.min_lr, self.verbose = factor, min_lr, verbose
        self.patience, self.cooldown = count("patience", patience), count("cooldown", cooldown)
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def setup(self, trainer, pl_module, stage: str) -> None:
        schedule = schedule_of(pl_module)
        if stage == "fit" and schedule is not None:
            raise ScheduleError(f"reduce_lr_on_plateau: {refusal(schedule)}")

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:  # Keras's on_train_begin: a fresh fit (a resumed one keeps its state)
            self.best, self.cooldown_counter, self.wait = None, 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, trainer, pl_module, epoch, logs) -> None:
        logs[LEARNING_RATE] = current_lr(trainer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(trainer, epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, trainer, epoch: int) -> bool:
        old_lr = current_lr(trainer)
        if not old_lr > np.float32(self.min_lr):
            return False
        new_lr = float(np.float32(max(old_lr * self.factor, self.min_lr)))  # Keras's rate is a float32 variable
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = new_lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
        return True


def refusal(schedule: str) -> str:
    """Keras's refusal, in one line: its optimizer's rate cannot be set once a schedule gives it."""
    return (f"the optimizer was created with {schedule} as its learning rate, hence its "
            "learning rate is not settable (Keras refuses it too): give a constant learning rate, or leave the "
            "callback out")
