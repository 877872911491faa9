"""Keras's EarlyStopping: stop when the monitored figure has stopped improving, and perhaps take back the best
epoch's weights."""

from __future__ import annotations

import warnings

from lit_mnist.apps.callbacks.base import KerasCallback, Monitored, count, flag, number


class KerasEarlyStopping(Monitored, KerasCallback):
    """Keras 3's EarlyStopping, its arguments and defaults, its order of operations: ``wait`` grows before the
    figure is compared; an improvement resets it only when it also beats ``baseline``; no stop at the first
    epoch; nothing counts before ``start_from_epoch``. With ``restore_best_weights`` the best epoch's weights
    (the module's state: weights and buffers, not the optimizer's) come back when training ends, whether it
    stopped early or ran to ``max_epochs``, as Keras 3 does (Keras 2 restored them only on an early stop)."""

    state_attributes = ("best", "wait", "stopped_epoch", "best_epoch")

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0) -> None:
        KerasCallback.__init__(self)
        Monitored.__init__(self, monitor, mode, min_delta=min_delta)  # as Keras: the baseline is not the best
        if baseline is not None:
            number("baseline", baseline)
        self.patience, self.verbose, self.baseline = count("patience", patience), verbose, baseline
        self.restore_best_weights = flag("restore_best_weights", restore_best_weights)
        self.start_from_epoch = count("start_from_epoch", start_from_epoch)
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best_weights: dict | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:  # Keras's on_train_begin: a fresh fit (a resumed one keeps its state)
            self.wait, self.stopped_epoch, self.best, self.best_epoch = 0, 0, None, 0
        self.best_weights = None

    def on_epoch_end(self, trainer, pl_module, epoch, logs) -> None:
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs)}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:  # never set: the current ones are the best
            self.best_weights, self.best_epoch = _weights(pl_module), epoch
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = _weights(pl_module)
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            pl_module.load_state_dict(self.best_weights)


def _weights(pl_module) -> dict:
    """A copy of the module's state (Keras's ``get_weights``: every variable, BatchNormalization's statistics too)."""
    return {name: value.detach().clone() for name, value in pl_module.state_dict().items()}
