"""LitMNIST: the original Keras model's training, as a LightningModule around a plain nn.Module."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassPrecision,
    MulticlassRecall,
)

from lit_mnist.model.keras_adam import KerasAdam
from lit_mnist.model.net import ConvNet, DenseNet, keras_init_

NUM_CLASSES = 10


class LitMNIST(L.LightningModule):
    """The original classifier (or its CNN), trained with Keras-equivalent defaults.

    Args:
        arch: ``dense`` (the original network) or ``cnn`` (a small LeNet-style CNN, its stated next step).
        normalize: standardise inputs with the training set's pixel mean and std (set from the datamodule
            when fitting; kept in the checkpoint, so prediction applies them). Off: raw 0-255, as the original.
        lr: learning rate (Keras's Adam default, 1e-3).
        optimizer: ``keras_adam`` reproduces Keras 3's Adam update; ``adam`` is the stock torch.optim.Adam.
        init: ``keras`` (Glorot-uniform weights, zero biases, as Keras Dense) or ``torch`` (nn.Linear's own).
        epsilon: Adam's epsilon; Keras's default 1e-7 (torch's is 1e-8).
        betas: Adam's beta_1 and beta_2 (Keras's and torch's defaults: 0.9, 0.999).
        lr_decay: multiply the learning rate by this after every epoch (1.0, the original: constant).
        one_cycle: instead, the one-cycle schedule (torch's OneCycleLR, stepped every batch): the learning
            rate warms up from ``lr / 25`` to ``lr`` over the first 30% of the steps, then anneals (cosine)
            to almost zero by the last. Adam's betas stay as set (a schedule Keras can follow too).
        label_smoothing: weight moved from the true class to a uniform target (0: none, as the original).
        channels: the CNN's conv widths (``arch=cnn``).
        stem: how the CNN's first block halves the image (``arch=cnn``): ``pool`` (a conv, then 2x2
            max-pooling) or ``stride`` (the conv at stride 2: a quarter of the work, see ``ConvNet``).
    """

    def __init__(
        self,
        arch: Literal["dense", "cnn"] = "dense",
        normalize: bool = False,
        lr: float = 1e-3,
        optimizer: Literal["keras_adam", "adam"] = "keras_adam",
        init: Literal["keras", "torch"] = "keras",
        epsilon: float = 1e-7,
        betas: tuple[float, float] = (0.9, 0.999),
        lr_decay: float = 1.0,
        one_cycle: bool = False,
        label_smoothing: float = 0.0,
        channels: tuple[int, int] = (16, 32),
        stem: Literal["pool", "stride"] = "pool",
    ) -> None:
        super().__init__()
        if not lr > 0 or not epsilon >= 0 or not lr_decay > 0:
            raise ValueError(f"lr and lr_decay must be positive and epsilon not negative; got {lr}, {lr_decay}, {epsilon}")
        if one_cycle and lr_decay != 1.0:
            raise ValueError("one_cycle and lr_decay are two schedules: choose one")
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two values in [0, 1); got {list(betas)}")
        if not 0 <= label_smoothing < 1 or len(channels) != 2 or min(channels) < 1:
            raise ValueError(f"label_smoothing must be in [0, 1) and channels two positive widths; got "
                             f"{label_smoothing}, {list(channels)}")
        self.save_hyperparameters(ignore=["_instantiator"])  # LightningCLI's, not a hyper-parameter
        if arch == "dense":
            self.net = DenseNet(num_classes=NUM_CLASSES)
        elif arch == "cnn":
            self.net = ConvNet(num_classes=NUM_CLASSES, channels=tuple(channels), stem=stem)
        else:
            raise ValueError(f"arch must be one of ['cnn', 'dense'], got {arch!r}")
        # in raw pixel units; identity until fit() sets them from the training split
        self.register_buffer("pixel_mean", torch.tensor(0.0))
        self.register_buffer("pixel_std", torch.tensor(1.0))
        if init == "keras":
            keras_init_(self.net)
        elif init != "torch":
            raise ValueError(f"init must be 'keras' or 'torch', got {init!r}")
        # Steps only collect per-sample values; the metrics take them in one update() per epoch. A metric
        # call per step cost ~0.35 s of a 15-epoch fit (its forward() even copies state). No argument or NaN
        # checks either: each would be a host-device sync on a GPU.
        self._collected: dict[str, list] = {"train": [], "val": [], "test": []}
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_acc", MulticlassAccuracy(NUM_CLASSES, average="micro", validate_args=False))
            setattr(self, f"{stage}_loss", MeanMetric(nan_strategy="disable"))
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)
        self.test_precision = MulticlassPrecision(NUM_CLASSES, average=None)
        self.test_recall = MulticlassRecall(NUM_CLASSES, average=None)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and self.hparams.normalize and getattr(datamodule, "pixel_stats", None):
            mean, std = datamodule.pixel_stats  # from the training split only
            self.pixel_mean.fill_(mean)
            self.pixel_std.fill_(std)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.normalize:  # raw inputs skip this: the original net sees 0-255 exactly
            x = (x.float() - self.pixel_mean) / self.pixel_std
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax), like the Keras model's output layer."""
        return self.logits(x).softmax(dim=-1)

    def compute_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, per-sample losses, logits) of a batch ``(x, y)``, or ``(x, y, rows)`` for one rank's shard
        of a global batch of ``rows`` rows.

        Keras's sparse_categorical_crossentropy on a softmax output is computed from the logits (TF backend).
        A shard's loss is its sum over ``rows / world_size``: DDP averages the ranks' gradients, so the
        result is the gradient of the global batch's mean, whatever each rank's share of the rows.
        """
        x, y = batch[0], batch[1].long()
        logits = self.logits(x)
        per_sample = F.cross_entropy(logits, y, reduction="none", label_smoothing=self.hparams.label_smoothing)
        if len(batch) > 2:
            loss = per_sample.sum() * (self.trainer.world_size / batch[2])
        else:
            loss = per_sample.mean()
        return loss, per_sample, logits

    def _step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        loss, per_sample, logits = self.compute_loss(batch)
        self._collected[stage].append((per_sample.detach(), logits.detach().argmax(1), batch[1].long()))
        return loss, logits

    def _fold(self, stage: str) -> None:
        """Feed the epoch's per-sample values to the metrics. The mean over samples is Keras's batch-size-
        weighted epoch mean (not batch means with weights: nan_strategy="disable" drops weights, torchmetrics #3434)."""
        if self._collected[stage]:
            losses, predicted, target = (torch.cat(parts) for parts in zip(*self._collected[stage]))
            self._collected[stage].clear()
            if len(target):  # a rank's evaluation share can be empty; shapes are known on the host
                getattr(self, f"{stage}_loss").update(losses)
                getattr(self, f"{stage}_acc").update(predicted, target)

    def _log_epoch(self, stage: str) -> None:
        # computed values, not the Metric objects: self.log(metric) moves the metric to the device (a walk
        # over its state) on every call
        self._fold(stage)
        for name, prog_bar in (("loss", False), ("acc", stage != "train")):
            metric = getattr(self, f"{stage}_{name}")
            # compute() syncs the ranks' states, so the value is the same on every rank; Lightning still
            # wants sync_dist on several devices, and "max" of equal values keeps it exact (a mean can round)
            distributed = self.trainer.world_size > 1
            self.log(f"{stage}/{name}", metric.compute(), prog_bar=prog_bar, sync_dist=distributed, reduce_fx="max")
            metric.reset()

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        _loss, logits = self._step(batch, "test")
        y = batch[1].long()
        if len(y):  # the empty batch that evens out the ranks' step counts (see TensorBatches) counts nothing
            for metric in (self.test_confusion, self.test_precision, self.test_recall):
                metric.update(logits, y)
        return {"probs": logits.softmax(dim=-1).detach(), "target": y}

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_confusion, self.test_precision, self.test_recall):
            metric.reset()

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "keras_adam":
            optimizer = KerasAdam(self.parameters(), lr=hp.lr, beta_1=hp.betas[0], beta_2=hp.betas[1], epsilon=hp.epsilon)
        elif hp.optimizer == "adam":
            optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.epsilon, fused=True)
        else:
            raise ValueError(f"optimizer must be 'keras_adam' or 'adam', got {hp.optimizer!r}")
        if hp.one_cycle:
            steps = self.trainer.estimated_stepping_batches
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=steps,
                                                           cycle_momentum=False)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
        if hp.lr_decay == 1.0:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, hp.lr_decay)}
