"""The data cache: a source read once, memory-mapped after; a changed source read again; a damaged entry rewritten;
entries written whole or not at all; one writer of several processes."""

import json
import os
import threading
import time

import numpy as np
import pytest

from lit_mnist.data import cache, sources
from lit_mnist.data.reader import parse_digits


def _entries(isolated_data_dir):
    return sorted(p for p in (isolated_data_dir / "cache").iterdir() if p.is_dir())


@pytest.fixture
def reads(monkeypatch):
    """The sources' reads, counted."""
    calls = []
    real = sources.parse_digits
    monkeypatch.setattr(sources, "parse_digits", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_a_second_load_maps_the_entry_and_a_changed_source_is_read_again(write_csv, reads, isolated_data_dir, caplog):
    path = write_csv()
    with caplog.at_level("INFO", logger="lit_mnist"):
        first = sources.load(path)
    assert "cached 60 rows, 47.0 kB, at" in caplog.text
    again = sources.load(path)
    assert len(reads) == 1 and isinstance(again.pixels, np.memmap) and again.pixels.dtype == np.uint8
    np.testing.assert_array_equal(again.pixels, parse_digits(path).pixels)
    np.testing.assert_array_equal(again.labels, first.labels)

    path.write_text(path.read_text().replace("\n0,", "\n1,", 1))  # same size, other content, a new mtime
    os.utime(path, ns=(0, 1))
    changed = sources.load(path)
    assert len(reads) == 2 and changed.labels.tolist() == parse_digits(path).labels.tolist()
    assert len(_entries(isolated_data_dir)) == 1  # the stale entry replaced


def test_a_key_without_the_modification_time_would_serve_a_stale_entry(write_csv, reads, monkeypatch):
    """The companion: the check above catches a key that leaves the source's state out."""
    path = write_csv()
    sources.load(path)
    real = cache._key
    monkeypatch.setattr(cache, "_key", lambda p, kind, options: (real(p, kind, options)[0], "same"))
    sources.load(path)
    path.write_text(path.read_text().replace("\n0,", "\n1,", 1))
    os.utime(path, ns=(0, 1))
    assert sources.load(path).labels.tolist() != parse_digits(path).labels.tolist() and len(reads) == 2


def test_other_options_are_another_entry(write_csv, reads, isolated_data_dir):
    path = write_csv(labels=False)
    sources.load(path, labels="optional")
    sources.load(path, labels="optional", pixels=784)
    assert len(reads) == 2 and len(_entries(isolated_data_dir)) == 2


@pytest.mark.parametrize("damage", ["truncate", "meta", "format"])
def test_a_damaged_entry_is_ignored_with_a_warning_and_rewritten(write_csv, reads, isolated_data_dir, caplog, damage):
    path = write_csv()
    expected = np.array(sources.load(path).pixels)  # in memory: the damage is done to the file it maps
    (entry,) = _entries(isolated_data_dir)
    if damage == "truncate":
        pixels = entry / "pixels.npy"
        pixels.write_bytes(pixels.read_bytes()[: pixels.stat().st_size // 2])
    elif damage == "meta":
        (entry / "meta.json").write_text("{")
    else:
        meta = json.loads((entry / "meta.json").read_text())
        (entry / "meta.json").write_text(json.dumps({**meta, "format": cache.FORMAT - 1}))
    with caplog.at_level("WARNING", logger="lit_mnist"):
        again = sources.load(path)
    assert "its cache entry" in caplog.text and "cannot be read" in caplog.text and len(reads) == 2
    np.testing.assert_array_equal(again.pixels, expected)
    assert isinstance(sources.load(path).pixels, np.memmap) and len(reads) == 2  # rewritten whole


def test_a_killed_write_leaves_no_entry_that_is_read(write_csv, reads, isolated_data_dir):
    path = write_csv()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process stopped halfway through the entry

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(cache.json, "dumps", killed)
        sources.load(path)
    folder = isolated_data_dir / "cache"
    assert [p.name for p in folder.iterdir() if p.is_dir()] == []  # nor any temporary folder
    sources.load(path)
    assert len(reads) == 2  # read again: nothing of the killed write was taken for an entry


def test_an_entry_written_in_place_would_leave_a_half_entry_under_its_name(write_csv, isolated_data_dir, monkeypatch):
    """The companion: without the rename, a killed write leaves a half entry where the next run looks."""
    path = write_csv()

    def in_place(folder, name):
        final = folder / name
        final.mkdir(parents=True)
        return _yielding(final)

    monkeypatch.setattr(cache, "_building", in_place)
    monkeypatch.setattr(cache.json, "dumps", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        sources.load(path)
    assert len(_entries(isolated_data_dir)) == 1


class _NoLock:
    def acquire(self):
        pass

    def release(self):
        pass


class _yielding:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        return False


def test_ids_and_label_names_come_back_from_the_cache(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("ImageId,label,pixel0,pixel1,pixel2,pixel3\nx1,cat,0,1,2,3\nx2,dog,4,5,6,7\n")
    first, second = sources.load(path, labels="optional"), sources.load(path, labels="optional")
    assert isinstance(second.pixels, np.memmap)
    assert second.id_name == first.id_name == "ImageId" and second.ids.tolist() == ["x1", "x2"]
    assert second.label_names == first.label_names == ("cat", "dog") and second.labels.tolist() == [0, 1]


def test_an_npz_is_cached_too(tmp_path):
    x, y = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4), np.array([1, 0])
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x[:1], y_test=y[:1])
    train, test = sources.load(tmp_path / "a.npz"), sources.load(tmp_path / "a.npz", split="test")
    again = sources.load(tmp_path / "a.npz")
    assert isinstance(again.pixels, np.memmap) and again.image_shape == (4, 4) and len(test) == 1
    np.testing.assert_array_equal(again.pixels, train.pixels)


def test_uncached_reads_write_nothing(write_csv, isolated_data_dir):
    sources.load(write_csv(), cache=False)
    assert not isolated_data_dir.exists()


def test_the_cache_directory_given_then_the_environments_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_CACHE_DIR", str(tmp_path / "env"))
    assert cache.cache_dir(tmp_path / "given") == tmp_path / "given"
    assert cache.cache_dir() == tmp_path / "env"
    monkeypatch.delenv("LIT_MNIST_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "lit-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "lit-mnist"


def test_an_unwritable_cache_directory_is_warned_of_and_the_run_goes_on(write_csv, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    with caplog.at_level("WARNING", logger="lit_mnist"):
        digits = sources.load(write_csv(), cache_dir=blocked / "cache")
    assert len(digits) == 60 and "not cached" in caplog.text


def test_of_processes_reading_one_source_at_once_one_reads_and_the_others_map(write_csv, monkeypatch):
    path = write_csv()
    calls = []
    real = sources.parse_digits

    def slow(*args, **kwargs):
        calls.append(args)
        time.sleep(0.3)  # the others arrive while the first one reads
        return real(*args, **kwargs)

    monkeypatch.setattr(sources, "parse_digits", slow)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sources.load(path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 3
    assert all(np.array_equal(r.pixels, results[0].pixels) for r in results)


def test_without_the_lock_each_process_would_read(write_csv, monkeypatch):
    """The companion: the check above catches processes that do not wait for the one writing."""
    path = write_csv()
    calls = []
    real = sources.parse_digits
    monkeypatch.setattr(sources, "parse_digits", lambda *a, **k: calls.append(a) or time.sleep(0.3) or real(*a, **k))
    monkeypatch.setattr(cache, "_lock", lambda folder: _NoLock())
    threads = [threading.Thread(target=lambda: sources.load(path)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 3


def test_a_folder_is_decoded_once_and_again_when_an_image_changes(tmp_path, monkeypatch, caplog):
    from PIL import Image

    for name, level in (("a", 10), ("b", 200)):
        (tmp_path / "images" / name).mkdir(parents=True)
        Image.new("L", (4, 3), level).save(tmp_path / "images" / name / "1.png")
    (tmp_path / "images" / "empty").mkdir()
    folder = tmp_path / "images"
    first = sources.load(folder)
    assert first.label_names == ("a", "b", "empty") and first.pixels.shape == (2, 12)

    decoded = []
    real = sources.read_image_folder
    monkeypatch.setattr(sources, "read_image_folder", lambda *a, **k: decoded.append(a) or real(*a, **k))
    with caplog.at_level("WARNING"):
        again = sources.load(folder)
    assert decoded == [] and np.array_equal(again.pixels, first.pixels) and again.label_names == first.label_names
    assert "class folders with no images, kept as classes: empty" in caplog.text  # said on every load
    sources.load(folder, image_shape=[2, 2])
    assert len(decoded) == 1  # other options: decoded again
    image = folder / "b" / "1.png"
    Image.new("L", (4, 3), 90).save(image)
    os.utime(image, ns=(0, 1))  # a new modification time, whatever the clock's resolution
    assert sources.load(folder).pixels[1, 0] == 90 and len(decoded) == 2
    (folder / "new").mkdir()  # a class with no images yet is a class
    assert sources.load(folder).label_names == ("a", "b", "empty", "new") and len(decoded) == 3


def test_info_lists_and_clear_empties_the_cache(write_csv, isolated_data_dir, capsys):
    from lit_mnist.apps import cache as command

    sources.load(write_csv())
    (isolated_data_dir / "cache" / ".csv-left.x.tmp").mkdir()  # a write that did not finish
    assert command.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "60 rows of" in out and "digits.csv" in out and "left by a write that did not finish" in out
    assert "2 entries" in out
    assert command.main(["clear"]) == 0
    assert "2 entries deleted" in capsys.readouterr().out
    assert _entries(isolated_data_dir) == [] and cache.entries() == []


def test_the_cache_command_refuses_an_unknown_action_in_one_line():
    import contextlib
    import io

    from lit_mnist.apps import cache as command
    from lit_mnist.apps.entry import call

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert call(command.main, ["purge"]) == 2
    assert err.getvalue().count("\n") == 1 and "invalid choice: 'purge'" in err.getvalue()


def test_a_missing_source_is_the_reader_s_one_line_error(tmp_path):
    from lit_mnist.errors import DataError

    with pytest.raises(DataError, match="no such file"):
        sources.load(tmp_path / "absent.csv")
