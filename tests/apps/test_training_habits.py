"""Keras's training habits in a real fit.py run, on small generated data: a dense item's l2 kernel regularizer and
max_norm kernel constraint under AdamW with weight decay, clipnorm and an exponential decay; and class weights
on imbalanced classes."""

import json
import sys

import pytest
import torch

from lit_mnist.apps import fit
from lit_mnist.apps.entry import call
from tests.conftest import csv_text, synthetic_digits

OPTIMIZER = ("{adamw: {weight_decay: 0.004, clipnorm: 1.0, learning_rate: {exponential_decay: "
             "{initial_learning_rate: 0.01, decay_steps: 2, decay_rate: 0.5}}}}")
CONSTRAINED = "[{dense: 8, kernel_regularizer: {l2: 0.01}, kernel_constraint: {max_norm: {max_value: 0.5}}}]"
STEPS_PER_EPOCH, EPOCHS = 4, 2  # 100 rows: 80 to train on, in batches of 20


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


def _csv(tmp_path, classes, n=100):
    path = tmp_path / "rows.csv"
    path.write_text(csv_text(*synthetic_digits(n, 0, classes, 16)))
    return path


def _fit(tmp_path, layers: str, *extra: str):
    root = tmp_path / "runs"
    assert call(fit.main, ["--data.path", str(_csv(tmp_path, 3)), "--model.layers", layers, "--model.optimizer",
                           OPTIMIZER, "--data.batch_size", "20", "--trainer.max_epochs", str(EPOCHS),
                           "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
                           "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(root),
                           *extra]) == 0
    return next(root.glob("lightning_logs/*"))


def _kernel_norms(run) -> torch.Tensor:
    """Each unit's incoming weights' norm (Keras's axis 0 of a (in, out) kernel: torch's rows)."""
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return torch.linalg.vector_norm(state["net.dense.weight"], dim=1)


def _scalars(run) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list] = {}
    for events in run.glob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return found


@pytest.fixture(scope="module")
def constrained(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("constrained"), CONSTRAINED)


def test_the_max_norm_constraint_holds_after_training(constrained):
    assert float(_kernel_norms(constrained).max()) <= 0.5 + 1e-6


def test_companion_without_the_constraint_the_norms_exceed_it(tmp_path):
    run = _fit(tmp_path, "[{dense: 8, kernel_regularizer: {l2: 0.01}}]")
    assert float(_kernel_norms(run).max()) > 0.5


def test_the_penalty_is_logged_apart(constrained):
    penalty = [value for _, value in _scalars(constrained)["train/penalty"]]
    assert len(penalty) == EPOCHS and all(value > 0 for value in penalty)


def test_the_logged_learning_rate_follows_the_schedule_step_by_step(constrained):
    """Each step's rate, logged at that step; after each epoch, under the same name, the next step's (Keras's
    history)."""
    logged = _scalars(constrained)["learning_rate"]  # in the order logged: a step's, then the epoch's at its end
    per_step, per_epoch = {}, []
    for step, value in logged:
        if step in per_step:
            per_epoch.append(value)
        else:
            per_step[step] = value
    total = STEPS_PER_EPOCH * EPOCHS
    assert list(per_step.values()) == pytest.approx([0.01 * 0.5 ** (step / 2) for step in range(total)], rel=1e-6)
    assert per_epoch == pytest.approx([0.01 * 0.5 ** (epoch * STEPS_PER_EPOCH / 2) for epoch in (1, 2)], rel=1e-6)


def test_companion_a_rate_held_per_epoch_is_not_the_schedule_stepped_per_step():
    per_epoch = [0.01 * 0.5 ** ((step // STEPS_PER_EPOCH) * STEPS_PER_EPOCH / 2) for step in range(8)]
    assert per_epoch != pytest.approx([0.01 * 0.5 ** (step / 2) for step in range(8)], rel=1e-6)


def test_balanced_class_weights_train_on_imbalanced_rows(tmp_path, capsys):
    root = tmp_path / "runs"
    csv = _csv(tmp_path, [0, 0, 0, 0, 0, 0, 1, 2], n=160)
    assert call(fit.main, ["--data.path", str(csv), "--model.class_weight", "balanced", "--trainer.max_epochs", "2",
                           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                           "--trainer.default_root_dir", str(root)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    metrics = json.loads(next(root.glob("lightning_logs/*/metrics.json")).read_text())
    counts = metrics["train_class_counts"]
    assert metrics["hparams"]["class_weight"] == "balanced" and max(counts) > 3 * min(c for c in counts if c)
