"""Fuzzing the CSV reader: whatever the bytes, it loads or raises DataError, nothing else."""

import gzip

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lit_mnist.data.reader import MAX_LABEL, header, parse_digits
from lit_mnist.errors import DataError

HEADER = header(784)

CELLS = st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["", " ", "x", "1.5", "nan", "1e2", '"7"', "NA"]),
                  st.text(max_size=4))
# the example count is the profile's (tests/conftest.py): fewer in `make test`, 150 in the full run
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(tmp_path, data: bytes, pixels: int | None = 784) -> None:
    """Whatever the bytes, rows of ``pixels`` grey levels (a model's count, as predict.py asks; None: the file's
    own) and labels in range, or one line naming the file."""
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        digits = parse_digits(path, labels="optional", pixels=pixels)
    except DataError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return
    assert digits.pixels.dtype == np.uint8 and digits.pixels.shape[1] == (pixels or digits.pixels.shape[1]) >= 1
    assert digits.labels is None or 0 <= digits.labels.min() <= digits.labels.max() <= MAX_LABEL


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([784, None]))
def test_random_bytes(tmp_path, data, pixels):
    _check(tmp_path, data, pixels)


@FUZZ
@given(st.lists(st.lists(CELLS, min_size=0, max_size=790), min_size=0, max_size=4), st.booleans(), st.booleans(),
       st.sampled_from([",", ";", "\t"]), st.sampled_from([784, None]))
def test_random_shapes_and_values(tmp_path, rows, header, compress, delimiter, pixels):
    lines = [delimiter.join(HEADER)] if header else []
    lines += [delimiter.join(row) for row in rows]
    data = "\n".join(lines).encode()
    _check(tmp_path, gzip.compress(data) if compress else data, pixels)


@FUZZ
@given(st.integers(1, 3), st.integers(0, 784), st.sampled_from(["", "x", "-1", "256", "3.5", "10", "1000"]))
def test_one_bad_cell_in_a_valid_file(tmp_path, n, column, value):
    rows = [["1"] + ["0"] * 784 for _ in range(n)]
    rows[-1][column] = value
    _check(tmp_path, ("\n".join([",".join(HEADER)] + [",".join(r) for r in rows]) + "\n").encode())


@FUZZ
@given(st.sampled_from(["kept", "reversed", "shuffled"]), st.sampled_from(["lower", "upper", "mixed"]),
       st.sampled_from([None, "", "Unnamed: 0"]), st.sampled_from(["none", "drop", "repeat", "rename"]),
       st.integers(0, len(HEADER) - 1))
def test_headers_in_any_order_load_by_name_or_fail_cleanly(tmp_path, arrangement, case, index, mutation, at):
    # the order and the letter case are drawn from a generator seeded by `at`: hypothesis drawing 785 of
    # each took most of this test's time
    rng = np.random.default_rng(at)
    order = {"kept": range(len(HEADER)), "reversed": range(len(HEADER) - 1, -1, -1),
             "shuffled": rng.permutation(len(HEADER))}[arrangement]
    upper = {"lower": [False] * len(HEADER), "upper": [True] * len(HEADER),
             "mixed": rng.random(len(HEADER)) < 0.5}[case]
    table = rng.integers(0, 256, size=(3, len(HEADER)))
    table[:, 0] %= 10  # column 0 is the label
    names = [HEADER[i].upper() if up else HEADER[i] for i, up in zip(order, upper)]
    columns = [table[:, i] for i in order]
    if mutation == "drop":
        del names[at], columns[at]
    elif mutation == "repeat":
        names[at] = names[(at + 1) % len(names)]
    elif mutation == "rename":
        names[at] = "extra"
    if index is not None:
        names, columns = [index, *names], [np.arange(3), *columns]
    lines = [",".join(names)] + [",".join(map(str, row)) for row in np.column_stack(columns).tolist()]
    path = tmp_path / "shuffled.csv"
    path.write_text("\n".join(lines) + "\n")
    try:
        digits = parse_digits(path, pixels=784)  # as a test CSV is read: the training data's count
    except DataError as e:
        assert mutation != "none" and str(e).startswith(f"{path}: line 1: ") and "\n" not in str(e)
        return
    assert mutation == "none"
    np.testing.assert_array_equal(digits.labels, table[:, 0])
    np.testing.assert_array_equal(digits.pixels, table[:, 1:])
