"""reduce_lr_on_plateau: Keras's decisions on hand-traced sequences, each with a mutation that breaks them."""

import pytest

from lit_mnist.apps.callbacks import KerasReduceLROnPlateau
from tests.apps.callbacks.harness import drive, f32, val_accuracy, val_loss

# patience 1, cooldown 2 on a flat loss: reduce at 1, two epochs of cooldown (the second also counts a wait, as
# Keras decrements then compares), reduce at 3, at 5
COOLDOWN = ({"reduce_lr_on_plateau": {"factor": 0.5, "patience": 1, "cooldown": 2}}, val_loss(*[1.0] * 7),
            [1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 1.25e-4, 1.25e-4])
# the loss improves by less than min_delta: a plateau for Keras
MIN_DELTA = ({"reduce_lr_on_plateau": {"factor": 0.5, "patience": 1, "min_delta": 1e-3}},
             val_loss(1.0, 0.9995, 0.999), [1e-3, 5e-4, 2.5e-4])
# patience 2: wait counts to 2 before the reduction; accuracy (auto: max) improving resets it
PATIENCE = ({"reduce_lr_on_plateau": {"monitor": "val_accuracy", "factor": 0.5, "patience": 2}},
            val_accuracy(0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7), [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4])
# min_lr is a floor, and nothing is lowered once there
MIN_LR = ({"reduce_lr_on_plateau": {"factor": 0.1, "patience": 0, "min_lr": 2e-4}}, val_loss(1.0, 1.0, 1.0, 1.0),
          [1e-3, 2e-4, 2e-4, 2e-4])


@pytest.mark.parametrize(("item", "rows", "expected"), [COOLDOWN, MIN_DELTA, PATIENCE, MIN_LR],
                         ids=["cooldown", "min_delta", "patience", "min_lr"])
def test_the_rate_after_each_epoch_is_keras(item, rows, expected):
    assert drive([item], rows)[0].lrs == [f32(lr) for lr in expected]


def test_mutations_change_the_rates(monkeypatch):
    """The sequences above can fail: patience off by one, min_delta ignored, cooldown ignored."""
    item, rows, expected = PATIENCE
    off_by_one = {"reduce_lr_on_plateau": {**item["reduce_lr_on_plateau"], "patience": 3}}
    assert drive([off_by_one], rows)[0].lrs != [f32(lr) for lr in expected]
    item, rows, expected = MIN_DELTA
    assert drive([{"reduce_lr_on_plateau": {**item["reduce_lr_on_plateau"], "min_delta": 0}}], rows)[0].lrs != \
        [f32(lr) for lr in expected]
    item, rows, expected = COOLDOWN
    monkeypatch.setattr(KerasReduceLROnPlateau, "in_cooldown", lambda self: False)
    assert drive([item], rows)[0].lrs != [f32(lr) for lr in expected]


def test_it_adds_learning_rate_to_the_logs_of_the_items_after_it():
    _, _, callbacks = drive([{"reduce_lr_on_plateau": {"patience": 0}}], val_loss(1.0, 1.0))
    assert callbacks[0].shared._logs["learning_rate"] == f32(1e-3)  # the rate the epoch ran at, before it is lowered
