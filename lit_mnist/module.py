"""LitMNIST: the original Keras model's training, as a LightningModule around a plain nn.Module."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassPrecision,
    MulticlassRecall,
)

from lit_mnist.keras_adam import KerasAdam
from lit_mnist.net import DenseNet, keras_init_

NUM_CLASSES = 10


class LitMNIST(L.LightningModule):
    """Dense 128-64-128-10 classifier with Keras-equivalent defaults.

    Args:
        lr: learning rate (Keras's Adam default, 1e-3).
        optimizer: ``keras_adam`` reproduces Keras 3's Adam update; ``adam`` is the stock torch.optim.Adam.
        init: ``keras`` (Glorot-uniform weights, zero biases, as Keras Dense) or ``torch`` (nn.Linear's own).
        epsilon: Adam's epsilon; Keras's default 1e-7 (torch's is 1e-8).
    """

    def __init__(
        self,
        lr: float = 1e-3,
        optimizer: Literal["keras_adam", "adam"] = "keras_adam",
        init: Literal["keras", "torch"] = "keras",
        epsilon: float = 1e-7,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = DenseNet(num_classes=NUM_CLASSES)
        if init == "keras":
            keras_init_(self.net)
        elif init != "torch":
            raise ValueError(f"init must be 'keras' or 'torch', got {init!r}")
        self.train_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.val_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)
        self.test_precision = MulticlassPrecision(NUM_CLASSES, average=None)
        self.test_recall = MulticlassRecall(NUM_CLASSES, average=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax), like the Keras model's output layer."""
        return self.net(x).softmax(dim=-1)

    def _step(self, batch, stage: str, accuracy: MulticlassAccuracy) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.net(x)
        y = y.long()
        # Keras's sparse_categorical_crossentropy on a softmax output is computed from the logits (TF backend)
        loss = F.cross_entropy(logits, y)
        accuracy(logits, y)
        # batch_size weights the epoch means by batch size, as Keras's running metrics do
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, batch_size=len(y), prog_bar=stage != "train")
        return loss, logits

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train", self.train_acc)[0]

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx):
        loss, logits = self._step(batch, "test", self.test_acc)
        y = batch[1].long()
        for metric in (self.test_confusion, self.test_precision, self.test_recall):
            metric.update(logits, y)
        return {"probs": logits.softmax(dim=-1).detach(), "target": y}

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(x)

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_confusion, self.test_precision, self.test_recall):
            metric.reset()

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "keras_adam":
            return KerasAdam(self.parameters(), lr=hp.lr, epsilon=hp.epsilon)
        if hp.optimizer == "adam":
            return torch.optim.Adam(self.parameters(), lr=hp.lr, eps=hp.epsilon)
        raise ValueError(f"optimizer must be 'keras_adam' or 'adam', got {hp.optimizer!r}")
