"""Ctrl-C during training leaves a checkpoint that ``--ckpt_path last`` resumes exactly."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import lightning as L


class GracefulInterrupt(L.Callback):
    """The first SIGINT is noted and acted on at the end of the current batch (or group of batches: the
    datamodule's ``steps_per_execution``), when weights, optimizer state and the batch counters agree:
    ``last.ckpt`` is saved, then the run stops. (A KeyboardInterrupt raised mid-step could land between two
    parameters' updates.) A second SIGINT stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self.saved_to: Path | None = None
        self._previous = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._note)

    def _note(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.requested:
            return
        checkpoint = next((c for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)), None)
        folder = Path(checkpoint.dirpath) if checkpoint else Path(trainer.log_dir) / "checkpoints"
        self.saved_to = folder / "last.ckpt"
        trainer.save_checkpoint(self.saved_to)
        raise KeyboardInterrupt

    def on_fit_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
