"""Read digit CSVs in the Kaggle "Digit Recognizer" layout into uint8 arrays.

Accepted: a header ``label,pixel0,...,pixelN-1`` (or ``pixel0,...`` where labels are optional), or the same
columns with no header; plain, compressed (gzip, bzip2, xz, zstd), or the one file of a zip. The number of
pixels is the file's own (784 for MNIST's 28x28, 64 for 8x8 digits, 2,352 for 28x28 colour images, each pixel's
three channels in turn): a header's pixel names, or a headerless row's width, say it; a caller that knows the count
(a trained model's) passes it. A header's columns are found by name, in any order and any letter case (the label
first or last, as HAM10000's colour CSVs have it; pixel names zero-padded to one width, ``pixel0000..``, read as
``pixel0..``). A leading unnamed column (the index that pandas' ``to_csv`` writes) and an empty last one (a comma
ending every line, with or without a header) are ignored, and an id column (``id``, ``ImageId`` or ``image_id``, as
Kaggle's test files have) is read as text and kept beside the rows (:attr:`Digits.ids`). Other namings of the
pixels, common in MNIST-style CSVs, are read as well: ``pixel1..pixelN`` (Kaggle's Fashion-MNIST) and row x column,
``1x1..HxW`` or from zero ``0x0..``, which also gives the image's shape. Labels are whole numbers 0-999, or names
(every label of the file a name: ``cat``, ``dog``), which become classes in natural order (``a2`` before ``a10``).
Every cell is checked: the first problem found is raised as a
:class:`DataError` naming the file, line and column.

The happy path is one typed pyarrow parse of the text as a stream (``streams.py``), piece by piece into the final
uint8 array, so that memory holds about one copy of the pixels whatever the file's size; only a file that fails it is
read whole, line by line, to say precisely what is wrong, so valid files pay nothing for the diagnostics. The parse
is timed in the log, and a large file's shows a progress bar.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import logging
import lzma
import math
import re
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm import tqdm

from lit_mnist.data import streams
from lit_mnist.errors import DataError

log = logging.getLogger(__name__)

MAX_LABEL = 999  # a thousand classes at most: a confusion matrix of a million cells
PIECE_BYTES = 1 << 25  # the text handed to pyarrow at a time: its blocks are parsed in parallel, memory stays bounded
BLOCK_BYTES = 1 << 22  # pyarrow's block: the longest row it reads
GROW_BYTES = 1 << 26  # rows of a text of unknown length are stored in blocks of this many pixel bytes
LARGE_BYTES = 100 << 20  # a text this long shows a progress bar
_BOM = b"\xef\xbb\xbf"
_NON_BLANK = re.compile(rb"\S")
_FIRST_LINE = re.compile(rb"[^\r\n]*")  # a line ends at \n, \r\n or a lone \r, as pyarrow reads it
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'", " ": "a space"}
_INDEX = "(index)"  # the name given to a leading unnamed column: pandas' index, read but not used
_INDEX_NAMES = {"", "unnamed: 0"}
_TRAILING = "(trailing)"  # the name given to an unnamed last column: a comma ending every line, read but not used
_ID = "(id)"  # the name given to an id column: read as text, kept beside the digits
_ID_NAMES = {"id", "imageid", "image_id"}
_UNUSED = {_INDEX, _TRAILING, _ID}
_PIXEL_NAME = re.compile(r"pixel(\d+)")
_ROW_X_COLUMN = re.compile(r"(\d+)x(\d+)")


def pixel_columns(count: int) -> list[str]:
    """The standard pixel names: pixel0..pixel{count - 1}."""
    return [f"pixel{i}" for i in range(count)]


def header(count: int) -> list[str]:
    """The standard header of a labelled CSV of ``count`` pixels."""
    return ["label", *pixel_columns(count)]


def pixel_namings(count: int, shape: tuple[int, int] | None = None) -> list[list[str]]:
    """The namings of ``count`` pixels read, each in row-major order: pixelK from 0 and from 1, then, given the
    image's shape, row x column from 1 and from 0."""
    namings = [pixel_columns(count), [f"pixel{k + 1}" for k in range(count)]]
    if shape is not None and shape[0] * shape[1] == count:
        for first in (1, 0):
            namings.append([f"{k // shape[1] + first}x{k % shape[1] + first}" for k in range(count)])
    return namings


@dataclass(frozen=True)
class Digits:
    """Images as rows of grey levels (uint8), their labels (int64, or None if unlabelled) and, where the file
    says it (a row x column header), the images' ``(height, width)``; where it has an id column, the rows' ids
    (text) and the column's name as written; where the labels are names, ``labels`` index ``label_names``."""

    pixels: np.ndarray
    labels: np.ndarray | None
    image_shape: tuple[int, int] | None = None
    ids: np.ndarray | None = None
    id_name: str | None = None
    label_names: tuple[str, ...] | None = None  # labels that are names: ``labels`` index these

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def n_pixels(self) -> int:
        return self.pixels.shape[1]


@dataclass(frozen=True)
class _Layout:
    has_header: bool
    has_label: bool
    label_last: bool
    pixel_names: tuple[str, ...]  # the pixels' column names, in row-major order
    header: tuple[str, ...] = ()  # the header's column names in file order, where it has one
    trailing: bool = False  # a headerless file whose lines end in a comma
    image_shape: tuple[int, int] | None = None  # from a row x column header
    id_name: str | None = None  # the id column's name as the header writes it, where it has one

    @property
    def columns(self) -> list[str]:
        """Every column in file order."""
        if self.header:
            return list(self.header)
        if not self.has_label:
            names = list(self.pixel_names)
        else:
            names = [*self.pixel_names, "label"] if self.label_last else ["label", *self.pixel_names]
        return [*names, _TRAILING] if self.trailing else names

    @property
    def used(self) -> list[str]:
        """The columns that carry digits, in file order."""
        return [name for name in self.columns if name not in _UNUSED]


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed if it is gzip, bzip2, xz, zstd or a zip of one file (known by content, not
    name): the whole text at once, for the diagnosis of a file that failed the streamed parse."""
    _check_file(path)
    found = streams.kind(path)
    raw = path.read_bytes()
    if found == "zip":
        return _unzip_one(path, raw)
    if found is not None:
        try:
            return _DECOMPRESS[found](raw)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as e:
            raise DataError(f"{path}: damaged {found} file ({e})") from None
    return raw


def _unzstd(raw: bytes) -> bytes:
    """A zstd file's content (Python has no zstd of its own before 3.14; Arrow has)."""
    return pa.input_stream(pa.py_buffer(raw), compression="zstd").read()


_DECOMPRESS = {"gzip": gzip.decompress, "bzip2": bz2.decompress, "xz": lzma.decompress, "zstd": _unzstd}


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")


def _unzip_one(path: Path, raw: bytes) -> bytes:
    """The single file in a zip archive (as Kaggle serves train.csv); several files are ambiguous."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return archive.read(streams.zip_member(path, archive))
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
        raise DataError(f"{path}: damaged zip file ({e})") from None


def _body(path: Path) -> bytes:
    """The whole text, without a byte-order mark."""
    raw = read_bytes(path)
    return raw[3:] if raw.startswith(_BOM) else raw


def parse_digits(path: str | Path, *, labels: str = "required", label_last: bool = False,
                 pixels: int | None = None) -> Digits:
    """Parse and validate one CSV. ``labels``: "required", "optional" (Kaggle test.csv) or "none";
    ``pixels``: the number of pixels a row must have (None: the file's own)."""
    path = Path(path)
    _check_file(path)
    start = time.perf_counter()
    try:
        digits, size = _parse(path, streams.source(path), labels, label_last, pixels)
    except streams.Damaged:
        # read whole, it says what is damaged; a stream that only Arrow's decompressor refuses is parsed from memory
        digits, size = _parse(path, streams.in_memory(read_bytes(path)), labels, label_last, pixels)
    finally:
        # the pieces' parses are freed, but Arrow's allocator keeps their pages for reuse, which the run would
        # otherwise hold to its end (docs/performance.md)
        pa.default_memory_pool().release_unused()
    log.info("%s: %s rows of %d pixels (%.1f MB of text) parsed in %.1f s", path, f"{len(digits):,}",
             digits.n_pixels, size / 1e6, time.perf_counter() - start)
    return digits


def place(path: str | Path, row: int, column: str = "label", label_last: bool = False) -> str:
    """'line N, column NAME' of data row ``row`` (0-based) of a CSV that parsed: for the errors that only the
    whole data set reveals (a test label outside the classes the training rows learned)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".npz":  # a folder's images, an array's rows: in the order read
        return f"image {row + 1}"
    body = _body(path)
    return _place(body, _sniff_layout(path, body, "optional", label_last, None), row, column)


def numbered(digits: Digits, names: list[str], path: str | Path, known: str = "the model's classes") -> Digits:
    """``digits`` whose labels are names, labelled by their number among ``names``; a label that is none of them is
    refused with its line (``known`` says whose names they are)."""
    index = {name: k for k, name in enumerate(names)}
    unknown = [k for k, name in enumerate(digits.label_names) if name not in index]
    if unknown:
        row = int(np.flatnonzero(np.isin(digits.labels, unknown))[0])
        listed = f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
        raise DataError(f"{path}: {place(path, row)}: label {digits.label_names[unknown[0]]!r} is not one of "
                        f"{known} ({listed})")
    numbers = np.array([index[name] for name in digits.label_names], dtype=np.int64)
    return replace(digits, labels=numbers[digits.labels], label_names=None)


def _first_line(path: Path, body: bytes) -> str:
    if not _NON_BLANK.search(body):  # stops at the first non-blank byte; body.strip() would copy the file
        raise DataError(f"{path}: empty file")
    if b"\x00" in body[:65536]:
        raise DataError(f"{path}: not a text file (binary content)")
    line = _FIRST_LINE.match(body).group()  # a slice, not split(): no copy of the whole file
    control = _CONTROL.search(line)
    if control:
        raise DataError(f"{path}: line 1: not a text file (control byte {control.group()!r} at byte {control.start() + 1})")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: line 1: not a text file (byte {e.start + 1} is not UTF-8)") from None


def _sniff_layout(path: Path, body: bytes, labels: str, label_last: bool, pixels: int | None) -> _Layout:
    try:
        fields = next(csv.reader([_first_line(path, body)]))
    except csv.Error as e:
        raise DataError(f"{path}: line 1: malformed CSV ({e})") from None
    if not fields:
        raise DataError(f"{path}: line 1 is empty; expected a header or a row of digits")
    if len(fields) == 1:
        for delim, name in _OTHER_DELIMITERS.items():
            if delim in fields[0]:
                raise DataError(f"{path}: line 1: values are separated by {name}; expected commas")
    values = fields[1:-1] if len(fields) > 2 and not fields[-1].strip() else fields[1:]
    named_label = labels != "none" and len(values) > 1 and all(map(_is_number, values))  # a name, then pixels
    if not _is_number(fields[0]) and not named_label:
        return _header_layout(path, body, fields, labels, pixels)
    trailing = len(fields) > 1 and not fields[-1].strip()
    width = len(fields) - trailing
    has_label = _headerless_label(width, labels, pixels)
    if has_label is None or width - has_label < 1:
        want = f"{pixels + 1} or {pixels}" if labels == "optional" else str(pixels + (labels == "required"))
        if pixels is None:
            want = "a label and at least one pixel" if labels == "required" else "at least one pixel"
        raise DataError(f"{path}: line 1: {width} values; expected {want} ({_describe(labels, pixels)})")
    names = tuple(pixel_columns(width - has_label))
    return _Layout(False, has_label, label_last and has_label, names, trailing=trailing)


def _headerless_label(width: int, labels: str, pixels: int | None) -> bool | None:
    """Whether a headerless row of ``width`` values starts (or ends) with a label; None: it cannot be a row."""
    if labels == "required":
        return True if pixels is None or width == pixels + 1 else None
    if labels == "none":
        return False if pixels is None or width == pixels else None
    if pixels is not None:
        return {pixels: False, pixels + 1: True}.get(width)
    return math.isqrt(width - 1) ** 2 == width - 1 and math.isqrt(width) ** 2 != width  # a square image's pixels


def _header_layout(path: Path, body: bytes, fields: list[str], labels: str, pixels: int | None) -> _Layout:
    names = [f.strip().lower() for f in fields]
    if len(names) > 1 and names[0] in _INDEX_NAMES:
        names[0] = _INDEX
    if len(names) > 2 and names[-1] == "":
        names[-1] = _TRAILING
    id_index = next((i for i, name in enumerate(names) if name in _ID_NAMES), None)
    if id_index is not None and len(names) > 1:
        names[id_index] = _ID
    names = _unpadded(names)
    used = [n for n in names if n not in _UNUSED]
    has_label = "label" in used
    naming, shape = _meant_naming([n for n in used if n != "label"], pixels)
    if (not naming or set(used) - {"label"} != set(naming) or len(set(used)) != len(used)
            or labels == ("none" if has_label else "required")):
        raise DataError(f"{path}: line 1: {_header_problem(names, labels, naming, pixels)}")
    end = len(_FIRST_LINE.match(body).group())
    if not _NON_BLANK.search(body, end + 1):
        raise DataError(f"{path}: header but no data rows")
    id_name = fields[id_index].strip() if _ID in names else None
    return _Layout(True, has_label, False, tuple(naming), tuple(names), image_shape=shape, id_name=id_name)


def _unpadded(names: list[str]) -> list[str]:
    """Pixel names zero-padded to one width (``pixel0000..pixel2351``, as HAM10000's CSVs have them) as the
    standard ``pixel0..``; names of mixed widths stay as they are (and are reported as written)."""
    padded = [m for m in map(_PIXEL_NAME.fullmatch, names) if m]
    widths = {len(m.group(1)) for m in padded}
    if len(widths) != 1 or not any(m.group(1).startswith("0") and len(m.group(1)) > 1 for m in padded):
        return names
    return [f"pixel{int(m.group(1))}" if m else name for name, m in zip(names, map(_PIXEL_NAME.fullmatch, names))]


def _describe(labels: str, pixels: int | None) -> str:
    last = f"pixel{pixels - 1}" if pixels else "pixelN"
    if labels == "required":
        return f"label,pixel0..{last}"
    if labels == "none":
        return f"pixel0..{last}"
    return f"label,pixel0..{last} or pixel0..{last}"


def _meant_naming(names: list[str], pixels: int | None) -> tuple[list[str], tuple[int, int] | None]:
    """The pixel naming a header means, by the style most of its names follow (pixelK from 0 or from 1, or row x
    column) and the count (``pixels``, else the largest index); for row x column also the image's shape."""
    numbered = [int(m.group(1)) for m in map(_PIXEL_NAME.fullmatch, names) if m]
    cells = [(int(m.group(1)), int(m.group(2))) for m in map(_ROW_X_COLUMN.fullmatch, names) if m]
    if len(cells) > len(numbered):
        from_zero = any(0 in cell for cell in cells)
        rows, columns = max(r for r, _ in cells) + from_zero, max(c for _, c in cells) + from_zero
        if pixels is not None and rows * columns != pixels:
            side = math.isqrt(pixels)
            rows, columns = (side, side) if side * side == pixels else (1, pixels)
        shape = (rows, columns)
        return pixel_namings(rows * columns, shape)[3 if from_zero else 2], shape
    if not numbered:
        return [], None
    from_zero = 0 in numbered or (pixels is not None and max(numbered) < pixels)
    count = pixels if pixels is not None else max(numbered) + from_zero
    return pixel_namings(count)[0 if from_zero else 1], None


def _header_problem(names: list[str], labels: str, pixels: list[str], count: int | None) -> str:
    """What is wrong with a header (``names`` in file order, an index column included; ``pixels``: the naming it
    meant): column numbers count from 1."""
    columns = [(i + 1, name) for i, name in enumerate(names) if name not in _UNUSED]
    if not pixels:
        return f"no pixel columns (expected {_describe(labels, count)})"
    with_label = labels == "required" or (labels == "optional" and "label" in names)
    expected = ["label", *pixels] if with_label else pixels
    described = _describe(labels, count or len(pixels))
    seen = set()
    for number, name in columns:
        if name in seen:
            return f"header column {number}: {name!r} appears twice"
        seen.add(name)
    unknown = [(number, name) for number, name in columns if name not in expected]
    missing = [name for name in expected if name not in seen]
    if unknown and missing:
        number, name = unknown[0]
        return f"header column {number} is {name!r}; expected {missing[0]!r} ({described})"
    if unknown:
        return f"header has {len(columns)} columns; unexpected extra column {unknown[0][1]!r}"
    if missing == expected[len(expected) - len(missing) :]:
        return f"header has {len(columns)} columns; missing {missing[0]!r} onwards ({described})"
    return f"header has {len(columns)} columns; missing {', '.join(map(repr, missing[:3]))} ({described})"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse(path: Path, src: streams.Source, labels: str, label_last: bool, pixels: int | None) -> tuple[Digits, int]:
    """The digits of a text, and its length: its layout sniffed from its head, then typed parses of the whole text
    in turn until one fits; where none does, the text is read whole and diagnosed."""
    head = streams.head(src)
    bom = len(_BOM) if head.startswith(_BOM) else 0
    try:
        layout = _sniff_layout(path, head[bom:], labels, label_last, pixels)
    except DataError:
        if src.compressed:
            read_bytes(path)  # a damaged file is said to be so first, as when it is read whole
        raise
    skip = bom + (len(_FIRST_LINE.match(head, bom).group()) if layout.has_header else 0)
    for types in _typings(layout):
        rows = _read_rows(path, src, layout, skip, types)
        if rows is not None:
            return _to_digits(path, layout, rows), rows.text_bytes
    _diagnose(path, _body(path), layout)  # raises with the line and column
    raise DataError(f"{path}: not a readable digits CSV")  # pragma: no cover - diagnose always raises


def _typings(layout: _Layout) -> Iterator[dict[str, pa.DataType]]:
    """The column types tried in turn: uint8 pixels and whole-number labels (the common case), float64 for files
    like '12.0', then labels as text, for a file whose labels are names. A trailing column is read as the null type:
    any value in it fails the parse, and the diagnosis says where."""
    tries = ((pa.uint8(), pa.int64()), (pa.float64(), pa.float64()), (pa.uint8(), pa.string()),
             (pa.float64(), pa.string()))
    for pixel, label in tries:
        if label == pa.string() and not layout.has_label:
            return
        labelled = {"label": label} if layout.has_label else {}
        yield {**dict.fromkeys(layout.used, pixel), **labelled, _TRAILING: pa.null(), _ID: pa.string()}


def _read_columns(layout: _Layout) -> list[str]:
    """The columns pyarrow reads, in this order: the used ones in file order, then a trailing one and an id."""
    read = [*layout.used, _TRAILING] if _TRAILING in layout.columns else layout.used
    return [*read, _ID] if layout.id_name is not None else read


def _read_rows(path: Path, src: streams.Source, layout: _Layout, skip: int,
               types: dict[str, pa.DataType]) -> _Rows | None:
    """One typed parse of the text after its first ``skip`` bytes (a byte-order mark, a header), piece by piece
    into a :class:`_Rows`; None where a piece does not fit the types. A piece's rows are stored by a second thread
    while pyarrow parses the next one."""
    read = pacsv.ReadOptions(column_names=layout.columns, block_size=BLOCK_BYTES)
    convert = pacsv.ConvertOptions(column_types=types, include_columns=_read_columns(layout),
                                   strings_can_be_null=False)
    rows, adding, parsed = _Rows(layout, src.size), None, 0
    with src.open() as stream, _progress(path, src.size) as bar, ThreadPoolExecutor(1) as storer:
        for piece in streams.pieces(stream, skip, PIECE_BYTES):
            try:
                table = pacsv.read_csv(pa.py_buffer(piece), read_options=read, convert_options=convert)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None
            if adding is not None:
                adding.result()
            adding = storer.submit(rows.add, table, len(piece))
            parsed += table.num_rows
            bar.set_postfix_str(f"{parsed:,} rows", refresh=False)
            bar.update(len(piece))
        if adding is not None:
            adding.result()
    return rows


def _progress(path: Path, size: int | None) -> tqdm:
    """A progress bar in MB of text (rows beside it) for a large file, shown once the parse has taken a second."""
    large = (size or path.stat().st_size) > LARGE_BYTES
    return tqdm(total=size, desc=path.name, unit="B", unit_scale=True, leave=False, delay=1, disable=not large)


class _Rows:
    """What a typed parse keeps of each piece: the pixels, written batch by batch into one uint8 array (rows x
    pixels), the labels and ids, and each column's first missing value and first value that is not a whole number
    in range, which :func:`_to_digits` reports in column order, as it would of one table of the whole file.

    Where the text's length is known, its rows are bounded (each used value takes at least two bytes: a digit and a
    comma or the line's end) and one array of that bound is allocated: the pages past the last row are never
    touched, so memory holds the pixels alone. Otherwise rows go into blocks of ``GROW_BYTES``, joined at the end
    block by block, each freed as it is copied."""

    def __init__(self, layout: _Layout, size: int | None):
        self.layout, self.count, self.text_bytes = layout, 0, 0
        self.bound = None if size is None else size // (2 * len(layout.used)) + 1
        self.blocks: list[np.ndarray] = []
        self.filled: list[int] = []
        self.labels: list[pa.RecordBatch] = []
        self.ids: list[pa.RecordBatch] = []
        self.missing: dict[str, int] = {}  # column: its first missing value's row
        self.bad: dict[str, tuple[int, float]] = {}  # column: its first bad value's row and value
        self.used = layout.used
        columns = {name: k for k, name in enumerate(_read_columns(layout))}  # the batches' columns
        self.pixel_index = [columns[name] for name in layout.pixel_names]
        self.label_index = columns.get("label")
        self.id_index = columns.get(_ID)

    def add(self, table: pa.Table, text_bytes: int) -> None:
        """A piece's rows. Once a value is missing, only the missing values are looked for."""
        complete = not self.missing and not any(column.null_count for column in table.columns[: len(self.used)])
        for batch in filter(len, table.to_batches()):
            self._add(batch, complete)
        self.text_bytes += text_bytes

    def _add(self, batch: pa.RecordBatch, complete: bool) -> None:
        if self.label_index is not None:
            self.labels.append(batch.select([self.label_index]))
        if self.id_index is not None:
            self.ids.append(batch.select([self.id_index]))
        if complete:
            self._add_pixels(batch)
        else:
            self._note_missing(batch)
        self.count += batch.num_rows

    def _note_missing(self, batch: pa.RecordBatch) -> None:
        for name, column in zip(self.used, batch.columns):
            if column.null_count and name not in self.missing:
                self.missing[name] = self.count + column.is_null().to_pylist().index(True)

    def _add_pixels(self, batch: pa.RecordBatch) -> None:
        """Writes the batch's pixels, where every value so far is a whole number in range."""
        pixels = _column_major(batch.select(self.pixel_index))
        if pixels.dtype != np.uint8:
            for j, row in _first_bad(pixels, 255):
                self.bad.setdefault(self.layout.pixel_names[j], (self.count + row, float(pixels[row, j])))
        if not self.bad:
            np.copyto(self._room(batch.num_rows), pixels, casting="unsafe")  # a transposing copy, into the rows

    def _room(self, n: int) -> np.ndarray:
        """Storage for the next ``n`` rows."""
        if not self.blocks or self.filled[-1] + n > len(self.blocks[-1]):
            rows = self.bound if not self.blocks and self.bound else max(n, GROW_BYTES // len(self.pixel_index))
            self.blocks.append(np.empty((rows, len(self.pixel_index)), np.uint8))
            self.filled.append(0)
        start = self.filled[-1]
        self.filled[-1] += n
        return self.blocks[-1][start : start + n]

    def pixels(self) -> np.ndarray:
        """All the rows' pixels, one C-contiguous array (the blocks are given up)."""
        if len(self.blocks) == 1:
            return self.blocks[0][: self.filled[0]]
        out = np.empty((self.count, len(self.pixel_index)), np.uint8)
        start = 0
        while self.blocks:
            block, filled = self.blocks.pop(0), self.filled.pop(0)
            out[start : start + filled] = block[:filled]
            start += filled
            del block
        return out


def _column_major(batch: pa.RecordBatch) -> np.ndarray:
    """A batch's columns as one (rows, columns) array laid out column by column: each column copied once, in C++
    where pyarrow has ``RecordBatch.to_tensor`` (16 onwards). The transposing copy into rows is numpy's."""
    if hasattr(batch, "to_tensor"):
        return np.asarray(batch.to_tensor(row_major=False))
    return np.array([_numbers(column) for column in batch.columns]).T


_FLOATS = {"halffloat": "float16", "float": "float32", "double": "float64"}


def _numbers(column: pa.Array) -> np.ndarray:
    """A null-free numeric column's values, viewed in its buffer: before 16, pyarrow's ``to_numpy`` imports pandas."""
    kind = str(column.type)
    if column.null_count or not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return column.to_numpy(zero_copy_only=False)
    dtype = np.dtype(_FLOATS.get(kind, kind))
    return np.frombuffer(column.buffers()[1], dtype, count=len(column), offset=column.offset * dtype.itemsize)


def _values(batches: list[pa.RecordBatch]) -> np.ndarray:
    """A column's values from its batches of one column: numbers as numpy's, text as Python's strings. Neither way
    imports pandas, as pyarrow's ``to_numpy`` does (half a second of a first read)."""
    if batches[0].schema.types[0] == pa.string():
        return np.array([value for batch in batches for value in batch.column(0).to_pylist()], dtype=object)
    return np.concatenate([_column_major(batch)[:, 0] for batch in batches])


def _first_bad(values: np.ndarray, top: int) -> Iterator[tuple[int, int]]:
    """(column, row) of each column's first value that is not a whole number in 0-``top``, of a (rows, columns)
    array."""
    bad = (values < 0) | (values > top) | (values != np.floor(values))
    for j in np.flatnonzero(bad.any(axis=0)):
        yield int(j), int(np.argmax(bad[:, j]))


def _to_digits(path: Path, layout: _Layout, rows: _Rows) -> Digits:
    """The rows parsed, checked as one table: no rows, then the first column with a missing value, then the first
    with a value that is not a whole number in range (pixels 0-255, labels 0-999), then labels that are names."""
    place = _placer(path, layout)
    if rows.count == 0:
        raise DataError(f"{path}: header but no data rows")
    for name in layout.used:
        if name in rows.missing:
            raise DataError(f"{path}: {place(rows.missing[name], name)}: missing value")
    labels = _values(rows.labels) if layout.has_label else None
    named = labels is not None and labels.dtype == object
    if labels is not None and not named:
        for _, row in _first_bad(labels[:, None], MAX_LABEL):
            rows.bad["label"] = (row, float(labels[row]))
    for name in layout.used:
        if name in rows.bad:
            row, value = rows.bad[name]
            what, top = ("label", MAX_LABEL) if name == "label" else ("pixel", 255)
            raise DataError(f"{path}: {place(row, name)}: {what} {_fmt(value)} is not an integer in 0-{top}")
    label_names = None
    if named:
        labels, label_names = _named_labels(path, place, labels)
    elif labels is not None:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
    ids = None if layout.id_name is None else _values(rows.ids).astype(str)
    return Digits(rows.pixels(), labels, layout.image_shape, ids, layout.id_name, label_names)


def _placer(path: Path, layout: _Layout) -> Callable[[int, str], str]:
    """'line N, column NAME' of a data row, found by reading the text again whole: only a file with a problem pays."""
    return lambda row, column: _place(_body(path), layout, row, column)


def _named_labels(path: Path, place: Callable[[int, str], str],
                  values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels that are names, as indices into the names in natural order. A missing one is refused with its line,
    as is a mix of numbers and names: the rarer kind is the slip (a name among numbers, or a number among names)."""
    texts = np.char.strip(values.astype(str))
    empty = np.flatnonzero(texts == "")
    if len(empty):
        raise DataError(f"{path}: {place(int(empty[0]), 'label')}: missing value")
    numeric = np.fromiter((_is_number(t) for t in texts.tolist()), bool, len(texts))
    if numeric.any():
        slips = numeric if numeric.sum() * 2 < len(texts) else ~numeric
        row = int(np.flatnonzero(slips)[0])
        what = "is a number, where the other labels are names" if numeric[row] else "is not a number"
        raise DataError(f"{path}: {place(row, 'label')}: {texts[row][:20]!r} {what} (labels are all "
                        f"class numbers 0-{MAX_LABEL}, or all names)")
    names, labels = np.unique(texts, return_inverse=True)
    if len(names) > MAX_LABEL + 1:
        raise DataError(f"{path}: {len(names)} different label names: {MAX_LABEL + 1} classes at most")
    order = sorted(range(len(names)), key=lambda k: natural_key(str(names[k])))
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    return rank[labels.ravel()], tuple(str(names[k]) for k in order)


def natural_key(text: str) -> tuple:
    """Sorts names as people number them: ``a2`` before ``a10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _place(body: bytes, layout: _Layout, row: int, column: str) -> str:
    """'line N, column NAME' for data row ``row`` (0-based), counting blank lines as pyarrow skips them."""
    seen = -1
    for number, line in enumerate(io.BytesIO(body), start=1):
        if number == 1 and layout.has_header or not line.strip():
            continue
        seen += 1
        if seen == row:
            return f"line {number}, column {column}"
    return f"row {row + 1}, column {column}"


def _diagnose(path: Path, body: bytes, layout: _Layout) -> None:
    """Walk the file line by line and raise at the first problem the fast parse tripped over."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}: line {line}: not a text file (byte {e.start + 1} is not UTF-8)") from None
    names = layout.columns
    lines = text.splitlines()
    try:
        _diagnose_lines(path, lines, names, layout)
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    raise DataError(f"{path}: could not be parsed as a digits CSV")


def _diagnose_lines(path: Path, lines: list[str], names: list[str], layout: _Layout) -> None:
    for number, fields in enumerate(csv.reader(lines), start=1):
        if number == 1 and layout.has_header or not any(f.strip() for f in fields):
            continue
        if "\x00" in lines[number - 1]:
            raise DataError(f"{path}: line {number}: not a text file (binary content)")
        if len(fields) == 1 and any(d in fields[0] for d in _OTHER_DELIMITERS):
            raise DataError(f"{path}: line {number}: values are not separated by commas")
        if len(fields) != len(names):
            kind = "short or truncated row" if len(fields) < len(names) else "extra values"
            raise DataError(f"{path}: line {number}: {len(fields)} values; expected {len(names)} ({kind})")
        for name, value in zip(names, fields):
            if name == _TRAILING and value:
                raise DataError(f"{path}: line {number}: {value.strip()[:20]!r} after the last column")
            if name in _UNUSED:
                continue
            if not value.strip():
                raise DataError(f"{path}: line {number}, column {name}: missing value")
            if not _is_number(value) and name != "label":  # labels may be names
                raise DataError(f"{path}: line {number}, column {name}: {value.strip()[:20]!r} is not a number")
