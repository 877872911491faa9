"""Batches cut from tensors already in memory (or on the GPU): no DataLoader, no per-sample Python."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch


class TensorBatches:
    """Iterate ``(x[idx], y[idx])`` in batches of ``batch_size``; the last, partial batch is kept (as Keras does).

    With ``shuffle``, each epoch's order is a permutation seeded by ``(seed, epoch())``, so an epoch's
    batches are the same whether the run was interrupted and resumed or not. ``state_dict`` (saved by
    Lightning in checkpoints) records how many batches of the epoch were taken, so a run resumed
    mid-epoch continues with the next batch of the same permutation.
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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self.taken = 0  # batches handed out in the current pass
        self._resume_at = 0

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def order(self) -> torch.Tensor:
        """This epoch's permutation, drawn where the data is: no host-to-device copy."""
        generator = torch.Generator(device=self.x.device).manual_seed(self.seed * 1_000_003 + self.epoch())
        return torch.randperm(len(self.x), generator=generator, device=self.x.device)

    def state_dict(self) -> dict:
        return {"taken": self.taken}

    def load_state_dict(self, state: dict) -> None:
        self._resume_at = int(state.get("taken", 0))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = len(self.x), self.batch_size
        skip, self._resume_at = self._resume_at, 0
        order = self.order() if self.shuffle else None
        self.taken = skip
        for start in range(skip * size, n, size):
            self.taken += 1
            if order is None:
                yield self.x[start : start + size], self.y[start : start + size]
            else:
                idx = order[start : start + size]
                # index_select copies whole rows; x[idx] takes a general path ~8x slower for uint8 rows
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
