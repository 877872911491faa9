"""Download path: mirrors tried in turn over loopback HTTP, checksums checked, nothing half-written, the IDX
files' arrays kept as they are."""

import gzip
import shutil

import numpy as np
import pytest

from lit_mnist.data import mnist as mnist_source
from lit_mnist.data.mnist import DownloadError, ensure_mnist, load_mnist, parse_idx
from lit_mnist.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def small_mirror(tmp_path, monkeypatch):
    """A folder holding tiny generated IDX .gz files, with their checksums patched in."""
    import hashlib

    folder = tmp_path / "mirror"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sums = {}
    for split, n in (("train", 30), ("t10k", 10)):
        for name, array in ((f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28))),
                            (f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))):
            data = _idx(array)
            sums[name] = hashlib.sha256(data).hexdigest()
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    monkeypatch.setattr(mnist_source, "IDX_SHA256", sums)
    monkeypatch.setattr(mnist_source, "OFFICIAL_MIRRORS", ())
    return folder


def test_parse_idx_round_trip():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(_idx(array)), array)
    with pytest.raises(DownloadError):
        parse_idx(b"\x00\x00\x0d\x01")  # float IDX: not ours


def test_real_mnist_over_http_gives_the_verified_arrays(shared_mnist, http_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_MIRROR", http_mirror(shared_mnist))
    ensure_mnist(tmp_path / "data")
    splits = load_mnist(tmp_path / "data")
    train, test = splits["train"], splits["test"]
    assert train.pixels.shape == (60000, 784) and test.pixels.shape == (10000, 784)
    assert train.image_shape == test.image_shape == (28, 28) and test.labels.dtype == np.int64
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert round(float(train.pixels.mean()), 3) == 33.318  # the mirror README's sanity figures
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mnist.npz"]  # no CSV written and parsed back


def test_unreachable_mirror_then_a_good_one(small_mirror, http_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_MIRROR", f"http://127.0.0.1:9/nothing/, {http_mirror(small_mirror)}")
    ensure_mnist(tmp_path / "data")
    splits = load_mnist(tmp_path / "data")
    assert len(splits["train"]) == 30 and len(splits["test"]) == 10


def test_a_second_call_downloads_nothing(small_mirror, http_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_MIRROR", http_mirror(small_mirror))
    path = ensure_mnist(tmp_path / "data")
    monkeypatch.setattr(mnist_source, "fetch", lambda *a: pytest.fail("downloaded again"))
    assert ensure_mnist(tmp_path / "data") == path


def test_a_damaged_archive_is_one_line_saying_what_to_do(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"mnist.npz: damaged .*; delete it to download MNIST again"):
        load_mnist(tmp_path)


def test_corrupted_file_is_refused_and_nothing_is_left_half_written(small_mirror, http_mirror, tmp_path, monkeypatch):
    bad = small_mirror / "t10k-images-idx3-ubyte.gz"
    data = bytearray(gzip.decompress(bad.read_bytes()))
    data[-1] ^= 0xFF
    bad.write_bytes(gzip.compress(bytes(data)))
    monkeypatch.setenv("LIT_MNIST_MIRROR", http_mirror(small_mirror))
    (tmp_path / "data").mkdir()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ensure_mnist(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []  # no archive, no temporary file


def test_file_url_mirror(small_mirror, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(small_mirror, copy)
    monkeypatch.setenv("LIT_MNIST_MIRROR", copy.as_uri())
    ensure_mnist(tmp_path / "data")
    assert set(load_mnist(tmp_path / "data")) == {"train", "test"}


def test_no_mirror_reachable_lists_every_failure(small_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_MIRROR", "http://127.0.0.1:9/a/,file:///nonexistent/b")
    with pytest.raises(DownloadError) as error:
        ensure_mnist(tmp_path / "data")
    assert "127.0.0.1:9" in str(error.value) and "nonexistent" in str(error.value)


def test_commands_that_need_the_test_digits_get_them_or_one_line(small_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIT_MNIST_MIRROR", small_mirror.as_uri())
    assert len(mnist_source.test_digits("the check needs")) == 10
    monkeypatch.setenv("LIT_MNIST_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("LIT_MNIST_MIRROR", "file:///nonexistent/b")
    with pytest.raises(DataError) as error:
        mnist_source.test_digits("the load test sends")
    assert str(error.value) == ("the load test sends MNIST's test digits, which could not be downloaded "
                                "(set LIT_MNIST_MIRROR to a mirror)")
