"""The .npz reader: keras.datasets' arrays as users save them, pixels and labels checked, and a one-line error for
every kind of bad file, the declared sizes checked before anything is read."""

import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lit_mnist.data import arrays
from lit_mnist.data.arrays import npz_has_test, read_npz
from lit_mnist.errors import DataError


def images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, n, dtype=np.uint8)


def saved(path: Path, **named: np.ndarray) -> Path:
    np.savez(path, **named)
    return path


def one_line_error(path: Path, **kwargs) -> str:
    """The DataError message of reading ``path``, checked to be one line starting with it."""
    with pytest.raises(DataError) as caught:
        read_npz(path, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def test_the_keras_datasets_layout_of_grey_images(tmp_path):
    x_train, y_train, x_test, y_test = images((7, 28, 28)), labels(7), images((3, 28, 28), 1), labels(3, 1)
    path = saved(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert npz_has_test(path)
    train, test = read_npz(path), read_npz(path, split="test")
    assert train.image_shape == (28, 28) and train.pixels.shape == (7, 784) and train.pixels.dtype == np.uint8
    np.testing.assert_array_equal(train.pixels, x_train.reshape(7, -1))
    np.testing.assert_array_equal(test.pixels, x_test.reshape(3, -1))
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.labels, y_train)
    np.testing.assert_array_equal(test.labels, y_test)
    assert train.label_names is None and train.ids is None


def test_colour_images_with_labels_n_by_1_as_cifar10_ships_them(tmp_path):
    x, y = images((4, 5, 6, 3)), labels(4)[:, None]
    path = saved(tmp_path / "cifar.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    digits = read_npz(path)
    assert digits.image_shape == (5, 6, 3) and digits.pixels.shape == (4, 90)
    np.testing.assert_array_equal(digits.pixels, x.reshape(4, -1))  # channels last, as Keras keeps them
    np.testing.assert_array_equal(digits.labels, y[:, 0])
    assert digits.pixels.flags.c_contiguous


def test_one_channel_is_grey_and_x_y_alone_are_training_data(tmp_path):
    x, y = images((3, 4, 5, 1)), labels(3)
    path = saved(tmp_path / "xy.npz", x=x, y=y)
    assert not npz_has_test(path)
    digits = read_npz(path)
    assert digits.image_shape == (4, 5)
    np.testing.assert_array_equal(digits.pixels, x.reshape(3, -1))
    np.testing.assert_array_equal(read_npz(path, split="test").pixels, x.reshape(3, -1))  # a test file of its own
    only_training = saved(tmp_path / "train.npz", x_train=x, y_train=y)
    assert "it holds x_train, y_train" in one_line_error(only_training, split="test")


def test_a_fortran_ordered_array_gives_the_same_rows(tmp_path):
    x = images((3, 4, 5))
    digits = read_npz(saved(tmp_path / "f.npz", x_train=np.asfortranarray(x), y_train=labels(3)))
    np.testing.assert_array_equal(digits.pixels, x.reshape(3, -1))
    assert digits.pixels.flags.c_contiguous


def test_floats_within_0_1_are_scaled_back_and_logged(tmp_path, caplog):
    x = images((2, 3, 3))
    path = saved(tmp_path / "scaled.npz", x_train=(x / 255).astype(np.float32), y_train=labels(2))
    with caplog.at_level(logging.INFO, logger="lit_mnist"):
        digits = read_npz(path)
    np.testing.assert_array_equal(digits.pixels, x.reshape(2, -1))
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: x_train holds floats within [0, 1]: scaled by 255 to grey levels"]


def test_floats_and_wide_integers_within_0_255_are_grey_levels(tmp_path, caplog):
    x = images((2, 3, 3))
    x[0, 0, 0] = 255  # not within [0, 1]: kept as they are
    for dtype in (np.float64, np.int64, np.uint16):
        path = saved(tmp_path / f"{np.dtype(dtype).name}.npz", x_train=x.astype(dtype), y_train=labels(2))
        with caplog.at_level(logging.INFO, logger="lit_mnist"):
            np.testing.assert_array_equal(read_npz(path).pixels, x.reshape(2, -1))
    assert not caplog.records
    rounded = saved(tmp_path / "halves.npz", x_train=np.full((1, 2, 2), 254.6), y_train=labels(1))
    assert (read_npz(rounded).pixels == 255).all()


@pytest.mark.parametrize(("value", "dtype", "expected"), [
    (256, np.int64, "x_train[1, 2, 0] = 256 is outside 0-255"),
    (-1, np.int16, "x_train[1, 2, 0] = -1 is outside 0-255"),
    (255.5, np.float32, "x_train[1, 2, 0] = 255.5 is outside 0-255"),
    (np.nan, np.float32, "x_train[1, 2, 0] = nan is NaN"),
])
def test_pixels_outside_0_255_are_refused_at_the_first(tmp_path, value, dtype, expected):
    x = images((2, 3, 2)).astype(dtype)
    x[1, 2, 0] = value
    x[1, 2, 1] = value  # a later one: the first is named
    assert expected in one_line_error(saved(tmp_path / "bad.npz", x_train=x, y_train=labels(2)))


@pytest.mark.parametrize(("y", "expected"), [
    (np.array([0, -1, 2]), "y_train[1] = -1 is not a class number 0-999"),
    (np.array([0, 1000, 2]), "y_train[1] = 1000 is not a class number 0-999"),
    (np.array([0, 1.5, 2]), "y_train[1] = 1.5 is not a class number 0-999"),
    (np.eye(3), "y_train is 3 x 3: one-hot labels? save the class numbers (y_train.argmax(axis=1))"),
    (np.array([0, 1]), "x_train holds 3 images and y_train 2 labels"),
    (np.array(["a", "b", "c"]), "y_train holds <U1 values; expected class numbers"),
    (np.zeros((3, 1, 1)), "y_train is 3 x 1 x 1; expected N or N x 1 class numbers"),
])
def test_bad_labels_are_refused(tmp_path, y, expected):
    assert expected in one_line_error(saved(tmp_path / "y.npz", x_train=images((3, 2, 2)), y_train=y))


def test_whole_float_labels_are_class_numbers(tmp_path):
    digits = read_npz(saved(tmp_path / "y.npz", x_train=images((3, 2, 2)), y_train=np.array([[2.0], [0.0], [9.0]])))
    np.testing.assert_array_equal(digits.labels, [2, 0, 9])


@pytest.mark.parametrize(("x", "expected"), [
    (images((2, 3, 3, 4)), "x_train is 2 x 3 x 3 x 4: 4 channels; expected 1 (grey) or 3 (colour): drop alpha first"),
    (images((2, 3, 3, 2)), "2 channels; expected 1 (grey) or 3 (colour)"),
    (images((2, 9)), "x_train is 2 x 9; expected images N x H x W or N x H x W x C"),
    (images((0, 3, 3)), "x_train holds no images"),
    (np.ones((2, 3, 3), bool), "x_train holds bool values; expected grey levels 0-255"),
])
def test_images_of_other_shapes_or_types_are_refused(tmp_path, x, expected):
    assert expected in one_line_error(saved(tmp_path / "x.npz", x_train=x, y_train=labels(len(x))))


def test_missing_arrays_are_named(tmp_path):
    assert "x_train but no y_train: labels are needed" in one_line_error(
        saved(tmp_path / "a.npz", x_train=images((2, 2, 2)), x_test=images((2, 2, 2))))
    assert "no x_train and y_train (or x and y) in the .npz file; it holds images, targets" in one_line_error(
        saved(tmp_path / "b.npz", images=images((2, 2, 2)), targets=labels(2)))


def test_an_object_array_is_refused_not_unpickled(tmp_path):
    path = saved(tmp_path / "objects.npz", x_train=np.array([images((2, 2)), None], dtype=object), y_train=labels(2))
    assert "x_train holds Python objects (pickled), which are not read" in one_line_error(path)


def test_damaged_and_other_files_are_refused(tmp_path):
    good = saved(tmp_path / "good.npz", x_train=images((20, 64, 64)), y_train=labels(20)).read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good[: len(good) // 2])  # the zip's directory, at the end, is gone
    assert "not a readable .npz file (BadZipFile" in one_line_error(cut)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # inside x_train's data, past its header: the CRC check fails on loading it
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    assert "not a readable .npz file (BadZipFile: Bad CRC-32 for file 'x_train.npy')" in one_line_error(
        tmp_path / "flipped.npz")
    np.save(tmp_path / "plain.npy", images((2, 2, 2)))
    assert "not a readable .npz file" in one_line_error(tmp_path / "plain.npy")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as archive:
        archive.writestr("x_train.npy", b"not an array header")
    assert "not a readable .npz file (ValueError" in one_line_error(tmp_path / "other.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    assert "no arrays in the .npz file" in one_line_error(tmp_path / "empty.npz")
    assert "no such file" in one_line_error(tmp_path / "missing.npz")
    assert "not a regular file" in one_line_error(tmp_path)


def test_the_declared_size_is_refused_before_anything_is_read(tmp_path, monkeypatch):
    path = saved(tmp_path / "big.npz", x_train=images((10, 4, 4)), y_train=labels(10))
    monkeypatch.setattr(arrays, "MAX_BYTES", 159)
    loads = []
    monkeypatch.setattr(np, "load", lambda *a, **k: loads.append(a))
    assert "x_train declares 10x4x4 uint8 values, 160 bytes: more than the 159 read" in one_line_error(path)
    assert loads == []  # refused from the header alone


def test_a_huge_declared_shape_in_a_small_file_is_refused(tmp_path):
    """A header claiming 10**12 float64 values in a file of a few hundred bytes: refused, nothing allocated."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 1000, 1000)}
    member = tmp_path / "x_train.npy"
    with open(member, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(member, "x_train.npy")
        archive.writestr("y_train.npy", b"")
    assert path.stat().st_size < 1000
    assert "x_train declares 1000000x1000x1000 float64 values, 8,000,000,000,000 bytes" in one_line_error(path)
