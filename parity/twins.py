"""A LitMNIST configuration and its Keras twin, built alike: what every parity level compares."""

from __future__ import annotations

from dataclasses import dataclass

from lit_mnist.model.module import LitMNIST
from parity import keras_reference


@dataclass(frozen=True)
class Twins:
    """``arch``: ``dense`` (the original) or ``cnn``; ``pixel_stats``: the training split's (mean, std) when
    both standardise their inputs (``--data.normalize true``); ``epochs``: of each independent training;
    ``stem``: the CNN's first block, ``pool`` or ``stride`` (``LitMNIST``'s ``stem``)."""

    arch: str = "dense"
    pixel_stats: tuple[float, float] | None = None
    epochs: int = keras_reference.EPOCHS
    stem: str = "pool"

    @property
    def name(self) -> str:
        return f"{self.arch} ({self.stem} stem)" if self.arch == "cnn" and self.stem != "pool" else self.arch

    def keras(self, seed: int, steps_per_execution: int = 1):
        return keras_reference.build_model(seed, self.arch, self.pixel_stats, steps_per_execution, self.stem)

    def lightning(self, **options) -> LitMNIST:
        """The Lightning twin (``options``: other LitMNIST arguments, for the tests' deliberate breakages)."""
        options = {"stem": self.stem, **options}
        module = LitMNIST(arch=self.arch, normalize=self.pixel_stats is not None, **options)
        if self.pixel_stats is not None:  # fit() sets them from the datamodule; the levels without a Trainer here
            module.pixel_mean.fill_(self.pixel_stats[0])
            module.pixel_std.fill_(self.pixel_stats[1])
        return module


ORIGINAL = Twins()  # the original notebook's dense net on raw pixels, 15 epochs
