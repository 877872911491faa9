"""The ``callbacks:`` list in the layer list's grammar, as Keras's ``fit(callbacks=[...])``.

Each item is one Keras callback, by its snake_case name or Keras's class name, bare or mapped to its arguments
by Keras's names (Keras's defaults for the rest); a value that is not a mapping is its first argument, and
further keys are arguments, as in Keras's call::

    callbacks:
      - reduce_lr_on_plateau: {monitor: val_loss, factor: 0.5, patience: 2}
      - early_stopping: {monitor: val_accuracy, patience: 3, restore_best_weights: true}
      - csv_logger: history.csv
      - terminate_on_nan
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from lit_mnist.apps.callbacks.base import EpochLogs, KerasCallback
from lit_mnist.apps.callbacks.csv_logger import KerasCSVLogger
from lit_mnist.apps.callbacks.early_stopping import KerasEarlyStopping
from lit_mnist.apps.callbacks.model_checkpoint import KerasModelCheckpoint
from lit_mnist.apps.callbacks.reduce_lr_on_plateau import KerasReduceLROnPlateau
from lit_mnist.apps.callbacks.terminate_on_nan import KerasTerminateOnNaN
from lit_mnist.errors import DataError
from lit_mnist.model.kinds.arguments import did_you_mean

ITEMS: dict[str, type[KerasCallback]] = {
    "reduce_lr_on_plateau": KerasReduceLROnPlateau,
    "early_stopping": KerasEarlyStopping,
    "model_checkpoint": KerasModelCheckpoint,
    "csv_logger": KerasCSVLogger,
    "terminate_on_nan": KerasTerminateOnNaN,
}
KERAS_CLASSES = {cls.__name__.removeprefix("Keras"): name for name, cls in ITEMS.items()}  # ReduceLROnPlateau, ...


class CallbackError(DataError):
    pass


def keras_callbacks(items) -> list[KerasCallback]:
    """The Lightning callbacks of a ``callbacks:`` list (None: none), in its order, sharing each epoch's logs as
    Keras's do; a one-line :class:`CallbackError` naming the item where one cannot be built."""
    if items is None:
        return []
    items = [items] if isinstance(items, (str, Mapping)) else items
    if not isinstance(items, list):
        raise CallbackError(f"callbacks must be a list of Keras callbacks, got {items!r}")
    shared, built = EpochLogs(), []
    for position, item in enumerate(items, start=1):
        callback = build(position, item)
        callback.shared, callback.position = shared, position
        built.append(callback)
    return built


def build(position: int, item) -> KerasCallback:
    name, args = parse_item(position, item)
    where = f"callbacks item {position} ({name})"
    cls = ITEMS[name]
    takes = [p.name for p in inspect.signature(cls).parameters.values()]
    unknown = next((arg for arg in args if arg not in takes), None)
    if unknown is not None:
        raise CallbackError(f"{where}: unknown argument {unknown!r} ({did_you_mean(unknown, takes)}{name} takes "
                            f"{', '.join(takes) or 'no arguments'})")
    missing = [p.name for p in inspect.signature(cls).parameters.values()
               if p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        raise CallbackError(f"{where}: missing argument {missing[0]!r}")
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise CallbackError(f"{where}: {' '.join(str(e).split())}") from None


def parse_item(position: int, item) -> tuple[str, dict]:
    """(the item's snake_case name, its arguments by name), or a one-line error naming it."""
    if isinstance(item, str):
        name, given, more = item.strip(), {}, {}
    elif isinstance(item, Mapping) and item:
        (name, given), *more = item.items()
        more = dict(more)
    else:
        raise CallbackError(f"callbacks item {position}: expected one callback, as {{name: {{argument: value}}}}, "
                            f"{{name: first argument}} or a bare name, got {item!r}")
    name = KERAS_CLASSES.get(name, name)
    if name not in ITEMS:
        slip = did_you_mean(name, [*ITEMS, *KERAS_CLASSES])
        raise CallbackError(f"callbacks item {position}: unknown callback {name!r} ({slip}known: {', '.join(ITEMS)}; "
                            "Lightning's own callbacks go in --trainer.callbacks)")
    if given is None:
        given = {}
    elif not isinstance(given, Mapping):  # Keras's first positional argument: csv_logger: history.csv
        given = {next(iter(inspect.signature(ITEMS[name]).parameters), "?"): given}
    twice = next((arg for arg in more if arg in given), None)
    if twice is not None:
        raise CallbackError(f"callbacks item {position} ({name}): argument {twice!r} is given twice")
    return name, {**given, **more}
