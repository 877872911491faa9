"""scripts/export.py: an ONNX graph that ONNX Runtime runs as torch does, checked before it is kept."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import REPO, csv_text, require, run_env, save_model, shared_file

require("onnxruntime", "export")
import onnxruntime

from lit_mnist.apps import export, predict
from lit_mnist.apps.entry import call
from lit_mnist.model.module import LitMNIST


@pytest.fixture(scope="module", autouse=True)
def _exporter_warmed_up(tmp_path_factory):
    """The first ONNX export of a process sets up torch.export and the operator library (seconds, once): done here,
    each test's own time is its export's."""
    tiny = LitMNIST(layers=[{"conv2d": [2, 3]}, "flatten", {"dense": 4}], num_classes=2, image_shape=(4, 4), normalize=True)
    export.export(tiny.eval(), tmp_path_factory.mktemp("warm") / "m.onnx")


def _unseen_csv(tmp_path, n=2000):
    """MNIST test digits the checkpoint never trained on, as a labelled CSV."""
    from lit_mnist.data.reader import parse_digits

    digits = parse_digits(shared_file("mnist_test.csv.gz"))
    path = tmp_path / "unseen.csv"
    path.write_text(csv_text(digits.pixels[-n:], digits.labels[-n:]))
    return path


def _onnx_predictions(path, pixels):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: pixels.astype(np.float32)})[0]


@pytest.mark.slow
def test_the_export_agrees_with_predict_on_unseen_digits(trained_checkpoint, tmp_path):
    csv = _unseen_csv(tmp_path)
    out = tmp_path / "model.onnx"
    done = subprocess.run([sys.executable, "scripts/export.py", "--checkpoint", str(trained_checkpoint), "--out",
                           str(out), "--check", str(csv)], cwd=REPO, capture_output=True, check=False, text=True,
                          env=run_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "check: ONNX Runtime against torch on 2000 rows" in done.stdout and "2000/2000" in done.stdout
    assert done.stderr.strip() == ""  # a quiet command
    submission = tmp_path / "submission.csv"
    assert call(predict.main, ["--checkpoint", str(trained_checkpoint), "--input", str(csv), "--output",
                               str(submission)]) == 0
    labels = np.loadtxt(submission, delimiter=",", skiprows=1, dtype=int)[:, 1]
    pixels = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)[:, 1:]
    assert (_onnx_predictions(out, pixels).argmax(1) == labels).mean() >= 0.999


CNN = [{"conv2d": {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}}, "batch_normalization",
       {"average_pooling2d": {"pool_size": 2, "padding": "same"}}, {"dropout": 0.2}, "flatten",
       {"dense": {"units": 16, "activation": "tanh"}}]


GLOBAL = [{"zero_padding2d": [[1, 0], [2, 1]]}, {"conv2d": {"filters": 4, "kernel_size": 3, "activation": "mish"}},
          {"spatial_dropout2d": 0.2}, {"cropping2d": [[2, 1], [0, 3]]}, {"leaky_re_lu": 0.1}, "global_max_pooling2d",
          {"dense": {"units": 8, "activation": "relu6"}}, {"activation": "softsign"}]


@pytest.mark.parametrize("layers, classes, side", [(None, 10, 28), pytest.param(CNN, 10, 28, marks=pytest.mark.slow),
                                                    (CNN, 25, 8), (GLOBAL, 4, 12)])
def test_any_net_exports_with_a_dynamic_batch_and_normalisation_inside(tmp_path, write_csv, capsys, layers, classes,
                                                                       side):
    model = LitMNIST(layers=layers, num_classes=classes, image_shape=(side, side), normalize=True)
    model.pixel_mean.fill_(33.3)
    model.pixel_std.fill_(78.5)
    checkpoint = save_model(model, tmp_path / "model.ckpt")
    out = tmp_path / "model.onnx"
    csv = write_csv(n=50, labels=False, pixels=side * side)
    assert call(export.main, ["--checkpoint", str(checkpoint), "--out", str(out), "--check", str(csv)]) == 0
    printed = capsys.readouterr().out
    assert "the same class for 50/50" in printed
    assert f"input 'pixels' [N, {side * side}] float32 grey levels 0-255; output 'probabilities' [N, {classes}]" in printed
    pixels = np.random.default_rng(0).integers(0, 256, (7, side * side)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(_onnx_predictions(out, pixels), expected, atol=1e-5)


def test_a_graph_that_fails_its_check_is_not_written(tmp_path, write_csv, capsys, monkeypatch):
    """The companion: an export that computes something else (here another model's weights) is caught."""
    checkpoint = save_model(LitMNIST(), tmp_path / "model.ckpt")
    real = export.export
    monkeypatch.setattr(export, "export", lambda model, path: real(LitMNIST(), path))
    out = tmp_path / "model.onnx"
    assert call(export.main, ["--checkpoint", str(checkpoint), "--out", str(out), "--check", str(write_csv())]) == 1
    assert "export FAILED its check" in capsys.readouterr().out
    assert not out.exists() and list(tmp_path.glob("*.onnx*")) == []


def _large_logits_model() -> LitMNIST:
    """The original net on raw pixels, its first kernel doubled: logits in the hundreds, where float32 rounds the
    probabilities of near-tied rows by more than 1e-5."""
    torch.manual_seed(0)
    model = LitMNIST()
    with torch.no_grad():
        model.net.dense.weight.mul_(2)
    return model


def test_a_net_of_large_logits_is_held_to_float32_s_own_rounding(tmp_path, write_csv, capsys):
    checkpoint = save_model(_large_logits_model(), tmp_path / "model.ckpt")
    out = tmp_path / "model.onnx"
    assert call(export.main, ["--checkpoint", str(checkpoint), "--out", str(out), "--check", str(write_csv(n=500))]) == 0
    printed = capsys.readouterr().out
    limit = float(printed.split("(limit ")[1].split(",")[0])
    assert limit > export.MAX_ABS_DIFF and "twice torch's own float32 rounding here" in printed and out.exists()


def test_companion_a_graph_slightly_off_fails_even_that_limit(tmp_path, write_csv, capsys, monkeypatch):
    """A graph whose first kernel is 1e-3 off (relative: some 8,000 float32 roundings) is caught at that scale."""
    model = _large_logits_model()
    checkpoint = save_model(model, tmp_path / "model.ckpt")
    real = export.export

    def slightly_off(model, path):
        with torch.no_grad():
            model.net.dense.weight.mul_(1 + 1e-3)
        real(model, path)
        with torch.no_grad():
            model.net.dense.weight.div_(1 + 1e-3)

    monkeypatch.setattr(export, "export", slightly_off)
    out = tmp_path / "model.onnx"
    assert call(export.main, ["--checkpoint", str(checkpoint), "--out", str(out), "--check", str(write_csv(n=500))]) == 1
    assert "export FAILED its check" in capsys.readouterr().out and not out.exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert call(export.main, ["--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'none.ckpt'}: no such checkpoint file")


def test_no_check_csv_and_no_mirror_is_one_line_and_nothing_written(tmp_path, capsys, monkeypatch):
    from lit_mnist.data import mnist

    checkpoint = save_model(LitMNIST(), tmp_path / "model.ckpt")
    monkeypatch.setenv("LIT_MNIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIT_MNIST_MIRROR", "file:///nonexistent/mirror")
    monkeypatch.setattr(mnist, "OFFICIAL_MIRRORS", ())
    out = tmp_path / "model.onnx"
    assert call(export.main, ["--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("error: with no --check CSV, the check needs MNIST's test digits, which could "
                                       "not be downloaded (set LIT_MNIST_MIRROR to a mirror)\n")
    assert not out.exists() and list(tmp_path.glob("*.onnx*")) == []
