"""Keras's callbacks as items of a ``callbacks:`` list, each a Lightning callback with Keras 3's semantics."""

from lit_mnist.apps.callbacks.base import KerasCallback
from lit_mnist.apps.callbacks.csv_logger import KerasCSVLogger
from lit_mnist.apps.callbacks.early_stopping import KerasEarlyStopping
from lit_mnist.apps.callbacks.items import ITEMS, CallbackError, keras_callbacks
from lit_mnist.apps.callbacks.model_checkpoint import KerasModelCheckpoint
from lit_mnist.apps.callbacks.reduce_lr_on_plateau import KerasReduceLROnPlateau, schedule_of
from lit_mnist.apps.callbacks.terminate_on_nan import KerasTerminateOnNaN

__all__ = [
           "ITEMS",
           "CallbackError",
           "KerasCSVLogger",
           "KerasCallback",
           "KerasEarlyStopping",
           "KerasModelCheckpoint",
           "KerasReduceLROnPlateau",
           "KerasTerminateOnNaN",
           "keras_callbacks",
           "schedule_of",
]
