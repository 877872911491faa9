"""Keras's TerminateOnNaN: stop training once the loss is NaN or infinite."""

from __future__ import annotations

import math

from lit_mnist.apps.callbacks.base import KerasCallback, flag


class KerasTerminateOnNaN(KerasCallback):
    """Keras 3's TerminateOnNaN. Keras checks its batch logs' ``loss``, the epoch's running mean, after every
    batch: that mean is NaN or infinite exactly when the epoch's sum of losses so far is, which is what the module
    keeps on the device (its ``_train_totals``: loss sum, correct, rows), read here after each step (one wait for
    the device a step, as Keras's check costs). Without ``raise_error`` no batch runs after that one, and, as in
    Keras (whose fit leaves the epoch's batches, then validates and calls on_epoch_end), that epoch is still
    validated and the epoch-end items see its figures (Lightning validates an epoch that is asked to stop);
    with it, a RuntimeError as Keras raises, and nothing more runs."""

    def __init__(self, raise_error=False) -> None:
        super().__init__()
        self.raise_error = flag("raise_error", raise_error)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = _running_loss(pl_module, outputs)
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch_idx}. Loss value: {loss}. "
                               "Terminating training immediately.")
        print(f"Batch {batch_idx}: Invalid loss, terminating training")
        trainer.should_stop = True


def _running_loss(pl_module, outputs) -> float | None:
    totals = getattr(pl_module, "_train_totals", None)
    if totals is not None and float(totals[2]) > 0:
        return float(totals[0] / totals[2])
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs  # a module that returns its loss
    return None if loss is None else float(loss)
