"""scripts/fit.py: a short fit writes every artifact; bad input exits 2 with one line and touches nothing."""

import json
import subprocess
import sys

import pytest

from lit_mnist.apps import fit
from lit_mnist.apps.entry import call
from tests.conftest import REPO, run_env


def main(args):
    return call(fit.main, args)

ARTIFACTS = {"metrics.json", "confusion_matrix.png", "samples.png", "misclassified.png", "hparams.yaml", "config.yaml"}


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


def _fit(tmp_path, *args: str) -> int:
    return main(["--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.enable_progress_bar", "false",
                 "--trainer.enable_model_summary", "false", *args])


def test_short_fit_writes_every_artifact(write_csv, tmp_path, capsys):
    path = write_csv(n=400)
    assert _fit(tmp_path, "--data.path", str(path), "--trainer.max_epochs", "3", "--data.batch_size", "50") == 0
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert ARTIFACTS <= {p.name for p in run.iterdir()}
    assert list(run.glob("events.out.tfevents*"))
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last.ckpt"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_samples"] == 80 and metrics["epochs"] == 3 and metrics["seed"] == 42
    assert metrics["test_accuracy"] > 0.9  # the synthetic classes are easy: it learned
    assert sum(map(sum, metrics["confusion_matrix"])) == 80 and len(metrics["precision"]) == 10
    assert metrics["data_source"] == f"csv:{path.resolve()}"
    assert metrics["fit_seconds"] > 0 and metrics["device"].startswith("cpu")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"test accuracy {metrics['test_accuracy']:.4f} on 80 digits") and str(run) in last


def test_same_seed_same_result(write_csv, tmp_path):
    path = str(write_csv(n=200))
    args = ["--data.path", path, "--trainer.max_epochs", "2", "--data.batch_size", "40"]
    assert _fit(tmp_path, *args) == 0 and _fit(tmp_path, *args) == 0
    runs = tmp_path / "runs" / "lightning_logs"
    first, second = (json.loads((runs / v / "metrics.json").read_text()) for v in ("version_0", "version_1"))
    assert first["test_loss"] == second["test_loss"]


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"label;pixel0;pixel1\n1;2;3\n", "line 1: values are separated by ';'; expected commas"),
    (b"\x00\x01\x02binary", "not a text file"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert _fit(tmp_path, "--data.path", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: {expected}" or (err.startswith(f"error: {path}: ") and expected in err)
    assert path.read_bytes() == content
    assert not (tmp_path / "runs").exists()


def test_bad_test_path_is_caught_before_training(write_csv, tmp_path, capsys):
    bad = tmp_path / "test.csv"
    bad.write_text("label,pixel0\n")
    assert _fit(tmp_path, "--data.path", str(write_csv()), "--data.test_path", str(bad)) == 2
    assert "test.csv: line 1: header has 2 columns" in capsys.readouterr().err


@pytest.mark.parametrize("where, expected", [("file", "is a file"), ("file/runs", "cannot create the runs' folder")])
def test_a_runs_folder_that_cannot_be_one_exits_2(write_csv, tmp_path, capsys, where, expected):
    (tmp_path / "file").write_text("keep")
    root = tmp_path / where
    args = ["--data.path", str(write_csv()), "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root}: {expected}") and err.count("\n") == 1
    assert (tmp_path / "file").read_text() == "keep"


@pytest.mark.parametrize("option, value, expected", [
    ("--data.batch_size", "0", "batch_size and eval_batch_size must be positive"),
    ("--data.val_split", "1.5", "val_split must be in [0, 1)"),
    ("--model.lr", "-1", "lr and lr_decay must be positive"),
    ("--trainer.max_epochs", "-5", "`max_epochs` must be a non-negative integer"),
])
def test_a_bad_option_value_exits_2_with_one_line(write_csv, tmp_path, capsys, option, value, expected):
    assert _fit(tmp_path, "--data.path", str(write_csv()), option, value) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: invalid option: {expected}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_the_script_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("label,pixel0\n7,300\n")
    result = subprocess.run([sys.executable, "scripts/fit.py", "--data.path", str(path)], cwd=REPO,
                            capture_output=True, text=True, env=run_env(LIT_MNIST_DATA_DIR=str(tmp_path / "d")))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {path}: line 1: header has 2 columns; missing 'pixel1' onwards (label,pixel0..pixel783)"


def test_print_config_lists_the_original_settings(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--print_config"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "max_epochs: 15" in out and "batch_size: 500" in out and "optimizer: keras_adam" in out
