"""Keras's CSVLogger: the epoch history as a CSV file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lit_mnist import atomic
from lit_mnist.apps.callbacks.base import KerasCallback, flag


class KerasCSVLogger(KerasCallback):
    """Keras 3's CSVLogger, its arguments and defaults, its text: ``epoch`` (from 0) then the first epoch's
    figures by Keras's names, sorted, each a float's repr (``NA`` where one is missing), ``\\r\\n`` line ends
    (the csv module's excel dialect). Keras appends a row to an open file; here the whole file is rewritten
    atomically at each epoch (what was there before the fit, with ``append``, then this fit's rows), so a
    reader never sees half a row. Written by the first rank alone."""

    def __init__(self, filename, separator=",", append=False) -> None:
        super().__init__()
        if not isinstance(filename, str) or not filename:
            raise ValueError(f"filename must be a file's name, got {filename!r}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        self.filename, self.sep, self.append = filename, separator, flag("append", append)
        self.keys: list[str] | None = None
        self._before, self._rows = "", io.StringIO()
        self._writer = None

    def on_train_start(self, trainer, pl_module) -> None:
        path = Path(self.filename)
        # as bytes: its line ends stay as written
        self._before = path.read_bytes().decode() if self.append and path.is_file() else ""
        self._rows, self._writer, self.keys = io.StringIO(), None, None

    def on_epoch_end(self, trainer, pl_module, epoch, logs) -> None:
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self._writer is None:
            dialect = type("CustomDialect", (csv.excel,), {"delimiter": self.sep})
            self._writer = csv.DictWriter(self._rows, fieldnames=["epoch", *self.keys], dialect=dialect)
            if not self._before:  # Keras: a header unless the file appended to holds something
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{key: logs.get(key, "NA") for key in self.keys}})
        if trainer.is_global_zero:
            atomic.write_text(self.filename, self._before + self._rows.getvalue())
