"""Read images and labels from a NumPy .npz file, as ``keras.datasets.*.load_data()`` returns them and users keep
them: ``np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)``, or ``x`` and ``y`` alone (training).

``x`` is N x H x W (grey) or N x H x W x C (C = 1 grey, C = 3 colour); ``y`` is N or N x 1 (CIFAR-10's) whole
numbers 0-999. Pixels are grey levels 0-255 of any integer or float type; floats all within [0, 1] (as after
``x / 255``) are scaled back by 255, with a log line. Each array's declared size is read from its header and
checked against :data:`MAX_BYTES` before any of it is read: a small file cannot make the reader allocate much.
"""

from __future__ import annotations

import logging
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lit_mnist.data.reader import MAX_LABEL, Digits
from lit_mnist.errors import DataError

log = logging.getLogger(__name__)

MAX_BYTES = 8 << 30  # one array's declared size
# the arrays of each split, tried in turn: a test file of its own may hold x and y alone
SPLITS = {"train": (("x_train", "y_train"), ("x", "y")), "test": (("x_test", "y_test"), ("x", "y"))}
_DAMAGED = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, NotImplementedError)


def npz_has_test(path: str | Path) -> bool:
    """Whether the .npz file holds test arrays (``x_test``)."""
    return "x_test" in _headers(Path(path))


def read_npz(path: str | Path, *, split: str = "train") -> Digits:
    """The ``split`` ("train": ``x_train``/``y_train``, or ``x``/``y``; "test": ``x_test``/``y_test``) as uint8 rows
    (channels last) and int64 labels; the image shape is ``(H, W)`` for grey, ``(H, W, 3)`` for colour."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    path = Path(path)
    headers = _headers(path)
    x_name, y_name = _names(path, headers, split)
    shape = _image_shape(path, x_name, headers[x_name])
    _check_labels_header(path, x_name, y_name, headers)
    x, y = _load(path, x_name, y_name)
    pixels = _grey_levels(path, x_name, x).reshape(len(x), -1)
    return Digits(pixels, _labels(path, y_name, y), shape)


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's name, shape and dtype, read from the members' headers alone (no data read)."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith(".npy")]
            headers = {name[:-4]: _header(path, archive, name) for name in names}
    except DataError:
        raise
    except _DAMAGED as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {_line(e)})") from None
    if not headers:
        raise DataError(f"{path}: no arrays in the .npz file; expected x_train and y_train (np.savez)")
    return headers


def _header(path: Path, archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(member) as fp:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0)):
            raise DataError(f"{path}: {member[:-4]} is not a plain numeric array (.npy format {version})")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fp)
    if dtype.hasobject:
        raise DataError(f"{path}: {member[:-4]} holds Python objects (pickled), which are not read; save numeric "
                        "arrays")
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_BYTES:
        raise DataError(f"{path}: {member[:-4]} declares {'x'.join(map(str, shape))} {dtype} values, {size:,} "
                        f"bytes: more than the {MAX_BYTES:,} read")
    return shape, dtype


def _line(error: Exception) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else "no detail"


def _names(path: Path, headers: dict, split: str) -> tuple[str, str]:
    """The split's image and label arrays' names, both present."""
    for x_name, y_name in SPLITS[split]:
        if x_name in headers:
            if y_name not in headers:
                raise DataError(f"{path}: {x_name} but no {y_name}: labels are needed")
            return x_name, y_name
    wanted = " and ".join(SPLITS[split][0]) + (" (or x and y)" if split == "train" else "")
    raise DataError(f"{path}: no {wanted} in the .npz file; it holds {', '.join(sorted(headers))}")


def _image_shape(path: Path, name: str, header: tuple) -> tuple[int, ...]:
    """``(H, W)`` or ``(H, W, 3)`` of images N x H x W (x C), checked from the header."""
    shape, dtype = header
    if dtype.kind not in "uif":
        raise DataError(f"{path}: {name} holds {dtype} values; expected grey levels 0-255 (integers or floats)")
    if len(shape) not in (3, 4) or min(shape[1:3], default=0) < 1:
        raise DataError(f"{path}: {name} is {_dims(shape)}; expected images N x H x W or N x H x W x C")
    if shape[0] == 0:
        raise DataError(f"{path}: {name} holds no images")
    channels = shape[3] if len(shape) == 4 else 1
    if channels not in (1, 3):
        alpha = ": drop alpha first" if channels == 4 else ""
        raise DataError(f"{path}: {name} is {_dims(shape)}: {channels} channels; expected 1 (grey) or 3 (colour)"
                        f"{alpha}")
    return (shape[1], shape[2]) if channels == 1 else (shape[1], shape[2], 3)


def _dims(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape)) if shape else "a single value"


def _check_labels_header(path: Path, x_name: str, y_name: str, headers: dict) -> None:
    """``y`` is N or N x 1 numbers, N as many as ``x``'s images."""
    (x_shape, _), (shape, dtype) = headers[x_name], headers[y_name]
    if dtype.kind not in "uif":
        raise DataError(f"{path}: {y_name} holds {dtype} values; expected class numbers 0-{MAX_LABEL}")
    if len(shape) == 2 and shape[1] > 1:
        raise DataError(f"{path}: {y_name} is {_dims(shape)}: one-hot labels? save the class numbers "
                        f"({y_name}.argmax(axis=1))")
    if len(shape) not in (1, 2):
        raise DataError(f"{path}: {y_name} is {_dims(shape)}; expected N or N x 1 class numbers")
    if shape[0] != x_shape[0]:
        raise DataError(f"{path}: {x_name} holds {x_shape[0]} images and {y_name} {shape[0]} labels")


def _load(path: Path, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[x_name], arrays[y_name]
    except _DAMAGED as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {_line(e)})") from None


def _grey_levels(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    """``x`` as uint8, C-contiguous: integers 0-255 as they are, floats within [0, 255] rounded, floats all
    within [0, 1] scaled by 255 first."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "f":
        _refuse(path, name, x, np.isnan(x), "is NaN; pixels are grey levels 0-255")
        if x.min() >= 0 and x.max() <= 1:
            log.info("%s: %s holds floats within [0, 1]: scaled by 255 to grey levels", path, name)
            x = x * 255
        _refuse(path, name, x, (x < 0) | (x > 255), "is outside 0-255; pixels are grey levels")
        return np.ascontiguousarray(np.rint(x), dtype=np.uint8)
    _refuse(path, name, x, (x < 0) | (x > 255), "is outside 0-255; pixels are grey levels")
    return np.ascontiguousarray(x, dtype=np.uint8)


def _refuse(path: Path, name: str, values: np.ndarray, bad: np.ndarray, what: str) -> None:
    """A one-line error at the first ``bad`` element, by its index."""
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), bad.shape)
        value = values[index]
        raise DataError(f"{path}: {name}[{', '.join(map(str, index))}] = {value:g} {what}")


def _labels(path: Path, name: str, y: np.ndarray) -> np.ndarray:
    """``y`` as int64 class numbers, each a whole number 0-``MAX_LABEL``."""
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        _refuse(path, name, y, ~np.isfinite(y) | (y != np.floor(y)), f"is not a class number 0-{MAX_LABEL}")
    _refuse(path, name, y, (y < 0) | (y > MAX_LABEL), f"is not a class number 0-{MAX_LABEL}")
    return np.ascontiguousarray(y, dtype=np.int64)
