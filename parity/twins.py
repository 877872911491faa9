"""A LitMNIST configuration and its Keras twin, built alike from one layer list: what every parity level compares."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from lit_mnist.model.kinds import KINDS
from lit_mnist.model.layers import INPUT, Layer, as_items, resolve
from lit_mnist.model.module import LitMNIST, class_weights
from parity import keras_reference


@dataclass(frozen=True)
class Twins:
    """``options``: LitMNIST's arguments (the layer list, the class count and image shape, the optimizer, the
    schedule, the loss's label smoothing, the initialisation); ``pixel_stats``: the training split's (mean, std)
    when both standardise their inputs; ``epochs``, ``batch_size``, ``validation_freq`` (validation after
    every n-th epoch) and ``callbacks`` (the ``callbacks:`` items, made anew on each side for each training)
    shape each independent training."""

    options: dict = field(default_factory=dict)
    pixel_stats: tuple | None = None  # (mean, std): floats, or per channel lists
    epochs: int = keras_reference.EPOCHS
    batch_size: int = keras_reference.BATCH_SIZE
    validation_freq: int = 1
    callbacks: list | None = None

    @classmethod
    def of(cls, module: LitMNIST, pixel_stats, epochs: int, batch_size: int, validation_freq: int = 1,
           callbacks: list | None = None) -> Twins:
        """The twins of ``module`` (its hyper-parameters as built), trained as the given options say."""
        return cls(dict(module.hparams), pixel_stats if module.hparams.normalize else None, epochs, batch_size,
                   validation_freq, callbacks)

    @property
    def num_classes(self) -> int:
        return self.options.get("num_classes", 10)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.options.get("image_shape", (28, 28)))

    @property
    def layers(self) -> list[Layer]:
        return resolve(self.options.get("layers"), self.num_classes, self.image_shape)

    @property
    def name(self) -> str:
        """The layers' kinds in order; where one does not take the layer before it, the layers it takes too:
        ``conv2d -> add(stem, batch_normalization)``."""
        parts, previous = [], INPUT
        for layer in self.layers:
            parts.append(layer.kind if layer.inputs == (previous,) else f"{layer.kind}({', '.join(layer.inputs)})")
            previous = layer.name
        return " -> ".join(parts)

    @property
    def has_dropout(self) -> bool:
        return any(layer.spec.randomness and layer.args[layer.spec.randomness] > 0 for layer in self.layers)

    def steps_per_epoch(self, train_rows: int) -> int:
        return math.ceil(train_rows / self.batch_size)

    def class_weight(self, labels: np.ndarray) -> dict[int, float] | None:
        """The ``class_weight`` option as Keras's ``fit(class_weight=...)`` takes it, each class's weight by label
        (``balanced``: from the counts of ``labels``, the training rows'); None without the option."""
        option = self.options.get("class_weight")
        if option is None:
            return None
        counts = np.bincount(np.asarray(labels), minlength=self.num_classes).tolist()
        names = self.options.get("class_names") or [str(k) for k in range(self.num_classes)]
        return dict(enumerate(class_weights(option, self.num_classes, names, counts)))

    def without_dropout(self) -> Twins:
        """The same twins with every dropout rate (and noise's stddev) 0: the random masks and noise cannot be shared
        across frameworks."""
        items = as_items(self.layers)
        for item in items:
            (kind, args), = item.items()
            if KINDS[kind].randomness:  # the argument that turns its masks or noise off
                args[KINDS[kind].randomness] = 0.0
        return replace(self, options={**self.options, "layers": items})

    def keras(self, seed: int, steps_per_epoch: int | None = None, steps_per_execution: int = 1,
              dtype: str = "float32"):
        """The Keras twin, compiled (``steps_per_epoch``: for a learning-rate schedule; None: a constant rate)."""
        return keras_reference.build(self, seed, steps_per_epoch, steps_per_execution, dtype)

    def lightning(self, **overrides) -> LitMNIST:
        """The Lightning twin (``overrides``: other LitMNIST arguments, for the tests' deliberate breakages)."""
        module = LitMNIST(**{**self.options, "normalize": self.pixel_stats is not None, **overrides})
        if self.pixel_stats is not None:  # fit() sets them from the datamodule; the levels without a Trainer here
            for buffer, value in zip((module.pixel_mean, module.pixel_std), self.pixel_stats):
                buffer.copy_(torch.as_tensor(value).reshape(buffer.shape))
        return module


ORIGINAL = Twins()  # the original notebook's dense net on raw pixels, 15 epochs of batch 500, MNIST's sizes
