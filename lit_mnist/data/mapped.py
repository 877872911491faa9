"""Rows of an array memory-mapped whole from an ``.npy`` file (a cache entry's pixels), read through the file rather
than through the mapping: a mapping's pages, once touched, count in the process's memory (its RSS) until it is
unmapped, where rows read into a buffer are held by the process alone and the page cache serves the reads.
"""

from __future__ import annotations

import os

import numpy as np

_BLOCK_BYTES = 16 << 20  # a bounded buffer for copies out of an entry (it and its rows picked are held beside the copy)


def read_rows(pixels: np.memmap, index: np.ndarray | None = None) -> np.ndarray:
    """Rows ``index`` (all: None) of an entry's memory-mapped pixels, copied into memory through reads of the file
    a block at a time rather than through the mapping: the process then holds the copy alone (the mapping's pages,
    once touched, would count in its memory beside it), and the page cache serves the reads."""
    rows, width = pixels.shape
    index = np.arange(rows) if index is None else np.asarray(index)
    source = mapped_file(pixels)
    if source is None:
        return np.array(pixels[index])
    out = np.empty((len(index), width), np.uint8)
    order = np.argsort(index, kind="stable")
    wanted = index[order]
    step = max(1, _BLOCK_BYTES // max(1, width))
    with open(source[0], "rb") as f:
        for start in range(0, rows, step):
            first, last = np.searchsorted(wanted, [start, start + step])
            if first == last:
                continue
            f.seek(source[1] + start * width)
            block = np.fromfile(f, np.uint8, (min(rows, start + step) - start) * width).reshape(-1, width)
            out[order[first:last]] = block[wanted[first:last] - start]
    return out


def gather(pixels: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Rows ``where`` of ``pixels``, in that order. Of an entry's memory-mapped pixels, read from the file in
    ascending order, a run of consecutive rows in one read: the process holds the rows read alone, where rows
    read through the mapping would leave its pages counted in the process's memory, the whole file once an epoch
    has touched every row. Of any other array, indexed."""
    ascending = np.argsort(where, kind="stable")
    rows = where[ascending]
    out = np.empty((len(where), pixels.shape[1]), np.uint8)
    source = mapped_file(pixels)
    if source is None:
        out[ascending] = pixels[rows]
        return out
    out[ascending] = _read(source, rows, pixels.shape[1])
    return out


def _read(source: tuple[str, int], rows: np.ndarray, width: int) -> np.ndarray:
    """Rows ``rows`` (ascending) of the file ``source`` (its path, and the offset its rows start at)."""
    read = np.empty((len(rows), width), np.uint8)
    buffer = memoryview(read.reshape(-1))
    starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # where a run of consecutive rows begins
    fd = os.open(source[0], os.O_RDONLY)
    try:
        for begin, end in zip(starts.tolist(), [*starts[1:].tolist(), len(rows)]):
            part = buffer[begin * width : end * width]
            if os.preadv(fd, [part], source[1] + int(rows[begin]) * width) != len(part):
                raise OSError(f"{source[0]}: shorter than its rows (truncated while in use?)")
    finally:
        os.close(fd)
    return read


def mapped_file(pixels: np.ndarray) -> tuple[str, int] | None:
    """The file and offset of an entry's pixels mapped whole (``np.load(mmap_mode="r")``); None for any other array
    (one in memory, a copy, a view of part of a mapping or in another layout)."""
    filename, offset = getattr(pixels, "filename", None), getattr(pixels, "offset", None)
    if filename is None or offset is None or not pixels.flags.c_contiguous or pixels.ndim != 2:
        return None
    try:
        return (filename, offset) if os.path.getsize(filename) == offset + pixels.nbytes else None
    except OSError:
        return None
