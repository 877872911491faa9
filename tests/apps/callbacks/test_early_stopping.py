"""early_stopping: Keras's stop epoch and restored weights on hand-traced sequences, with mutations that break them."""

import pytest

from tests.apps.callbacks.harness import drive, val_accuracy, val_loss

# (item, rows, the epoch it stops at (0-based, None: ran out), the epoch whose weights the model ends with)
CASES = {
    # wait grows, then is compared: the best (0.7, epoch 1) is only equalled at 3, two epochs later: stop
    "patience_restore": ({"early_stopping": {"monitor": "val_accuracy", "patience": 2, "restore_best_weights": True}},
                         val_accuracy(0.5, 0.7, 0.6, 0.7, 0.65, 0.9), 3, 1),
    # a baseline not beaten keeps wait growing through improvements
    "baseline": ({"early_stopping": {"patience": 2, "baseline": 0.5}}, val_loss(0.9, 0.8, 0.8), 2, 2),
    # nothing counts before start_from_epoch
    "start_from_epoch": ({"early_stopping": {"start_from_epoch": 2}}, val_loss(1.0, 2.0, 3.0, 4.0), 3, 3),
    # Keras 3 restores the best weights at the end of training even when it ran to the last epoch
    "restore_without_stop": ({"early_stopping": {"patience": 10, "restore_best_weights": True}},
                             val_loss(1.0, 0.5, 0.7), None, 1),
    # min_delta: an improvement smaller than it is none
    "min_delta": ({"early_stopping": {"patience": 1, "min_delta": 0.01}}, val_loss(1.0, 0.995, 0.5), 1, 1),
}


@pytest.mark.parametrize("case", CASES)
def test_the_stop_and_the_weights_kept_are_keras(case):
    item, rows, stopped, weights_of = CASES[case]
    decisions = drive([item], rows)[0]
    assert (decisions.stopped, decisions.weights_of) == (stopped, weights_of)


@pytest.mark.parametrize(("case", "change"), [
    ("patience_restore", {"patience": 3}),  # patience off by one
    ("baseline", {"baseline": None}),  # the baseline ignored
    ("start_from_epoch", {"start_from_epoch": 0}),  # the warm-up ignored
    ("restore_without_stop", {"restore_best_weights": False}),  # restored only on a stop (here: never)
    ("min_delta", {"min_delta": 0}),  # min_delta ignored
])
def test_mutations_change_the_decisions(case, change):
    item, rows, stopped, weights_of = CASES[case]
    mutated = {"early_stopping": {**item["early_stopping"], **change}}
    decisions = drive([mutated], rows)[0]
    assert (decisions.stopped, decisions.weights_of) != (stopped, weights_of)
