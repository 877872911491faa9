"""The model: the layer list (layers.py), the plain nn.Module it builds (net.py), the LightningModule, Keras's Adam."""

from lit_mnist.model.keras_adam import KerasAdam
from lit_mnist.model.layers import LayerError, resolve
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.net import KerasNet, build_net

__all__ = ["KerasAdam", "KerasNet", "LayerError", "LitMNIST", "build_net", "resolve"]
