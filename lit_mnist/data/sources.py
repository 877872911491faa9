"""Which reader reads a data path: a folder of class folders (``folders.py``), a NumPy ``.npz`` as
``keras.datasets`` returns its arrays (``arrays.py``), or else a CSV (``reader.py``). Each is read once and served,
memory-mapped, from the cache after (``cache.py``)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from lit_mnist.data import cache as data_cache
from lit_mnist.data.arrays import npz_has_test, read_npz
from lit_mnist.data.folders import read_image_folder
from lit_mnist.data.reader import Digits, parse_digits
from lit_mnist.errors import DataError

__all__ = ["has_test_split", "kind", "load"]

log = logging.getLogger(__name__)


def kind(path: str | Path) -> str:
    """``folder``, ``npz`` or ``csv``."""
    path = Path(path)
    return "folder" if path.is_dir() else "npz" if path.suffix.lower() == ".npz" else "csv"


def has_test_split(path: str | Path) -> bool:
    """Whether the source holds its own test set (an ``.npz`` with ``x_test``)."""
    return kind(path) == "npz" and npz_has_test(path)


def load(path: str | Path, *, split: str = "train", labels: str = "required", pixels: int | None = None,
         color_mode: str | None = None, image_shape: list[int] | tuple[int, ...] | None = None,
         cache: bool = True, cache_dir: str | os.PathLike | None = None) -> Digits:
    """The images and labels at ``path``. ``split``: an ``.npz``'s arrays (``train`` or ``test``); ``labels`` and
    ``pixels``: a CSV's (see ``reader.parse_digits``); ``image_shape``: a folder's images are converted and resized
    to it (``[H, W, 1]`` grey, ``[H, W, 3]`` colour; ``[H, W]`` in their own colours), an ``.npz``'s must have it;
    ``color_mode``: a folder's (and no other source's). ``cache``: served from (and kept in) the cache in
    ``cache_dir`` (see ``cache.cache_dir``); false: read, nothing written."""
    source = kind(path)
    if color_mode is not None and source != "folder":
        raise DataError(f"{path}: --data.color_mode applies to a folder of images; a {source}'s values are read "
                        "as they are")
    shape = None if image_shape is None else [int(v) for v in image_shape]
    if source == "folder":
        decoded = []

        def read() -> Digits:
            decoded.append(path)
            start = time.perf_counter()
            digits = read_image_folder(path, color_mode=color_mode, image_shape=shape)
            log.info("%s: %s, decoded in %.1f s", path, _images(digits), time.perf_counter() - start)
            return digits

        digits = data_cache.load(path, read, kind=source, options={"color_mode": color_mode, "image_shape": shape},
                                 cache=cache, directory=cache_dir)
        if not decoded:
            _said_again(path, digits)
        return digits
    if source == "npz":
        digits = data_cache.load(path, lambda: read_npz(path, split=split), kind=source, options={"split": split},
                                 cache=cache, directory=cache_dir)
        from lit_mnist.model.layers import image_size  # torch's import, for the arrays' shape check alone

        if shape is not None and image_size(digits.image_shape) != image_size(shape):
            raise DataError(f"{path}: its images are {_dims(digits.image_shape)}; {_dims(shape)} ones are "
                            "expected here")
        return digits
    return data_cache.load(path, lambda: parse_digits(path, labels=labels, pixels=pixels), kind=source,
                           options={"labels": labels, "pixels": pixels}, cache=cache, directory=cache_dir)


def _said_again(path: str | Path, digits: Digits) -> None:
    """What a folder's first read says, said again when its images come from the cache: its empty classes."""
    counts = np.bincount(digits.labels, minlength=len(digits.label_names))
    empty = [name for name, n in zip(digits.label_names, counts) if n == 0]
    if empty:
        log.warning("%s: class folders with no images, kept as classes: %s", path, ", ".join(empty))


def _images(digits: Digits) -> str:
    shape = digits.image_shape
    return (f"{len(digits)} images in {len(digits.label_names)} classes, {'colour' if len(shape) == 3 else 'grey'} "
            f"{shape[0]}x{shape[1]}")


def _dims(shape) -> str:
    from lit_mnist.model.layers import image_size

    return "x".join(map(str, image_size(shape)))
