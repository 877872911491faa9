"""The model: plain nn.Modules (the original dense net, a CNN), the LightningModule, Keras's Adam."""

from lit_mnist.model.keras_adam import KerasAdam
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.net import ConvNet, DenseNet, keras_init_

__all__ = ["ConvNet", "DenseNet", "KerasAdam", "LitMNIST", "keras_init_"]
