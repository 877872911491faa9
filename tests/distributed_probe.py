"""Training runs on N CPU ranks (DDP over gloo) that record what the distributed tests check.

``python -m tests.distributed_probe --plan PLAN.json`` runs the plan's jobs one after another, in one launch:
Lightning's launcher starts the other ranks by running the same command again, and every rank then runs
the same jobs (starting interpreters is most of a small run's time). A job is

* ``{"kind": "probe", "out": DIR, "devices": N, "csv": ..., "steps": ..., ...}``: ``steps`` training steps
  and a test. Every rank writes ``rows-rank{r}.pt`` (the ids of the training rows it took, step by step);
  rank 0 writes ``weights-step{k}.pt`` after each step and ``confusion.pt`` after testing;
* ``{"kind": "fit_py", "out": DIR, "args": [...]}``: ``scripts/fit.py``'s main with ``args``, every atomic
  write logged in ``writes-rank{r}.txt``, what it prints in ``stdout-rank{r}.txt``.

``"break"`` undoes one property for that job, for the tests' companions:

* ``sharding``: every rank takes every row (the batches ignore the layout), as before sharding existed;
* ``weighting``: each rank's loss is the mean over its own rows, not its share of the global batch's mean;
* ``rank0``: every rank believes it is rank 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from unittest import mock

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


def broken(what: str | None) -> contextlib.AbstractContextManager:
    if what == "sharding":
        original = batches.TensorBatches.__init__

        def whole(self, *args, **kwargs):
            original(self, *args, **{**kwargs, "rank": 0, "world_size": 1})

        return mock.patch.object(batches.TensorBatches, "__init__", whole)
    if what == "weighting":
        original_loss = LitMNIST.compute_loss

        def per_rank_mean(self, batch):
            return original_loss(self, batch[:2])

        return mock.patch.object(LitMNIST, "compute_loss", per_rank_mean)
    if what == "rank0":
        return mock.patch.object(L.Trainer, "is_global_zero", property(lambda self: True))
    return contextlib.nullcontext()


def probe(job: dict) -> None:
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    devices = job.get("devices", 1)
    L.seed_everything(0, verbose=False)
    data = MNISTDataModule(path=job["csv"], batch_size=job["batch_size"], eval_batch_size=job["eval_batch_size"])
    model = LitMNIST()
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                        max_steps=job["steps"], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[RowRecorder(out)])
    trainer.fit(model, datamodule=data)
    if job.get("test_weights"):
        model.net.load_state_dict(torch.load(job["test_weights"], weights_only=True))
    trainer.test(model, datamodule=data, verbose=False)
    confusion = model.test_confusion.compute()  # synced over the ranks: every rank takes part
    if trainer.is_global_zero:
        torch.save(confusion, out / "confusion.pt")
    leave_together(trainer)


def fit_py(job: dict) -> int:
    from lit_mnist.apps import fit
    from lit_mnist.apps.entry import call

    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    rank = os.environ.get("LOCAL_RANK", "0")
    log = out / f"writes-rank{rank}.txt"
    original = atomic.atomic_path

    def logged(path):
        with log.open("a") as f:
            f.write(f"{Path(path).name}\n")
        return original(path)

    with mock.patch.object(atomic, "atomic_path", logged), (out / f"stdout-rank{rank}.txt").open("w") as printed, \
            contextlib.redirect_stdout(printed):
        return call(fit.main, job["args"])  # sys.argv stays whole: Lightning's launcher starts rank 1 from it


def run_plan(jobs: list[dict]) -> int:
    base_port = None
    for k, job in enumerate(jobs):
        if base_port is not None:  # each job opens its own process group, on a port of its own
            os.environ["MASTER_PORT"] = str(base_port + k)
        with broken(job.get("break")):
            if job["kind"] == "probe":
                probe(job)
                code = 0
            else:
                code = fit_py(job)
        if code:
            return code
        if base_port is None and "MASTER_PORT" in os.environ:  # set by the launcher, the same on every rank
            base_port = int(os.environ["MASTER_PORT"])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", required=True, help="JSON list of jobs")
    args = parser.parse_args()
    return run_plan(json.loads(Path(args.plan).read_text()))


if __name__ == "__main__":
    sys.exit(main())
