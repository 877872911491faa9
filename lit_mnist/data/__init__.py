"""The data path: CSV reader, MNIST from mirrors, the parse cache, the datamodule and its batches."""

from __future__ import annotations

from lit_mnist.lazy import lazy_exports

_EXPORTS = {
    "Digits": "lit_mnist.data.reader",
    "MNISTDataModule": "lit_mnist.data.datamodule",
    "parse_digits": "lit_mnist.data.reader",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

