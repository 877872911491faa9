"""The CSV reader: accepted layouts, and a precise one-line error for every kind of bad input."""

import bz2
import gzip
import lzma
import zipfile

import numpy as np
import pandas as pd
import pytest

from lit_mnist.data.reader import header, parse_digits

HEADER = header(784)
from lit_mnist.errors import DataError
from tests.conftest import csv_text, synthetic_digits


def test_header_no_header_and_compression_give_the_same_digits(write_csv, tmp_path):
    pixels, labels = synthetic_digits(60)
    (tmp_path / "d.csv.bz2").write_bytes(bz2.compress(write_csv().read_bytes()))
    (tmp_path / "e.csv.xz").write_bytes(lzma.compress(write_csv().read_bytes()))
    for path in (write_csv("a.csv"), write_csv("b.csv", header=False), write_csv("c.csv.gz", gz=True),
                 write_csv("gz_without_suffix.csv", gz=True), tmp_path / "d.csv.bz2", tmp_path / "e.csv.xz"):
        digits = parse_digits(path)
        assert digits.pixels.dtype == np.uint8 and digits.pixels.shape == (60, 784)
        np.testing.assert_array_equal(digits.pixels, pixels)
        np.testing.assert_array_equal(digits.labels, labels)


def test_a_zip_of_one_csv_is_read_and_a_zip_of_several_is_refused(write_csv, tmp_path):
    source = write_csv()
    one, several = tmp_path / "train.csv.zip", tmp_path / "digit-recognizer.zip"
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED) as archive:  # as Kaggle serves train.csv
        archive.write(source, "train.csv")
    with zipfile.ZipFile(several, "w") as archive:
        archive.write(source, "train.csv")
        archive.write(source, "test.csv")
    np.testing.assert_array_equal(parse_digits(one).pixels, parse_digits(source).pixels)
    with pytest.raises(DataError, match=r"zip archive holding 2 files \(train.csv, test.csv\); extract the CSV"):
        parse_digits(several)
    one.write_bytes(one.read_bytes()[:60])
    with pytest.raises(DataError, match="train.csv.zip: damaged zip file"):
        parse_digits(one)


def test_raw_pixels_are_kept_unscaled(write_csv):
    digits = parse_digits(write_csv())
    assert digits.pixels.max() == 250  # the synthetic bands; no scaling to 0-1


def test_integral_floats_and_crlf_are_accepted(tmp_path):
    pixels, labels = synthetic_digits(5)
    text = csv_text(pixels, labels).replace(",0,", ",0.0,").replace("\n", "\r\n")
    path = tmp_path / "floats.csv"
    path.write_text(text)
    digits = parse_digits(path)
    np.testing.assert_array_equal(digits.pixels, pixels)


def test_unlabelled_files_need_labels_optional(write_csv):
    path = write_csv(labels=False)
    assert parse_digits(path, labels="optional").labels is None
    with pytest.raises(DataError, match="line 1: header has 784 columns; missing 'label'"):
        parse_digits(path)


def test_header_columns_are_found_by_name_in_any_order_and_case(tmp_path):
    pixels, labels = synthetic_digits(8)
    order = np.random.default_rng(1).permutation(len(HEADER))  # label somewhere in the middle, pixels shuffled
    table = np.column_stack([labels, pixels])[:, order]
    lines = [",".join(HEADER[i].upper() if i % 2 else HEADER[i] for i in order)]
    lines += [",".join(map(str, row)) for row in table.tolist()]
    path = tmp_path / "shuffled.csv"
    path.write_text("\n".join(lines) + "\n")
    digits = parse_digits(path)
    np.testing.assert_array_equal(digits.pixels, pixels)  # read by position, these would be scrambled
    np.testing.assert_array_equal(digits.labels, labels)


@pytest.mark.parametrize("naming", ["fashion", "row_x_column", "row_x_column_from_0"])
def test_other_common_pixel_namings_are_read_in_row_major_order(tmp_path, naming):
    pixels, labels = synthetic_digits(8)
    names = {"fashion": [f"pixel{k + 1}" for k in range(784)],  # Kaggle's Fashion-MNIST CSVs
             "row_x_column": [f"{k // 28 + 1}x{k % 28 + 1}" for k in range(784)],  # "mnist-in-csv"
             "row_x_column_from_0": [f"{k // 28}x{k % 28}" for k in range(784)]}[naming]
    path = tmp_path / f"{naming}.csv"
    path.write_text(csv_text(pixels, labels).replace(",".join(HEADER), ",".join(["label", *names]), 1))
    digits = parse_digits(path)
    np.testing.assert_array_equal(digits.pixels, pixels)
    np.testing.assert_array_equal(digits.labels, labels)
    bad = path.read_text().replace(f",{names[100]},", ",pixel_100,", 1)
    path.write_text(bad)
    with pytest.raises(DataError, match=f"header column 102 is 'pixel_100'; expected '{names[100]}'"):
        parse_digits(path)


def test_a_pandas_index_column_is_ignored(tmp_path):
    pixels, labels = synthetic_digits(8)
    frame = pd.DataFrame(np.column_stack([labels, pixels]), columns=HEADER, index=np.arange(100, 108))
    unnamed = frame.reset_index(names="Unnamed: 0").to_csv(index=False)
    for name, text in (("index.csv", frame.to_csv()), ("unnamed.csv", unnamed)):
        path = tmp_path / name
        path.write_text(text)
        digits = parse_digits(path)
        np.testing.assert_array_equal(digits.pixels, pixels)
        np.testing.assert_array_equal(digits.labels, labels)
    path.write_text(path.read_text().replace(",pixel5,", ",pixelfive,", 1))
    with pytest.raises(DataError, match="header column 8 is 'pixelfive'"):  # the index column counts
        parse_digits(path)


def test_labels_that_are_names_become_classes_in_natural_order(tmp_path):
    pixels, _ = synthetic_digits(6)
    names = ["cat", "a10", "dog", "a2", "cat", "dog"]
    for with_header in (True, False):  # a headerless row: a name, then numbers
        path = tmp_path / f"named{with_header}.csv"
        path.write_text(csv_text(pixels, np.array(names), header=with_header))
        digits = parse_digits(path)
        assert digits.label_names == ("a2", "a10", "cat", "dog")
        assert [digits.label_names[k] for k in digits.labels] == names
        np.testing.assert_array_equal(digits.pixels, pixels)


def test_a_number_among_names_and_a_missing_name_are_refused_with_their_line(tmp_path):
    pixels, _ = synthetic_digits(5)
    path = tmp_path / "mixed.csv"
    path.write_text(csv_text(pixels, np.array(["cat", "dog", "3", "cat", "dog"])))
    with pytest.raises(DataError, match=r"line 4, column label: '3' is a number, where the other labels are names"):
        parse_digits(path)
    path.write_text(csv_text(pixels, np.array(["cat", "dog", " ", "cat", "dog"])))
    with pytest.raises(DataError, match=r"line 4, column label: missing value"):
        parse_digits(path)


@pytest.mark.parametrize("name, position", [("id", 0), ("ImageId", 0), ("image_id", -1), ("Id", 3)])
def test_an_id_column_is_kept_beside_the_digits_as_text(tmp_path, name, position):
    pixels, labels = synthetic_digits(8)
    frame = pd.DataFrame(np.column_stack([labels, pixels]), columns=HEADER)
    frame.insert(position % (len(HEADER) + 1), name, [f"a-{k:02d}" for k in range(8)])
    path = tmp_path / "test.csv"
    path.write_text(frame.to_csv(index=False))
    digits = parse_digits(path)
    np.testing.assert_array_equal(digits.pixels, pixels)
    np.testing.assert_array_equal(digits.labels, labels)
    assert digits.id_name == name and digits.ids.tolist() == [f"a-{k:02d}" for k in range(8)]
    assert parse_digits(tmp_path / "test.csv", labels="optional").ids is not None
    assert parse_digits(_headerless(tmp_path, pixels, labels)).ids is None  # without a header, no column is an id


def _headerless(tmp_path, pixels, labels):
    path = tmp_path / "headerless.csv"
    path.write_text(csv_text(pixels, labels, header=False))
    return path


def test_a_bad_value_beside_an_id_column_is_named_by_line_and_column(tmp_path):
    pixels, labels = synthetic_digits(3)
    lines = csv_text(pixels, labels).splitlines()
    lines = [f"id,{lines[0]}", *(f"r{k},{line}" for k, line in enumerate(lines[1:]))]
    lines[2] = lines[2].replace(f"r1,{labels[1]},", "r1,7.5,", 1)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad.csv: line 3, column label: label 7.5 is not an integer"):
        parse_digits(path)


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("labelled", [True, False])
def test_a_comma_ending_every_line_is_ignored(tmp_path, header, labelled):
    pixels, labels = synthetic_digits(8)
    lines = csv_text(pixels, labels if labelled else None, header=header).splitlines()
    path = tmp_path / "trailing.csv"
    path.write_text("".join(f"{line},\n" for line in lines))
    digits = parse_digits(path, labels="optional")
    np.testing.assert_array_equal(digits.pixels, pixels)
    assert digits.labels is None if not labelled else np.array_equal(digits.labels, labels)
    lines[3] += ",5"  # a value in that last column is no longer an empty column: refused, with its line
    path.write_text("".join(f"{line}\n" if i == 3 else f"{line},\n" for i, line in enumerate(lines)))
    with pytest.raises(DataError, match=r"line 4: '5' after the last column"):
        parse_digits(path, labels="optional")


def _valid_lines(n=6):
    pixels, labels = synthetic_digits(n)
    return csv_text(pixels, labels).splitlines()


def _with_cell(line_no, column, value):
    lines = _valid_lines()
    cells = lines[line_no - 1].split(",")
    cells[HEADER.index(column)] = value
    lines[line_no - 1] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


BAD_INPUTS = {
    "empty file": (b"", "empty file"),
    "blank lines only": (b"\n\n  \n", "empty file"),
    "header with no rows": ((",".join(HEADER) + "\n").encode(), "header but no data rows"),
    "missing column": (
        ("\n".join(",".join(line.split(",")[:-1]) for line in _valid_lines()) + "\n").encode(),
        "line 1: header has 784 columns; missing 'pixel783' onwards",
    ),
    "extra column": (
        ("\n".join(line + (",extra" if i == 0 else ",0") for i, line in enumerate(_valid_lines())) + "\n").encode(),
        "line 1: header has 786 columns; unexpected extra column 'extra'",
    ),
    "renamed column": (_with_cell(1, "pixel5", "pixelfive"), "line 1: header column 7 is 'pixelfive'; expected 'pixel5'"),
    "repeated column": (_with_cell(1, "pixel5", "pixel4"), "line 1: header column 7: 'pixel4' appears twice"),
    "missing label column": (
        ("\n".join(",".join(line.split(",")[1:]) for line in _valid_lines()) + "\n").encode(),
        "line 1: header has 784 columns; missing 'label' (label,pixel0..pixel783)",
    ),
    "truncated row": ("\n".join(_valid_lines())[:-1000].encode(), "expected 785 (short or truncated row)"),
    "short row": (
        ("\n".join(_valid_lines()[:3] + [",".join(_valid_lines()[3].split(",")[:100])] + _valid_lines()[4:]) + "\n").encode(),
        "line 4: 100 values; expected 785 (short or truncated row)",
    ),
    "non-numeric value": (_with_cell(3, "pixel17", "abc"), "line 3, column pixel17: 'abc' is not a number"),
    "a name among numbered labels": (_with_cell(2, "label", "cat"),
                                     ("line 2, column label: 'cat' is not a number (labels are all class numbers "
                                      "0-999, or all names)")),
    "missing value": (_with_cell(5, "pixel300", ""), "line 5, column pixel300: missing value"),
    "pixel above 255": (_with_cell(4, "pixel42", "256"), "line 4, column pixel42: pixel 256 is not an integer in 0-255"),
    "negative pixel": (_with_cell(2, "pixel0", "-1"), "line 2, column pixel0: pixel -1 is not an integer in 0-255"),
    "fractional pixel": (_with_cell(2, "pixel9", "3.5"), "line 2, column pixel9: pixel 3.5 is not an integer in 0-255"),
    "label outside 0-999": (_with_cell(6, "label", "1000"), "line 6, column label: label 1000 is not an integer in 0-999"),
    "fractional label": (_with_cell(3, "label", "2.5"), "line 3, column label: label 2.5 is not an integer in 0-999"),
    "semicolons": ("\n".join(_valid_lines()).replace(",", ";").encode(), "line 1: values are separated by ';'; expected commas"),
    "tabs": ("\n".join(_valid_lines()).replace(",", "\t").encode(), "line 1: values are separated by a tab"),
    "binary file": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "not a text file"),
    "latin-1 text": ("label,pixel0\xe9".encode("latin-1"), "line 1: not a text file (byte 13 is not UTF-8)"),
    "damaged gzip": (gzip.compress(b"label,pixel0\n" * 100, mtime=0)[:40], "damaged gzip file"),
    "damaged xz": (lzma.compress(b"label,pixel0\n" * 100)[:40], "damaged xz file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_file_and_place(tmp_path, case):
    content, expected = BAD_INPUTS[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        parse_digits(path, pixels=784)  # the count a model (or the training CSV) asks for
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert expected in message
    assert path.read_bytes() == content  # never modified


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        parse_digits(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not a regular file"):
        parse_digits(tmp_path)


def test_error_line_numbers_count_blank_lines(tmp_path):
    lines = _valid_lines()
    cells = lines[4].split(",")
    cells[HEADER.index("pixel3")] = "999"
    lines[4] = ",".join(cells)
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")
    with pytest.raises(DataError, match="line 6, column pixel3: pixel 999"):
        parse_digits(path)


def test_any_pixel_count_is_read_and_labels_beyond_nine(tmp_path):
    rows = ["24," + ",".join(["3"] * 64), "13," + ",".join(["250"] * 64)]
    headerless = tmp_path / "digits8.csv"
    headerless.write_text("\n".join(rows) + "\n")
    digits = parse_digits(headerless)
    assert digits.pixels.shape == (2, 64) and digits.labels.tolist() == [24, 13] and digits.image_shape is None
    one_based = tmp_path / "one_based.csv"  # pixel1..pixel64, as Kaggle's Fashion-MNIST names them
    one_based.write_text("label," + ",".join(f"pixel{k}" for k in range(1, 65)) + "\n" + "\n".join(rows) + "\n")
    np.testing.assert_array_equal(parse_digits(one_based).pixels, digits.pixels)
    assert parse_digits(headerless, labels="optional", pixels=64).labels.tolist() == [24, 13]
    assert parse_digits(headerless, labels="optional", pixels=65).labels is None  # 65 values: pixels alone


def test_a_row_x_column_header_gives_the_image_shape(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("label," + ",".join(f"{r}x{c}" for r in range(1, 4) for c in range(1, 6)) + "\n"
                    + "1," + ",".join(map(str, range(15))) + "\n")
    digits = parse_digits(path)
    assert digits.image_shape == (3, 5) and digits.pixels.tolist() == [list(range(15))]


def test_a_pixel_count_other_than_the_one_asked_for_is_one_line(tmp_path):
    path = tmp_path / "digits8.csv"
    path.write_text("1," + ",".join(["3"] * 64) + "\n")
    with pytest.raises(DataError, match=r"digits8.csv: line 1: 65 values; expected 785 \(label,pixel0..pixel783\)"):
        parse_digits(path, pixels=784)
    with pytest.raises(DataError, match=r"line 1: 65 values; expected 785 or 784"):
        parse_digits(path, labels="optional", pixels=784)
