"""Rows of an array memory-mapped whole from an ``.npy`` file (a cache entry's pixels), read through the file rather
than through the mapping: a mapping's pages, once touched, count in the process's memory (its RSS) until it is
unmapped, where rows read into a buffer are held by the process alone and the page cache serves the reads.
"""

from __future__ import annotations

import io
import os
import weakref
from dataclasses import dataclass

import numpy as np

_PREADV = hasattr(os, "preadv")
_BLOCK_BYTES = 16 << 20  # a bounded buffer for copies out of an entry (it and its rows picked are held beside the copy)


def read_rows(pixels: np.memmap, index: np.ndarray | None = None) -> np.ndarray:
    """Rows ``index`` (all: None) of an entry's memory-mapped pixels, copied into memory through reads of the file
    (its :func:`source`) a block at a time rather than through the mapping: the process then holds the copy alone
    (the mapping's pages, once touched, would count in its memory beside it), and the page cache serves the reads."""
    rows, width = pixels.shape
    index = np.arange(rows) if index is None else np.asarray(index)
    opened = source(pixels)
    if opened is None:
        return np.array(pixels[index])
    out = np.empty((len(index), width), np.uint8)
    order = np.argsort(index, kind="stable")
    wanted = index[order]
    step = max(1, _BLOCK_BYTES // max(1, width))
    block = np.empty(step * width, np.uint8)  # one buffer, read into block after block
    try:
        for start in range(0, rows, step):
            first, last = np.searchsorted(wanted, [start, start + step])
            if first == last:
                continue
            size = (min(rows, start + step) - start) * width
            _read_into(opened, memoryview(block)[:size], opened.offset + start * width)
            out[order[first:last]] = block[:size].reshape(-1, width)[wanted[first:last] - start]
    finally:
        opened.file.close()
    return out


@dataclass(frozen=True)
class Source:
    """The file an entry's pixels are mapped from, opened once: a file deleted or replaced meanwhile (a cache
    cleared, an entry rewritten) is still the one mapped, and one cut short is an error, where its mapping would
    end the process (SIGBUS)."""

    file: io.FileIO
    offset: int  # where the rows start
    width: int  # bytes a row


def source(pixels: np.ndarray) -> Source | None:
    """The opened file of an entry's pixels mapped whole; None for any other array, which is indexed."""
    where = mapped_file(pixels)
    if where is None:
        return None
    try:
        file = open(where[0], "rb", buffering=0)  # noqa: SIM115 -- held for as long as the rows are read
    except OSError:
        return None
    if os.fstat(file.fileno()).st_size != where[1] + pixels.nbytes:  # replaced since it was mapped
        file.close()
        return None
    opened = Source(file, where[1], pixels.shape[1])
    weakref.finalize(opened, file.close)  # closed with the last split that reads it
    return opened


def gather(pixels: np.ndarray, where: np.ndarray, source: Source | None = None) -> np.ndarray:
    """Rows ``where`` of ``pixels`` (negative: from the end), in that order. Of an entry's pixels with their
    :func:`source`, read from the file in ascending order, a run of consecutive rows in one read: the process holds
    the rows read alone, where rows read through the mapping would leave its pages counted in the process's
    memory, the whole file once an epoch has touched every row. Otherwise indexed."""
    where = np.asarray(where, dtype=np.int64)
    where = np.where(where < 0, where + len(pixels), where)
    if where.size and (where.min() < 0 or where.max() >= len(pixels)):
        bad = where[(where < 0) | (where >= len(pixels))][0]
        raise IndexError(f"row {bad} is out of bounds for {len(pixels)} rows")
    ascending = np.argsort(where, kind="stable")
    rows = where[ascending]
    out = np.empty((len(where), pixels.shape[1]), np.uint8)
    out[ascending] = pixels[rows] if source is None else _read(source, rows)
    return out


def _read(source: Source, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (ascending, in bounds) of ``source``'s file."""
    width, fd = source.width, source.file.fileno()
    read = np.empty((len(rows), width), np.uint8)
    buffer = memoryview(read.reshape(-1))
    starts = np.flatnonzero(np.diff(rows, prepend=rows[:1] - 2) != 1)  # where a run of consecutive rows begins
    for begin, end in zip(starts.tolist(), [*starts[1:].tolist(), len(rows)]):
        part, offset = buffer[begin * width : end * width], source.offset + int(rows[begin]) * width
        got = os.preadv(fd, [part], offset) if _PREADV else 0  # one system call a run, as a rule
        if got != len(part):
            _read_into(source, part[got:], offset + got)
    return read


def _read_into(source: Source, view: memoryview, offset: int) -> None:
    """``view`` filled from ``offset``: a read may return less than asked, and there may be no ``preadv``."""
    done = 0
    while done < len(view):
        part = view[done:]
        if _PREADV:
            got = os.preadv(source.file.fileno(), [part], offset + done)
        else:  # Windows: a seek and a read
            source.file.seek(offset + done)
            got = source.file.readinto(part)
        if not got:
            raise OSError(f"{source.file.name}: shorter than its rows (cut short while in use?)")
        done += got


def mapped_file(pixels: np.ndarray) -> tuple[str, int] | None:
    """The file and offset of uint8 pixels mapped whole (``np.load(mmap_mode="r")``); None for any other array (one
    in memory, a copy, a view of part of a mapping or in another layout)."""
    filename, offset = getattr(pixels, "filename", None), getattr(pixels, "offset", None)
    if filename is None or offset is None or pixels.dtype != np.uint8 or pixels.ndim != 2:
        return None
    if not pixels.flags.c_contiguous:
        return None
    try:
        return (filename, offset) if os.path.getsize(filename) == offset + pixels.nbytes else None
    except OSError:
        return None
