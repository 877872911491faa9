"""Which reader reads a data path: a folder of class folders (``folders.py``), a NumPy ``.npz`` as
``keras.datasets`` returns its arrays (``arrays.py``), or else a CSV (``reader.py``). Folders and CSVs are read once
and served from the cache after (``cache.py``); an ``.npz`` is arrays already."""

from __future__ import annotations

from pathlib import Path

from lit_mnist.data import cache
from lit_mnist.data.arrays import npz_has_test, read_npz
from lit_mnist.data.reader import Digits

__all__ = ["has_test_split", "kind", "load"]


def kind(path: str | Path) -> str:
    """``folder``, ``npz`` or ``csv``."""
    path = Path(path)
    return "folder" if path.is_dir() else "npz" if path.suffix.lower() == ".npz" else "csv"


def has_test_split(path: str | Path) -> bool:
    """Whether the source holds its own test set (an ``.npz`` with ``x_test``)."""
    return kind(path) == "npz" and npz_has_test(path)


def load(path: str | Path, *, split: str = "train", labels: str = "required", pixels: int | None = None,
         color_mode: str | None = None, image_shape: list[int] | None = None) -> Digits:
    """The images and labels at ``path``. ``split``: an ``.npz``'s arrays (``train`` or ``test``); ``labels`` and
    ``pixels``: a CSV's (see ``reader.parse_digits``); ``color_mode`` and ``image_shape``: a folder's (its images
    converted and resized so)."""
    source = kind(path)
    if source == "folder":
        return cache.load_folder(path, color_mode=color_mode, image_shape=image_shape)
    if source == "npz":
        return read_npz(path, split=split)
    return cache.load_digits(path, labels=labels, pixels=pixels)
