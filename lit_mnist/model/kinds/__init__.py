"""Keras's layer kinds, one home each (a module per kind or small family). Importing this package registers
them all; ``KINDS``, ``EQUIVALENTS`` and ``ALIASES`` are what every reader of kinds looks them up in.
CONTRIBUTING.md shows how to add one."""

import importlib

from lit_mnist.model.kinds.base import ALIASES, EQUIVALENTS, KERAS_CLASSES, KINDS, Equivalent, Kind, Layer, register

# registered in this order, the order messages list the kinds in
FAMILIES = ("dense", "convolution", "pooling", "margins", "shaping", "noise", "normalization", "activation", "merging")
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["ALIASES", "EQUIVALENTS", "KERAS_CLASSES", "KINDS", "Equivalent", "Kind", "Layer", "register"]
