"""A training run on N CPU ranks (DDP over gloo) that records what the distributed tests check.

Run as ``python -m tests.distributed_probe --devices N --out DIR ...``: Lightning's launcher starts the
other ranks by running the same command again. Every rank writes ``rows-rank{r}.pt`` (the ids of the
training rows it took, step by step); rank 0 writes ``weights-step{k}.pt`` after each step and ``confusion.pt``
after testing. ``--break`` undoes one property on purpose, for the tests' companions:

* ``sharding``: every rank takes every row (the batches ignore the layout), as before sharding existed;
* ``weighting``: each rank's loss is the mean over its own rows, not its share of the global batch's mean.

``--fit-py ARGS...`` instead runs ``scripts/fit.py``'s main with ARGS, logging every atomic write
(``writes-rank{r}.txt``); ``--break rank0`` there makes every rank believe it is rank 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import lightning as L
import torch

from lit_mnist import atomic
from lit_mnist.apps.entry import leave_together
from lit_mnist.data import batches
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST


def row_ids(x: torch.Tensor) -> torch.Tensor:
    """The generated rows carry their index in their first two pixels (see ``indexed_digits``)."""
    return x[:, 0].long() + 256 * x[:, 1].long()


class RowRecorder(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.steps = out, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.steps.append(row_ids(batch[0]).cpu())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.is_global_zero:
            torch.save(pl_module.net.state_dict(), self.out / f"weights-step{trainer.global_step}.pt")

    def on_fit_end(self, trainer, pl_module) -> None:
        torch.save(self.steps, self.out / f"rows-rank{trainer.global_rank}.pt")


def _break(what: str | None) -> None:
    if what == "sharding":
        original = batches.TensorBatches.__init__

        def whole(self, *args, **kwargs):
            original(self, *args, **{**kwargs, "rank": 0, "world_size": 1})

        batches.TensorBatches.__init__ = whole
    elif what == "weighting":
        original = LitMNIST.compute_loss

        def per_rank_mean(self, batch):
            return original(self, batch[:2])

        LitMNIST.compute_loss = per_rank_mean
    elif what == "rank0":
        L.Trainer.is_global_zero = property(lambda self: True)


def probe(args: argparse.Namespace) -> None:
    out = Path(args.out)
    L.seed_everything(0, verbose=False)
    data = MNISTDataModule(path=args.csv, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size)
    model = LitMNIST()
    trainer = L.Trainer(accelerator="cpu", devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
                        max_steps=args.steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[RowRecorder(out)])
    trainer.fit(model, datamodule=data)
    if args.test_weights:
        model.net.load_state_dict(torch.load(args.test_weights, weights_only=True))
    trainer.test(model, datamodule=data, verbose=False)
    confusion = model.test_confusion.compute()  # synced over the ranks: every rank takes part
    if trainer.is_global_zero:
        torch.save(confusion, out / "confusion.pt")
    leave_together(trainer)


def fit_py(args: argparse.Namespace, rest: list[str]) -> int:
    from lit_mnist.apps import fit
    from lit_mnist.apps.entry import call

    rank = os.environ.get("LOCAL_RANK", "0")
    log = Path(args.out) / f"writes-rank{rank}.txt"
    original = atomic.atomic_path

    def logged(path):
        with log.open("a") as f:
            f.write(f"{Path(path).name}\n")
        return original(path)

    atomic.atomic_path = logged
    return call(fit.main, rest)  # sys.argv stays whole: Lightning's launcher starts rank 1 from it


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--csv")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--eval_batch_size", type=int, default=10_000)
    parser.add_argument("--test_weights")
    parser.add_argument("--break", dest="broken", choices=["sharding", "weighting", "rank0"])
    parser.add_argument("--fit-py", dest="fit_py", action="store_true")
    args, rest = parser.parse_known_args()
    _break(args.broken)
    if args.fit_py:
        return fit_py(args, rest)
    probe(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
