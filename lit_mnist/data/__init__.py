"""The data path: CSV reader, MNIST from mirrors, the parse cache, the datamodule and its batches."""

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.data.reader import Digits, parse_digits

__all__ = ["Digits", "MNISTDataModule", "parse_digits"]
