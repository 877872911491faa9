"""Ctrl-C leaves a resumable checkpoint; resuming reaches the very weights of an uninterrupted run."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from lit_mnist.apps import fit
from lit_mnist.apps.entry import call
from lit_mnist.apps.interrupt import GracefulInterrupt
from lit_mnist.data.batches import TensorBatches
from tests.conftest import REPO, run_env

ARGS = ["--trainer.max_epochs", "3", "--data.batch_size", "40", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


class CtrlCAtStep(GracefulInterrupt):
    """Delivers a real SIGINT to this process at global step 10 (epoch 2 of 3, mid-epoch)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 10:
            signal.raise_signal(signal.SIGINT)


def _final(root):
    (path,) = root.glob("lightning_logs/version_*/checkpoints/last.ckpt")
    return torch.load(path, weights_only=True)


def _fit(root, csv, *extra):
    return call(fit.main, ["--trainer.default_root_dir", str(root), "--data.path", str(csv), *ARGS, *extra])


SCHEDULED_ADAMW = ["--model.optimizer", ("{adamw: {learning_rate: {exponential_decay: {initial_learning_rate: 0.002, "
                                         "decay_steps: epoch, decay_rate: 0.7}}, weight_decay: 0.05, clipnorm: 1.0}}")]


@pytest.mark.parametrize(("grouping", "stopped_at"), [([], 11), (["--data.steps_per_execution", "3"], 13),
                                                      (SCHEDULED_ADAMW, 11)], ids=["batches", "groups", "adamw"])
def test_interrupted_then_resumed_equals_uninterrupted(write_csv, tmp_path, monkeypatch, capsys, grouping, stopped_at):
    """Stopped after the batch (or the group of 3: steps 10-12) under way at step 10, then resumed; a scheduled
    AdamW with clipping resumes at its step count, its rate where it was."""
    csv = write_csv(n=400)  # 256 training rows: 7 batches an epoch, the last one partial
    assert _fit(tmp_path / "straight", csv, *(grouping if grouping is SCHEDULED_ADAMW else [])) == 0

    monkeypatch.setattr(fit, "GracefulInterrupt", CtrlCAtStep)
    assert _fit(tmp_path / "broken", csv, *grouping) == 130
    assert "resumable checkpoint" in capsys.readouterr().err
    interrupted = _final(tmp_path / "broken")
    assert interrupted["global_step"] == stopped_at and interrupted["epoch"] == 1  # mid-epoch

    monkeypatch.setattr(fit, "GracefulInterrupt", GracefulInterrupt)
    assert _fit(tmp_path / "broken", csv, *grouping, "--ckpt_path", "last") == 0
    straight, resumed = _final(tmp_path / "straight"), _final(tmp_path / "broken")
    assert resumed["global_step"] == straight["global_step"] == 21
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    for a, b in zip(straight["optimizer_states"][0]["state"].values(), resumed["optimizer_states"][0]["state"].values()):
        assert a["step"] == b["step"] and torch.equal(a["exp_avg"], b["exp_avg"])
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    groups = [ckpt["optimizer_states"][0]["param_groups"][0] for ckpt in (straight, resumed)]
    assert groups[0]["iterations"] == groups[1]["iterations"] == 21 and groups[0]["eps"] == groups[1]["eps"]
    assert groups[0]["lr"] == groups[1]["lr"]


def test_resume_without_the_loader_position_would_differ(write_csv, tmp_path, monkeypatch):
    """The companion: a loader that forgets where it was repeats batches, and the weights differ."""
    csv = write_csv(n=400)
    assert _fit(tmp_path / "straight", csv) == 0
    monkeypatch.setattr(fit, "GracefulInterrupt", CtrlCAtStep)
    assert _fit(tmp_path / "broken", csv) == 130
    monkeypatch.setattr(fit, "GracefulInterrupt", GracefulInterrupt)
    monkeypatch.setattr(TensorBatches, "load_state_dict", lambda self, state: None)
    assert _fit(tmp_path / "broken", csv, "--ckpt_path", "last") == 0
    straight, resumed = _final(tmp_path / "straight"), _final(tmp_path / "broken")
    assert not torch.equal(straight["state_dict"]["net.dense.weight"], resumed["state_dict"]["net.dense.weight"])


def test_nothing_to_resume_is_a_clear_error(write_csv, tmp_path, capsys):
    assert call(fit.main, ["--data.path", str(write_csv()), "--trainer.default_root_dir", str(tmp_path),
                           "--ckpt_path", "last"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_a_checkpoint_that_cannot_be_continued_is_one_line_before_anything_trains(write_csv, tmp_path, capsys):
    csv = write_csv(n=200)
    assert _fit(tmp_path, csv, "--trainer.max_epochs", "1") == 0
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    weights = torch.load(last, weights_only=True)
    del weights["optimizer_states"], weights["loops"]
    torch.save(weights, tmp_path / "weights.ckpt")
    capsys.readouterr()
    for extra, expected in [
        (["--ckpt_path", str(tmp_path / "absent.ckpt")], "absent.ckpt: no such checkpoint file"),
        (["--ckpt_path", str(csv)], "digits.csv: not a PyTorch checkpoint"),
        (["--ckpt_path", str(last), "--model.layers", "[{dense: 32}]"],
         "last.ckpt: a checkpoint of another network than the one"),
        (["--ckpt_path", str(tmp_path / "weights.ckpt")], "weights.ckpt: holds the weights alone"),
        (["--ckpt_path", "best"], "--ckpt_path best: a run continues from 'last' or from a checkpoint file"),
    ]:
        code = _fit(tmp_path, csv, *extra)
        err = capsys.readouterr().err
        assert code == 2 and expected in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in (tmp_path / "lightning_logs").iterdir()) == ["version_0"]  # no run was started
    # the check compares the network alone: an option of the training, not of the net, still lets it continue
    assert _fit(tmp_path, csv, "--ckpt_path", str(last), "--model.lr", "0.002") == 0


@pytest.mark.slow
def test_real_ctrl_c_on_the_script(write_csv, tmp_path):
    csv = write_csv(n=3000)
    root = tmp_path / "runs"
    command = [sys.executable, "scripts/fit.py", "--data.path", str(csv), "--trainer.default_root_dir", str(root),
               "--trainer.max_epochs", "200", "--data.batch_size", "20", "--trainer.enable_progress_bar", "false"]
    env = run_env(LIT_MNIST_DATA_DIR=str(tmp_path / "data"))
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(root.glob("lightning_logs/version_0/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "--ckpt_path last" in err
    checkpoint = torch.load(root / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert 0 < checkpoint["epoch"] < 200


EARLIER_CONFIG = ("model:\n  optimizer: keras_adam\n  lr: 0.002\n  epsilon: 1.0e-07\n  betas: [0.9, 0.999]\n"
                  "  momentum: 0.0\n  nesterov: false\n  rho: 0.9\n  lr_decay: 0.5\n  one_cycle: false\n")


def _as_an_earlier_lit_mnist_wrote_it(path):
    """The checkpoint rewritten in the former layout: the flat options in its hyper-parameters (as LightningCLI
    saved them), Keras's Adam's count as ``keras_step``, and ExponentialLR's state."""
    checkpoint = torch.load(path, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    hparams.pop("class_weight")
    hparams.update(optimizer="keras_adam", lr=0.002, epsilon=1e-7, betas=[0.9, 0.999], momentum=0.0, nesterov=False,
                   rho=0.9, lr_decay=0.5, one_cycle=False)
    for group in checkpoint["optimizer_states"][0]["param_groups"]:
        group["keras_step"] = group.pop("iterations")
    checkpoint["lr_schedulers"] = [{"gamma": 0.5, "last_epoch": 1, "base_lrs": [0.002], "_last_lr": [0.001]}]
    torch.save(checkpoint, path)


def test_a_checkpoint_an_earlier_lit_mnist_wrote_resumes_as_it_would_have(write_csv, tmp_path, monkeypatch, capsys):
    """Its config's flat options (keras_adam, lr_decay) read as the item they meant, the count continued: the run
    ends where one never interrupted ends."""
    csv, config = write_csv(n=400), tmp_path / "earlier.yaml"
    config.write_text(EARLIER_CONFIG)
    assert _fit(tmp_path / "straight", csv, "--config", str(config)) == 0
    monkeypatch.setattr(fit, "GracefulInterrupt", CtrlCAtStep)
    assert _fit(tmp_path / "broken", csv, "--config", str(config)) == 130
    (last,) = (tmp_path / "broken").glob("lightning_logs/version_*/checkpoints/last.ckpt")
    _as_an_earlier_lit_mnist_wrote_it(last)
    monkeypatch.setattr(fit, "GracefulInterrupt", GracefulInterrupt)
    capsys.readouterr()
    assert _fit(tmp_path / "broken", csv, "--config", str(config), "--ckpt_path", "last") == 0
    out = capsys.readouterr()
    assert "the optimizer options of an earlier lit-mnist (optimizer keras_adam with flat options)" in out.err + out.out
    straight, resumed = _final(tmp_path / "straight"), _final(tmp_path / "broken")
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert resumed["optimizer_states"][0]["param_groups"][0]["iterations"] == 21
    from lit_mnist.apps.checkpoints import load_model

    _as_an_earlier_lit_mnist_wrote_it(last)  # and the former checkpoint loads for predict.py and export.py
    assert load_model(last).hparams.optimizer["adam"]["learning_rate"]["exponential_decay"]["decay_rate"] == 0.5
