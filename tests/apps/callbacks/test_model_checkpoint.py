"""model_checkpoint: which epochs write a checkpoint, under Keras's formatted name, and its one-line refusals."""

import pytest

from lit_mnist.apps.callbacks import CallbackError, keras_callbacks
from tests.apps.callbacks.harness import drive, val_loss

NAME = "ck/m{epoch:02d}-{val_loss:.2f}.ckpt"


@pytest.mark.parametrize(("args", "expected"), [
    ({}, ["ck/m01-1.00.ckpt", "ck/m02-0.80.ckpt", "ck/m03-0.90.ckpt", "ck/m04-0.70.ckpt"]),
    ({"save_best_only": True}, ["ck/m01-1.00.ckpt", "ck/m02-0.80.ckpt", "ck/m04-0.70.ckpt"]),
    ({"save_best_only": True, "initial_value_threshold": 0.85}, ["ck/m02-0.80.ckpt", "ck/m04-0.70.ckpt"]),
    ({"save_best_only": True, "mode": "max"}, ["ck/m01-1.00.ckpt"]),  # mode decides what is best
])
def test_the_epochs_that_save_are_keras(args, expected):
    _, trainer, _ = drive([{"model_checkpoint": {"filepath": NAME, **args}}], val_loss(1.0, 0.8, 0.9, 0.7))
    assert [path for path, _ in trainer.saved] == expected


def test_save_weights_only_is_lightnings_weights_only():
    _, trainer, _ = drive([{"model_checkpoint": {"filepath": "w.ckpt", "save_weights_only": True}}], val_loss(1.0))
    assert trainer.saved == [("w.ckpt", True)]


@pytest.mark.parametrize(("filepath", "expected"), [
    ("m.keras", "filepath must end in .ckpt"),
    ("m{val_acc}.ckpt", "names {val_acc}, which is not a field Keras fills"),
    ("m{epoch:q}.ckpt", "is not a format Keras reads"),
])
def test_a_path_keras_would_not_fill_is_one_line(filepath, expected):
    with pytest.raises(CallbackError, match=r"^callbacks item 1 \(model_checkpoint\): ") as e:
        keras_callbacks([{"model_checkpoint": filepath}])
    assert expected in str(e.value) and "\n" not in str(e.value)
