"""The Keras twin's callbacks, built from the same ``callbacks:`` items as the Lightning side's.

The items already speak Keras: their names are Keras's classes in snake_case and their arguments Keras's
arguments, so each maps to ``keras.callbacks.<Class>(**arguments)`` as given. Two things change on the way,
and only these: a monitor given by the model's logged name (``val/acc``) takes Keras's (``val_accuracy``), and
a file the item writes gets a name of the Keras side's own, so that the two trainings do not write one file:
a checkpoint is Keras's own format (``best.ckpt`` -> ``best.keras``, ``best.weights.h5`` with
``save_weights_only``), a CSV history is tagged (``history.csv`` -> ``history.keras.csv``).

Keras is imported only where the callbacks are made: the mapping itself is plain data, testable without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from lit_mnist.apps.callbacks import items as lit_items
from lit_mnist.apps.callbacks.monitors import keras_name

# the item's name -> Keras's class in keras.callbacks
KERAS_CLASSES = {"reduce_lr_on_plateau": "ReduceLROnPlateau", "early_stopping": "EarlyStopping",
                 "model_checkpoint": "ModelCheckpoint", "csv_logger": "CSVLogger", "terminate_on_nan": "TerminateOnNaN"}
TAG = "keras"  # what the Keras side's file names carry


def keras_arguments(items, tag: str = TAG) -> list[tuple[str, dict]]:
    """(Keras's class name, its arguments) for each item of a ``callbacks:`` list (None: none), in order. The
    items are checked as the Lightning side checks them first: a bad one is the same one-line error."""
    lit_items.keras_callbacks(items)
    if items is None:
        return []
    items = [items] if isinstance(items, (str, Mapping)) else items
    mapped = []
    for position, item in enumerate(items, start=1):
        name, args = lit_items.parse_item(position, item)  # the items' own reading: one grammar on both sides
        mapped.append((KERAS_CLASSES[name], _keras_args(name, dict(args), tag)))
    return mapped


def _keras_args(name: str, args: dict, tag: str) -> dict:
    if "monitor" in args:
        args["monitor"] = keras_name(args["monitor"])
    if name == "model_checkpoint":
        suffix = ".weights.h5" if args.get("save_weights_only") else ".keras"  # what Keras's ModelCheckpoint takes
        args["filepath"] = args["filepath"].removesuffix(".ckpt") + suffix
    if name == "csv_logger":
        path = PurePath(args["filename"])
        args["filename"] = str(path.with_name(f"{path.stem}.{tag}{path.suffix}"))
    return args


def keras_callbacks(items, tag: str = TAG) -> list:
    """Keras's own callbacks of the items, fresh (each training starts them anew, as each fit does)."""
    import keras

    return [getattr(keras.callbacks, cls)(**args) for cls, args in keras_arguments(items, tag)]


def batch_checked(items) -> bool:
    """Whether an item acts after each batch (terminate_on_nan), where Keras calls it once per graph call of
    ``steps_per_execution`` steps: such a training runs a step a call, as the original's fit does."""
    return any(cls == "TerminateOnNaN" for cls, _ in keras_arguments(items))
