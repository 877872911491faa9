"""scripts/predict.py: Kaggle submissions, images, JSON; checkpoints treated as untrusted input."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from lit_mnist.apps import predict
from lit_mnist.apps.entry import call
from tests.conftest import csv_text, save_model, shared_file


def main(args):
    return call(predict.main, args)


def _mnist_test(n=None):
    from lit_mnist.data.reader import parse_digits

    digits = parse_digits(shared_file("mnist_test.csv.gz"))
    return digits.pixels[:n], digits.labels[:n]


@pytest.mark.slow
def test_kaggle_submission_from_an_unlabelled_csv(trained_checkpoint, tmp_path, capsys):
    pixels, answers = _mnist_test()
    test_csv = tmp_path / "test.csv"
    test_csv.write_text(csv_text(pixels, None))  # Kaggle's test.csv: pixel0..pixel783 only
    out = tmp_path / "submission.csv"
    assert main(["--checkpoint", str(trained_checkpoint), "--input", str(test_csv), "--output", str(out)]) == 0
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["ImageId", "Label"]
    assert submission.ImageId.tolist() == list(range(1, 10001))
    assert (submission.Label.to_numpy() == answers).mean() >= 0.90
    assert "accuracy" not in capsys.readouterr().out  # no labels, no accuracy


@pytest.mark.slow
def test_labelled_csv_prints_accuracy_and_probabilities_go_to_json(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "predictions.json"
    args = ["--checkpoint", str(trained_checkpoint), "--input", str(shared_file("mnist_test.csv.gz")),
            "--output", str(out), "--probabilities", "--batch_size", "1000"]
    assert main(args) == 0
    assert "accuracy 0.9" in capsys.readouterr().out
    records = json.loads(out.read_text())
    assert len(records) == 10000 and set(records[0]) == {"ImageId", "Label", *(f"p{k}" for k in range(10))}
    assert abs(sum(records[0][f"p{k}"] for k in range(10)) - 1) < 1e-4


@pytest.mark.slow
def test_a_folder_of_digit_images_both_polarities_and_sizes(trained_checkpoint, tmp_path):
    from PIL import Image

    pixels, labels = _mnist_test(200)
    rng = np.random.default_rng(0)
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, (row, label) in enumerate(zip(pixels, labels)):
        size = int(rng.integers(40, 160))
        image = Image.fromarray(row.reshape(28, 28)).resize((size, size), Image.Resampling.BILINEAR)
        canvas = Image.new("L", (size + int(rng.integers(0, 80)), size + int(rng.integers(0, 80))))
        canvas.paste(image, (int(rng.integers(0, canvas.width - size + 1)), int(rng.integers(0, canvas.height - size + 1))))
        if i % 2:
            canvas = Image.eval(canvas, lambda v: 255 - v)
        suffix = ("png", "jpg", "pgm", "png", "webp", "bmp", "tiff", "ppm")[i % 8]  # Netpbm: many MNIST image sets
        canvas.convert("RGB" if i % 3 else "L").save(folder / f"{i:03d}_{label}.{suffix}")
    out = tmp_path / "images.csv"
    assert main(["--checkpoint", str(trained_checkpoint), "--input", str(folder), "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert list(result.columns) == ["file", "label", "confidence"] and len(result) == 200
    truth = result.file.str.extract(r"_(\d)\.")[0].astype(int)
    assert (result.label == truth).mean() >= 0.85
    assert (result.label == truth)[1::2].mean() >= 0.85  # dark-on-light ones alone


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Evil(marker)}, path)
    return path, marker


def test_a_malicious_checkpoint_is_refused_and_nothing_runs(malicious_checkpoint, write_csv, tmp_path, capsys):
    path, marker = malicious_checkpoint
    assert main(["--checkpoint", str(path), "--input", str(write_csv()), "--output", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: refused to load") and err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "out.csv").exists()


def test_the_malicious_checkpoint_really_would_run_code(malicious_checkpoint):
    """The companion: loaded the unsafe way, the same file does run its payload."""
    path, marker = malicious_checkpoint
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("content, expected", [
    (b"label,pixel0\n1,2\n", "not a PyTorch checkpoint"),
    (b"", "not a PyTorch checkpoint"),
])
def test_files_that_are_not_checkpoints(tmp_path, write_csv, capsys, content, expected):
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    assert main(["--checkpoint", str(path), "--input", str(write_csv()), "--output", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {expected}") and err.count("\n") == 1


def test_a_checkpoint_of_another_model(tmp_path, write_csv, capsys):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"net.layers.0.weight": torch.zeros(3, 3)}, "hyper_parameters": {},
                "pytorch-lightning_version": "2.6.6"}, path)
    assert main(["--checkpoint", str(path), "--input", str(write_csv()), "--output", str(tmp_path / "o.csv")]) == 2
    assert "a checkpoint of another model" in capsys.readouterr().err


def test_a_test_csv_with_an_id_column_gives_a_submission_by_its_ids(tmp_path, write_csv, capsys):
    """Kannada-MNIST's test.csv (id,pixel0..): the submission is id,label with the file's ids, in its order."""
    from lit_mnist.model.module import LitMNIST

    checkpoint = save_model(LitMNIST(), tmp_path / "m.ckpt")
    rows = pd.read_csv(write_csv(n=5, labels=False))
    rows.insert(0, "id", [7, 3, 11, 0, 5])
    rows.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "submission.csv"
    assert main(["--checkpoint", str(checkpoint), "--input", str(tmp_path / "test.csv"), "--output", str(out)]) == 0
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["id", "label"] and submission.id.tolist() == [7, 3, 11, 0, 5]
    plain = tmp_path / "plain.csv"
    assert main(["--checkpoint", str(checkpoint), "--input", str(write_csv(n=5, labels=False)), "--output", str(plain)]) == 0
    assert submission.label.tolist() == pd.read_csv(plain).Label.tolist()  # the same rows, the same predictions


def test_labels_that_are_names_are_scored_by_the_models_class_names(tmp_path, capsys):
    from lit_mnist.model.module import LitMNIST

    rows = pd.DataFrame(np.random.default_rng(0).integers(0, 256, (6, 784)), columns=[f"pixel{k}" for k in range(784)])
    checkpoint = save_model(LitMNIST(num_classes=3, class_names=["b", "a", "c"]), tmp_path / "m.ckpt")
    out = tmp_path / "o.csv"
    assert main(["--checkpoint", str(checkpoint), "--input", str(write_named(tmp_path, rows, None)), "--output", str(out)]) == 0
    predicted = pd.read_csv(out).name.tolist()
    capsys.readouterr()
    assert main(["--checkpoint", str(checkpoint), "--input", str(write_named(tmp_path, rows, predicted)),
                 "--output", str(out)]) == 0
    assert "accuracy 1.0000 against the labels in the input" in capsys.readouterr().out  # named as the model names them
    assert main(["--checkpoint", str(checkpoint), "--input", str(write_named(tmp_path, rows, ["d"] * 6)),
                 "--output", str(out)]) == 2
    assert "line 2, column label: label 'd' is not one of the model's classes (b, a, c)" in capsys.readouterr().err


def write_named(tmp_path, rows, names):
    path = tmp_path / "named.csv"
    (rows if names is None else rows.assign(label=names)[["label", *rows.columns]]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("size", ["0", "-3"])  # -3 once ran, and predicted nonsense
def test_a_batch_size_below_1_is_refused_in_one_line(tmp_path, write_csv, capsys, size):
    output = tmp_path / "o.csv"
    args = ["--checkpoint", str(tmp_path / "m.ckpt"), "--input", str(write_csv()), "--output", str(output)]
    assert main([*args, "--batch_size", size]) == 2
    assert capsys.readouterr().err == f"error: --batch_size must be at least 1, got {size}\n" and not output.exists()


def test_bad_input_csv_is_reported_before_writing(tmp_path, capsys):
    model = tmp_path / "m.ckpt"
    from lit_mnist.model.module import LitMNIST

    save_model(LitMNIST(), model)
    bad = tmp_path / "test.csv"
    bad.write_text("pixel0;pixel1\n")
    assert main(["--checkpoint", str(model), "--input", str(bad), "--output", str(tmp_path / "o.csv")]) == 2
    assert "separated by ';'" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()


def test_a_truncated_checkpoint(tmp_path, write_csv, capsys):
    from lit_mnist.model.module import LitMNIST

    whole = tmp_path / "whole.ckpt"
    save_model(LitMNIST(), whole)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert main(["--checkpoint", str(cut), "--input", str(write_csv()), "--output", str(tmp_path / "o.csv")]) == 2
    assert "damaged or truncated zip archive" in capsys.readouterr().err


def test_files_not_named_as_images_are_read_as_tables(tmp_path, write_csv, capsys):
    from PIL import Image

    from lit_mnist.apps.predict import is_csv

    model = tmp_path / "m.ckpt"
    from lit_mnist.model.module import LitMNIST

    save_model(LitMNIST(), model)
    tsv = tmp_path / "digits.tsv"
    tsv.write_text(write_csv().read_text().replace(",", "\t"))
    assert main(["--checkpoint", str(model), "--input", str(tsv), "--output", str(tmp_path / "o.csv")]) == 2
    assert "digits.tsv: line 1: values are separated by a tab; expected commas" in capsys.readouterr().err
    table = tmp_path / "digits.txt"
    table.write_bytes(write_csv().read_bytes())
    assert main(["--checkpoint", str(model), "--input", str(table), "--output", str(tmp_path / "o.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "o.csv")) == 60
    picture = tmp_path / "digit"  # no suffix, PNG content: still an image
    Image.new("L", (28, 28)).save(picture, format="PNG")
    assert is_csv(table) and not is_csv(picture)
    drawing = tmp_path / "digit.svg"  # named as a picture PIL cannot read: its error is an image's, not a table's
    drawing.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="4" height="20"/></svg>')
    assert main(["--checkpoint", str(model), "--input", str(drawing), "--output", str(tmp_path / "o.csv")]) == 2
    assert capsys.readouterr().err == f"error: {drawing}: not a readable image (UnidentifiedImageError)\n"


def test_an_output_that_is_a_folder_an_input_or_unwritable_is_refused(tmp_path, write_csv, capsys):
    from lit_mnist.model.module import LitMNIST

    model = tmp_path / "m.ckpt"
    save_model(LitMNIST(), model)
    data = write_csv()
    before = data.read_bytes()
    folder = tmp_path / "out"
    folder.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = {str(folder): "is a folder", str(data): "is also an input",
             str(blocker / "o.csv"): "cannot write the output"}
    for output, expected in cases.items():
        assert main(["--checkpoint", str(model), "--input", str(data), "--output", output]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {output}: {expected}") and err.count("\n") == 1
    assert data.read_bytes() == before and list(folder.iterdir()) == []
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no temp files left
