"""lit-mnist: a PyTorch Lightning reimplementation of a Keras MNIST classifier, with a parity suite."""

import sys
import types

# TensorBoard's event writer imports all of TensorFlow when it is installed (seconds of start-up, and
# lit_mnist must not import it); this marker module is TensorBoard's own switch to its built-in stub.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

from lit_mnist.datamodule import MNISTDataModule
from lit_mnist.digits_csv import Digits
from lit_mnist.errors import DataError
from lit_mnist.keras_adam import KerasAdam
from lit_mnist.module import LitMNIST
from lit_mnist.net import DenseNet, keras_init_

__all__ = ["DataError", "DenseNet", "Digits", "KerasAdam", "LitMNIST", "MNISTDataModule", "keras_init_"]
__version__ = "0.1.0"
