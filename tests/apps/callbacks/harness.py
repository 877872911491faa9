"""One metric sequence fed to the Keras items (and, in the parity tests, to Keras's own callbacks), epoch by
epoch, with what each decided: the learning rate after each epoch, the epoch it stopped at, the epoch whose
weights the model holds at the end, the files written."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lit_mnist.apps.callbacks import keras_callbacks
from lit_mnist.apps.callbacks.monitors import KERAS_TO_LOGGED

LR = 1e-3


@dataclass
class Decisions:
    lrs: list[float] = field(default_factory=list)
    stopped: int | None = None  # the 0-based epoch at whose end training stopped
    weights_of: float | None = None  # the epoch whose weights the model holds at the end


class FakeTrainer:
    def __init__(self, module: torch.nn.Module) -> None:
        self.optimizers = [torch.optim.SGD(module.parameters(), lr=LR)]
        self.callback_metrics: dict[str, torch.Tensor] = {}
        self.current_epoch = self.global_step = 0
        self.should_stop, self.is_global_zero, self.sanity_checking = False, True, False
        self.saved: list[tuple[str, bool]] = []

    def save_checkpoint(self, path, weights_only=False) -> None:
        self.saved.append((path, weights_only))


def f32(value: float) -> float:
    return float(np.float32(value))


def drive(items, rows: list[dict]) -> tuple[Decisions, FakeTrainer, list]:
    """``items`` (a callbacks: list) over epochs whose logs are ``rows`` (Keras's names); the module's one weight
    is the epoch's number, so the weight at the end names the epoch whose weights it holds."""
    callbacks = keras_callbacks(items)
    module = torch.nn.Linear(1, 1, bias=False)
    trainer, decisions = FakeTrainer(module), Decisions()
    for callback in callbacks:
        callback.on_train_start(trainer, module)
    for epoch, row in enumerate(rows):
        trainer.current_epoch, trainer.global_step = epoch, 10 * (epoch + 1)
        trainer.callback_metrics = {KERAS_TO_LOGGED[k]: torch.tensor(v, dtype=torch.float32) for k, v in row.items()}
        with torch.no_grad():
            module.weight.fill_(epoch)
        validated = any(key.startswith("val_") for key in row)  # as Lightning: validation ends before the epoch
        for callback in callbacks:
            if validated:
                callback.on_validation_end(trainer, module)
            callback.on_train_epoch_end(trainer, module)
        decisions.lrs.append(f32(trainer.optimizers[0].param_groups[0]["lr"]))  # as Keras reads its float32
        if trainer.should_stop:
            decisions.stopped = epoch
            break
    for callback in callbacks:
        callback.on_train_end(trainer, module)
    decisions.weights_of = float(module.weight.detach())
    return decisions, trainer, callbacks


def val_loss(*values) -> list[dict]:
    return [{"val_loss": v} for v in values]


def val_accuracy(*values) -> list[dict]:
    return [{"val_accuracy": v} for v in values]
