"""``python scripts/predict.py --checkpoint CKPT --input PATH [PATH ...] --output FILE``

CSV input (with or without the label column, e.g. Kaggle's test.csv) gives a submission,
``ImageId,Label`` with 1-based ids in input order, or, where the input has an id column (``id``, as
Kannada-MNIST's test.csv), its ids under its name (``id,label``); its rows must have the model's pixel count (H*W, or
H*W*3 for a colour model, each pixel's R, G, B in turn). An ``.npz`` (its ``x_test``, else ``x_train`` or ``x``)
is read as such rows. Image files or folders give ``file,label,confidence``, each image prepared into the model's
image as its training data imply (a grey digit as MNIST made its digits; a colour image, or one like a folder's the
model learned, converted and resized). Labels are the
training data's own (0..K-1); a model trained with class names adds a ``name`` column. ``--probabilities``
adds p0..pK-1; FILE ending in .json writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import mimetypes
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from lit_mnist import atomic
from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.data import sources
from lit_mnist.data.images import IMAGE_SUFFIXES, image_files, is_image, prepared
from lit_mnist.data.reader import numbered
from lit_mnist.errors import DataError
from lit_mnist.model.layers import image_size
from lit_mnist.model.module import LitMNIST

CSV_SUFFIXES = (".csv", ".csv.gz", ".gz")


def probabilities(model: LitMNIST, pixels: np.ndarray, batch_size: int = 10_000) -> np.ndarray:
    """Softmax outputs for rows of raw pixels, computed in batches (with a progress bar when long)."""
    out = np.empty((len(pixels), model.num_classes), dtype=np.float32)
    starts = range(0, len(pixels), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="predicting", unit="batch", disable=len(starts) < 5, leave=False):
            batch = torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch_size]))
            out[start : start + batch_size] = model(batch).numpy()
    return out


def is_csv(path: Path) -> bool:
    """A file named as a CSV, or any other file that is neither an image nor named as one (data.txt,
    digits.tsv): the CSV reader then says what is wrong with it, rather than "not a readable image"; a
    picture PIL cannot read (digit.svg, digit.heic) is an image, so that is what its error says."""
    if not path.is_file():
        return False
    if any(path.name.lower().endswith(s) for s in CSV_SUFFIXES):
        return True
    named_image = path.suffix.lower() in IMAGE_SUFFIXES or (mimetypes.guess_type(path.name)[0] or "").startswith("image/")
    return not named_image and not is_image(path)


def read_csvs(paths: list[Path], image_shape: tuple[int, ...], names: list[str] | None,
              ) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The rows of the CSVs (and ``.npz`` files), each an image of ``image_shape`` (the model's: a CSV's rows of as
    many values, an array's images of that shape), their labels if every file has them
    (names as the model's class ``names`` number them), and the submission's id column: the files' own where each
    has one of the same name, else ImageId 1..N."""
    parts = [sources.load(p, split="test" if sources.has_test_split(p) else "train", labels="optional",
                          pixels=math.prod(image_shape), image_shape=image_size(image_shape)) for p in paths]
    if any(d.label_names is not None for d in parts) and not names:
        raise DataError(f"{paths[0]}: its labels are names, and the model's classes have none (it was trained "
                        "on class numbers): drop the label column, or use a model trained on these names")
    parts = [numbered(d, names, p) if d.label_names is not None else d for d, p in zip(parts, paths)]
    pixels = np.concatenate([d.pixels for d in parts])
    labelled = all(d.labels is not None for d in parts)
    names = {d.id_name for d in parts}
    if len(names) == 1 and None not in names:
        ids = {names.pop(): np.concatenate([d.ids for d in parts])}
    else:
        ids = {"ImageId": np.arange(1, len(pixels) + 1)}
    return pixels, np.concatenate([d.labels for d in parts]) if labelled else None, ids


def read_images(paths: list[Path], model: LitMNIST) -> tuple[list[Path], np.ndarray]:
    files = [f for p in paths for f in image_files(p)]
    if not files:
        raise DataError(f"{', '.join(map(str, paths))}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    rows = [prepared(f, str(f), model.image_shape, model.preparation)
            for f in tqdm(files, desc="reading images", disable=len(files) < 50)]
    return files, np.stack(rows)


def named(names: list[str] | None, predicted: np.ndarray) -> dict:
    """The ``name`` column of the predicted classes, where the model has class names."""
    return {"name": np.asarray(names)[predicted]} if names else {}


def table(first_columns: dict, probs: np.ndarray, with_probabilities: bool) -> pd.DataFrame:
    frame = pd.DataFrame(first_columns)
    if with_probabilities:
        for k in range(probs.shape[1]):
            frame[f"p{k}"] = probs[:, k].round(6)
    return frame


def check_output(path: Path, inputs: list[Path]) -> None:
    """Refuse, before any work, an output that is a folder or one of the inputs (it would be replaced)."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give the output a file name (.csv or .json)")
    if not path.exists():  # the usual case: nothing to compare, no folder to walk
        return
    files = [f for p in inputs for f in (image_files(p) if p.is_dir() else [p])]
    if any(path.samefile(f) for f in files if f.is_file()):
        raise DataError(f"{path}: is also an input; writing the output there would replace it")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    text = (json.dumps(frame.to_dict(orient="records"), indent=1) + "\n" if path.suffix.lower() == ".json"
            else frame.to_csv(index=False))
    try:
        atomic.write_text(path, text)
    except OSError as e:
        raise DataError(f"{path}: cannot write the output ({e.strerror or e})") from None


def run(args: argparse.Namespace) -> str:
    inputs = [Path(p) for p in args.input]
    for p in inputs:
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
    check_output(Path(args.output), inputs)
    csvs = [p for p in inputs if is_csv(p)]
    if csvs and len(csvs) != len(inputs):
        raise DataError("give either CSV files or images, not both in one call")
    model = load_model(args.checkpoint)
    names = model.hparams.get("class_names")
    if csvs:
        pixels, labels, ids = read_csvs(csvs, model.image_shape, names)
        probs = probabilities(model, pixels, args.batch_size)
        predicted = probs.argmax(1)
        label = "Label" if next(iter(ids))[:1].isupper() else "label"  # the id column's style: ImageId,Label; id,label
        frame = table({**ids, label: predicted, **named(names, predicted)}, probs, args.probabilities)
        summary = f"{len(pixels)} predictions written to {args.output}"
        if labels is not None:
            summary += f"; accuracy {float((predicted == labels).mean()):.4f} against the labels in the input"
    else:
        files, pixels = read_images(inputs, model)
        probs = probabilities(model, pixels, args.batch_size)
        predicted = probs.argmax(1)
        frame = table({"file": [str(f) for f in files], "label": predicted, **named(names, predicted),
                       "confidence": probs.max(1).round(6)}, probs, args.probabilities)
        summary = f"{len(files)} images classified, written to {args.output}"
    write_table(frame, Path(args.output))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="predict.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by scripts/fit.py")
    parser.add_argument("--input", required=True, nargs="+", help="CSV or .npz files, or image files / folders")
    parser.add_argument("--output", required=True, help="CSV file, or .json")
    parser.add_argument("--probabilities", action="store_true", help="add the columns p0..pK-1 (K: the model's classes)")
    parser.add_argument("--batch_size", type=int, default=10_000,
                        help="rows per forward pass (memory, not results: default %(default)s)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise DataError(f"--batch_size must be at least 1, got {args.batch_size}")
    print(run(args))
    return 0
