"""terminate_on_nan in a fit whose loss turns NaN (a learning rate of 1e30 on raw pixels): training stops at the
end of that batch, as Keras's TerminateOnNaN does (it checks every batch's logs), that epoch's validation still
runs and the epoch-end items see it (Keras's fit breaks out of the batches, then validates and calls
on_epoch_end), and without the item every epoch runs."""

import math
import sys

import pytest
from lightning.pytorch.callbacks import Callback

from lit_mnist.apps import fit

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
EPOCHS, BATCH, ROWS, VALIDATION = 3, 30, 300, 0.25


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


class RunningLoss(Callback):
    """After each batch, whether the epoch's running mean of the loss so far (Keras's batch ``loss``) is finite."""

    def __init__(self) -> None:
        self.finite: list[bool] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss, _, rows = pl_module._train_totals.tolist()
        self.finite.append(math.isfinite(loss / rows))


def diverging_fit(write_csv, tmp_path, monkeypatch, callbacks: str | None):
    monkeypatch.chdir(tmp_path)
    path = write_csv(n=ROWS)
    options = ["--callbacks", callbacks] if callbacks else []
    cli = fit._make_cli(["--data.path", str(path), "--data.batch_size", str(BATCH), "--model.lr", "1e30",
                         "--trainer.max_epochs", str(EPOCHS), "--data.validation_split", str(VALIDATION),
                         "--trainer.default_root_dir", str(tmp_path / "runs"), *options, *QUIET])
    recorder = RunningLoss()
    cli.trainer.callbacks.insert(0, recorder)  # it sees each batch before the item acts on it
    return cli, recorder


def test_training_stops_at_the_batch_whose_loss_is_nan_and_that_epoch_still_validates(write_csv, tmp_path,
                                                                                      monkeypatch, capsys):
    cli, recorder = diverging_fit(write_csv, tmp_path, monkeypatch, "[terminate_on_nan, {csv_logger: history.csv}]")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    first_bad = recorder.finite.index(False)
    assert 0 < first_bad < cli.trainer.num_training_batches - 1  # mid-epoch: a check at the epoch's end would run on
    assert len(recorder.finite) == first_bad + 1 == cli.trainer.global_step  # not one batch more
    assert f"Batch {first_bad}: Invalid loss, terminating training" in capsys.readouterr().out
    header, *rows = (line.split(",") for line in (tmp_path / "history.csv").read_text().splitlines())
    assert len(rows) == 1 and cli.trainer.current_epoch == 1  # the epoch it stopped in ends, no other starts
    assert rows[0][header.index("val_loss")] == "nan"  # that epoch was validated, with the diverged weights


def test_companion_without_the_item_every_epoch_runs(write_csv, tmp_path, monkeypatch):
    cli, recorder = diverging_fit(write_csv, tmp_path, monkeypatch, None)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert not all(recorder.finite)  # it did diverge
    assert len(recorder.finite) == cli.trainer.global_step == EPOCHS * cli.trainer.num_training_batches


def test_raise_error_raises_keras_s_error_at_that_batch(write_csv, tmp_path, monkeypatch):
    cli, recorder = diverging_fit(write_csv, tmp_path, monkeypatch, "[{terminate_on_nan: {raise_error: true}}]")
    with pytest.raises(RuntimeError, match=r"^NaN or Inf loss encountered at batch (\d+)\. Loss value: nan\. "
                                           r"Terminating training immediately\.$") as raised:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    first_bad = recorder.finite.index(False)
    assert raised.match(f"batch {first_bad}\\.") and len(recorder.finite) == first_bad + 1
