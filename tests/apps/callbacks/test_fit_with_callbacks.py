"""fit.py with Keras's callbacks: a run whose rate drops on a plateau and whose best weights come back, and the
one-line refusals, before the data are read."""

import itertools
import sys

import pytest
import torch

from lit_mnist.apps import fit
from lit_mnist.apps.entry import call

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


def test_the_rate_drops_on_a_plateau_and_the_best_epochs_weights_come_back(write_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_csv(n=300)
    # min_delta 100: no epoch improves the loss by that much, so each one after the first is a plateau
    callbacks = ("[{reduce_lr_on_plateau: {monitor: val_loss, patience: 0, min_delta: 100, factor: 0.5}},"
                 " {early_stopping: {monitor: val_accuracy, patience: 2, restore_best_weights: true}},"
                 " {model_checkpoint: {filepath: best.ckpt, monitor: val_accuracy, save_best_only: true}},"
                 " {model_checkpoint: last_epoch.ckpt}, {csv_logger: history.csv}]")
    cli = fit._make_cli(["--data.path", str(path), "--data.batch_size", "30", "--trainer.max_epochs", "8",
                         "--trainer.default_root_dir", str(tmp_path / "runs"), "--data.validation_split", "0.25",
                         "--callbacks", callbacks, *QUIET])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    rows = [line.split(",") for line in (tmp_path / "history.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    rates = [float(row[header.index("learning_rate")]) for row in rows]
    # the rate each epoch ran at: halved at the end of every epoch after the first
    assert len(rates) >= 3 and rates[0] == rates[1] and all(
        b == pytest.approx(a / 2) for a, b in itertools.pairwise(rates[1:]))
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] < rates[-1]
    best = torch.load(tmp_path / "best.ckpt", weights_only=True)["state_dict"]
    last = torch.load(tmp_path / "last_epoch.ckpt", weights_only=True)["state_dict"]
    ours = cli.model.state_dict()
    assert all(torch.equal(ours[k], best[k]) for k in best if k.startswith("net."))
    assert not all(torch.equal(ours[k], last[k]) for k in last if k.startswith("net."))  # the restore did something


@pytest.mark.parametrize(("options", "expected"), [
    (["--callbacks", "[early_stoping]"], "callbacks item 1: unknown callback 'early_stoping' (did you mean"),
    (["--callbacks", "[{early_stopping: {patiense: 2}}]"], "callbacks item 1 (early_stopping): unknown argument"),
    (["--callbacks", "[{early_stopping: {monitor: val_acc}}]"], "monitor 'val_acc' is neither logged"),
    (["--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor", "val_acc"],
     "--trainer.callbacks EarlyStopping: monitor 'val_acc' is neither logged"),
    (["--checkpoint.monitor", "acc"], "--checkpoint: monitor 'acc' is neither logged"),
])
def test_a_bad_callback_or_monitor_is_one_line_before_the_data_are_read(write_csv, tmp_path, capsys, options,
                                                                       expected):
    path = write_csv(n=100)
    assert call(fit.main, ["--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "runs"), *QUIET,
                           *options]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert "parsed" not in out and not (tmp_path / "runs").exists()


def test_reduce_lr_on_plateau_with_a_schedule_is_refused_in_one_line_before_training(write_csv, tmp_path, capsys):
    path = write_csv(n=100)
    assert call(fit.main, ["--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "runs"), *QUIET,
                           "--model.optimizer", ("{adam: {learning_rate: {exponential_decay: {initial_learning_rate: "
                           "0.01, decay_steps: 10, decay_rate: 0.5}}}}"), "--callbacks", "[reduce_lr_on_plateau]"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: callbacks item 1 (reduce_lr_on_plateau): the optimizer was created with a learning-rate "
                   "schedule (exponential_decay) as its learning rate, hence its learning rate is not settable (Keras refuses it too): give a "
                   "constant learning rate, or leave the callback out\n")
    assert not (tmp_path / "runs").exists()


def test_lightnings_early_stopping_takes_a_keras_name(write_csv, tmp_path):
    path = write_csv(n=100)
    cli = fit._make_cli(["--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "runs"), *QUIET,
                         "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor", "val_accuracy",
                         "--trainer.callbacks.mode", "max", "--checkpoint.monitor", "val_loss"])
    monitors = {type(c).__name__: c.monitor for c in cli.trainer.callbacks if hasattr(c, "monitor")}
    assert monitors == {"EarlyStopping": "val/acc", "ModelCheckpoint": "val/loss"}


def test_an_epoch_without_validation_offers_no_val_figures_as_in_keras(write_csv, tmp_path, monkeypatch):
    """Validated every second epoch: Keras's logs of the others have no val_ figures (the CSV says NA, and
    early_stopping skips the epoch rather than counting it); Lightning would offer the last validation's."""
    monkeypatch.chdir(tmp_path)
    path = write_csv(n=200)
    callbacks = "[{early_stopping: {monitor: val_loss, patience: 1, min_delta: 100}}, {csv_logger: history.csv}]"
    cli = fit._make_cli(["--data.path", str(path), "--data.batch_size", "50", "--trainer.max_epochs", "6",
                         "--trainer.check_val_every_n_epoch", "2", "--trainer.default_root_dir", str(tmp_path / "runs"),
                         "--callbacks", callbacks, *QUIET])
    with pytest.warns(UserWarning, match="val_loss"):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    rows = [line.split(",") for line in (tmp_path / "history.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    val = [row[header.index("val_loss")] for row in rows]
    assert val[0] == "NA" and val[2] == "NA" and val[1] != "NA"
    # patience 1 with no epoch improving: validated epochs 2 and 4 stop it at 4; counting the unvalidated
    # epochs' stale figures would have stopped it at 3
    assert len(rows) == 4 and cli.trainer.current_epoch == 4
