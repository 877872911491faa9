"""--data.validation_split: Keras's name of --data.val_split."""

import pytest

from lit_mnist.data.datamodule import MNISTDataModule


def test_validation_split_is_val_split():
    assert MNISTDataModule(validation_split=0.3).hparams.val_split == 0.3
    assert "validation_split" not in MNISTDataModule(validation_split=0.3).hparams
    assert MNISTDataModule(val_split=0.3, validation_split=0.3).hparams.val_split == 0.3


def test_two_different_splits_are_one_line():
    with pytest.raises(ValueError, match=r"^val_split 0.3 and validation_split 0.1 differ"):
        MNISTDataModule(val_split=0.3, validation_split=0.1)
