"""Turn a photo or drawing of a digit into a row of grey levels, the way MNIST itself was made.

LeCun et al. normalised each digit to fit a 20x20 box keeping its aspect ratio (with
anti-aliasing, hence grey levels), then placed it in a 28x28 field so that its centre of mass
sits at the centre. MNIST digits are light on a dark background; a dark-on-light scan is inverted.
For a model of other images (HxW) the box is the same part of the field, 20/28 of each side.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from lit_mnist.errors import DataError

# the raster formats of digit pictures that PIL reads (a folder is searched for these): web and camera
# formats, and Netpbm's, in which many MNIST-style image sets are kept
IMAGE_SUFFIXES = {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".avif",
                  ".tga", ".pbm", ".pgm", ".ppm", ".pnm"}
MNIST_FIELD = (28, 28)  # MNIST's image, whose digits fit a box of 20/28 of it
BOX_FRACTION = 20 / 28
WORKING_SIZE = 512  # larger pictures are shrunk to this first: ample for a 20x20 digit, and a bound on the work


class UnreadableImage(DataError):
    """Bytes that no image decoder here reads."""


class ImageTooLarge(DataError):
    """An image with more pixels than it is safe to decode (a decompression bomb, or a picture of no digit)."""


class BlankImage(DataError):
    """An image with no mark on it to take for a digit."""


def load_image(source: str | Path | bytes, name: str | None = None, max_pixels: int | None = None,
               luma: bool = False) -> Image.Image:
    """A decoded image from a file, or from the bytes of one (``name`` then says where they came from).

    ``max_pixels`` refuses, before decoding, an image with more pixels (PIL's own limit is ~179 million).
    ``luma``: a JPEG decoded to its own grey channel, as TensorFlow's decoder gives it to a grayscale Keras."""
    name = name or ("image" if isinstance(source, bytes) else str(source))
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            if max_pixels is not None and image.width * image.height > max_pixels:
                raise ImageTooLarge(f"{name}: image too large to read safely ({image.width}x{image.height} pixels, "
                                f"more than {max_pixels})")
            if luma and image.format == "JPEG":
                image.draft("L", image.size)
            image.load()
            return image.copy()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except Image.DecompressionBombError as e:  # PIL refuses to decode it: too many pixels to be a photo of a digit
        raise ImageTooLarge(f"{name}: image too large to read safely ({e.args[0].split(',')[0]})") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UnreadableImage(f"{name}: not a readable image ({e.__class__.__name__})") from None


def is_image(path: str | Path) -> bool:
    """Whether PIL recognises the file as an image, from its header alone (nothing is decoded)."""
    try:
        with Image.open(path):
            return True
    except Image.DecompressionBombError:  # an image, too large to read: load_image says so
        return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def to_grey(image: Image.Image) -> np.ndarray:
    """Grey levels 0-255 as float, whatever the mode: 16-bit and float images are rescaled, and
    transparent areas become paper that contrasts with the ink (white under dark ink, black under light)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _rescaled(np.asarray(image, dtype=np.float64), image.mode)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
        grey = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float64)
        drawn = alpha > 0.5
        paper = 0.0 if drawn.any() and alpha.min() < 1 and np.median(grey[drawn]) > 127 else 255.0
        return grey * alpha + paper * (1.0 - alpha)
    return np.asarray(image.convert("L"), dtype=np.float64)


def _rescaled(values: np.ndarray, mode: str) -> np.ndarray:
    """32-bit, 16-bit or float grey levels onto 0-255, by the range their type implies (0-1 for float)."""
    values = np.nan_to_num(np.clip(values, 0, None))
    top = values.max()
    ranges = (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0)
    full = next((r for r in ranges if top <= r), top)
    return values * (255.0 / full) if full > 0 else values


def light_on_dark(grey: np.ndarray) -> np.ndarray:
    """Make the digit light on dark: if the paper is brighter than mid-grey, invert; the paper becomes black.
    The paper's level is the border's median: the border is paper but where the digit touches it. When the
    border is split (a third to two thirds of it darker than mid-grey: a frame, a page's edge on some sides),
    it is the whole picture's median instead, as strokes cover far less than half of a picture of a digit."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(grey if 1 / 3 < np.mean(border <= 127) < 2 / 3 else border))
    ink, paper = (255.0 - grey, 255.0 - paper) if paper > 127 else (grey, paper)
    return np.clip(ink - paper, 0, None)


def prepared(source: str | Path | bytes, name: str, image_shape: tuple[int, ...], preparation: str = "digit",
             max_pixels: int | None = None) -> np.ndarray:
    """A picture (a file, or its bytes) as a row of a model of ``image_shape`` images: ``digit``, as MNIST made its
    digits (:func:`mnist_pixels`: grey images of digits, from CSVs or MNIST); ``resize``, converted to the model's
    channels and resized as a folder's images were read for it (``folders.picture_row``: colour images, image
    folders; a grey model's JPEG decoded to its own luma, as the folder's were)."""
    if preparation == "resize":
        from lit_mnist.data.folders import picture_row

        return picture_row(load_image(source, name, max_pixels, luma=len(image_shape) == 2), image_shape)
    return mnist_pixels(load_image(source, name, max_pixels), name, tuple(image_shape[:2]))


def mnist_pixels(image: Image.Image, name: str = "image", field: tuple[int, int] = MNIST_FIELD) -> np.ndarray:
    """One image as a row of ``field`` (height, width; MNIST's 28x28 by default) uint8 grey levels, light digit
    on black, fitted to the box and centred by mass."""
    digit = digit_ink(light_on_dark(_at_most(to_grey(image), WORKING_SIZE)))
    if digit is None:
        raise BlankImage(f"{name}: no digit found (the image is blank)")
    digit = digit * (255.0 / digit.max())
    box = tuple(max(1, round(side * BOX_FRACTION)) for side in field)
    boxed = np.clip(_fit(digit, box, Image.Resampling.LANCZOS), 0, 255)
    return _centre_by_mass(boxed, field).round().astype(np.uint8).reshape(-1)


def _at_most(grey: np.ndarray, size: int) -> np.ndarray:
    """A photo shrunk (by area averaging) to ``size`` pixels on its longer side: the digit ends up box-sized."""
    return grey if max(grey.shape) <= size else _fit(grey, (size, size), Image.Resampling.BOX)


def _fit(values: np.ndarray, box: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Grey levels resampled by PIL to fill ``box`` (height, width) on one side, keeping the aspect ratio."""
    height, width = values.shape
    scale = min(box[0] / height, box[1] / width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize(shape, resample), dtype=np.float64)


def digit_ink(ink: np.ndarray) -> np.ndarray | None:
    """The digit's ink alone, cropped to it (None if there is none). The strokes are the connected marks
    above Otsu's threshold; of those, specks (under a tenth of the largest mark) go, and so do marks touching
    the edge (a page's edge or shadow, a frame) where a mark of the digit's size lies inside. Grey levels
    within a few pixels of the marks kept stay, for the strokes' anti-aliased edges; the rest is paper."""
    if ink.max() <= 0:
        return None
    reach = max(1, round(max(ink.shape) / 56))  # 1 pixel at MNIST's 28, more for photos
    smooth = ndimage.uniform_filter(ink, 2 * reach - 1)  # sensor noise is not a stroke
    marks, count = ndimage.label(smooth > otsu_threshold(smooth), structure=np.ones((3, 3)))
    if count == 0:
        return None
    sizes = np.bincount(marks.ravel(), minlength=count + 1)[1:]
    edge = np.unique(np.concatenate([marks[0], marks[-1], marks[:, 0], marks[:, -1]]))
    inside = np.setdiff1d(np.arange(1, count + 1), edge)
    if inside.size and sizes[inside - 1].max() >= 0.2 * sizes.max():
        candidates = inside
    else:
        candidates = np.arange(1, count + 1)
    kept = candidates[sizes[candidates - 1] >= 0.1 * sizes[candidates - 1].max()]
    chosen = np.zeros(count + 1, bool)
    chosen[kept] = True
    strokes = chosen[marks]
    rows, cols = np.nonzero(strokes)
    near = ndimage.maximum_filter(strokes, size=2 * reach + 1)
    return np.where(near, ink, 0.0)[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def otsu_threshold(values: np.ndarray) -> float:
    """The grey level (0-255) that best splits ``values`` in two classes (Otsu 1979: the largest between-class
    variance); values at or below it are one class."""
    counts = np.bincount(np.clip(values, 0, 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    weight, mass = np.cumsum(counts), np.cumsum(counts * np.arange(256))
    below, above = weight[:-1], weight[-1] - weight[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = below * above * (mass[:-1] / below - (mass[-1] - mass[:-1]) / above) ** 2
    return float(np.nanargmax(between)) if np.isfinite(between).any() else float(values.min())


def _centre_by_mass(boxed: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    field = np.zeros(shape)
    height, width = boxed.shape
    total = boxed.sum()
    cy = (boxed.sum(axis=1) @ np.arange(height)) / total
    cx = (boxed.sum(axis=0) @ np.arange(width)) / total
    top = int(np.clip(round(shape[0] / 2 - 0.5 - cy), 0, shape[0] - height))
    left = int(np.clip(round(shape[1] / 2 - 0.5 - cx), 0, shape[1] - width))
    field[top : top + height, left : left + width] = boxed
    return field


def image_files(path: str | Path) -> list[Path]:
    """A file, or the image files in a folder and its subfolders (sorted by path; hidden files left out,
    such as the '._name.png' files macOS leaves beside copies)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return [path]
