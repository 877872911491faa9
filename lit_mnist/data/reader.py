"""Read digit CSVs in the Kaggle "Digit Recognizer" layout into uint8 arrays.

Accepted: a header ``label,pixel0,...,pixelN-1`` (or ``pixel0,...`` where labels are optional), or the same
columns with no header; plain, compressed (gzip, bzip2, xz), or the one file of a zip. The number of
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

The happy path is one typed pyarrow parse; only a file that fails it is re-read line by line to
say precisely what is wrong, so valid files pay nothing for the diagnostics.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from lit_mnist.errors import DataError

MAX_LABEL = 999  # a thousand classes at most: a confusion matrix of a million cells
_ZIP_MAGIC = b"PK\x03\x04"
_COMPRESSED = {b"\x1f\x8b": ("gzip", gzip.decompress), b"BZh": ("bzip2", bz2.decompress),
               b"\xfd7zXZ\x00": ("xz", lzma.decompress)}
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
    """The file's content, decompressed if it is gzip, bzip2, xz or a zip of one file (known by content, not name)."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    raw = path.read_bytes()
    if raw.startswith(_ZIP_MAGIC):
        return _unzip_one(path, raw)
    for magic, (kind, decompress) in _COMPRESSED.items():
        if raw.startswith(magic):
            try:
                return decompress(raw)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as e:
                raise DataError(f"{path}: damaged {kind} file ({e})") from None
    return raw


def _unzip_one(path: Path, raw: bytes) -> bytes:
    """The single file in a zip archive (as Kaggle serves train.csv); several files are ambiguous."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            files = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
            if len(files) != 1:
                names = ", ".join(info.filename for info in files[:5]) or "nothing"
                raise DataError(f"{path}: a zip archive holding {len(files)} files ({names}); extract the CSV to use")
            return archive.read(files[0])
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
        raise DataError(f"{path}: damaged zip file ({e})") from None


def parse_digits(path: str | Path, *, labels: str = "required", label_last: bool = False,
                 pixels: int | None = None) -> Digits:
    """Parse and validate one CSV. ``labels``: "required", "optional" (Kaggle test.csv) or "none";
    ``pixels``: the number of pixels a row must have (None: the file's own)."""
    path = Path(path)
    raw = read_bytes(path)
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    layout = _sniff_layout(path, body, labels, label_last, pixels)
    table = _parse_fast(body, layout)
    if table is None:
        _diagnose(path, body, layout)  # raises with the line and column
        raise DataError(f"{path}: not a readable digits CSV")  # pragma: no cover - diagnose always raises
    return _to_digits(path, body, layout, table)


def place(path: str | Path, row: int, column: str = "label", label_last: bool = False) -> str:
    """'line N, column NAME' of data row ``row`` (0-based) of a CSV that parsed: for the errors that only the
    whole data set reveals (a test label outside the classes the training rows learned)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".npz":  # a folder's images, an array's rows: in the order read
        return f"image {row + 1}"
    raw = read_bytes(path)
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
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


def _parse_fast(body: bytes, layout: _Layout) -> pa.Table | None:
    """Typed parse: uint8 first (the common case), float64 for files like '12.0'; None if neither fits."""
    read = pacsv.ReadOptions(column_names=layout.columns, skip_rows=int(layout.has_header), block_size=1 << 22)
    # a trailing column is read as the null type: any value in it fails the parse, and the diagnosis says where
    checked = [*layout.used, _TRAILING] if _TRAILING in layout.columns else layout.used  # in this order
    checked = [*checked, _ID] if layout.id_name is not None else checked
    # numbers first; then labels as text, for a file whose labels are names
    for dtype, label in ((pa.uint8(), None), (pa.float64(), None), (pa.uint8(), pa.string()), (pa.float64(), pa.string())):
        if label is not None and not layout.has_label:
            break
        types = {**dict.fromkeys(layout.used, dtype), _TRAILING: pa.null(), _ID: pa.string(), **(
            {"label": label} if label is not None else {})}
        convert = pacsv.ConvertOptions(column_types=types, include_columns=checked, strings_can_be_null=False)
        try:
            return pacsv.read_csv(pa.py_buffer(body), read_options=read, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _to_digits(path: Path, body: bytes, layout: _Layout, table: pa.Table) -> Digits:
    if table.num_rows == 0:
        raise DataError(f"{path}: header but no data rows")
    for name, column in zip(layout.used, table.columns):
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{path}: {_place(body, layout, row, name)}: missing value")
    named = layout.has_label and table.column("label").type == pa.string()
    arrays = {name: column.to_numpy(zero_copy_only=False) if name == "label" and named else column.to_numpy()
              for name, column in zip(layout.used, table.columns)}
    if table.column(layout.pixel_names[0]).type != pa.uint8():
        for name, values in arrays.items():
            if name != "label" or not named:
                _check_values(path, body, layout, name, values)
    # one (784, n) block, then one transposing copy: cheaper than np.stack(axis=1), which writes strided
    pixels = np.ascontiguousarray(np.array([arrays[name] for name in layout.pixel_names], dtype=np.uint8).T)
    labels = label_names = None
    if named:
        labels, label_names = _named_labels(path, body, layout, arrays["label"])
    elif layout.has_label:
        _check_values(path, body, layout, "label", arrays["label"])
        labels = np.ascontiguousarray(arrays["label"], dtype=np.int64)
    ids = None
    if layout.id_name is not None:
        ids = np.asarray(table.column(_ID).to_pylist(), dtype=str)
    return Digits(pixels, labels, layout.image_shape, ids, layout.id_name, label_names)


def _named_labels(path: Path, body: bytes, layout: _Layout, values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels that are names, as indices into the names in natural order. A missing one is refused with its line,
    as is a mix of numbers and names: the rarer kind is the slip (a name among numbers, or a number among names)."""
    texts = np.char.strip(values.astype(str))
    empty = np.flatnonzero(texts == "")
    if len(empty):
        raise DataError(f"{path}: {_place(body, layout, int(empty[0]), 'label')}: missing value")
    numeric = np.fromiter((_is_number(t) for t in texts.tolist()), bool, len(texts))
    if numeric.any():
        slips = numeric if numeric.sum() * 2 < len(texts) else ~numeric
        row = int(np.flatnonzero(slips)[0])
        what = "is a number, where the other labels are names" if numeric[row] else "is not a number"
        raise DataError(f"{path}: {_place(body, layout, row, 'label')}: {texts[row][:20]!r} {what} (labels are all "
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


def _check_values(path: Path, body: bytes, layout: _Layout, name: str, values: np.ndarray) -> None:
    top = MAX_LABEL if name == "label" else 255
    bad = (values < 0) | (values > top) | (values != np.floor(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "label" if name == "label" else "pixel"
        raise DataError(
            f"{path}: {_place(body, layout, row, name)}: {what} {_fmt(values[row])} is not an integer in 0-{top}"
        )


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
