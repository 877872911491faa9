"""The Keras twin's callbacks come from the same items, every argument carried under Keras's name (no Keras needed:
the mapping is plain data; test_callbacks_fit.py trains both sides with them)."""

import inspect

import pytest

from lit_mnist.apps.callbacks import ITEMS, CallbackError
from parity import callbacks

# every argument of every item given a value other than its default (the files' names aside, which must change)
EVERY_ARGUMENT = [
    {"reduce_lr_on_plateau": {"monitor": "val_accuracy", "factor": 0.5, "patience": 3, "verbose": 1, "mode": "max",
                              "min_delta": 0.01, "cooldown": 2, "min_lr": 1e-5}},
    {"early_stopping": {"monitor": "accuracy", "min_delta": 0.02, "patience": 4, "verbose": 1, "mode": "max",
                        "baseline": 0.5, "restore_best_weights": True, "start_from_epoch": 2}},
    {"model_checkpoint": {"filepath": "best-{epoch:02d}.ckpt", "monitor": "val_accuracy", "verbose": 1,
                          "save_best_only": True, "save_weights_only": False, "mode": "max", "save_freq": "epoch",
                          "initial_value_threshold": 0.3}},
    {"csv_logger": {"filename": "logs/history.csv", "separator": ";", "append": True}},
    {"terminate_on_nan": {"raise_error": True}},
]
RENAMED = {("ModelCheckpoint", "filepath"): "best-{epoch:02d}.keras",
           ("CSVLogger", "filename"): "logs/history.keras.csv"}


def check_carried(items, mapped) -> None:
    """Each item became Keras's class of its name with each of its arguments, unchanged unless renamed."""
    assert [cls for cls, _ in mapped] == [callbacks.KERAS_CLASSES[next(iter(item))] for item in items]
    for item, (cls, args) in zip(items, mapped):
        (_, given), = item.items()
        assert set(args) == set(given), f"{cls}: {set(given) ^ set(args)} not carried"
        for name, value in given.items():
            assert args[name] == RENAMED.get((cls, name), value), f"{cls}: {name}"


def test_every_item_and_argument_maps_to_keras_s_callback_of_the_same_name():
    assert {next(iter(item)) for item in EVERY_ARGUMENT} == set(ITEMS)  # every item covered
    for item in EVERY_ARGUMENT:
        (name, given), = item.items()
        takes = set(inspect.signature(ITEMS[name]).parameters)
        assert set(given) == takes, f"{name}: the test leaves out {takes - set(given)}"
    check_carried(EVERY_ARGUMENT, callbacks.keras_arguments(EVERY_ARGUMENT))


def test_companion_a_dropped_argument_fails_the_check(monkeypatch):
    original = callbacks._keras_args

    def dropping(name, args, tag):
        args = original(name, args, tag)
        args.pop("min_delta", None)
        return args

    monkeypatch.setattr(callbacks, "_keras_args", dropping)
    with pytest.raises(AssertionError, match="not carried"):
        check_carried(EVERY_ARGUMENT, callbacks.keras_arguments(EVERY_ARGUMENT))


def test_companion_an_unrenamed_file_fails_the_check(monkeypatch):
    """The two sides would write one CSV, each over the other's."""
    monkeypatch.setattr(callbacks, "_keras_args", lambda name, args, tag: args)
    with pytest.raises(AssertionError, match="filepath|filename"):
        check_carried(EVERY_ARGUMENT, callbacks.keras_arguments(EVERY_ARGUMENT))


@pytest.mark.parametrize(("item", "expected"), [
    ("terminate_on_nan", ("TerminateOnNaN", {})),  # a bare name
    ({"EarlyStopping": {"monitor": "val/acc"}}, ("EarlyStopping", {"monitor": "val_accuracy"})),  # the logged name
    ({"csv_logger": "history.csv"}, ("CSVLogger", {"filename": "history.keras.csv"})),  # the first argument
    ({"model_checkpoint": {"filepath": "w.ckpt", "save_weights_only": True}},
     ("ModelCheckpoint", {"filepath": "w.weights.h5", "save_weights_only": True})),  # what Keras takes of weights
])
def test_the_item_s_spellings_map_to_keras_s(item, expected):
    assert callbacks.keras_arguments([item]) == [expected]


def test_no_items_map_to_no_callbacks():
    assert callbacks.keras_arguments(None) == [] and not callbacks.batch_checked(None)
    assert callbacks.batch_checked([{"csv_logger": "h.csv"}, "terminate_on_nan"])
    assert not callbacks.batch_checked([{"csv_logger": "h.csv"}])


def test_a_bad_item_is_the_lightning_side_s_one_line_error():
    with pytest.raises(CallbackError, match=r"^callbacks item 1 \(early_stopping\): unknown argument 'patiense'"):
        callbacks.keras_arguments([{"early_stopping": {"patiense": 2}}])
