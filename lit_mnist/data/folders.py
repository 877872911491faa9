"""Read a folder of images, one subfolder per class, as Keras's ``image_dataset_from_directory`` reads it.

The layout (torchvision's ``ImageFolder`` reads the same): ``path/<class>/.../<image>``. Classes are the
subfolders in ``sorted()`` order (``class_10`` before ``class_2``), hidden ones (``.git``) left out, as Keras does;
a class's images are its files ending in .bmp .gif .jpeg .jpg .png (any letter case) at any depth, ordered by
folder and then by name, as Keras walks them. Files directly in ``path`` and other files are ignored. A class
folder with no images stays a class with no rows (a warning names it): the model still has its output.

Images are decoded with Pillow (a GIF's first frame, alpha dropped) and resized, where asked, as
``tf.image.resize`` resizes them for Keras: bilinear, half-pixel centres, no antialiasing.
"""

from __future__ import annotations

import logging
import operator
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from lit_mnist.data.reader import Digits
from lit_mnist.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras's list
COLOR_MODES = ("grayscale", "rgb")
MAX_BYTES = 8 << 30  # the decoded images of a folder, all together
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # 16-bit grey PNGs
_GREY = {"1", "L", "LA", "La"}
# what Pillow's decoders raise on a damaged file: mostly OSError, SyntaxError from the PNG chunk reader, struct.error
# and the others from plugins that read a header's fields
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, ZeroDivisionError)


def read_image_folder(path: str | Path, *, color_mode: str | None = None,
                      image_shape: tuple[int, ...] | list[int] | None = None) -> Digits:
    """The images below ``path``'s class folders as uint8 rows (channels last), labelled by class.

    ``color_mode``: "grayscale", "rgb", or None: grey where every image is (R = G = B, or a grey file), else rgb.
    ``image_shape``: None (the images' own size, which they must share), or ``[H, W]`` / ``[H, W, C]`` to resize
    every image to H x W; C (1 or 3) sets the colour mode. ``label_names`` are the class folders' names."""
    path = Path(path)
    size, color_mode = _options(path, color_mode, image_shape)
    classes = _class_folders(path)
    found = [_images(path / name) for name in classes]
    files = [file for listed in found for file in listed]
    if not files:
        raise DataError(f"{path}: no images ({' '.join(IMAGE_SUFFIXES)}) in its {len(classes)} class folders")
    empty = [name for name, listed in zip(classes, found) if not listed]
    if empty:
        log.warning("%s: class folders with no images, kept as classes: %s", path, ", ".join(empty))
    images = _read_all(path, files, color_mode, size)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(listed) for listed in found])
    shape = tuple(int(s) for s in images.shape[1:])
    return Digits(images.reshape(len(files), -1), labels, shape, label_names=tuple(classes))


def _options(path: Path, color_mode: str | None, image_shape) -> tuple[tuple[int, int] | None, str | None]:
    """The size to resize to (None: the images' own) and the colour mode, checked."""
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise DataError(f"{path}: color_mode {color_mode!r}: expected 'grayscale' or 'rgb' (or none, to infer it)")
    if image_shape is None:
        return None, color_mode
    try:
        sizes = [operator.index(v) for v in image_shape]
    except TypeError:
        sizes = []
    if len(sizes) not in (2, 3) or min(sizes) < 1:
        raise DataError(f"{path}: image_shape {image_shape!r}: expected [height, width] or [height, width, channels]")
    if len(sizes) == 3:
        if sizes[2] not in (1, 3):
            alpha = "; drop alpha first" if sizes[2] == 4 else ""
            raise DataError(f"{path}: image_shape {sizes} has {sizes[2]} channels; expected 1 (grey) or 3 (colour)"
                            f"{alpha}")
        wanted = COLOR_MODES[sizes[2] == 3]
        if color_mode not in (None, wanted):
            raise DataError(f"{path}: image_shape {sizes} has {sizes[2]} channels but color_mode is {color_mode!r}")
        color_mode = wanted
    return (sizes[0], sizes[1]), color_mode


def _class_folders(path: Path) -> list[str]:
    """The class folders' names in ``sorted()`` order, hidden ones left out (Keras's rule)."""
    if not path.exists():
        raise DataError(f"{path}: no such folder")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder; expected one subfolder of images per class")
    try:
        names = sorted(os.listdir(path))
    except OSError as e:
        raise DataError(f"{path}: cannot list the folder ({e.strerror})") from None
    if not names:
        raise DataError(f"{path}: empty folder; expected one subfolder of images per class")
    classes = [name for name in names if not name.startswith(".") and (path / name).is_dir()]
    if not classes:
        raise DataError(f"{path}: no class subfolders; expected one subfolder of images per class "
                        "(path/<class>/<image>.png)")
    return classes


def _images(folder: Path) -> list[Path]:
    """The images at any depth below ``folder``, by folder then by name (Keras's order); links to folders are not
    followed, as Keras's default."""
    found = []
    for root, _, names in os.walk(folder):
        found += [(root, name) for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
    return [Path(root, name) for root, name in sorted(found)]


def _read_all(path: Path, files: list[Path], color_mode: str | None, size: tuple[int, int] | None) -> np.ndarray:
    """Every image, resized to ``size`` where given, in one array allocated once (the count is known): N x H x W
    grey or N x H x W x 3. An inferred colour mode starts grey and widens at the first colour image."""
    out, first = None, None
    for i, file in enumerate(files):
        image = _decode(file, color_mode)
        if size is not None:
            image = _resize(image, size)
        if first is None:
            first = file, image.shape[:2]
            out = _allocate(path, len(files), first[1], 3 if color_mode == "rgb" else 1)
        elif image.shape[:2] != first[1]:
            raise DataError(f"{path}: images of different sizes: {_size_of(path, *first)} and "
                            f"{_size_of(path, file, image.shape[:2])} (height x width); give --data.image_shape "
                            "[H, W] to resize them all")
        if image.ndim == 3 and out.ndim == 3:
            out = _widen(path, out, i)
        out[i] = image if image.ndim == out.ndim - 1 else image[..., None]  # a grey image in colour: R = G = B
    return out


def _size_of(path: Path, file: Path, shape: tuple[int, ...]) -> str:
    return f"{file.relative_to(path)} is {shape[0]}x{shape[1]}"


def _allocate(path: Path, n: int, shape: tuple[int, int], channels: int) -> np.ndarray:
    """The uninitialised N x H x W (x 3) array, refused where it would exceed ``MAX_BYTES``."""
    needed = n * shape[0] * shape[1] * channels
    if needed > MAX_BYTES:
        raise DataError(f"{path}: {n} images of {shape[0]}x{shape[1]}x{channels} need {needed:,} bytes, more than "
                        f"{MAX_BYTES:,}; give a smaller --data.image_shape")
    return np.empty((n, *shape) if channels == 1 else (n, *shape, channels), np.uint8)


def _widen(path: Path, grey: np.ndarray, filled: int) -> np.ndarray:
    """The colour array of ``grey``'s first ``filled`` images (R = G = B), for an inferred mode that meets colour."""
    colour = _allocate(path, len(grey), grey.shape[1:], 3)
    colour[:filled] = grey[:filled, ..., None]
    return colour


def _decode(file: Path, color_mode: str | None) -> np.ndarray:
    """One image as uint8 H x W (grey) or H x W x 3; any failure to decode is a one-line error naming the file."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: refuse there too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:  # a GIF opens on its first frame
                return _pixels(image, color_mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{file}: image too large to read safely ({_line(e).split(',')[0]})") from None
    except _UNREADABLE as e:
        raise DataError(f"{file}: not a readable image ({type(e).__name__}: {_line(e)})") from None


def _line(error: Exception) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else "no detail"


def _pixels(image: Image.Image, color_mode: str | None) -> np.ndarray:
    """``image``'s pixels, alpha dropped. Grey from colour is Pillow's ITU-R 601-2 luma, 0.299 R + 0.587 G + 0.114 B
    (``tf.image.rgb_to_grayscale``'s weights: the same grey levels within one); a JPEG gives its own luma, decoded
    as libjpeg decodes it for TF."""
    if image.mode in _SIXTEEN_BIT:  # the high byte, as libpng strips 16 bits for TF; Pillow's convert would clip
        return np.clip(np.asarray(image, dtype=np.int64) >> 8, 0, 255).astype(np.uint8)
    if image.mode in _GREY:
        return np.asarray(image.convert("L"))
    if color_mode == "grayscale":
        if image.format == "JPEG":
            image.draft("L", image.size)
        return np.asarray(image.convert("L"))
    rgb = np.asarray(image.convert("RGB"))
    if color_mode is None and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0]
    return rgb


def picture_row(image: Image.Image, image_shape: tuple[int, ...]) -> np.ndarray:
    """A picture as a row of a model trained on a folder's images: converted to its channels (grey, or R, G, B)
    and resized to its ``image_shape`` as the folder's images were, each pixel's channels in turn."""
    pixels = _pixels(image, "rgb" if len(image_shape) == 3 else "grayscale")
    if len(image_shape) == 3 and pixels.ndim == 2:  # a grey picture: its level in every channel, as rgb reads it
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return _resize(pixels, tuple(image_shape[:2])).reshape(-1)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` (height, width) as ``tf.image.resize`` computes it for Keras: bilinear, half-pixel
    centres, no antialiasing (Pillow's resize antialiases: other grey levels), rounded to uint8."""
    if image.shape[:2] == size:
        return image
    import torch  # here: reading a folder at the images' own size needs no torch

    x = torch.from_numpy(image.astype(np.float32))
    x = x[None, None] if image.ndim == 2 else x.permute(2, 0, 1)[None]
    y = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)[0]
    y = y[0] if image.ndim == 2 else y.permute(1, 2, 0)
    return y.round().clamp(0, 255).to(torch.uint8).numpy()
