"""Batches cut from tensors already in memory (or on the GPU): no DataLoader, no per-sample Python.

On several devices (DDP), each rank takes its own disjoint share of every batch, with
DistributedSampler's guarantees but none of its padding: every rank draws the same permutation from
``(seed, epoch)``; each global batch of ``batch_size`` rows is cut into ``world_size`` near-equal
contiguous parts, one per rank; the union over the ranks is the whole split, each row counted once.
So N ranks take the optimizer steps one device takes, on the same rows.

Where the data fit on the device (:func:`resident_fits`), they are moved there once and batches are cut in
place. Where they do not, they stay on the host as :class:`HostRows` (a split of the cache's memory-mapped uint8
array, not copied), and each batch's rows are read from its file (``mapped.gather``: the process holds a batch, not
the mapping's pages), pinned for a GPU and moved as uint8: the same batches, in the same order, with the same values.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator

import numpy as np
import torch

from lit_mnist.data import mapped

# The share of a device's free memory the data may take to be held there whole (``--data.memory_share`` unset). A
# GPU: half its free memory, the rest left for the model, its activations and optimizer state. The CPU: a tenth of
# the machine's available RAM, as there a copy holds the pixels a second time beside the cache's file in the page
# cache, each rank of a node holds its own, and the machine's other programs share the RAM. Larger data stay in the
# cache's file, and each batch's rows are read from it.
RESIDENT_SHARE = {"cuda": 0.5, "cpu": 0.1}
_CHUNK_BYTES = 64 << 20  # rows copied at a time from a memory-mapped array: a bounded buffer


def free_memory(device: torch.device) -> int | None:
    """Bytes free for data on ``device``: CUDA's free memory, the machine's available RAM for the CPU; None where
    unknown (another accelerator: the data are held there, as before)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def resident_fits(nbytes: int, device: torch.device, share: float | None = None) -> bool:
    """Whether ``nbytes`` of data are to be held whole on ``device``: within ``share`` of its free memory (None: the
    device's :data:`RESIDENT_SHARE`)."""
    free = free_memory(device)
    if share is None:
        share = RESIDENT_SHARE["cpu" if device.type == "cpu" else "cuda"]
    return free is None or nbytes <= share * free


class HostRows:
    """Rows of a uint8 array on the host (the cache's, memory-mapped), in the order of ``index`` (all, in order:
    None): a split of the data that is not copied. :meth:`take` gathers rows; the rest reads as a tensor would,
    for the reports that look at a few rows."""

    device = torch.device("cpu")
    dtype = torch.uint8

    def __init__(self, array: np.ndarray, index: np.ndarray | None = None, source: mapped.Source | None = None) -> None:
        self.array, self.index = array, index
        # the cache's file, opened once (None: the array is indexed); a part of these rows reads the same file
        self.source = mapped.source(array) if source is None else source

    def __reduce__(self):
        """Pickled (a spawning strategy's processes) as the entry's path and the split's rows, mapped again when
        loaded: the pixels themselves are never in the pickle, nor the open file."""
        if self.source is None:
            return HostRows, (self.array, self.index)
        return _mapped_rows, (self.source.file.name, self.index)

    def __len__(self) -> int:
        return len(self.array) if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.array.shape[1]

    @property
    def nbytes(self) -> int:
        return len(self) * self.array.shape[1]

    def __getitem__(self, key):
        if isinstance(key, slice):  # the same array (a slice of a mapping is no longer read through its file)
            return HostRows(self.array, (np.arange(len(self)) if self.index is None else self.index)[key], self.source)
        return self.take(np.asarray(key.cpu() if isinstance(key, torch.Tensor) else key, dtype=np.int64))

    def take(self, rows: np.ndarray) -> torch.Tensor:
        """Rows ``rows`` (positions in this split), in that order: read in the array's own order (ascending offsets
        in the file; of the cache's mapped pixels, through the file, so that the process holds the rows read and no
        pages of the mapping), then put back in the order asked for."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.index is not None:
            rows = self.index[rows]  # a split's positions, negative ones too, as a tensor's
        return torch.from_numpy(mapped.gather(self.array, rows, self.source))

    def blocks(self) -> Iterator[np.ndarray]:
        """Every row, in order, a bounded block at a time."""
        step = max(1, _CHUNK_BYTES // max(1, self.array.shape[1]))
        for start in range(0, len(self), step):
            yield self.take(np.arange(start, min(start + step, len(self)))).numpy()

    def to(self, device: torch.device | str) -> torch.Tensor:
        """All rows on ``device``, copied a block at a time (never a whole copy on the host first)."""
        out = torch.empty(self.shape, dtype=torch.uint8, device=device)
        start = 0
        for block in self.blocks():
            out[start : start + len(block)].copy_(torch.from_numpy(block))
            start += len(block)
        return out

    def cpu(self) -> torch.Tensor:
        return self.to("cpu")

    def numpy(self) -> np.ndarray:
        return self.cpu().numpy()


def _mapped_rows(path: str, index: np.ndarray | None) -> HostRows:
    return HostRows(np.load(path, mmap_mode="r", allow_pickle=False), index)


def share(rows: int, rank: int, world_size: int) -> slice:
    """The rows ``rank`` takes of ``rows``: near-equal contiguous parts, the first ``rows % world_size`` one longer
    (``numpy.array_split``'s rule). A rank may get none when there are fewer rows than ranks."""
    base, extra = divmod(rows, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def _length(part: slice) -> int:
    return part.stop - part.start


class TensorBatches:
    """Iterate ``(x[idx], y[idx])`` in batches of ``batch_size``; the last, partial batch is kept (as Keras does).

    With ``shuffle``, each epoch's order is a permutation seeded by ``(seed, epoch())``, so an epoch's
    batches are the same whether the run was interrupted and resumed or not. ``state_dict`` (saved by
    Lightning in checkpoints) records how many batches of the epoch were taken, so a run resumed
    mid-epoch continues with the next batch of the same permutation, on any number of devices.

    ``world_size`` > 1 shards, in one of two ways:

    * ``shard="batch"`` (training): rank ``rank`` takes its share of each global batch and yields
      ``(x, y, rows)``, ``rows`` being the global batch's size, which the loss is weighted by.
    * ``shard="rows"`` (evaluation): rank ``rank`` takes its share of the rows, in batches of ``batch_size``,
      and every rank yields as many batches (an empty one where its share runs out first): DDP's forward is
      a collective, so no rank may take one more step than another.

    ``group`` > 1 (training) yields lists of ``group`` consecutive batches (the last list may be shorter), the
    same batches in the same order: Keras's ``steps_per_execution``, for a model that takes several steps per
    call. ``len`` counts the lists; ``steps()`` the batches.

    ``x`` as :class:`HostRows` (data that stay on the host): each batch's rows are gathered from it, pinned where
    ``device`` (where the model is) is a GPU; the permutation is drawn on ``device`` as it would be for data held
    there, so both give the same batches.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        shard: str = "batch",
        group: int = 1,
        device: torch.device | None = None,
    ) -> None:
        if batch_size < 1 or group < 1:
            raise ValueError(f"batch_size and group must be positive, got {batch_size}, {group}")
        if not 0 <= rank < world_size or shard not in ("batch", "rows"):
            raise ValueError(f"rank {rank} of world_size {world_size}, shard {shard!r}: not a valid layout")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self.rank, self.world_size, self.shard = rank, world_size, shard
        self.group = group
        self.device = x.device if device is None else torch.device(device)
        self.taken = 0  # batches handed out in the current pass (not lists: a resume may regroup)
        self._resume_at = 0

    def __len__(self) -> int:
        return math.ceil(self.steps() / self.group)

    def steps(self, lists: int | None = None) -> int:
        """Batches in a pass, or in its first ``lists`` lists of ``group``."""
        if self.world_size > 1 and self.shard == "rows":
            batches = math.ceil(math.ceil(len(self.x) / self.world_size) / self.batch_size)
        else:
            batches = math.ceil(len(self.x) / self.batch_size)
        return batches if lists is None else min(batches, lists * self.group)

    def order(self) -> torch.Tensor:
        """This epoch's permutation, drawn where the data is: no host-to-device copy."""
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + self.epoch())
        return torch.randperm(len(self.x), generator=generator, device=self.device).to(self.x.device)

    def rows_per_rank(self) -> list[int]:
        """How many training rows each rank takes in one pass (``shard="batch"``): the layout, for the run's report."""
        n, size = len(self.x), self.batch_size
        sizes = [min(size, n - start) for start in range(0, n, size)]
        return [sum(_length(share(b, r, self.world_size)) for b in sizes) for r in range(self.world_size)]

    def state_dict(self) -> dict:
        return {"taken": self.taken}

    def load_state_dict(self, state: dict) -> None:
        self._resume_at = int(state.get("taken", 0))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...] | list[tuple[torch.Tensor, ...]]]:
        batches = self._batches()
        if self.group == 1:
            yield from batches
            return
        while chunk := list(itertools.islice(batches, self.group)):
            yield chunk

    def _batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        skip, self._resume_at = self._resume_at, 0
        self.taken = skip
        if self.world_size > 1 and self.shard == "rows":
            yield from self._row_shard(skip)
            return
        n, size = len(self.x), self.batch_size
        order = self.order() if self.shuffle else None
        for start in range(skip * size, n, size):
            self.taken += 1
            rows = min(size, n - start)
            if self.world_size > 1:  # this rank's part of the global batch [start, start + rows)
                part = share(rows, self.rank, self.world_size)
                begin, end = start + part.start, start + part.stop
            else:
                begin, end = start, start + rows
            if isinstance(self.x, HostRows):
                idx = np.arange(begin, end) if order is None else order[begin:end].numpy()
                batch = self._pinned(self.x.take(idx), self.y[torch.from_numpy(idx)])
            elif order is None:
                batch = (self.x[begin:end], self.y[begin:end])
            else:
                idx = order[begin:end]
                # index_select copies whole rows; x[idx] takes advanced indexing's general path for uint8 rows
                batch = (self.x.index_select(0, idx), self.y.index_select(0, idx))
            yield (*batch, rows) if self.world_size > 1 else batch

    def _pinned(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Host batches in page-locked memory where they go to a GPU: the copy is then asynchronous."""
        return tuple(t.pin_memory() for t in tensors) if self.device.type == "cuda" else tensors

    def _row_shard(self, skip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        part = share(len(self.x), self.rank, self.world_size)
        x, y = self.x[part], self.y[part]
        for k in range(skip, self.steps()):
            self.taken += 1
            rows = slice(k * self.batch_size, (k + 1) * self.batch_size)
            yield (self._pinned(x[rows].cpu(), y[rows]) if isinstance(x, HostRows) else (x[rows], y[rows]))
