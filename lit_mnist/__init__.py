"""lit-mnist: a PyTorch Lightning reimplementation of a Keras MNIST classifier, with a parity suite.

``lit_mnist.data`` holds the data path (CSV reader, MNIST mirrors and cache, datamodule, on-device
batches), ``lit_mnist.model`` the layer list, the net it builds, the LightningModule and Keras's Adam,
``lit_mnist.keras_import`` the reading of Keras model files, ``lit_mnist.service`` the HTTP service (its own
``/predict`` and the Open Inference Protocol v2), and ``lit_mnist.apps`` the commands (fit, predict, compare,
export, serve, import_keras) and what they write.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from lit_mnist.lazy import lazy_exports

_EXPORTS = {
    "DataError": "lit_mnist.errors",
    "Digits": "lit_mnist.data.reader",
    "MNISTDataModule": "lit_mnist.data.datamodule",
    "KerasAdam": "lit_mnist.model.keras_adam",
    "KerasNet": "lit_mnist.model.net",
    "LayerError": "lit_mnist.model.layers",
    "LitMNIST": "lit_mnist.model.module",
    "build_net": "lit_mnist.model.net",
}

try:
    __version__ = version("lit-mnist")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

