"""Where data live, and the data cache: a source (a CSV, a folder of images, an ``.npz``) is read once; later runs
memory-map the arrays it gave.

An entry is a folder of ``.npy`` files (``pixels``, uint8 rows; ``labels``, ``ids``; each alone in its file) and a
``meta.json`` (the image shape, id column and label names, the source it came from), in the cache directory:
``--data.cache_dir``, else ``$LIT_MNIST_CACHE_DIR``, else ``$XDG_CACHE_HOME/lit-mnist``, else
``~/.cache/lit-mnist``. Its name holds a key of the source's resolved path, size and modification time (ns), the
options it was read with and :data:`FORMAT` (a folder of images: each image's path, size and modification time):
no checksum of the content, which would read the whole file on every run. An entry is written beside its final
name and renamed last, so a killed write leaves a hidden temporary folder that is never read; of several
processes on one machine (the ranks of a node), the first to take the directory's lock writes it and the others
wait, then map it. ``scripts/cache.py info`` lists the entries, ``scripts/cache.py clear`` deletes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_mnist.data.reader import Digits

log = logging.getLogger(__name__)

FORMAT = 4  # bump when a reader's output or the entry's layout changes: older entries are then never read
LOCK_TIMEOUT_S = 3600  # another process writing the same directory's entry: a first read at 100x takes minutes
_META = "meta.json"


def data_dir() -> Path:
    """Where MNIST's arrays are kept (``mnist.npz``): ``$LIT_MNIST_DATA_DIR``, else ``./data``."""
    return Path(os.environ.get("LIT_MNIST_DATA_DIR", "data"))


def cache_dir(given: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``given`` (``--data.cache_dir``), ``$LIT_MNIST_CACHE_DIR``, ``$XDG_CACHE_HOME/lit-mnist``
    or ``~/.cache/lit-mnist``, the first that is set."""
    if given:
        return Path(given).expanduser()
    if os.environ.get("LIT_MNIST_CACHE_DIR"):
        return Path(os.environ["LIT_MNIST_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lit-mnist"


def load(path: str | Path, read: Callable[[], Digits], *, kind: str, options: dict, cache: bool = True,
         directory: str | os.PathLike | None = None) -> Digits:
    """``read()``'s digits, from the cache entry of ``path`` as it is now and ``options`` where there is one, else
    read and kept (``cache`` false: read, nothing written). The pixels of a cached source are memory-mapped,
    read-only."""
    path = Path(path)
    if not cache or not (path.is_file() or path.is_dir()):  # what is not there, the reader says so in its words
        return read()
    folder = cache_dir(directory)
    source, state = _key(path, kind, options)
    name = f"{kind}-{_slug(path)}-{source}-{state}"
    digits = _open(folder / name, path)
    if digits is not None:
        return digits
    try:
        lock = _lock(folder)
        lock.acquire()
    except OSError as e:  # an unwritable cache directory (or a writer gone quiet): the run goes on without
        log.warning("%s: not cached (%s)", path, e.strerror or e)
        return read()
    try:
        digits = _open(folder / name, path, quiet=True)  # written by the process that held the lock first
        if digits is not None:
            return digits
        digits = read()
        return _write(folder, name, path, digits) or digits
    finally:
        lock.release()


@dataclass(frozen=True)
class Entry:
    """One entry of the cache directory, as ``scripts/cache.py info`` lists it."""

    path: Path
    source: str  # the file or folder it was read from ("" for a temporary folder a killed write left)
    rows: int
    bytes: int


def entries(directory: str | os.PathLike | None = None) -> list[Entry]:
    """The cache directory's entries (and any temporary folder a killed write left), by name."""
    folder = cache_dir(directory)
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not path.is_dir():
            continue
        try:
            meta = json.loads((path / _META).read_text())
            source, rows = str(meta["source"]), int(meta["rows"])
        except (OSError, ValueError, KeyError, TypeError):
            source, rows = "", 0
        found.append(Entry(path, source, rows, sum(f.stat().st_size for f in path.iterdir() if f.is_file())))
    return found


def clear(directory: str | os.PathLike | None = None) -> tuple[int, int]:
    """Delete every entry (and leftover temporary folder); the number deleted and the bytes freed."""
    folder = cache_dir(directory)
    gone = entries(folder)
    if not gone:
        return 0, 0
    with _lock(folder):
        for entry in gone:
            shutil.rmtree(entry.path, ignore_errors=True)
    return len(gone), sum(e.bytes for e in gone)


def _key(path: Path, kind: str, options: dict) -> tuple[str, str]:
    """Two short hashes: of the source's resolved path, the options and :data:`FORMAT` (an entry of the same source
    and options, read before the source changed, is replaced), and of its state (size and modification time; a
    folder's: every file's)."""
    resolved = path.resolve()
    state = hashlib.sha256()
    if path.is_dir():
        for file in sorted(resolved.rglob("*")):  # a class folder with no images yet is a class
            stat = file.stat()
            state.update(f"{file.relative_to(resolved)}\0{file.is_dir()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    else:
        stat = resolved.stat()
        state.update(f"{stat.st_size}\0{stat.st_mtime_ns}".encode())
    source = hashlib.sha256(repr((FORMAT, str(resolved), sorted(options.items()))).encode())
    return source.hexdigest()[:12], state.hexdigest()[:16]


def _slug(path: Path) -> str:
    """The source's name, as a readable part of an entry's name."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in path.resolve().name)[:40] or "source"


def _lock(folder: Path):
    from filelock import FileLock  # imported when a source is first read, not at every command's start

    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / ".lock", timeout=LOCK_TIMEOUT_S)


def _open(entry: Path, source: Path, quiet: bool = False) -> Digits | None:
    """The entry's digits, pixels memory-mapped; None where there is none, or where it cannot be read (damaged,
    truncated: a warning, and it is read again and rewritten)."""
    if not entry.is_dir():
        return None
    try:
        digits = _mapped(entry)
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: its cache entry %s cannot be read (%s); reading the source again", source, entry,
                    str(e).splitlines()[0] if str(e) else type(e).__name__)
        return None
    if not quiet:
        log.info("%s: %s rows from the cache (%s, memory-mapped) at %s", source, f"{len(digits):,}",
                 _size(digits.pixels.nbytes), entry)
    return digits


def _mapped(entry: Path) -> Digits:
    meta = json.loads((entry / _META).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')}, not {FORMAT}")
    pixels = np.load(entry / "pixels.npy", mmap_mode="r", allow_pickle=False)
    rows = int(meta["rows"])
    arrays = {name: np.load(entry / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or len(pixels) != rows or any(len(a) != rows for a in arrays.values()):
        raise ValueError("its arrays do not match its description")
    shape, names = meta["image_shape"], meta["label_names"]
    return Digits(pixels, arrays.get("labels"), None if shape is None else tuple(shape), arrays.get("ids"),
                  meta["id_name"], None if names is None else tuple(names))


def _write(folder: Path, name: str, source: Path, digits: Digits) -> Digits | None:
    """Keep ``digits`` as the entry ``name`` (replacing the entries of the same source read before it changed),
    and the entry, mapped; None where the directory is not writable (the run goes on without)."""
    start = time.perf_counter()
    try:
        with _building(folder, name) as tmp:
            np.save(tmp / "pixels.npy", np.ascontiguousarray(digits.pixels, dtype=np.uint8), allow_pickle=False)
            arrays = {"labels": digits.labels, "ids": None if digits.ids is None else np.asarray(digits.ids, dtype=str)}
            kept = [key for key, array in arrays.items() if array is not None]
            for key in kept:
                np.save(tmp / f"{key}.npy", arrays[key], allow_pickle=False)
            meta = {"format": FORMAT, "source": str(source.resolve()), "rows": len(digits), "arrays": kept,
                    "image_shape": None if digits.image_shape is None else [int(v) for v in digits.image_shape],
                    "id_name": digits.id_name,
                    "label_names": None if digits.label_names is None else list(digits.label_names)}
            (tmp / _META).write_text(json.dumps(meta))
        for stale in folder.glob(f"{name.rsplit('-', 1)[0]}-*"):
            if stale.name != name:
                shutil.rmtree(stale, ignore_errors=True)
    except OSError as e:
        log.warning("%s: not cached (%s)", source, e.strerror or e)
        return None
    log.info("cached %s rows, %s, at %s (in %.1f s)", f"{len(digits):,}", _size(digits.pixels.nbytes),
             folder / name, time.perf_counter() - start)
    return _open(folder / name, source, quiet=True)


@contextlib.contextmanager
def _building(folder: Path, name: str) -> Iterator[Path]:
    """A hidden temporary folder beside ``folder/name``, renamed onto it once the block succeeds (an entry there,
    unreadable, is replaced); removed if the block fails."""
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".tmp"))
    try:
        yield tmp
        final = folder / name
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".old"))
            os.replace(final, old / name)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.0f} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:,.1f} kB"
