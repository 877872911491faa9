"""A digit CSV's text as a stream, decompressed on the fly, and cut into pieces that end at a line's end: the reader
hands pyarrow one piece at a time, so that a file of any size is parsed in bounded memory.

Compression is known by content, not name: gzip, bzip2 and zstd are read through Arrow's decompressing streams,
xz through Python's ``lzma``, a zip archive's one file through ``zipfile``. A stream that fails part-way is
reported as :class:`Damaged`; the reader then reads the file whole, as :func:`reader.read_bytes` does, which says
what is wrong in the same words for every input.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from lit_mnist.errors import DataError

ZIP_MAGIC = b"PK\x03\x04"
MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_ARROW_CODECS = {"gzip": "gzip", "bzip2": "bz2", "zstd": "zstd"}
_PYTHON_OPEN = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
HEAD_BYTES = (1 << 16) + 3  # the least a head holds: the binary check looks at 64 KiB after a byte-order mark
_LINE_END = (b"\n", b"\r")  # where pyarrow ends a row: \n, \r\n or a lone \r
_NON_BLANK = re.compile(rb"\S")
_FAILURES = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, NotImplementedError)


class Damaged(Exception):
    """A compressed stream that could not be read to its end."""


@dataclass(frozen=True)
class Source:
    """How to read a file's text from its start, as often as needed: ``open`` gives a fresh binary stream of the
    decompressed bytes; ``size`` is their number where it is known without reading them (a plain file's, a zip
    member's), else None; ``compressed``: whether the file can be damaged as a compressed file is."""

    open: Callable[[], AbstractContextManager[BinaryIO]]
    size: int | None
    compressed: bool = True


def kind(path: Path) -> str | None:
    """'zip', 'gzip', 'bzip2', 'xz' or 'zstd' by the file's first bytes; None for a plain file (zstd too, where this
    pyarrow cannot read it)."""
    with open(path, "rb") as f:
        start = f.read(6)
    if start.startswith(ZIP_MAGIC):
        return "zip"
    found = next((name for magic, name in MAGIC.items() if start.startswith(magic)), None)
    return None if found == "zstd" and not pa.Codec.is_available("zstd") else found


def source(path: Path) -> Source:
    """The file's text as a :class:`Source`, decompressed by its kind."""
    found = kind(path)
    if found is None:
        return Source(lambda: open(path, "rb"), path.stat().st_size, compressed=False)
    if found == "zip":
        return _zip_source(path)
    if found in _ARROW_CODECS and pa.Codec.is_available(_ARROW_CODECS[found]):
        return Source(lambda: pa.input_stream(str(path), compression=_ARROW_CODECS[found]), None)
    return Source(lambda: _PYTHON_OPEN[found](path), None)


def in_memory(text: bytes) -> Source:
    """Text already read, as a :class:`Source`."""
    return Source(lambda: io.BytesIO(text), len(text), compressed=False)


def zip_member(path: Path, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The single file in a zip archive (as Kaggle serves train.csv); several files are ambiguous."""
    files = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if len(files) != 1:
        names = ", ".join(info.filename for info in files[:5]) or "nothing"
        raise DataError(f"{path}: a zip archive holding {len(files)} files ({names}); extract the CSV to use")
    return files[0]


def _zip_source(path: Path) -> Source:
    try:
        archive = zipfile.ZipFile(path)
    except _FAILURES as e:
        raise Damaged(str(e)) from None
    with archive:
        member = zip_member(path, archive)
    return Source(lambda: _zip_stream(path, member), member.file_size)


@contextmanager
def _zip_stream(path: Path, member: zipfile.ZipInfo) -> Iterator[BinaryIO]:
    try:
        archive = zipfile.ZipFile(path)
    except _FAILURES as e:
        raise Damaged(str(e)) from None
    with archive:
        try:
            stream = archive.open(member)  # a compression zipfile cannot read is refused here
        except _FAILURES as e:
            raise Damaged(str(e)) from None
        with stream:
            yield stream


def read(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes of the stream, fewer only at its end; :class:`Damaged` where it cannot be read."""
    parts, want = [], size
    try:
        while want > 0 and (part := stream.read(want)):
            parts.append(part)
            want -= len(part)
    except _FAILURES as e:
        raise Damaged(str(e)) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def head(src: Source) -> bytes:
    """The text's start, enough to sniff its layout: at least ``HEAD_BYTES``, the whole first line and the first
    non-blank byte after it (or all of a shorter text)."""
    with src.open() as stream:
        text = read(stream, HEAD_BYTES)
        while not _headed(text) and (more := read(stream, max(len(text), HEAD_BYTES))):
            text += more
    return text


def _headed(text: bytes) -> bool:
    end = min((i for i in (text.find(end) for end in _LINE_END) if i >= 0), default=-1)
    return end >= 0 and _NON_BLANK.search(text, end + 1) is not None


def pieces(stream: BinaryIO, skip: int, size: int) -> Iterator[memoryview]:
    """The stream's text after its first ``skip`` bytes, in pieces of about ``size`` bytes, each ending at a line's
    end (the last one: whatever remains), so that no row is cut in two. The pieces share one buffer, read into in
    place: each is valid until the next is asked for."""
    read(stream, skip)
    buffer, kept = bytearray(size), 0  # kept: the start of a line, carried over to the buffer's start
    while (filled := kept + _fill(stream, memoryview(buffer)[kept:])) > kept:
        last = buffer.rfind(b"\n", 0, filled)
        cut = max(last, buffer.rfind(b"\r", last + 1, filled)) + 1  # a lone \r after the last \n ends a line too
        if cut:
            yield memoryview(buffer)[:cut]
            buffer[: filled - cut] = buffer[cut:filled]  # the same length: allowed while a piece is still held
        elif filled == len(buffer):  # a line longer than the buffer: a new one, twice as large
            buffer = buffer + bytearray(len(buffer))
        kept = filled - cut
    if kept:
        yield memoryview(buffer)[:kept]


def _fill(stream: BinaryIO, view: memoryview) -> int:
    """Bytes read into ``view``: all of it, fewer only at the stream's end."""
    count = 0
    try:
        while count < len(view) and (got := stream.readinto(view[count:])):
            count += got
    except _FAILURES as e:
        raise Damaged(str(e)) from None
    return count
