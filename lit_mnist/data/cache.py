"""Where data lives, and the parse cache: a digits CSV is parsed once, later loads of the same content
come from a binary copy.

One folder holds the data, set by LIT_MNIST_DATA_DIR (default ./data); parsed CSVs are cached in its
``cache`` subfolder (or LIT_MNIST_CACHE_DIR) as .npz, keyed by the source file's content."""

from __future__ import annotations

import mmap
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lit_mnist import atomic
from lit_mnist.data.reader import Digits, parse_digits


def data_dir() -> Path:
    return Path(os.environ.get("LIT_MNIST_DATA_DIR", "data"))


def cache_dir() -> Path:
    return Path(os.environ.get("LIT_MNIST_CACHE_DIR", data_dir() / "cache"))


_FORMAT = 3  # bump when the parser's output changes, so old cache entries are ignored


def content_key(path: Path) -> str:
    """Length and CRC-32 of the file's bytes: a change to the content gives a new key."""
    size = path.stat().st_size
    if size == 0:
        return "0"
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        return f"{size:x}-{zlib.crc32(view):08x}"


def load_digits(
    path: str | Path, *, labels: str = "required", label_last: bool = False, pixels: int | None = None,
    cache: bool = True,
) -> Digits:
    """Like :func:`parse_digits`, served from ``cache_dir()`` when this content was seen before."""
    path = Path(path)
    if not cache or not path.is_file():
        return parse_digits(path, labels=labels, label_last=label_last, pixels=pixels)
    entry = cache_dir() / f"v{_FORMAT}-{content_key(path)}-{labels}-{int(label_last)}-{pixels or 'any'}.npz"
    if entry.is_file():
        try:
            with np.load(entry) as saved:
                shape = tuple(int(v) for v in saved["image_shape"]) if "image_shape" in saved else None
                id_name = str(saved["id_name"]) if "id_name" in saved else None
                names = tuple(saved["label_names"].tolist()) if "label_names" in saved else None
                return Digits(saved["pixels"], saved.get("labels"), shape, saved.get("ids"), id_name, names)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache entry is rebuilt below
    digits = parse_digits(path, labels=labels, label_last=label_last, pixels=pixels)
    _save(entry, digits)
    return digits


def _save(entry: Path, digits: Digits) -> None:
    arrays = {"pixels": digits.pixels}
    if digits.labels is not None:
        arrays["labels"] = digits.labels
    if digits.image_shape is not None:
        arrays["image_shape"] = np.asarray(digits.image_shape)
    if digits.ids is not None:
        arrays["ids"], arrays["id_name"] = digits.ids, np.asarray(digits.id_name)
    if digits.label_names is not None:
        arrays["label_names"] = np.asarray(digits.label_names, dtype=str)
    try:
        with atomic.atomic_path(entry) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except OSError:
        pass  # the cache is an optimisation: an unwritable cache dir must not stop a run
