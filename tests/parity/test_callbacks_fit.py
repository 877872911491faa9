"""Level 3 with Keras callbacks: both sides train with the same items (Keras's own callbacks on the twin), so an
early_stopping item stops both; and Keras's TerminateOnNaN, like the item, still validates the epoch it stops in."""

import contextlib
import io
import json
import math

import numpy as np
import pytest

from tests.conftest import require_the_parity_extra

require_the_parity_extra()

from parity import statistics
from parity.cli import main as parity_main
from parity.twins import Twins

pytestmark = pytest.mark.parity
# min_delta 100: no epoch improves val_loss by that much, so the second epoch ends the training (patience 1)
STOP_AT_THE_SECOND = "[{early_stopping: {monitor: val_loss, min_delta: 100, patience: 1}}]"


def run_parity(tmp_path, write_csv, callbacks: str | None) -> dict:
    path = write_csv(n=600)
    options = ["--callbacks", callbacks] if callbacks else []
    with contextlib.redirect_stdout(io.StringIO()):
        parity_main(["--out", str(tmp_path / "out"), "--data.path", str(path), "--data.batch_size", "50",
                     "--trainer.max_epochs", "4", "--seeds", "3", "--steps", "2", *options])
    return json.loads((tmp_path / "out" / "parity.json").read_text())


def test_an_early_stopping_item_stops_both_sides(tmp_path, write_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run_parity(tmp_path, write_csv, STOP_AT_THE_SECOND)
    assert r["callbacks"] == [{"early_stopping": {"monitor": "val_loss", "min_delta": 100, "patience": 1}}]
    assert [run["epochs"] for run in r["keras"]["runs"]] == [2, 2, 2]
    assert [run["epochs"] for run in r["lightning"]["runs"]] == [2, 2, 2]


def test_companion_without_the_item_both_sides_run_every_epoch(tmp_path, write_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run_parity(tmp_path, write_csv, None)
    assert r["callbacks"] is None
    assert [run["epochs"] for run in r["keras"]["runs"] + r["lightning"]["runs"]] == [4] * 6


def test_keras_s_terminate_on_nan_validates_the_epoch_it_stops_in(images, tmp_path, monkeypatch):
    """The item's behaviour (tests/apps/callbacks/test_terminate_on_nan.py) is Keras's: one epoch, its val_loss
    NaN in the history, not a batch more (the twin then runs a step a graph call, so the check is every batch)."""
    monkeypatch.chdir(tmp_path)
    x, y = images
    twins = Twins({"num_classes": 4, "image_shape": [12, 12], "optimizer": {"sgd": {"learning_rate": 1e30}}}, epochs=3, batch_size=100,
                  callbacks=["terminate_on_nan", {"csv_logger": "history.csv"}])
    train, val, test = (x[:900], y[:900]), (x[900:1200], y[900:1200]), (x[1200:], y[1200:])
    record, model = statistics.train_keras(twins, train, val, test, seed=0)
    assert record["epochs"] == 1 and np.isnan(model.history.history["val_loss"][0])
    assert 1 < int(model.optimizer.iterations.numpy()) < math.ceil(900 / 100)  # stopped mid-epoch
    header, *rows = (line.split(",") for line in (tmp_path / "history.keras.csv").read_text().splitlines())
    assert len(rows) == 1 and rows[0][header.index("val_loss")] == "nan"
