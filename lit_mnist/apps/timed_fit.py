"""Fit and test with nothing written (no logger, checkpoints, bars): the measurement helper of the
benchmark, the parity suite and the variant comparison."""

from __future__ import annotations

import time

import lightning as L


def timed_fit(module: L.LightningModule, datamodule: L.LightningDataModule, max_epochs: int,
              accelerator: str = "cpu", **trainer_options) -> tuple[float, L.Trainer]:
    """Seconds spent in ``trainer.fit``, and the trainer after ``trainer.test`` (its callback_metrics).
    ``trainer_options``: more Trainer arguments (a recipe's precision, say)."""
    trainer = L.Trainer(max_epochs=max_epochs, accelerator=accelerator, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        **trainer_options)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - start
    trainer.test(module, datamodule=datamodule, verbose=False)
    return seconds, trainer
