"""The CSV reader's streamed parse: a text read in many small pieces (and stored in many small blocks) gives what one
piece of the whole text gives, digits and errors alike, plain or compressed."""

import bz2
import gzip
import logging
import lzma
import subprocess
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pytest

from lit_mnist.data import reader
from lit_mnist.data.reader import _numbers, parse_digits, read_bytes
from lit_mnist.errors import DataError
from tests.conftest import REPO, csv_text, synthetic_digits

PIXELS = 64  # rows of ~200 bytes: a piece of 2 KiB holds about ten


@pytest.fixture
def in_pieces(monkeypatch):
    """parse_digits with pieces of 2 KiB parsed in pyarrow blocks of 512 bytes, rows stored in blocks of 16 where
    the text's length is unknown, against the defaults (which read these files in one piece and one block): both
    outcomes, digits or the error's message."""

    def parse(path, **options):
        whole = _outcome(path, **options)
        with monkeypatch.context() as small:
            small.setattr(reader, "PIECE_BYTES", 2048)
            small.setattr(reader, "BLOCK_BYTES", 512)
            small.setattr(reader, "GROW_BYTES", 16 * PIXELS)
            return _outcome(path, **options), whole

    return parse


def _outcome(path, **options):
    try:
        return parse_digits(path, **options)
    except DataError as e:
        return str(e)


def _same(got, want) -> None:
    assert isinstance(got, reader.Digits) and isinstance(want, reader.Digits)
    assert got.pixels.dtype == np.uint8 and got.pixels.flags.c_contiguous
    np.testing.assert_array_equal(got.pixels, want.pixels)
    for field in ("labels", "ids"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    assert (got.label_names, got.id_name, got.image_shape) == (want.label_names, want.id_name, want.image_shape)


def _zstd(data: bytes) -> bytes:
    return pa.Codec("zstd").compress(data, asbytes=True)


def _zip(data: bytes) -> bytes:
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train.csv", data)
    return out.getvalue()


COMPRESSIONS = {"plain": bytes, "gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress, "zip": _zip}
if pa.Codec.is_available("zstd"):
    COMPRESSIONS["zstd"] = _zstd


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_many_pieces_give_the_digits_of_one_plain_or_compressed(tmp_path, in_pieces, compression):
    pixels, labels = synthetic_digits(300, pixels=PIXELS)
    path = tmp_path / "digits.csv"
    path.write_bytes(COMPRESSIONS[compression](csv_text(pixels, labels).encode()))
    assert len(read_bytes(path)) > 20 * 2048
    got, whole = in_pieces(path)
    _same(got, whole)
    np.testing.assert_array_equal(got.pixels, pixels)
    np.testing.assert_array_equal(got.labels, labels)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_rows_are_counted_across_blank_lines_a_bom_and_no_final_line_end(tmp_path, in_pieces, end):
    pixels, labels = synthetic_digits(120, pixels=PIXELS)
    lines = csv_text(pixels, labels).splitlines()
    for at in (100, 60, 30, 5, 1):  # blank lines here and there, some at a piece's edge
        lines[at:at] = ["", "", ""] if at % 2 else [""]
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\xef\xbb\xbf" + end.join(lines).encode())  # no line end after the last row
    got, whole = in_pieces(path)
    _same(got, whole)
    assert len(got) == 120
    np.testing.assert_array_equal(got.pixels, pixels)


def test_ids_and_labels_that_are_names_are_read_across_pieces(tmp_path, in_pieces):
    pixels, _ = synthetic_digits(150, pixels=PIXELS)
    names = np.array(["cat", "dog", "a10", "a2", "emu"])[np.arange(150) % 5]
    lines = csv_text(pixels, names).splitlines()
    lines = [f"ImageId,{lines[0]}", *(f"r{k},{line}" for k, line in enumerate(lines[1:]))]
    path = tmp_path / "named.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    got, whole = in_pieces(path)
    _same(got, whole)
    assert got.label_names == ("a2", "a10", "cat", "dog", "emu") and got.ids[-1] == "r149"


def _with(lines: list[str], line: int, column: int, value: str) -> list[str]:
    cells = lines[line - 1].split(",")
    cells[column] = value
    return [*lines[: line - 1], ",".join(cells), *lines[line:]]


LATE_PROBLEMS = {  # (line, column index, value): the first problem of a file of 300 rows, in one of its last pieces
    "a pixel above 255": ([(281, 5, "300")], "line 281, column pixel4: pixel 300 is not an integer in 0-255"),
    "a fractional pixel": ([(290, 9, "3.5")], "line 290, column pixel8: pixel 3.5 is not an integer in 0-255"),
    "not a number": ([(299, 3, "abc")], "line 299, column pixel2: 'abc' is not a number"),
    "a missing value": ([(270, 40, "")], "line 270, column pixel39: missing value"),
    "a label outside 0-999": ([(301, 0, "1000")], "line 301, column label: label 1000 is not an integer in 0-999"),
    "an extra value": ([(250, 64, "1,2")], "line 250: 66 values; expected 65 (extra values)"),
    # the first column in file order that has one is named, wherever its row: as of one table of the whole file
    "missing values in two columns": ([(20, 50, ""), (290, 2, "")], "line 290, column pixel1: missing value"),
    "values out of range in two columns": ([(10, 60, "256"), (295, 1, "-1")],
                                           "line 295, column pixel0: pixel -1 is not an integer in 0-255"),
}


@pytest.mark.parametrize("case", sorted(LATE_PROBLEMS))
@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_a_problem_in_a_late_piece_is_named_by_line_and_column_as_in_one_piece(tmp_path, in_pieces, case,
                                                                               compression):
    pixels, labels = synthetic_digits(300, pixels=PIXELS)
    lines = csv_text(pixels, labels).splitlines()
    changes, expected = LATE_PROBLEMS[case]
    for line, column, value in changes:
        lines = _with(lines, line, column, value)
    path = tmp_path / "late.csv"
    path.write_bytes(COMPRESSIONS[compression](("\n".join(lines) + "\n").encode()))
    got, whole = in_pieces(path)
    assert got == whole == f"{path}: {expected}"


def test_whole_numbers_written_as_floats_are_read_across_pieces(tmp_path, in_pieces):
    pixels, labels = synthetic_digits(200, pixels=PIXELS)
    path = tmp_path / "floats.csv"
    path.write_text(csv_text(pixels, labels).replace(",0,", ",0.0,"))
    got, whole = in_pieces(path)
    _same(got, whole)
    np.testing.assert_array_equal(got.pixels, pixels)


def test_a_gzip_stream_that_arrow_refuses_and_python_reads_is_read(tmp_path, in_pieces):
    pixels, labels = synthetic_digits(50, pixels=PIXELS)
    path = tmp_path / "padded.csv.gz"
    path.write_bytes(gzip.compress(csv_text(pixels, labels).encode()) + b"\0" * 8)  # zero padding after the stream
    got, whole = in_pieces(path)
    _same(got, whole)
    np.testing.assert_array_equal(got.pixels, pixels)


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz", "zip"])
def test_a_stream_damaged_late_is_one_line_in_the_words_of_the_whole_read(tmp_path, in_pieces, compression):
    pixels, labels = synthetic_digits(300, pixels=PIXELS)
    packed = bytearray(COMPRESSIONS[compression](csv_text(pixels, labels).encode()))
    path = tmp_path / "cut.csv"
    if compression == "zip":  # the member's data garbled three quarters in
        packed[len(packed) * 3 // 4 : len(packed) * 3 // 4 + 8] = b"\xff" * 8
    else:  # the stream cut three quarters in
        del packed[len(packed) * 3 // 4 :]
    path.write_bytes(packed)
    with pytest.raises(DataError) as error:
        read_bytes(path)
    got, whole = in_pieces(path)
    assert got == whole == str(error.value) and f"damaged {compression} file" in got


def test_a_zip_of_a_compression_zipfile_cannot_read_is_one_line(tmp_path):
    pixels, labels = synthetic_digits(5, pixels=PIXELS)
    packed = bytearray(COMPRESSIONS["zip"](csv_text(pixels, labels).encode()))
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # the method in the file's header and in the directory: Deflate64
        at = packed.index(header) + (8 if header == b"PK\x03\x04" else 10)
        packed[at : at + 2] = (9).to_bytes(2, "little")
    path = tmp_path / "deflate64.zip"
    path.write_bytes(packed)
    with pytest.raises(DataError, match="damaged zip file \\(That compression method is not supported\\)"):
        parse_digits(path)


def test_a_damaged_stream_is_said_before_a_bad_header(tmp_path):
    pixels, labels = synthetic_digits(2000, pixels=PIXELS)  # more than the head that the header is sniffed from
    packed = gzip.compress(csv_text(pixels, labels).replace("label,", "labels,", 1).encode())
    path = tmp_path / "both.csv.gz"
    path.write_bytes(packed[: len(packed) * 3 // 4])  # the header is read; the stream ends early
    with pytest.raises(DataError, match=r"both.csv.gz: damaged gzip file \(Compressed file ended"):
        parse_digits(path)


def test_the_parse_is_timed_in_the_log(tmp_path, caplog):
    pixels, labels = synthetic_digits(30, pixels=PIXELS)
    path = tmp_path / "timed.csv"
    path.write_text(csv_text(pixels, labels))
    with caplog.at_level(logging.INFO, logger="lit_mnist"):
        parse_digits(path)
    assert [r.getMessage().split(" parsed in ")[0] for r in caplog.records] == [
        f"{path}: 30 rows of 64 pixels (0.0 MB of text)"]


def test_a_first_read_imports_no_pandas(tmp_path):
    """pyarrow's to_numpy imports pandas, half a second of a first read: the reader's arrays are had without it."""
    pixels, _ = synthetic_digits(5, pixels=PIXELS)
    lines = csv_text(pixels, np.array(["cat", "dog", "cat", "emu", "dog"])).splitlines()
    path = tmp_path / "named.csv"
    path.write_text("\n".join([f"id,{lines[0]}", *(f"r{k},{line}" for k, line in enumerate(lines[1:]))]) + "\n")
    code = ("import sys; from lit_mnist.data.reader import parse_digits; "
            f"digits = parse_digits({str(path)!r}); print(digits.ids[-1], digits.label_names, 'pandas' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["r4", "('cat',", "'dog',", "'emu')", "False"]


@pytest.mark.parametrize("kind", [pa.uint8(), pa.int64(), pa.float64(), pa.float32()])
def test_numbers_are_a_columns_values_at_its_offset(kind):
    """The view of a column's buffer that replaces pyarrow's to_numpy before 16 (which imports pandas) keeps a
    slice's offset: a view from the buffer's start would give the rows before it."""
    column = pa.array([0, 1, 2, 3, 4, 5, 6], kind).slice(2, 4)
    values = _numbers(column)
    assert values.dtype == column.to_numpy().dtype
    assert values.tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("good", [True, False])
def test_the_parse_gives_arrow_s_kept_pages_back_whether_it_succeeds_or_fails(tmp_path, monkeypatch, good):
    released = []

    class Pool:  # the process's Arrow pool, as the reader asks for it after the parse
        def release_unused(self):
            released.append(True)

    monkeypatch.setattr(reader.pa, "default_memory_pool", Pool)
    path = tmp_path / "d.csv"
    path.write_text(csv_text(*synthetic_digits(20)) + ("" if good else "7,bad\n"))
    if good:
        assert len(parse_digits(path)) == 20
    else:
        with pytest.raises(DataError, match="line 22"):
            parse_digits(path)
    assert released == [True]
