import numpy as np
import pytest

from lit_mnist.data import mapped


def _file(tmp_path, rows=23, width=7):
    array = np.random.default_rng(0).integers(0, 256, (rows, width), dtype=np.uint8)
    np.save(tmp_path / "pixels.npy", array)
    return array, np.load(tmp_path / "pixels.npy", mmap_mode="r")


@pytest.mark.parametrize("block", [5 * 7, 3 * 7, 1 << 20])  # rows of 7 values: 5 rows, 3 rows, all at once
def test_rows_read_through_the_file_are_the_mapped_rows(tmp_path, monkeypatch, block):
    monkeypatch.setattr(mapped, "_BLOCK_BYTES", block)
    array, pixels = _file(tmp_path)
    index = np.random.default_rng(1).permutation(23)[:17]
    np.testing.assert_array_equal(mapped.read_rows(pixels, index), array[index])
    np.testing.assert_array_equal(mapped.read_rows(pixels, np.array([4, 4, 0])), array[[4, 4, 0]])
    np.testing.assert_array_equal(mapped.read_rows(pixels), array)
    np.testing.assert_array_equal(mapped.read_rows(pixels[5:], np.array([1, 0])), array[[6, 5]])  # a view of part
    np.testing.assert_array_equal(mapped.read_rows(pixels[[3, 1]], np.array([1])), array[[1]])  # a copy


def _reads(monkeypatch):
    """The (offset, bytes) of every read of the file ``gather`` makes."""
    reads, preadv = [], mapped.os.preadv

    def recording(fd, buffers, offset):
        reads.append((offset, sum(len(b) for b in buffers)))
        return preadv(fd, buffers, offset)

    monkeypatch.setattr(mapped.os, "preadv", recording)
    return reads


def test_gathered_rows_are_read_from_the_file_in_its_order_a_run_in_one_read(tmp_path, monkeypatch):
    array, pixels = _file(tmp_path)
    reads = _reads(monkeypatch)
    asked = np.array([9, 2, 17, 3, 4, 2, 0, -1])
    np.testing.assert_array_equal(mapped.gather(pixels, asked, mapped.source(pixels)), array[asked])
    header = pixels.offset
    assert reads == [(header, 7), (header + 2 * 7, 7), (header + 2 * 7, 3 * 7), (header + 9 * 7, 7),
                     (header + 17 * 7, 7), (header + 22 * 7, 7)]
    assert mapped.gather(pixels, np.array([], dtype=np.int64), mapped.source(pixels)).shape == (0, 7)


@pytest.mark.parametrize("row", [23, -24])
def test_a_row_out_of_bounds_is_an_index_error(tmp_path, row):
    _, pixels = _file(tmp_path)
    with pytest.raises(IndexError, match=f"^row {row + 23 if row < 0 else row} is out of bounds for 23 rows$"):
        mapped.gather(pixels, np.array([0, row]), mapped.source(pixels))


@pytest.mark.parametrize("view", [lambda p: p[5:], lambda p: p[::-1], lambda p: np.array(p), lambda p: p[[3, 1]],
                                  lambda p: p.view(np.int8)])
def test_other_arrays_are_indexed_not_read_as_the_file(tmp_path, monkeypatch, view):
    """The companion: only a whole uint8 mapping is read through its file; a view of part, reversed rows, a copy or
    another type would be read at the wrong offsets."""
    array, pixels = _file(tmp_path)
    other = view(pixels)
    reads = _reads(monkeypatch)
    asked = np.array([1, 0, 1])
    assert mapped.source(other) is None and mapped.mapped_file(other) is None
    np.testing.assert_array_equal(mapped.gather(other, asked), np.asarray(view(array))[asked].astype(np.uint8))
    assert reads == []
    assert mapped.mapped_file(pixels) == (tmp_path / "pixels.npy", pixels.offset)


def test_a_file_cut_short_while_in_use_is_an_error_not_a_crash(tmp_path):
    _, pixels = _file(tmp_path)
    source = mapped.source(pixels)
    size = (tmp_path / "pixels.npy").stat().st_size
    with open(tmp_path / "pixels.npy", "r+b") as f:
        f.truncate(size - 7 * 3)
    with pytest.raises(OSError, match="shorter than its rows"):
        mapped.gather(pixels, np.array([20, 22]), source)  # the mapping would end the process (SIGBUS)


def test_a_file_deleted_or_replaced_while_in_use_is_still_the_one_read(tmp_path):
    array, pixels = _file(tmp_path)
    source = mapped.source(pixels)
    (tmp_path / "pixels.npy").unlink()
    np.save(tmp_path / "pixels.npy", np.zeros_like(array))  # another run's entry, of the same size
    np.testing.assert_array_equal(mapped.gather(pixels, np.array([4, 1]), source), array[[4, 1]])


def test_a_short_read_is_read_on(tmp_path, monkeypatch):
    array, pixels = _file(tmp_path)
    preadv = mapped.os.preadv

    def a_byte_at_a_time(fd, buffers, offset):
        return preadv(fd, [buffers[0][:1]], offset)

    monkeypatch.setattr(mapped.os, "preadv", a_byte_at_a_time)
    np.testing.assert_array_equal(mapped.gather(pixels, np.array([3, 4, 9]), mapped.source(pixels)), array[[3, 4, 9]])
