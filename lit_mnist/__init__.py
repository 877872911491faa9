"""lit-mnist: a PyTorch Lightning reimplementation of a Keras MNIST classifier, with a parity suite.

``lit_mnist.data`` holds the data path (CSV reader, MNIST mirrors and cache, datamodule, on-device
batches), ``lit_mnist.model`` the layer list, the net it builds, the LightningModule and Keras's Adam,
``lit_mnist.keras_import`` the reading of Keras model files, ``lit_mnist.service`` the HTTP service (its own
``/predict`` and the Open Inference Protocol v2), and ``lit_mnist.apps`` the commands (fit, predict, compare,
export, serve, import_keras) and what they write.
"""

from importlib.metadata import PackageNotFoundError, version

from lit_mnist.data import Digits, MNISTDataModule
from lit_mnist.errors import DataError
from lit_mnist.model import KerasAdam, KerasNet, LayerError, LitMNIST, build_net

try:
    __version__ = version("lit-mnist")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["DataError", "Digits", "KerasAdam", "KerasNet", "LayerError", "LitMNIST", "MNISTDataModule", "build_net"]
