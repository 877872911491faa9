"""LitMNIST: a layer list's net trained as Keras trains it, as a LightningModule.

The module owns the math (loss, optimizer, schedule) and the metrics; the net is a plain ``nn.Module`` built
from hyper-parameters that are plain data (the layer list, the class count, the image shape), so a checkpoint
loads with ``torch.load(weights_only=True)`` and ``load_from_checkpoint`` alike.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import CatMetric, MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassPrecision,
    MulticlassRecall,
)

from lit_mnist.model import graphed
from lit_mnist.model.keras_adam import KerasAdam
from lit_mnist.model.keras_optimizers import KerasRMSprop, KerasSGD, keras_default_lr
from lit_mnist.model.layers import LayerError, as_items, image_size, kept_shape
from lit_mnist.model.net import build_net


class LitMNIST(L.LightningModule):
    """A classifier of HxW grey-level or HxWx3 colour images into ``num_classes`` classes, trained with Keras's
    defaults.

    Args:
        layers: the net, as a list of Keras layers (``lit_mnist.model.layers``); unset: the original notebook's
            Dense 128/64/128 with ReLU. The output layer is appended unless the list ends with it.
        num_classes: outputs of the net (set from the data by ``fit.py``).
        image_shape: ``[height, width]`` of grey images, ``[height, width, 3]`` of colour ones, whose rows (each
            pixel's channels in turn, as Keras flattens them) the net takes (set from the data).
        class_names: a name for each class, for the reports and predictions (from ``--data.class_names``).
        normalize: standardise inputs with the training split's pixel mean and std (set from the datamodule
            when fitting; kept in the checkpoint, so prediction applies them). Off: raw 0-255, as the original.
        lr: learning rate (unset: Keras's default for the optimizer, 0.01 for SGD, 1e-3 for the others).
        optimizer: ``keras_adam`` reproduces Keras 3's Adam update; ``adam`` is the stock torch.optim.Adam;
            ``sgd`` and ``rmsprop`` are Keras 3's SGD and RMSprop (``lit_mnist/model/keras_optimizers.py``).
        init: ``keras`` (each layer's Keras initialisers: Glorot-uniform kernels and zero biases unless the
            list says otherwise) or ``torch`` (PyTorch's defaults for every layer).
        epsilon: Adam's and RMSprop's epsilon; Keras's default 1e-7 (torch's is 1e-8).
        betas: Adam's beta_1 and beta_2 (Keras's and torch's defaults: 0.9, 0.999).
        momentum: SGD's and RMSprop's momentum (Keras's default 0: none).
        nesterov: SGD's Nesterov momentum.
        rho: RMSprop's decay of its mean square (Keras's default 0.9).
        lr_decay: multiply the learning rate by this after every epoch (1.0, the original: constant).
        one_cycle: instead, the one-cycle schedule (torch's OneCycleLR, stepped every batch): the learning
            rate warms up from ``lr / 25`` to ``lr`` over the first 30% of the steps, then anneals (cosine)
            to almost zero by the last. Adam's betas stay as set (a schedule Keras can follow too).
        label_smoothing: weight moved from the true class to a uniform target (0: none, as the original).
        matmul_precision: float32 matrix products and convolutions on a GPU: ``highest`` (float32, as on the
            CPU and in Keras), ``high`` or ``medium`` (TF32 or bfloat16 inside, faster on recent GPUs; results
            move by ~1e-3, so the parity levels' limits no longer hold). Sets ``torch.set_float32_matmul_precision``
            and cuDNN's TF32 switch for the run.
        cuda_graphs: on one CUDA device in 32-bit precision, replay each training step's forward and backward
            pass as a CUDA graph (``lit_mnist/model/graphed.py``); the same arithmetic, a fraction of the host's work.
        init_from: a lit-mnist checkpoint (trained, or imported from Keras) whose net's weights the net starts from:
            fine-tuning or transfer, not the resume of a run (that is ``--ckpt_path``). Its layers must be this
            net's; a head of another class count is initialised afresh, and a warning says so. The module only
            records it, and reads no file: the commands start the net once the module is built
            (``lit_mnist.apps.checkpoints.start_from``, which records the start in ``source`` and sets
            ``init_from`` back to None, so that a checkpoint of the run does not read the path again). A module
            built in Python with ``init_from`` set refuses to train until started so.
        source: where the weights came from (a Keras file's name and SHA-256, a start's checkpoint): set by the
            importer and by ``start_from``, recorded in checkpoints and metrics.json.
        preparation: how a picture sent to ``predict.py`` or the service becomes a row: ``digit`` (as MNIST made
            its digits: centred, fitted to 20/28 of the field) or ``resize`` (converted and resized, as a folder's
            images are read); set from the data (unset: ``digit`` for grey images, ``resize`` for colour).
    """

    def __init__(
        self,
        layers: list[Any] | None = None,
        num_classes: int = 10,
        image_shape: tuple[int, ...] = (28, 28),
        class_names: list[str] | None = None,
        normalize: bool = False,
        lr: float | None = None,
        optimizer: Literal["keras_adam", "adam", "sgd", "rmsprop"] = "keras_adam",
        init: Literal["keras", "torch"] = "keras",
        epsilon: float = 1e-7,
        betas: tuple[float, float] = (0.9, 0.999),
        momentum: float = 0.0,
        nesterov: bool = False,
        rho: float = 0.9,
        lr_decay: float = 1.0,
        one_cycle: bool = False,
        label_smoothing: float = 0.0,
        matmul_precision: Literal["highest", "high", "medium"] = "highest",
        cuda_graphs: bool = True,
        init_from: str | None = None,
        source: dict | None = None,
        preparation: Literal["digit", "resize"] | None = None,
    ) -> None:
        super().__init__()
        lr = keras_default_lr(optimizer) if lr is None else lr
        _check_options(lr, epsilon, lr_decay, one_cycle, betas, label_smoothing, optimizer, matmul_precision)
        _check_optimizer_options(optimizer, epsilon, betas, momentum, nesterov, rho)
        # each step is written out (training_step): the optimizer and the schedule are stepped by hand, so that
        # on a GPU the forward and backward pass can be one CUDA graph
        self.automatic_optimization = False
        height, width, channels = image_size(image_shape)
        self.net = build_net(layers, num_classes, image_shape, init)
        if class_names is not None and (len(class_names) != num_classes or len(set(map(str, class_names))) != num_classes):
            raise LayerError(f"class_names must be {num_classes} different names, one per class; got {len(class_names)}")
        self.save_hyperparameters(ignore=["_instantiator"])  # LightningCLI's, not a hyper-parameter
        # as plain data, and the list as built (every argument written out), so that the checkpoint and
        # metrics.json describe the net whole (LightningCLI hands save_hyperparameters the options as given)
        self.hparams.update(layers=as_items(self.net.layers), num_classes=num_classes, normalize=normalize, lr=lr,
                            image_shape=list(kept_shape(image_shape)),
                            preparation=preparation or ("digit" if channels == 1 else "resize"),
                            class_names=None if class_names is None else [str(name) for name in class_names])
        # in raw pixel units, one per channel (a scalar for grey images); identity until fit() sets them from the
        # training split
        self.register_buffer("pixel_mean", torch.zeros(() if channels == 1 else (channels,)))
        self.register_buffer("pixel_std", torch.ones(() if channels == 1 else (channels,)))
        # the training epoch's sums (loss, correct predictions, rows), kept on the device: a step adds to them
        # and reads nothing back; the epoch end hands them to the metrics
        self.register_buffer("_train_totals", torch.zeros(3), persistent=False)
        # the regularizers' share of the epoch's training loss (their penalty times the rows), likewise
        self.register_buffer("_train_penalty", torch.zeros(()), persistent=False)
        self.train_penalty = _mean()
        self._penalty: torch.Tensor | None = None  # the last compute_loss's penalty (None: the net has none)
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_loss", _mean())
            setattr(self, f"{stage}_acc", _mean() if stage == "train" else
                    MulticlassAccuracy(num_classes, average="micro", validate_args=False))
        # the test rows' probabilities and labels, in the test split's order over every rank (the report's)
        self.test_probs, self.test_targets = _rows(), _rows()
        self.test_confusion = MulticlassConfusionMatrix(num_classes, validate_args=False)
        self.test_precision = MulticlassPrecision(num_classes, average=None, validate_args=False)
        self.test_recall = MulticlassRecall(num_classes, average=None, validate_args=False)
        self.example_input_array = torch.zeros(2, height * width * channels)  # the model summary's input and output sizes
        self._graphed: graphed.GraphedStep | None = None

    @property
    def num_classes(self) -> int:
        return self.hparams.num_classes

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.hparams.image_shape)

    @property
    def row_size(self) -> int:
        """Values in a row the net takes: H*W grey levels, or H*W*3 (each pixel's R, G, B in turn)."""
        return math.prod(self.image_shape)

    @property
    def preparation(self) -> str:
        """How a picture becomes a row (``lit_mnist.data.images.prepared``): ``digit`` as MNIST made its digits,
        ``resize`` as a folder's images were read."""
        return self.hparams.preparation

    @property
    def class_names(self) -> list[str]:
        """Each class's name: ``--data.class_names`` where given, else its label."""
        return self.hparams.get("class_names") or [str(k) for k in range(self.num_classes)]

    def setup(self, stage: str) -> None:
        if self.hparams.get("init_from"):  # never started: training on would ignore the weights asked for
            raise ValueError(f"init_from {self.hparams.init_from}: the net was never started from it; "
                             "lit_mnist.apps.checkpoints.start_from(model, path) starts it (the commands do so "
                             "for --model.init_from)")
        torch.set_float32_matmul_precision(self.hparams.get("matmul_precision", "highest"))
        torch.backends.cudnn.allow_tf32 = self.hparams.get("matmul_precision", "highest") != "highest"
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and self.hparams.normalize and getattr(datamodule, "pixel_stats", None):
            mean, std = datamodule.pixel_stats  # from the training split only, per channel
            self.pixel_mean.copy_(torch.as_tensor(mean).reshape(self.pixel_mean.shape))
            self.pixel_std.copy_(torch.as_tensor(std).reshape(self.pixel_std.shape))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.normalize:  # raw inputs skip this: the original net sees 0-255 exactly
            x = x.to(self.pixel_mean.dtype)
            if self.pixel_mean.dim():  # a row is each pixel's channels in turn
                x = ((x.unflatten(1, (-1, len(self.pixel_mean))) - self.pixel_mean) / self.pixel_std).flatten(1)
            else:
                x = (x - self.pixel_mean) / self.pixel_std
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax), like the Keras model's output layer: the one inference path of
        predict, export, the service and the parity suite."""
        return self.logits(x).softmax(dim=-1)

    def compute_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, per-sample losses, logits) of a batch ``(x, y)``, or ``(x, y, rows)`` for one rank's shard
        of a global batch of ``rows`` rows.

        Keras's sparse_categorical_crossentropy on a softmax output is computed from the logits (TF backend).
        A shard's loss is its sum over ``rows / world_size``: DDP averages the ranks' gradients, so the
        result is the gradient of the global batch's mean, whatever each rank's share of the rows.
        """
        x, y = batch[0], batch[1]
        logits = self.logits(x)
        per_sample = F.cross_entropy(logits, y, reduction="none", label_smoothing=self.hparams.label_smoothing)
        if len(batch) > 2:
            loss = per_sample.sum() * (self.trainer.world_size / batch[2])
        else:
            loss = per_sample.mean()
        if self.net.regularized:  # Keras adds the regularizers' penalty to the loss it minimises and reports
            self._penalty = self.net.penalty(batch[2] / self.trainer.world_size if len(batch) > 2 else None)
            loss = loss + self._penalty
        return loss, per_sample, logits

    def loss_and_sums(self, batch) -> torch.Tensor:
        """The batch's loss, its per-sample losses and correct predictions added to the epoch's sums (on the
        device: no value is read back during the epoch)."""
        loss, per_sample, logits = self.compute_loss(batch)
        with torch.no_grad():
            totals = self._train_totals  # add_ on views of it: no copy back, nothing that waits for the device
            totals[0].add_(per_sample.sum())
            totals[1].add_((logits.argmax(1) == batch[1]).sum())
            totals[2].add_(len(per_sample))
            if self.net.regularized:  # Keras's reported loss holds the penalty, each batch's weighted by its rows
                totals[0].add_(self._penalty * len(per_sample))
                self._train_penalty.add_(self._penalty * len(per_sample))
        return loss

    def training_step(self, batch, batch_idx):
        """One optimizer step a batch; a list of batches (the datamodule's ``steps_per_execution``) takes them
        in turn, stopping where ``max_steps`` does."""
        optimizer = self.optimizers()
        schedule = self.lr_schedulers() if self.hparams.one_cycle else None
        batches = self._within_max_steps(batch) if isinstance(batch, list) else (batch,)
        graphable = bool(batches) and graphed.applies(self, batches[0])  # a group's batches have one layout
        if graphable and self._graphed is None:
            self._graphed = graphed.GraphedStep(list(self.parameters()), lambda x, y: self.loss_and_sums((x, y)))
        for one in batches:
            if graphable:
                self._graphed(*one)
            else:
                optimizer.zero_grad()
                self.manual_backward(self.loss_and_sums(one))
            optimizer.step()
            if schedule is not None:
                schedule.step()

    def _within_max_steps(self, batches: list) -> list:
        """The batches of a group that ``max_steps`` leaves: Lightning checks it between calls, this between steps."""
        max_steps = self.trainer.max_steps
        return batches if max_steps < 0 else batches[: max(0, max_steps - self.trainer.global_step)]

    def _evaluate(self, batch, stage: str) -> torch.Tensor:
        _, per_sample, logits = self.compute_loss(batch)
        loss, acc = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        if len(per_sample):  # a rank's evaluation share can be empty (see TensorBatches); shapes are known on the host
            loss.update(per_sample + self._penalty if self.net.regularized else per_sample)  # Keras's, penalty included
            acc.update(logits, batch[1])
        return logits

    def _log_metrics(self, stage: str) -> None:
        # Metric objects, as Lightning documents: it computes them at the epoch's end (syncing the ranks'
        # states) and resets them. Logged once, from the epoch-end hooks, not from every step: each self.log
        # call is host work for Lightning (docs/performance.md)
        for name, prog_bar in (("loss", False), ("acc", stage != "train")):
            self.log(f"{stage}/{name}", getattr(self, f"{stage}_{name}"), prog_bar=prog_bar, on_step=False,
                     on_epoch=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        logits = self._evaluate(batch, "test")
        y = batch[1]
        if len(y):  # the empty batch that evens out the ranks' step counts counts nothing
            for metric in (self.test_confusion, self.test_precision, self.test_recall):
                metric.update(logits, y)
        # on every rank, rows or none: all take part in the gather. Flat, as a rank without rows holds a flat empty
        self.test_probs.update(logits.softmax(dim=-1).detach().flatten())
        self.test_targets.update(y)

    def on_train_epoch_start(self) -> None:
        self._train_totals.zero_()
        self._train_penalty.zero_()

    def on_train_epoch_end(self) -> None:
        if self.hparams.lr_decay != 1.0:
            self.lr_schedulers().step()
        loss, correct, rows = self._train_totals
        self.train_loss.update(loss / rows, rows)  # the epoch's means, weighted by its rows across the ranks
        self.train_acc.update(correct / rows, rows)
        self._log_metrics("train")
        if self.net.regularized:  # the penalty within train/loss, apart (the data's loss is the difference)
            self.train_penalty.update(self._train_penalty / rows, rows)
            self.log("train/penalty", self.train_penalty, on_step=False, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_confusion, self.test_precision, self.test_recall, self.test_probs, self.test_targets):
            metric.reset()

    def test_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last test's rows, every rank's in the test split's order (the ranks hold contiguous shares of it):
        each row's class probabilities and its label. A collective: every rank calls it."""
        probs, targets = (torch.as_tensor(metric.compute()) for metric in (self.test_probs, self.test_targets))
        return probs.reshape(-1, self.num_classes), targets.long()

    def make_optimizer(self, lr: float | None = None) -> torch.optim.Optimizer:
        """``--model.optimizer`` over the parameters, at ``lr`` (default ``--model.lr``), without the schedule."""
        hp = self.hparams
        lr = hp.lr if lr is None else lr
        if hp.optimizer == "keras_adam":
            return KerasAdam(self.parameters(), lr=lr, beta_1=hp.betas[0], beta_2=hp.betas[1], epsilon=hp.epsilon)
        if hp.optimizer == "sgd":
            return KerasSGD(self.parameters(), lr=lr, momentum=hp.get("momentum", 0.0), nesterov=hp.get("nesterov", False))
        if hp.optimizer == "rmsprop":
            return KerasRMSprop(self.parameters(), lr=lr, rho=hp.get("rho", 0.9), momentum=hp.get("momentum", 0.0),
                                epsilon=hp.epsilon)
        return torch.optim.Adam(self.parameters(), lr=lr, betas=tuple(hp.betas), eps=hp.epsilon, fused=True)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = self.make_optimizer()
        if hp.one_cycle:
            steps = optimizer_steps(self.trainer)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=steps,
                                                           cycle_momentum=False)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
        if hp.lr_decay == 1.0:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, hp.lr_decay)}


def _mean() -> MeanMetric:
    """A mean over rows, whose states are sums: the ranks' figures combine exactly, and batches count by their
    size (Keras's epoch means). A NaN stays in (imputed by itself): a diverged loss reads nan, as in Keras,
    where torchmetrics' default would drop it."""
    return MeanMetric(nan_strategy=float("nan"))


def _rows() -> CatMetric:
    return CatMetric(nan_strategy=float("nan"))  # every row kept, as it is: a NaN row is still a row


def optimizer_steps(trainer: L.Trainer) -> int:
    """The optimizer steps of the whole fit: Lightning's estimate counts what the loader yields, which for a
    loader of batch groups (``steps()``: the batches in so many groups) is fewer."""
    estimate = trainer.estimated_stepping_batches  # loads the training data when not yet loaded
    loader = trainer.train_dataloader
    if getattr(loader, "group", 1) == 1:
        return estimate
    per_epoch = loader.steps(int(trainer.num_training_batches))
    total = per_epoch * trainer.max_epochs if trainer.max_epochs not in (None, -1) else math.inf
    return int(min(total, trainer.max_steps if trainer.max_steps != -1 else math.inf))


def _check_options(lr, epsilon, lr_decay, one_cycle, betas, label_smoothing, optimizer, matmul_precision) -> None:
    """The training options' own checks, one line each."""
    if not lr > 0 or not epsilon >= 0 or not lr_decay > 0:
        raise ValueError(f"lr and lr_decay must be positive and epsilon not negative; got {lr}, {lr_decay}, {epsilon}")
    if one_cycle and lr_decay != 1.0:
        raise ValueError("one_cycle and lr_decay are two schedules: choose one")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two values in [0, 1); got {list(betas)}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}")
    if optimizer not in ("keras_adam", "adam", "sgd", "rmsprop"):
        raise ValueError(f"optimizer must be 'keras_adam', 'adam', 'sgd' or 'rmsprop', got {optimizer!r}")
    if matmul_precision not in ("highest", "high", "medium"):
        raise ValueError(f"matmul_precision must be 'highest', 'high' or 'medium', got {matmul_precision!r}")


def _check_optimizer_options(optimizer, epsilon, betas, momentum, nesterov, rho) -> None:
    """Each optimizer's own options: one set for another optimizer is refused, never ignored."""
    if not 0 <= momentum < 1 or not 0 <= rho < 1:
        raise ValueError(f"momentum and rho must be in [0, 1); got {momentum}, {rho}")
    given = {"betas": tuple(betas) != (0.9, 0.999), "epsilon": epsilon != 1e-7, "momentum": momentum != 0,
             "nesterov": bool(nesterov), "rho": rho != 0.9}
    takes = {"keras_adam": {"betas", "epsilon"}, "adam": {"betas", "epsilon"}, "sgd": {"momentum", "nesterov"},
             "rmsprop": {"epsilon", "momentum", "rho"}}[optimizer]
    other = next((name for name, set_ in given.items() if set_ and name not in takes), None)
    if other is not None:
        raise ValueError(f"{other} is not an option of optimizer {optimizer!r}, which takes {', '.join(sorted(takes))}")
