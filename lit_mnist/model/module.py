"""LitMNIST: a layer list's net trained as Keras trains it, as a LightningModule.

The module owns the math (loss, optimizer, schedule) and the metrics; the net is a plain ``nn.Module`` built
from hyper-parameters that are plain data (the layer list, the class count, the image shape), so a checkpoint
loads with ``torch.load(weights_only=True)`` and ``load_from_checkpoint`` alike.
"""

from __future__ import annotations

import dataclasses
import logging
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

from lit_mnist.model import graphed, optimizers
from lit_mnist.model.layers import LayerError, as_items, image_size, kept_shape
from lit_mnist.model.net import build_net
from lit_mnist.model.optimizers import legacy

log = logging.getLogger(__name__)


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
        optimizer: a Keras optimizer as an item, as Keras names it (``adamw`` or ``AdamW``) or with Keras's
            arguments and defaults, ``{adamw: {learning_rate: 0.002, weight_decay: 0.01, clipnorm: 1.0}}``:
            ``adam`` (the default: Keras's Adam with Keras's defaults; ``keras_adam`` is an alias), ``adamw``,
            ``sgd``, ``rmsprop``, ``nadam``, ``adamax``, ``adagrad``, ``adadelta``, ``lion``, each computed as
            Keras 3 computes it, clipping, weight decay and constraints in Keras's order; and ``torch_adam``, the
            stock torch.optim.Adam (torch's arguments: ``lr``, ``betas``, ``eps``, ``weight_decay``,
            ``amsgrad``). ``learning_rate`` may be a Keras schedule item, stepped with Keras's step count:
            ``{exponential_decay: {initial_learning_rate, decay_steps, decay_rate, staircase}}``,
            ``piecewise_constant_decay``, ``cosine_decay`` (``alpha``, ``warmup_target``, ``warmup_steps``),
            ``cosine_decay_restarts``, ``inverse_time_decay``, ``polynomial_decay``; ``decay_steps: epoch`` is one
            epoch's steps (with ``staircase``: a decay after each epoch), and ``{one_cycle: {max_lr}}`` torch's
            one-cycle schedule over the whole fit (``lit_mnist/model/optimizers/``).
        lr: shorthand for the optimizer's constant learning rate (``--model.lr 0.002`` is the item's
            ``learning_rate: 0.002``; torch_adam's ``lr``).
        class_weight: Keras's ``fit(class_weight=...)``: a weight per class (``{0: 1.0, 1: 5.0}``, by label or
            by the data's class names; a class left out weighs 1), or ``balanced`` (scikit-learn's
            ``n_rows / (n_classes * rows_of_the_class)`` over the training split; a class without rows weighs
            1). The training loss is the sum of the weighted rows' losses over the number of rows; accuracy and
            the validation and test losses are unweighted, as Keras's.
        init: ``keras`` (each layer's Keras initialisers: Glorot-uniform kernels and zero biases unless the
            list says otherwise) or ``torch`` (PyTorch's defaults for every layer).
        epsilon, betas, momentum, nesterov, rho, lr_decay, one_cycle: former options, now the optimizer's
            arguments; read only from a config or checkpoint an earlier lit-mnist wrote (every one of them set),
            and refused, naming the new spelling, when given alone.
        label_smoothing: weight moved from the true class to a uniform target (0: none, as the original).
        matmul_precision: float32 matrix products and convolutions on a GPU: ``highest`` (float32, as on the
            CPU and in Keras), ``high`` or ``medium`` (TF32 or bfloat16 inside, faster on recent GPUs; results
            move by ~1e-3, so the parity levels' limits no longer hold). Sets ``torch.set_float32_matmul_precision``
            and cuDNN's TF32 switch for the run.
        cuda_graphs: on one CUDA device in 32-bit precision, replay each training step's forward and backward
            pass as a CUDA graph (``lit_mnist/model/graphed.py``); the same arithmetic, a fraction of the host's work.
        init_from: a lit-mnist checkpoint (trained, or imported from Keras) whose net's weights the net starts from:
            fine-tuning or transfer, not the resume of a run (that is ``--ckpt_path``). Its layers must be this
            net's; a head of another class count is initialised afresh, and a warning says so. An imported Keras
            optimizer's state in it (``keras_optimizer_state``) goes to ``optimizer_state``, which the optimizer
            built for training goes on from (the same optimizer only). The module only
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
        optimizer: str | dict = "adam",
        lr: float | None = None,
        class_weight: dict[int | str, float] | Literal["balanced"] | None = None,
        init: Literal["keras", "torch"] = "keras",
        label_smoothing: float = 0.0,
        matmul_precision: Literal["highest", "high", "medium"] = "highest",
        cuda_graphs: bool = True,
        init_from: str | None = None,
        source: dict | None = None,
        preparation: Literal["digit", "resize"] | None = None,
        epsilon: float | None = None,
        betas: tuple[float, float] | None = None,
        momentum: float | None = None,
        nesterov: bool | None = None,
        rho: float | None = None,
        lr_decay: float | None = None,
        one_cycle: bool | None = None,
    ) -> None:
        super().__init__()
        flat = {"epsilon": epsilon, "betas": betas, "momentum": momentum, "nesterov": nesterov, "rho": rho,
                "lr_decay": lr_decay, "one_cycle": one_cycle}
        item = _optimizer_item(optimizer, lr, flat)
        _check_options(label_smoothing, matmul_precision)
        # each step is written out (training_step): the optimizer and the schedule are stepped by hand, so that
        # on a GPU the forward and backward pass can be one CUDA graph
        self.automatic_optimization = False
        height, width, channels = image_size(image_shape)
        self.net = build_net(layers, num_classes, image_shape, init)
        if class_names is not None and (len(class_names) != num_classes or len(set(map(str, class_names))) != num_classes):
            raise LayerError(f"class_names must be {num_classes} different names, one per class; got {len(class_names)}")
        self.save_hyperparameters(ignore=["_instantiator", *legacy.FLAT])  # LightningCLI's, and the former options
        # as plain data, and the list as built (every argument written out), so that the checkpoint and
        # metrics.json describe the net whole (LightningCLI hands save_hyperparameters the options as given)
        # the optimizer item written out whole; --model.lr is in it
        self.hparams.update(layers=as_items(self.net.layers), num_classes=num_classes, normalize=normalize, lr=None,
                            optimizer=item, class_weight=_class_weight_option(class_weight),
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
        # each class's weight in the training loss (``class_weight``), on the device; None: unweighted. Set at
        # setup (``balanced`` needs the training split), not kept in checkpoints: the option is
        self.register_buffer("_class_weights", None, persistent=False)
        self.lr_schedule: optimizers.Schedule | None = optimizers.lr_schedule(item)  # the fit's counts: at configure
        # an imported Keras optimizer's state (its step count and slots), set by ``start_from`` for the optimizer
        # to go on from; never a hyper-parameter, so a checkpoint of the run does not apply it again
        self.optimizer_state: dict | None = None

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
        if stage == "fit" and self.hparams.get("class_weight") is not None:
            counts = datamodule.class_counts("train") if hasattr(datamodule, "class_counts") else None
            weights = class_weights(self.hparams.class_weight, self.num_classes, self.class_names, counts)
            self._class_weights = torch.tensor(weights, dtype=torch.float32, device=self.device)

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
        In training, with class weights, each row's loss is weighted by its class's (Keras's ``class_weight``:
        a sample weight, the batch's loss still divided by its rows).
        A shard's loss is its sum over ``rows / world_size``: DDP averages the ranks' gradients, so the
        result is the gradient of the global batch's mean, whatever each rank's share of the rows.
        """
        x, y = batch[0], batch[1]
        logits = self.logits(x)
        per_sample = F.cross_entropy(logits, y, reduction="none", label_smoothing=self.hparams.label_smoothing)
        if self._class_weights is not None and self.training:
            per_sample = per_sample * self._class_weights[y]
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
            if self.lr_schedule is not None:  # the step's rate, Keras's name; host work: only where it changes
                taken = optimizer.param_groups[0]["iterations"] - 1
                self.log("learning_rate", self.lr_schedule(taken), on_step=True, on_epoch=False)

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
        # the rate the next step takes, as Keras's history records it after each epoch
        trainer = self._trainer
        if trainer is not None and trainer.optimizers:
            self.log("learning_rate", float(trainer.optimizers[0].param_groups[0]["lr"]), on_step=False, on_epoch=True)
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

    def make_optimizer(self, lr: float | None = None, fit: optimizers.Fit | None = None) -> torch.optim.Optimizer:
        """``--model.optimizer`` over the parameters, the net's constraints applied after each step; ``lr``: a
        constant rate in place of the item's (the parity suite's teacher forcing), ``fit``: the fit's step counts
        that the item's schedule may refer to."""
        item = self.hparams.optimizer
        if lr is not None:
            item = _with_constant_rate(item, lr)
        constraints = getattr(self.net, "constraints", list)()
        optimizer = optimizers.build(item, self.parameters(), constraints, fit)
        if self.optimizer_state is not None and lr is None:  # goes on from an imported Keras optimizer
            state, named = self.optimizer_state, dict(self.named_parameters())
            optimizers.load_state(optimizer, {named[name]: slots for name, slots in state["slots"].items()},
                                  state["iterations"], state.get("scalars"))
        return optimizer

    def configure_optimizers(self):
        # the schedule is the optimizer's own, stepped with its step count (Keras's): no Lightning scheduler
        optimizer = self.make_optimizer()
        self.lr_schedule = optimizer.keras_flow.schedule
        return optimizer

    def on_train_start(self) -> None:
        """A schedule whose steps are the fit's learns them now, the data set up (and, resuming, its position
        restored: asking for them earlier would set the loader up anew)."""
        if self.lr_schedule is not None and self.lr_schedule.needs_fit:
            fit = optimizers.Fit(epoch_steps(self.trainer), optimizer_steps(self.trainer))
            self.lr_schedule = dataclasses.replace(self.lr_schedule, fit=fit)
            for optimizer in self.trainer.optimizers:
                optimizers.set_schedule(optimizer, self.lr_schedule)


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


def epoch_steps(trainer: L.Trainer) -> int:
    """The optimizer steps of one epoch (a loader of batch groups takes each group's batches in turn)."""
    optimizer_steps(trainer)  # loads the training data when not yet loaded
    batches = int(trainer.num_training_batches)
    loader = trainer.train_dataloader
    return loader.steps(batches) if getattr(loader, "group", 1) != 1 else batches


def _optimizer_item(optimizer, lr, flat: dict) -> dict:
    """The optimizer item the options say, written out whole: an earlier lit-mnist's flat options read as what
    they meant (one log line), a flat option alone refused, ``lr`` the item's constant rate."""
    if legacy.is_legacy(flat):
        item = optimizers.as_item(legacy.item_of(optimizer, lr, flat))
        log.info("the optimizer options of an earlier lit-mnist (optimizer %s with flat options), read as "
                 "--model.optimizer '%s'", optimizer, _compact(item))
        return item
    legacy.refuse_flat(flat)
    item = optimizers.as_item(optimizer)
    if lr is None:
        return item
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr must be positive; got {lr}")
    if isinstance(optimizers.learning_rate(item), dict):
        raise ValueError("--model.lr is a constant rate, and the optimizer has a schedule: set the schedule's rate "  # noqa: TRY004 (a user's option: its one-line error)
                         "in --model.optimizer instead")
    return _with_constant_rate(item, lr)


def _with_constant_rate(item: dict, lr: float) -> dict:
    (name, args), = item.items()
    return optimizers.as_item({name: {**args, "lr" if name == "torch_adam" else "learning_rate": float(lr)}})


def _compact(item: dict) -> dict:
    """An item with only what differs from the defaults, for messages."""
    (name, args), = item.items()
    defaults = optimizers.KNOWN[name]
    return {name: {k: v for k, v in args.items() if v != defaults.get(k)}}


def _class_weight_option(value):
    """``class_weight`` checked as far as it can be before the data: ``balanced`` or a mapping of weights."""
    if value is None or value == "balanced":
        return value
    if not isinstance(value, dict):
        raise ValueError(f"class_weight must be 'balanced' or a mapping class -> weight, got {value!r}")  # noqa: TRY004 (a user's option: its one-line error)
    for cls, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"class_weight {cls!r}: a weight must be a number of at least 0, got {weight!r}")
    return {cls: float(weight) for cls, weight in value.items()}


def class_weights(option, num_classes: int, class_names: list[str], counts: list[int] | None) -> list[float]:
    """Each class's weight: ``balanced`` (scikit-learn's ``n / (k * count)`` over the training rows' ``counts``;
    a class without rows weighs 1) or the mapping's, by label or class name (a class left out weighs 1)."""
    if option == "balanced":
        if counts is None:
            raise ValueError("class_weight balanced: the data gives no class counts of its training split")
        rows = sum(counts)
        return [rows / (num_classes * c) if c else 1.0 for c in counts]
    weights = [1.0] * num_classes
    names = {name: k for k, name in enumerate(class_names)}
    for cls, weight in option.items():
        k = names.get(str(cls)) if not isinstance(cls, int) or str(cls) in names else cls
        if k is None and isinstance(cls, str) and cls.lstrip("-").isdigit():
            k = int(cls)
        if not isinstance(k, int) or not 0 <= k < num_classes:
            raise ValueError(f"class_weight: {cls!r} is not a class of the data (labels 0-{num_classes - 1}, "
                             f"names {', '.join(class_names)})")
        weights[k] = weight
    return weights


def _check_options(label_smoothing, matmul_precision) -> None:
    """The training options' own checks, one line each."""
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}")
    if matmul_precision not in ("highest", "high", "medium"):
        raise ValueError(f"matmul_precision must be 'highest', 'high' or 'medium', got {matmul_precision!r}")
