"""scripts/fit.py: a short fit writes every artifact; bad input exits 2 with one line and touches nothing."""

import json
import os
import pickle
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

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
    assert metrics["num_classes"] == 10 and metrics["image_shape"] == [28, 28] and "class_names" not in metrics
    assert metrics["data_source"] == f"csv:{path.resolve()}"
    assert metrics["fit_seconds"] > 0 and metrics["device"].startswith("cuda" if torch.cuda.is_available() else "cpu")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"test accuracy {metrics['test_accuracy']:.4f} on 80 images") and str(run) in last


def test_classes_absent_from_the_rows_are_reported_as_such_rather_than_zero(tmp_path):
    from tests.conftest import csv_text, synthetic_digits

    pixels, labels = synthetic_digits(300)
    keep = labels != 3  # the digits 0-9 without 3: a class with no rows at all
    path = tmp_path / "no3.csv"
    path.write_text(csv_text(pixels[keep], labels[keep]))
    assert _fit(tmp_path, "--data.path", str(path), "--trainer.max_epochs", "3", "--data.batch_size", "50",
                "--data.num_classes", "12") == 0  # two more classes than the labels use
    metrics = json.loads((tmp_path / "runs/lightning_logs/version_0/metrics.json").read_text())
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (12, 12) and metrics["num_classes"] == 12
    assert metrics["classes_without_training_rows"] == metrics["classes_without_test_rows"] == [3, 10, 11]
    assert metrics["train_class_counts"][3] == 0 and metrics["test_class_counts"][10] == 0
    for figure, counts in (("precision", confusion.sum(0)), ("recall", confusion.sum(1))):
        assert [v is None for v in metrics[figure]] == [n == 0 for n in counts], (figure, metrics[figure])
        assert all(0 <= v <= 1 for v in metrics[figure] if v is not None)


def test_every_file_of_a_run_follows_the_umask_and_tensorboard_gets_the_real_figures(write_csv, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    previous = os.umask(0o022)
    try:
        assert _fit(tmp_path, "--data.path", str(write_csv(n=200)), "--trainer.max_epochs", "1") == 0
    finally:
        os.umask(previous)
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in run.rglob("*") if p.is_file()}
    assert set(modes.values()) == {"0o644"}, modes
    metrics = json.loads((run / "metrics.json").read_text())
    assert "_instantiator" not in (run / "hparams.yaml").read_text() and "_instantiator" not in metrics["hparams"]
    hp_metric = []
    for events in run.glob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "hp_metric" in accumulator.Tags()["scalars"]:
            hp_metric += [e.value for e in accumulator.Scalars("hp_metric")]
    assert hp_metric == [pytest.approx(metrics["test_accuracy"])]  # no -1 placeholder before it


@pytest.mark.parametrize("option", ["--optimizer", "--lr_scheduler"])
def test_lightning_cli_optimizer_options_are_not_offered(write_csv, tmp_path, capsys, option):
    """The model's optimizer is --model.optimizer, as recorded; LightningCLI's override would train with
    another one behind the record's back."""
    assert _fit(tmp_path, "--data.path", str(write_csv()), option, "SGD") == 2
    err = capsys.readouterr().err  # (jsonargparse's own wording, whose case changed between its versions)
    assert err.lower() == f"error: unrecognized arguments: {option.lower()} sgd (fit.py --help lists the options)\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("options, expected", [
    (["--trainer.gradient_clip_val", "1.0"], ("--trainer.gradient_clip_val 1.0: clipping is the optimizer's, as in Keras: "
                                             "--model.optimizer '{adam: {clipnorm: 1.0}}'")),
    (["--trainer.gradient_clip_algorithm", "value"], ("--trainer.gradient_clip_algorithm value: clipping is the "
                                                     "optimizer's")),
    (["--trainer.accumulate_grad_batches", "4"], ("--trainer.accumulate_grad_batches 4: gradient accumulation (Keras's "
                                                 "gradient_accumulation_steps) is not offered")),
])
def test_lightning_clipping_and_accumulation_are_refused_naming_keras_s_spelling(tmp_path, capsys, options, expected):
    """Refused before the data is read (a path that does not exist is never looked at)."""
    assert _fit(tmp_path, "--data.path", str(tmp_path / "nowhere.csv"), *options) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}") and err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_a_config_an_earlier_lit_mnist_wrote_trains_as_it_meant(write_csv, tmp_path, caplog):
    """LightningCLI wrote every flat option out: read as the item they meant, with one line saying so."""
    config = tmp_path / "old.yaml"
    config.write_text("model:\n  optimizer: adam\n  lr: 0.002\n  epsilon: 1.0e-07\n  betas: [0.9, 0.99]\n"
                      "  momentum: 0.0\n  nesterov: false\n  rho: 0.9\n  lr_decay: 0.5\n  one_cycle: false\n"
                      "trainer:\n  max_epochs: 1\n")
    with caplog.at_level("INFO", logger="lit_mnist"):
        assert _fit(tmp_path, "--config", str(config), "--data.path", str(write_csv(n=200))) == 0
    (line,) = [r.getMessage() for r in caplog.records if "earlier lit-mnist" in r.getMessage()]
    assert "torch_adam" in line and "exponential_decay" in line
    built = torch.load(next(tmp_path.glob("runs/lightning_logs/version_0/checkpoints/last.ckpt")),
                       weights_only=True)["hyper_parameters"]
    assert built["optimizer"]["torch_adam"]["betas"] == [0.9, 0.99] and "epsilon" not in built


@pytest.mark.parametrize("options, expected", [
    (["--model.arch", "dense"], "unrecognized arguments: --model.arch dense"),  # the net is a layer list now
    (["--data.batch_size", "x"], 'Parser key "data.batch_size": Expected a <class \'int\'>. Got value: x'),
    (["--trainer.precision", "fp8"], 'Parser key "trainer.precision": Does not validate against any of the Union'),
    (["--trainer.max_epochs"], "argument --trainer.max_epochs: expected one argument"),
    (["--config", "/nonexistent/run.yaml"], 'Parser key "config": File does not exist: \'/nonexistent/run.yaml\''),
])
def test_a_command_line_the_parser_refuses_is_one_line_not_a_usage_block(tmp_path, capsys, options, expected):
    assert _fit(tmp_path, *options) == 2
    err = capsys.readouterr().err
    assert err.lower().startswith(f"error: {expected}".lower()) and err.endswith(" (fit.py --help lists the options)\n"), err
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_a_config_whose_names_yaml_reads_as_booleans_says_so(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("data:\n  class_names: [no, yes]\n")
    assert _fit(tmp_path, "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: Parser key "data.class_names"') and err.count("\n") == 1
    assert err.endswith("YAML reads no, yes, on, off, true and false as booleans: quote a name that is one, 'no')\n")


def _described(help_text: str, prefixes: tuple[str, ...]) -> dict[str, bool]:
    """For each option starting with one of ``prefixes``: whether argparse printed a description for it."""
    lines = help_text.splitlines()
    found = {}
    for i, line in enumerate(lines):
        words = line.split()
        if line.startswith("  --") and words[0].startswith(prefixes):
            rest = line[24:].strip() if len(line) > 24 and line[22:24] == "  " else ""
            follow = lines[i + 1] if i + 1 < len(lines) else ""
            found[words[0]] = bool(rest) or (follow.startswith(" " * 24) and not follow.strip().startswith("--"))
    return found


def test_help_describes_every_option_of_the_project_under_headings_that_fit(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    described = _described(text, ("--model.", "--data.", "--report.", "--ckpt_path"))
    assert len(described) > 15 and all(described.values()), [k for k, v in described.items() if not v]
    headings = [line for line in text.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert all(not h.endswith("::") and not h.endswith(" the:") for h in headings), headings
    assert "Dense 128-64-128-10 classifier" not in text and "Lightning Trainer command line tool" not in text


def test_a_fit_warns_of_nothing_deprecated_says_no_seed_and_prints_one_result(write_csv, tmp_path, capsys, caplog,
                                                                              monkeypatch):
    """In-process, with the command's own process settings (the script itself: the slow test below)."""
    import logging
    import warnings

    from lit_mnist.apps.entry import quiet_process

    monkeypatch.setattr(logging.getLogger("lightning.fabric.utilities.seed"), "level", logging.INFO)
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_process()
        assert _fit(tmp_path, "--data.path", str(write_csv(n=200)), "--trainer.max_epochs", "1") == 0
    deprecated = [w for w in caught if issubclass(w.category, DeprecationWarning) or "deprecated" in str(w.message)]
    assert not deprecated, [str(w.message) for w in deprecated]
    printed = capsys.readouterr()
    assert (printed.out + printed.err).count("test accuracy") == 1 and "Seed set to" not in caplog.text


def test_a_refusal_is_all_a_fit_says(tmp_path, capsys):
    """No seed or device banner before the one line (the script in its own process: the slow test below)."""
    path = tmp_path / "bad.csv"
    path.write_text("label,pixel0\n7,300\n")
    assert _fit(tmp_path, "--data.path", str(path)) == 2
    printed = capsys.readouterr()
    assert printed.err == f"error: {path}: line 2, column pixel0: pixel 300 is not an integer in 0-255\n"
    assert printed.out == ""


@pytest.mark.slow
def test_a_plain_run_prints_no_deprecation_and_one_result(write_csv, tmp_path):
    result = subprocess.run([sys.executable, "scripts/fit.py", "--data.path", str(write_csv(n=200)),
                             "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs"),
                             "--trainer.enable_progress_bar", "false"], cwd=REPO, capture_output=True, check=False,
                            text=True, env=run_env(LIT_MNIST_DATA_DIR=str(tmp_path / "d")))
    assert result.returncode == 0, result.stderr[-2000:]
    console = result.stdout + result.stderr
    assert "deprecated" not in console and "Seed set to" not in console
    assert console.count("test accuracy") == 1


def test_bf16_mixed_precision_trains_end_to_end_on_the_cpu(write_csv, tmp_path):
    path = str(write_csv(n=400))
    assert _fit(tmp_path, "--data.path", path, "--trainer.max_epochs", "3", "--data.batch_size", "50",
                "--trainer.precision", "bf16-mixed") == 0
    metrics = json.loads((tmp_path / "runs" / "lightning_logs" / "version_0" / "metrics.json").read_text())
    assert metrics["trainer_precision"] == "bf16-mixed" and metrics["test_accuracy"] > 0.9


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
    ("--data.batch_size", "0", "batch_size, eval_batch_size and steps_per_execution must be positive"),
    ("--data.steps_per_execution", "0", ("batch_size, eval_batch_size and steps_per_execution must be positive; "
                                        "got 500, 1000, 0")),
    ("--data.val_split", "1.5", "val_split must be in [0, 1)"),
    ("--model.lr", "-1", "lr must be positive"),
    ("--model.optimizer", "adamz", "optimizer: unknown 'adamz' (did you mean 'adam'? known: adam, adamw, sgd"),
    ("--model.optimizer", "{adam: {clipnorm: 1, clipvalue: 1}}",
     "optimizer adam: only one of clipnorm, clipvalue and global_clipnorm can be set"),
    ("--model.momentum", "0.9", ("--model.momentum is now an argument of the optimizer: --model.optimizer "
                                 "'{sgd: {momentum: 0.9}}'")),
    ("--model.class_weight", "{0: -1}", "class_weight 0: a weight must be a number of at least 0"),
    ("--trainer.max_epochs", "-5", "`max_epochs` must be a non-negative integer"),
    ("--data.image_shape", "[28, 28, 4]", ("image_shape [28, 28, 4] has 4 channels; lit-mnist's images have 1 (grey) "
                                           "or 3 (colour): drop the alpha channel first")),
    ("--data.image_shape", "[28]", "image_shape must be [height, width] or [height, width, channels], got [28]"),
    ("--data.color_mode", "sepia", "color_mode must be grayscale or rgb (unset: grey where every image is), got 'sepia'"),
    ("--data.memory_share", "2", "memory_share must be in [0, 1] (a share of the device's free memory), got 2.0"),
])
def test_a_bad_option_value_exits_2_with_one_line(write_csv, tmp_path, capsys, option, value, expected):
    data = write_csv()
    assert _fit(tmp_path, "--data.path", str(data), option, value) == 2
    err = capsys.readouterr().err
    named = f"{data}: " if option == "--data.image_shape" else ""  # the shape of which data
    assert err.startswith(f"error: invalid option: {named}{expected}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("options, expected", [
    (["--trainer.devices", "-1"], "`devices` selected with `CPUAccelerator` should be an int > 0"),  # a TypeError
    (["--trainer.devices", "1,2"], "`devices` selected with `CPUAccelerator` should be an int > 0"),
    (["--trainer.accelerator", "tpu"], "Requirement 'torch_xla"),  # an ImportError
])
def test_a_device_layout_the_trainer_refuses_exits_2_with_one_line(write_csv, tmp_path, capsys, options, expected):
    assert _fit(tmp_path, "--data.path", str(write_csv()), "--trainer.accelerator", "cpu", *options) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: invalid option: {expected}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_script_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("label,pixel0\n7,300\n")
    result = subprocess.run([sys.executable, "scripts/fit.py", "--data.path", str(path)], cwd=REPO,
                            capture_output=True, check=False, text=True, env=run_env(LIT_MNIST_DATA_DIR=str(tmp_path / "d")))
    assert result.returncode == 2
    # the refusal is all the command says: no traceback, no seed or device banner before it
    assert result.stderr.splitlines() == [f"error: {path}: line 2, column pixel0: pixel 300 is not an integer in 0-255"]
    assert result.stdout == ""


def test_print_config_lists_the_original_settings(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--print_config"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "max_epochs: 15" in out and "batch_size: 500" in out and "optimizer: adam" in out


def test_the_shipped_fast_recipe_trains_as_its_yaml_says(write_csv, tmp_path):
    """fit.py --config lit_mnist/configs/cnn_fast.yaml (on a small CSV here; the recipe's MNIST figures come
    from scripts/bench.py --only cnn_fast)."""
    recipe = REPO / "lit_mnist" / "configs" / "cnn_fast.yaml"
    assert _fit(tmp_path, "--config", str(recipe), "--data.path", str(write_csv(n=400))) == 0
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["test_samples"] == 80  # 256 training rows: one batch an epoch
    given = yaml.safe_load((run / "hparams.yaml").read_text())  # the options as given
    assert given["layers"][0]["conv2d"]["strides"] == 2 and given["init"] == "torch"
    assert given["optimizer"]["torch_adam"]["lr"] == {"one_cycle": {"max_lr": 0.01}}
    assert given["label_smoothing"] == 0.1 and given["normalize"]
    built = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]  # the net as built
    assert built["layers"][0]["conv2d"]["strides"] == [2, 2] and built["layers"][-1] == {
        "dense": {"units": 128, "activation": "relu", "use_bias": True, "kernel_initializer": "glorot_uniform",
                  "bias_initializer": "zeros", "kernel_regularizer": None, "bias_regularizer": None,
                  "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}}


def test_a_spawned_rank_gets_the_commands_settings_when_it_unpickles_the_trainer(monkeypatch):
    """ddp_spawn's ranks are fresh interpreters that run no command: fit.py's CommandSettings callback,
    unpickled there with the Trainer, applies entry.quiet_process (the seed left unsaid)."""
    import logging

    blob = pickle.dumps([fit.CommandSettings()])
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    monkeypatch.setattr(seed_log, "level", logging.INFO)
    pickle.loads(blob)
    assert seed_log.level == logging.WARNING


def _start(tmp_path, name: str = "start.ckpt", **options) -> tuple:
    """A checkpoint to start from (``save_model``'s: weights and hyper-parameters), of a LitMNIST of ``options``
    whose weights no fresh net has (seeded apart from the fit's 42)."""
    from lit_mnist.model.module import LitMNIST
    from tests.conftest import save_model

    torch.manual_seed(7)
    model = LitMNIST(**options)
    return save_model(model, tmp_path / name), model


def test_init_from_starts_the_net_from_the_checkpoint_and_records_that_not_the_path(write_csv, tmp_path):
    path, start = _start(tmp_path)
    cli = fit._make_cli(["--data.path", str(write_csv()), "--model.init_from", str(path),
                         "--trainer.default_root_dir", str(tmp_path / "runs")])
    built = cli.model.net.state_dict()
    assert built.keys() == start.net.state_dict().keys()
    for key, value in start.net.state_dict().items():
        assert torch.equal(built[key], value), key
    assert cli.model.hparams["init_from"] is None  # a checkpoint of this run does not read the start again
    assert cli.model.hparams["source"] == {
        "init_from": {"checkpoint": str(path), "head_reinitialised": False,
                      "hyper_parameters": {"num_classes": 10, "image_shape": [28, 28], "source": None}},
        "source_of_that": None}


def test_init_from_a_checkpoint_of_other_classes_starts_the_head_afresh_and_warns(write_csv, tmp_path):
    path, start = _start(tmp_path, num_classes=3)
    with pytest.warns(UserWarning) as caught:
        cli = fit._make_cli(["--data.path", str(write_csv()), "--model.init_from", str(path),
                             "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert [str(w.message) for w in caught if "init_from" in str(w.message)] == [
        f"--model.init_from {path}: its head has 3 classes, this data 10: the head (dense_3) starts afresh"]
    built, theirs = cli.model.net.state_dict(), start.net.state_dict()
    assert all(torch.equal(built[key], theirs[key]) for key in theirs if not key.startswith("dense_3."))
    assert built["dense_3.weight"].shape == (10, 128)
    assert cli.model.hparams["source"]["init_from"]["head_reinitialised"] is True


@pytest.mark.parametrize("options, expected", [
    ({"layers": []}, "its net is not this one (dense.weight differs); give the layers it was trained with"),
    ({"image_shape": (8, 8)}, "its net is not this one (dense.weight differs); give the layers it was trained with"),
])
def test_init_from_another_net_exits_2_with_one_line_and_writes_nothing(write_csv, tmp_path, capsys, options,
                                                                        expected):
    path, _ = _start(tmp_path, **options)
    assert _fit(tmp_path, "--data.path", str(write_csv()), "--model.init_from", str(path)) == 2
    assert capsys.readouterr().err == f"error: --model.init_from {path}: {expected}\n"
    assert not (tmp_path / "runs").exists()


def test_init_from_what_is_no_start_exits_2_with_one_line_and_writes_nothing(write_csv, tmp_path, capsys):
    csv = str(write_csv())
    missing = tmp_path / "missing.ckpt"
    assert _fit(tmp_path, "--data.path", csv, "--model.init_from", str(missing)) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such checkpoint file\n"
    odd = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"layers": ["no_such_layer"]}}, odd)
    assert _fit(tmp_path, "--data.path", csv, "--model.init_from", str(odd)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --model.init_from {odd}: not a lit-mnist checkpoint of a layer list (")
    assert err.count("\n") == 1 and "no_such_layer" in err
    assert not (tmp_path / "runs").exists()


def test_a_graph_whose_join_does_not_fit_exits_2_naming_the_item_before_training(write_csv, tmp_path, capsys):
    layers = ("[{input: [28, 28, 1]}, {conv2d: {filters: 4, kernel_size: 3, name: a}}, "
              "{conv2d: {filters: 4, kernel_size: 3, padding: same, inputs: input, name: b}}, {add: {inputs: [a, b]}}, "
              "flatten]")
    assert _fit(tmp_path, "--data.path", str(write_csv()), "--model.layers", layers) == 2
    assert capsys.readouterr().err == ("error: model.layers item 4 (add): its inputs' shapes 26x26x4, 28x28x4 do not "
                                       "match (each axis must be equal, or 1 in all but one)\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # a fit of seconds; tests/apps/test_summary.py trains a graph a step in the fast set
def test_a_graph_list_trains_and_its_config_keeps_the_inputs(write_csv, tmp_path):
    layers = ("[{input: [28, 28, 1]}, {conv2d: {filters: 4, kernel_size: 3, padding: same, name: a}}, "
              "{conv2d: {filters: 4, kernel_size: 1, inputs: input, name: b}}, {add: {inputs: [a, b]}}, flatten]")
    assert _fit(tmp_path, "--data.path", str(write_csv(n=200)), "--model.layers", layers, "--trainer.max_epochs", "1") == 0
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]["layers"]
    assert saved[3] == {"add": {"inputs": ["a", "b"]}}
    assert json.loads((run / "metrics.json").read_text())["test_samples"] == 40


def _no_whole_copy(monkeypatch):
    """HostRows of more rows than a figure shows copied at once (``to``/``cpu``) fail: what is read from the cache's
    file is read a batch at a time, and the figures read the rows they show."""
    from lit_mnist.data.batches import HostRows

    to = HostRows.to

    def whole(self, device="cpu"):
        if len(self) > 100:
            raise AssertionError(f"{len(self)} rows copied whole")
        return to(self, device)

    monkeypatch.setattr(HostRows, "to", whole)
    monkeypatch.setattr(HostRows, "cpu", whole)


def test_data_read_from_the_cache_s_file_are_never_copied_whole_by_the_fit_or_its_report(write_csv, tmp_path,
                                                                                          monkeypatch):
    path = write_csv(n=1000)  # 200 test rows
    _no_whole_copy(monkeypatch)
    assert _fit(tmp_path, "--data.path", str(path), "--data.memory_share", "0", "--trainer.max_epochs", "1",
                "--data.batch_size", "240") == 0
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert json.loads((run / "metrics.json").read_text())["test_errors"] > 0 and (run / "misclassified.png").is_file()


def test_the_check_above_sees_a_whole_copy(write_csv, monkeypatch):
    """The companion: a split read from the file and copied whole fails under the same patch."""
    from lit_mnist.data.datamodule import MNISTDataModule

    path = str(write_csv(n=1000))
    dm = MNISTDataModule(path=path, memory_share=0.0)
    dm.setup("fit")
    _no_whole_copy(monkeypatch)
    with pytest.raises(AssertionError, match="rows copied whole"):
        dm.splits["test"][0].cpu()
