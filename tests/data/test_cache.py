"""The parse cache: served when the content is the same, rebuilt when it changes."""

import numpy as np

from lit_mnist.data import cache as digits_cache
from lit_mnist.data.cache import load_digits


def test_second_load_comes_from_cache_and_a_change_invalidates_it(write_csv, monkeypatch, isolated_data_dir):
    path = write_csv()
    first = load_digits(path)
    entries = list((isolated_data_dir / "cache").glob("*.npz"))
    assert len(entries) == 1

    calls = []
    monkeypatch.setattr(digits_cache, "parse_digits", lambda *a, **k: calls.append(a) or first)
    np.testing.assert_array_equal(load_digits(path).pixels, first.pixels)
    assert calls == []  # served from the cache

    path.write_text(path.read_text().replace("\n0,", "\n1,", 1))  # same size, other content
    load_digits(path)
    assert len(calls) == 1  # content changed: parsed again


def test_a_damaged_cache_entry_is_rebuilt(write_csv, isolated_data_dir):
    path = write_csv()
    expected = load_digits(path)
    (entry,) = (isolated_data_dir / "cache").glob("*.npz")
    entry.write_bytes(b"garbage")
    np.testing.assert_array_equal(load_digits(path).labels, expected.labels)


def test_ids_come_back_from_the_cache(tmp_path, isolated_data_dir):
    path = tmp_path / "test.csv"
    path.write_text("ImageId,pixel0,pixel1,pixel2,pixel3\nx1,0,1,2,3\nx2,4,5,6,7\n")
    first, second = load_digits(path, labels="optional"), load_digits(path, labels="optional")
    assert len(list((isolated_data_dir / "cache").glob("*.npz"))) == 1
    assert second.id_name == first.id_name == "ImageId" and second.ids.tolist() == ["x1", "x2"]


def test_a_folder_is_decoded_once_and_again_when_an_image_changes(tmp_path, monkeypatch, isolated_data_dir, caplog):
    import os

    from PIL import Image

    for name, level in (("a", 10), ("b", 200)):
        (tmp_path / "images" / name).mkdir(parents=True)
        Image.new("L", (4, 3), level).save(tmp_path / "images" / name / "1.png")
    (tmp_path / "images" / "empty").mkdir()
    folder = tmp_path / "images"
    first = digits_cache.load_folder(folder)
    assert first.label_names == ("a", "b", "empty") and first.pixels.shape == (2, 12)

    decoded = []
    real = digits_cache.read_image_folder
    monkeypatch.setattr(digits_cache, "read_image_folder", lambda *a, **k: decoded.append(a) or real(*a, **k))
    with caplog.at_level("WARNING"):
        again = digits_cache.load_folder(folder)
    assert decoded == [] and np.array_equal(again.pixels, first.pixels) and again.label_names == first.label_names
    assert "class folders with no images, kept as classes: empty" in caplog.text  # said on every load
    digits_cache.load_folder(folder, image_shape=[2, 2])
    assert len(decoded) == 1  # other options: decoded again
    image = folder / "b" / "1.png"
    Image.new("L", (4, 3), 90).save(image)
    os.utime(image, ns=(0, 1))  # a new modification time, whatever the clock's resolution
    assert digits_cache.load_folder(folder).pixels[1, 0] == 90 and len(decoded) == 2
    (folder / "new").mkdir()  # a class with no images yet is a class
    assert digits_cache.load_folder(folder).label_names == ("a", "b", "empty", "new") and len(decoded) == 3
