"""Where data lives, and the parse cache: a digits CSV is parsed once, and a folder of images decoded once;
later loads of the same content come from a binary copy.

One folder holds the data, set by LIT_MNIST_DATA_DIR (default ./data); parsed CSVs and decoded folders are cached
in its ``cache`` subfolder (or LIT_MNIST_CACHE_DIR) as .npz, keyed by the CSV's content, or by each image file's
path, size and modification time and the options the images were read with."""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lit_mnist import atomic
from lit_mnist.data.folders import IMAGE_SUFFIXES, read_image_folder
from lit_mnist.data.reader import Digits, parse_digits

log = logging.getLogger(__name__)


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
    return _load(entry) or _save(entry, parse_digits(path, labels=labels, label_last=label_last, pixels=pixels))


def load_folder(path: str | Path, *, color_mode: str | None = None, image_shape: list[int] | None = None) -> Digits:
    """Like :func:`folders.read_image_folder`, served from ``cache_dir()`` when no image file below ``path`` has
    changed (by path, size and modification time), and no folder come or gone, since it was decoded with the same
    options."""
    path = Path(path)
    listing = hashlib.sha256(repr((color_mode, None if image_shape is None else [int(v) for v in image_shape])).encode())
    for file in sorted(path.rglob("*")):
        if file.is_dir():  # a class folder with no images yet is a class
            listing.update(f"{file.relative_to(path)}/\n".encode())
        elif file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
            stat = file.stat()
            listing.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    entry = cache_dir() / f"v{_FORMAT}-folder-{listing.hexdigest()[:24]}.npz"
    cached = _load(entry)
    if cached is not None:
        empty = [name for name, n in zip(cached.label_names, np.bincount(cached.labels, minlength=len(cached.label_names)))
                 if n == 0]
        if empty:  # as the first read said
            log.warning("%s: class folders with no images, kept as classes: %s", path, ", ".join(empty))
        log.info("%s: %s (from the cache)", path, _images(cached))
        return cached
    start = time.perf_counter()
    digits = read_image_folder(path, color_mode=color_mode, image_shape=image_shape)
    log.info("%s: %s, decoded in %.1f s (cached for the next run)", path, _images(digits), time.perf_counter() - start)
    return _save(entry, digits)


def _images(digits: Digits) -> str:
    shape = digits.image_shape
    return (f"{len(digits)} images in {len(digits.label_names)} classes, {'colour' if len(shape) == 3 else 'grey'} "
            f"{shape[0]}x{shape[1]}")


def _load(entry: Path) -> Digits | None:
    if not entry.is_file():
        return None
    try:
        with np.load(entry) as saved:
            shape = tuple(int(v) for v in saved["image_shape"]) if "image_shape" in saved else None
            id_name = str(saved["id_name"]) if "id_name" in saved else None
            names = tuple(saved["label_names"].tolist()) if "label_names" in saved else None
            return Digits(saved["pixels"], saved.get("labels"), shape, saved.get("ids"), id_name, names)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # a damaged cache entry is rebuilt


def _save(entry: Path, digits: Digits) -> Digits:
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
    return digits
