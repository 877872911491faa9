"""Which reader reads a data path: a folder of class folders (``folders.py``), a NumPy ``.npz`` as
``keras.datasets`` returns its arrays (``arrays.py``), or else a CSV (``reader.py``). Folders and CSVs are read once
and served from the cache after (``cache.py``); an ``.npz`` is arrays already."""

from __future__ import annotations

from pathlib import Path

from lit_mnist.data import cache as parse_cache
from lit_mnist.data.arrays import npz_has_test, read_npz
from lit_mnist.data.folders import read_image_folder
from lit_mnist.data.reader import Digits, parse_digits
from lit_mnist.errors import DataError
from lit_mnist.model.layers import image_size

__all__ = ["has_test_split", "kind", "load"]


def kind(path: str | Path) -> str:
    """``folder``, ``npz`` or ``csv``."""
    path = Path(path)
    return "folder" if path.is_dir() else "npz" if path.suffix.lower() == ".npz" else "csv"


def has_test_split(path: str | Path) -> bool:
    """Whether the source holds its own test set (an ``.npz`` with ``x_test``)."""
    return kind(path) == "npz" and npz_has_test(path)


def load(path: str | Path, *, split: str = "train", labels: str = "required", pixels: int | None = None,
         color_mode: str | None = None, image_shape: list[int] | tuple[int, ...] | None = None,
         cache: bool = True) -> Digits:
    """The images and labels at ``path``. ``split``: an ``.npz``'s arrays (``train`` or ``test``); ``labels`` and
    ``pixels``: a CSV's (see ``reader.parse_digits``); ``image_shape``: a folder's images are converted and resized
    to it (``[H, W, 1]`` grey, ``[H, W, 3]`` colour; ``[H, W]`` in their own colours), an ``.npz``'s must have it;
    ``color_mode``: a folder's (and no other source's). ``cache``: a folder's decode and a CSV's parse are kept."""
    source = kind(path)
    if color_mode is not None and source != "folder":
        raise DataError(f"{path}: --data.color_mode applies to a folder of images; a {source}'s values are read "
                        "as they are")
    if source == "folder":
        if not cache:
            return read_image_folder(path, color_mode=color_mode, image_shape=image_shape)
        return parse_cache.load_folder(path, color_mode=color_mode, image_shape=image_shape)
    if source == "npz":
        digits = read_npz(path, split=split)
        if image_shape is not None and image_size(digits.image_shape) != image_size(image_shape):
            raise DataError(f"{path}: its images are {_dims(digits.image_shape)}; {_dims(image_shape)} ones are "
                            "expected here")
        return digits
    if not cache:
        return parse_digits(path, labels=labels, pixels=pixels)
    return parse_cache.load_digits(path, labels=labels, pixels=pixels)


def _dims(shape) -> str:
    return "x".join(map(str, image_size(shape)))
