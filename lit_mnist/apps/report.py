"""RunReport: the run's artifacts (metrics.json and the original's figures) in the log directory."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from lit_mnist import atomic
from lit_mnist.apps import plots


class RunReport(L.Callback):
    """Run report: metrics.json and the original's figures, written into the run directory.

    After testing: ``metrics.json``, ``confusion_matrix.png``, ``samples.png``, ``misclassified.png``; the
    figures also go to TensorBoard, with the test accuracy as its ``hp_metric``. Times the fit and records
    the data source, seed, device and the devices' layout.

    Args:
        samples: training digits drawn in samples.png.
        misclassified: misclassified test digits drawn in misclassified.png (the first ones, in test order).
    """

    def __init__(self, samples: int = 32, misclassified: int = 32) -> None:
        self.samples, self.misclassified = samples, misclassified
        self.fit_seconds: float | None = None
        self._fit_start = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = time.perf_counter()
        folder = Path(trainer.log_dir)  # a collective on several devices: every rank asks
        if not trainer.is_global_zero:
            return
        x, y = trainer.datamodule.splits["train"]
        n = min(self.samples, len(x))
        names = pl_module.class_names
        fig = plots.digits_figure(x[:n].cpu().numpy(), [names[int(v)] for v in y[:n]], pl_module.image_shape,
                                  title="Training images")
        self._save(trainer, fig, folder / "samples.png", "data/samples")

    def on_fit_end(self, trainer, pl_module) -> None:
        self.fit_seconds = time.perf_counter() - self._fit_start

    def on_test_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not pl_module.test_targets.update_called:
            return
        # every rank takes part in the collectives (the metrics' sync); rank 0 alone writes
        probs, target = (t.cpu() for t in pl_module.test_outputs())
        confusion = pl_module.test_confusion.compute().cpu().numpy().astype(int)
        metrics = self.metrics(trainer, pl_module, probs, target, confusion)
        folder = Path(trainer.log_dir)
        if not trainer.is_global_zero:
            return
        figure = plots.confusion_figure(confusion, pl_module.class_names, absent=metrics["classes_without_test_rows"])
        self._save(trainer, figure, folder / "confusion_matrix.png", "test/confusion_matrix")
        self._save(trainer, self._misclassified_figure(trainer, pl_module, probs, target), folder / "misclassified.png",
                   "test/misclassified")
        atomic.write_text(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if trainer.logger is not None:  # TensorBoard's hparams view: the run's real figure, not a placeholder
            trainer.logger.log_hyperparams(metrics["hparams"], metrics={"hp_metric": metrics["test_accuracy"]})

    def metrics(self, trainer, pl_module, probs, target, confusion) -> dict:
        logged = trainer.callback_metrics
        datamodule = trainer.datamodule
        train_counts = datamodule.class_counts("train")
        class_names = pl_module.hparams.get("class_names")
        return {
            "test_accuracy": float(logged["test/acc"]),
            "test_loss": float(logged["test/loss"]),
            "test_samples": len(target),
            "test_errors": int((probs.argmax(1) != target).sum()),
            "num_classes": pl_module.num_classes,
            "image_shape": list(pl_module.image_shape),
            **({"class_names": class_names} if class_names else {}),
            # a class may have no rows in a split (labels 0-24 without 9): said here, never a NaN
            "train_class_counts": train_counts,
            "test_class_counts": confusion.sum(1).tolist(),
            "classes_without_training_rows": [k for k, n in enumerate(train_counts) if n == 0],
            "classes_without_test_rows": [k for k, n in enumerate(confusion.sum(1)) if n == 0],
            "confusion_matrix": confusion.tolist(),
            "precision": _per_class(pl_module.test_precision.compute(), confusion.sum(0)),
            "recall": _per_class(pl_module.test_recall.compute(), confusion.sum(1)),
            "data_source": getattr(datamodule, "data_source", None),
            "train_samples": len(datamodule.splits["train"][0]),
            "val_samples": len(datamodule.splits["val"][0]),
            "world_size": int(trainer.world_size),
            "train_rows_per_rank": datamodule.train_rows_per_rank(trainer.world_size),
            "trainer_precision": str(trainer.precision),
            "seed": _seed(),
            "epochs": int(trainer.current_epoch),
            "fit_seconds": None if self.fit_seconds is None else round(self.fit_seconds, 3),
            "device": _device_name(pl_module.device),
            "hparams": {**_public(pl_module.hparams), **_public(datamodule.hparams)},
        }

    def _misclassified_figure(self, trainer, pl_module, probs: torch.Tensor, target: torch.Tensor):
        x = trainer.datamodule.splits["test"][0]
        names = pl_module.class_names
        wrong = torch.nonzero(probs.argmax(1) != target).flatten()[: self.misclassified]
        captions = [f"true {names[int(target[i])]} pred {names[int(probs[i].argmax())]}\n{float(probs[i].max()):.0%}"
                    for i in wrong]
        title = f"Misclassified test images (first {len(wrong)} of {int((probs.argmax(1) != target).sum())})"
        # the rows shown alone: the test split may be on a GPU, or read from the cache's file (HostRows)
        return plots.digits_figure(x[wrong.to(x.device)].cpu().numpy(), captions, pl_module.image_shape, title=title)

    @staticmethod
    def _save(trainer, fig, path: Path, tag: str) -> None:
        pixels = plots.save_png(fig, path)
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_image"):  # the rendered pixels: no second drawing of the figure
            experiment.add_image(tag, pixels, global_step=trainer.global_step, dataformats="HWC")


def _public(hparams) -> dict:
    return {k: v for k, v in dict(hparams).items() if not k.startswith("_")}


def _per_class(values: torch.Tensor, counts: np.ndarray) -> list[float | None]:
    """Per-class figures, None where one is 0/0 (a class absent from the test rows, or never predicted), which
    torchmetrics reports as 0."""
    return [round(float(v), 6) if int(n) else None for v, n in zip(values, counts)]


def _seed() -> int | None:
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None else None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
