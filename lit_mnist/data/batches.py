"""Batches cut from tensors already in memory (or on the GPU): no DataLoader, no per-sample Python.

On several devices (DDP), each rank takes its own disjoint share of every batch, with
DistributedSampler's guarantees but none of its padding: every rank draws the same permutation from
``(seed, epoch)``; each global batch of ``batch_size`` rows is cut into ``world_size`` near-equal
contiguous parts, one per rank; the union over the ranks is the whole split, each row counted once.
So N ranks take the optimizer steps one device takes, on the same rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import torch


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
        generator = torch.Generator(device=self.x.device).manual_seed(self.seed * 1_000_003 + self.epoch())
        return torch.randperm(len(self.x), generator=generator, device=self.x.device)

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
            if order is None:
                batch = (self.x[begin:end], self.y[begin:end])
            else:
                idx = order[begin:end]
                # index_select copies whole rows; x[idx] takes advanced indexing's general path for uint8 rows
                batch = (self.x.index_select(0, idx), self.y.index_select(0, idx))
            yield (*batch, rows) if self.world_size > 1 else batch

    def _row_shard(self, skip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        part = share(len(self.x), self.rank, self.world_size)
        x, y = self.x[part], self.y[part]
        for k in range(skip, self.steps()):
            self.taken += 1
            yield x[k * self.batch_size : (k + 1) * self.batch_size], y[k * self.batch_size : (k + 1) * self.batch_size]
