"""Other data than MNIST's 10 classes of 28x28: the sizes come from the data and every command follows them."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from lit_mnist.apps import export, fit, predict
from lit_mnist.apps.entry import call
from lit_mnist.data.reader import parse_digits
from tests.conftest import csv_text, require, shared_file


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fit.py"])


def _fit(root, *args) -> dict:
    assert call(fit.main, ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                           *args]) == 0
    run = root / "lightning_logs" / "version_0"
    return json.loads((run / "metrics.json").read_text()) | {"run": str(run)}


@pytest.fixture(scope="module")
def rotated_digits(tmp_path_factory):
    """A 28x28 CSV of 29 classes whose labels skip 9: MNIST test digits d turned by r quarter turns are class
    d + 10 r (r = 0, 1, 2), and the upright 9s are left out: labels 0-8 and 10-29, 30 outputs."""
    digits = parse_digits(shared_file("mnist_test.csv.gz"))
    images = digits.pixels.reshape(-1, 28, 28)
    turns = np.arange(len(images)) % 3
    turned = np.stack([np.rot90(image, k) for image, k in zip(images, turns)]).reshape(len(images), -1)
    labels = digits.labels + 10 * turns
    keep = labels != 9
    path = tmp_path_factory.mktemp("rotated") / "rotated.csv"
    path.write_text(csv_text(turned[keep], labels[keep]))
    return path


@pytest.mark.slow
def test_a_28x28_csv_of_29_classes_that_skip_a_label_trains_and_predicts_in_its_own_labels(rotated_digits, tmp_path):
    metrics = _fit(tmp_path / "runs", "--data.path", str(rotated_digits), "--trainer.max_epochs", "5",
                   "--data.normalize", "true")
    assert metrics["num_classes"] == 30 and metrics["image_shape"] == [28, 28]
    assert metrics["classes_without_training_rows"] == [9] and metrics["classes_without_test_rows"] == [9]
    assert metrics["recall"][9] is None and len(metrics["confusion_matrix"]) == 30
    assert metrics["test_accuracy"] > 0.75  # chance is 1/29
    out = tmp_path / "predicted.csv"
    checkpoint = f"{metrics['run']}/checkpoints/last.ckpt"
    assert call(predict.main, ["--checkpoint", checkpoint, "--input", str(rotated_digits), "--output", str(out)]) == 0
    labels = pd.read_csv(out).Label
    assert labels.max() >= 25 and 9 not in set(labels)  # the data's own labels, never the one no row has


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory):
    """scikit-learn's 8x8 digits (grey levels 0-16), as a CSV of grey levels 0-255: 64 pixel columns."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.clip(data.data * 16, 0, 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("small")
    (folder / "digits8.csv").write_text(csv_text(pixels, data.target))
    (folder / "unlabelled8.csv").write_text(csv_text(pixels[:50], None))
    return folder


def test_a_small_csv_of_8x8_named_classes_trains_and_predicts_by_their_names(write_csv, tmp_path, capsys):
    """On generated data (scikit-learn's digits with every command, the export too: the slow test below)."""
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "no"]  # "no": YAML's false
    metrics = _fit(tmp_path / "runs", "--data.path", str(write_csv(n=300, pixels=64)), "--trainer.max_epochs", "2",
                   "--data.batch_size", "64", "--data.class_names", f"[{', '.join(names)}]",
                   "--model.layers", "[{dense: 32, activation: relu}, {dropout: 0.2}]")
    assert metrics["image_shape"] == [8, 8] and metrics["num_classes"] == 10 and metrics["class_names"] == names
    out = tmp_path / "predicted.csv"
    checkpoint = f"{metrics['run']}/checkpoints/last.ckpt"
    assert call(predict.main, ["--checkpoint", checkpoint, "--input", str(write_csv("u.csv", n=20, pixels=64,
                                                                                    labels=False)),
                               "--output", str(out), "--probabilities"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["ImageId", "Label", "name"] and len(table) == 20
    assert [names[k] for k in table.Label] == table.name.tolist() and "p9" in table.columns and "p10" not in table
    assert call(predict.main, ["--checkpoint", checkpoint, "--input", str(write_csv("m.csv", n=5)), "--output",
                               str(out)]) == 2  # rows of 784 pixels for a model of 64
    assert "line 1: header has 785 columns; unexpected extra column 'pixel64'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_csv_of_8x8_images_trains_and_every_command_follows_its_sizes(small_digits, tmp_path, capsys):
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "no"]  # "no": YAML's false
    metrics = _fit(tmp_path / "runs", "--data.path", str(small_digits / "digits8.csv"), "--trainer.max_epochs", "20",
                   "--data.batch_size", "64", "--data.normalize", "true", "--data.class_names", f"[{', '.join(names)}]",
                   "--model.layers", "[{dense: 256, activation: relu}, {dropout: 0.2}]")  # as the README writes it
    assert metrics["image_shape"] == [8, 8] and metrics["num_classes"] == 10 and metrics["class_names"] == names
    assert [next(iter(item)) for item in metrics["hparams"]["layers"]] == ["dense", "dropout"]
    assert metrics["hparams"]["layers"][0]["dense"]["units"] == 256
    assert metrics["test_accuracy"] > 0.85
    checkpoint = f"{metrics['run']}/checkpoints/last.ckpt"
    out = tmp_path / "predicted.csv"
    assert call(predict.main, ["--checkpoint", checkpoint, "--input", str(small_digits / "unlabelled8.csv"),
                               "--output", str(out), "--probabilities"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["ImageId", "Label", "name"] and len(table) == 50
    assert [names[k] for k in table.Label] == table.name.tolist() and "p9" in table.columns and "p10" not in table
    # a CSV of MNIST's 784 pixels is refused for this model, naming what it expects
    assert call(predict.main, ["--checkpoint", checkpoint, "--input", str(shared_file("mnist_test.csv.gz")),
                               "--output", str(out)]) == 2
    assert "line 1: header has 785 columns; unexpected extra column 'pixel64'" in capsys.readouterr().err
    require("onnx", "export")
    onnx = tmp_path / "model.onnx"
    assert call(export.main, ["--checkpoint", checkpoint, "--out", str(onnx), "--check",
                              str(small_digits / "unlabelled8.csv")]) == 0
    assert "input 'pixels' [N, 64] float32 grey levels 0-255; output 'probabilities' [N, 10]" in capsys.readouterr().out


def test_images_are_prepared_into_the_models_shape(small_digits, tmp_path):
    from PIL import Image

    metrics = _fit(tmp_path / "runs", "--data.path", str(small_digits / "digits8.csv"), "--trainer.max_epochs", "1")
    picture = tmp_path / "seven.png"
    canvas = np.full((120, 90), 255, np.uint8)
    canvas[20:30, 15:75], canvas[30:100, 55:68] = 0, 0  # a dark 7 on white paper
    Image.fromarray(canvas).save(picture)
    out = tmp_path / "images.json"
    assert call(predict.main, ["--checkpoint", f"{metrics['run']}/checkpoints/last.ckpt", "--input", str(picture),
                               "--output", str(out), "--probabilities"]) == 0
    record = json.loads(out.read_text())[0]
    assert set(record) == {"file", "label", "confidence", *(f"p{k}" for k in range(10))}


def test_the_page_says_drawing_is_for_28x28_models_and_the_api_works(small_digits, tmp_path):
    require("fastapi", "serve")
    from fastapi.testclient import TestClient

    from lit_mnist.apps.checkpoints import load_model
    from lit_mnist.service import Classifier, create_app

    metrics = _fit(tmp_path / "runs", "--data.path", str(small_digits / "digits8.csv"), "--trainer.max_epochs", "1")
    client = TestClient(create_app(Classifier(load_model(f"{metrics['run']}/checkpoints/last.ckpt"))))
    page = client.get("/").text
    assert '"image_shape": [8, 8]' in page and "Drawing is for 28x28 grey models" in page
    reply = client.post("/predict", json={"pixels": [0] * 64})
    assert reply.status_code == 200 and len(reply.json()["probabilities"]) == 10 and len(reply.json()["pixels"]) == 64
    assert client.post("/predict", json={"pixels": [0] * 784}).status_code == 422
    assert client.get("/v2/models/lit-mnist").json()["inputs"][0]["shape"] == [-1, 64]
