"""Colour images and the sources Keras users keep them in: a CSV in HAM10000's layout, a folder of class folders, a
keras.datasets .npz. Their 20 classes differ in hue alone (``hue_images``: a grey rendering of them is one class),
so a model that trains on them sees the colours; predict.py and export.py take the colour checkpoint; bad inputs
are one line before anything is written."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lit_mnist.apps import export, fit, predict
from lit_mnist.apps.entry import call
from tests.conftest import hue_images, require

CONV = "[{conv2d: {filters: 8, kernel_size: 3, strides: 2, activation: relu}}, max_pooling2d, flatten]"
TRAINING = ("--model.layers", CONV, "--trainer.max_epochs", "10", "--data.batch_size", "64", "--data.normalize", "true")


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


def _fit(root, *args) -> int:
    return call(fit.main, ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                           "--trainer.enable_model_summary", "false", *args])


def _metrics(root) -> dict:
    run = root / "lightning_logs" / "version_0"
    return json.loads((run / "metrics.json").read_text()) | {"checkpoint": str(run / "checkpoints" / "last.ckpt")}


def ham_csv(path, pixels, labels):
    """HAM10000's hmnist_28_28_RGB.csv layout: pixel0000..pixel2351 (each pixel's R, G, B in turn), the label last."""
    header = ",".join(f"pixel{k:04d}" for k in range(pixels.shape[1])) + ",label"
    body = "\n".join(",".join(map(str, row)) + f",{label}" for row, label in zip(pixels.tolist(), labels.tolist()))
    path.write_text(header + "\n" + body + "\n")
    return path


def png_folders(root, pixels, labels, side=28):
    for k, (row, label) in enumerate(zip(pixels, labels)):
        folder = root / f"hue_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row.reshape(side, side, 3)).save(folder / f"{k}.png")
    return root


@pytest.fixture(scope="module")
def hues():
    return hue_images(2000, seed=0)


@pytest.fixture(scope="module")
def colour_run(hues, tmp_path_factory):
    root = tmp_path_factory.mktemp("colour")
    csv = ham_csv(root / "hmnist_28_28_RGB.csv", *hues)
    assert _fit(root / "runs", "--data.path", str(csv), *TRAINING) == 0
    return csv, _metrics(root / "runs")


@pytest.mark.slow
def test_a_colour_csv_in_ham10000_layout_trains_on_the_colours(colour_run):
    _, metrics = colour_run
    assert metrics["num_classes"] == 20 and metrics["image_shape"] == [28, 28, 3]
    assert metrics["test_accuracy"] >= 0.85  # chance 1/20; grey, the classes are one


@pytest.mark.slow
def test_the_colour_checkpoint_predicts_csvs_and_pictures_and_exports(colour_run, hues, tmp_path):
    csv, metrics = colour_run
    out = tmp_path / "predicted.csv"
    assert call(predict.main, ["--checkpoint", metrics["checkpoint"], "--input", str(csv), "--output", str(out)]) == 0
    assert (pd.read_csv(out).Label.to_numpy() == hues[1]).mean() >= 0.85
    pictures = png_folders(tmp_path / "pictures", hues[0][:40], hues[1][:40])  # files, as a user has them
    out = tmp_path / "pictures.csv"
    assert call(predict.main, ["--checkpoint", metrics["checkpoint"], "--input", str(pictures), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    truth = table.file.str.extract(r"hue_(\d+)")[0].astype(int)
    assert (table.label == truth).mean() >= 0.85  # resized as colour pictures, not made grey digits
    require("onnxruntime", "export")
    onnx = tmp_path / "colour.onnx"
    assert call(export.main, ["--checkpoint", metrics["checkpoint"], "--out", str(onnx), "--check", str(csv)]) == 0
    assert onnx.is_file()


@pytest.mark.slow
def test_the_same_images_as_png_class_folders_train_named_by_their_folders(hues, tmp_path):
    folder = png_folders(tmp_path / "hues", *hues)
    assert _fit(tmp_path / "runs", "--data.path", str(folder), *TRAINING) == 0
    metrics = _metrics(tmp_path / "runs")
    assert metrics["class_names"] == [f"hue_{k:02d}" for k in range(20)] and metrics["image_shape"] == [28, 28, 3]
    assert metrics["data_source"] == f"folder:{folder.resolve()}" and metrics["test_accuracy"] >= 0.85


@pytest.mark.slow
def test_an_npz_as_keras_datasets_returns_it_trains_on_its_own_test_arrays(hues, tmp_path):
    x, y = hues[0].reshape(-1, 28, 28, 3), hues[1][:, None]  # labels N x 1, as CIFAR-10's
    path = tmp_path / "hues.npz"
    np.savez(path, x_train=x[:1600], y_train=y[:1600], x_test=x[1600:], y_test=y[1600:])
    assert _fit(tmp_path / "runs", "--data.path", str(path), *TRAINING) == 0
    metrics = _metrics(tmp_path / "runs")
    assert metrics["test_samples"] == 400 and metrics["data_source"] == f"npz:{path.resolve()}"
    assert metrics["image_shape"] == [28, 28, 3] and metrics["test_accuracy"] >= 0.85


def _bad_inputs(tmp_path):
    x, y = hue_images(12, classes=3)
    odd = tmp_path / "odd.csv"
    ham_csv(odd, x[:, :98], y)  # 98 values: neither a square grey image nor a square colour one
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_train=np.array([object()] * 12, dtype=object), y_train=y)
    broken = png_folders(tmp_path / "broken", x, y)
    next((broken / "hue_01").iterdir()).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    mixed = png_folders(tmp_path / "mixed", x, y)
    Image.new("RGB", (30, 30)).save(mixed / "hue_00" / "big.png")
    return {
        "odd": (["--data.path", str(odd)], f"error: {odd}: 98 values a row is neither a square grey image"),
        "pickled": (["--data.path", str(pickled)], f"error: {pickled}: "),
        "undecodable": (["--data.path", str(broken)], "error: " + str(broken / "hue_01")),
        "mixed sizes": (["--data.path", str(mixed)], f"error: {mixed}"),
        "4 channels": (["--data.path", str(odd), "--data.image_shape", "[7, 7, 4]"], "drop the alpha channel first"),
    }


@pytest.mark.parametrize("case", ["odd", "pickled", "undecodable", "mixed sizes", "4 channels"])
def test_a_bad_colour_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case):
    args, expected = _bad_inputs(tmp_path)[case]
    assert _fit(tmp_path / "runs", *args, "--trainer.max_epochs", "1") == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()
