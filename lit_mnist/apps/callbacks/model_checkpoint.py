"""Keras's ModelCheckpoint: a checkpoint at each epoch's end, or at each new best, under a path formatted from
the epoch and its figures."""

from __future__ import annotations

import string
import warnings

from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_mnist.apps.callbacks.base import KerasCallback, Monitored, flag
from lit_mnist.apps.callbacks.monitors import KERAS_TO_LOGGED, LEARNING_RATE, current_lr
from lit_mnist.apps.checkpoints import AtomicCheckpointIO

SUFFIX = ".ckpt"


class KerasModelCheckpoint(Monitored, KerasCallback):
    """Keras 3's ModelCheckpoint, its arguments and defaults. The file is a Lightning checkpoint (``.ckpt``, which
    ``--ckpt_path`` resumes and predict.py, export.py and ``--model.init_from`` read), not Keras's ``.keras``;
    ``save_weights_only`` writes the weights and hyper-parameters alone (Lightning's ``weights_only``: no optimizer
    or loop state), which predict.py and export.py take but a run cannot resume from. Written atomically, as every
    checkpoint of lit-mnist. ``filepath`` is formatted as Keras formats it: ``{epoch}`` from 1, the epoch's figures
    by Keras's names (``{val_loss:.2f}``). Only ``save_freq="epoch"``."""

    state_attributes = ("best",)

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None) -> None:
        KerasCallback.__init__(self)
        Monitored.__init__(self, monitor, mode, baseline=initial_value_threshold)  # Keras: no min_delta here
        if save_freq != "epoch":
            raise ValueError(f"save_freq must be 'epoch' (a checkpoint at each epoch's end), got {save_freq!r}")
        self.filepath = _checked_path(filepath)
        self.verbose, self.save_best_only = verbose, flag("save_best_only", save_best_only)
        self.save_weights_only = flag("save_weights_only", save_weights_only)
        self.saved: list[str] = []  # the files written, in order

    def setup(self, trainer, pl_module, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # Lightning's own writes in place
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def on_epoch_end(self, trainer, pl_module, epoch, logs) -> None:
        filepath = self.filepath.format(epoch=epoch + 1, **{LEARNING_RATE: current_lr(trainer), **logs})
        if self._should_save(epoch, logs, filepath):
            trainer.save_checkpoint(filepath, weights_only=self.save_weights_only)
            self.saved.append(filepath)
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _should_save(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self.is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, saving model "
                      f"to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False


def _checked_path(filepath) -> str:
    """``filepath``, a Lightning checkpoint's name whose fields are the epoch and Keras's names of its figures."""
    if not isinstance(filepath, str) or not filepath.endswith(SUFFIX):
        raise ValueError(f"filepath must end in {SUFFIX} (a Lightning checkpoint; Keras's .keras and .h5 are not "
                         f"written here), got {filepath!r}")
    names = {"epoch", *KERAS_TO_LOGGED}
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(filepath) if field is not None]
        unknown = next((f for f in fields if f not in names), None)
        if unknown is None:
            filepath.format(epoch=1, **dict.fromkeys(KERAS_TO_LOGGED, 0.5))
    except (ValueError, IndexError, KeyError) as e:
        raise ValueError(f"filepath {filepath!r} is not a format Keras reads ({e})") from None
    if unknown is not None:
        raise ValueError(f"filepath {filepath!r} names {{{unknown}}}, which is not a field Keras fills (epoch, "
                         f"{', '.join(KERAS_TO_LOGGED)})")
    return filepath
