"""The model: the layer list (layers.py), the plain nn.Module it builds (net.py), the LightningModule, Keras's Adam."""

from __future__ import annotations

from lit_mnist.lazy import lazy_exports

_EXPORTS = {
    "KerasAdam": "lit_mnist.model.keras_adam",
    "KerasNet": "lit_mnist.model.net",
    "LayerError": "lit_mnist.model.layers",
    "LitMNIST": "lit_mnist.model.module",
    "build_net": "lit_mnist.model.net",
    "resolve": "lit_mnist.model.layers",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

