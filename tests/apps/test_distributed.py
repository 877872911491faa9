"""Data-parallel training on 2 CPU ranks (DDP over gloo) is the 1-device training, sharded.

Each check has a companion run with the property broken on purpose (tests/distributed_probe.py's
``--break``), which the same check must reject.
"""

import argparse
import json
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import torch

from lit_mnist.apps import fit
from lit_mnist.apps.entry import call
from tests import distributed_probe
from tests.conftest import REPO, csv_text, run_env, synthetic_digits

pytestmark = pytest.mark.slow

# 1251 rows: 1000 train (800 fit + 200 validate) and 251 test. Batch 333: global batches of 333, 333 and
# 134 rows, shared 167/166 and 67/67; evaluation in batches of 125: rank 0 tests 126 rows, rank 1 125.
ROWS, BATCH, EVAL_BATCH, STEPS = 1251, 333, 125, 3
FIT_ROWS, TEST_ROWS = 800, 251


def indexed_digits(path):
    """Learnable digits whose first two pixels spell the row's index (how the probe identifies rows)."""
    pixels, labels = synthetic_digits(ROWS, seed=1)
    ids = np.arange(ROWS)
    pixels[:, 0], pixels[:, 1] = ids % 256, ids // 256
    path.write_text(csv_text(pixels, labels))
    return path


def probe(out, devices, *extra):
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tests.distributed_probe", "--devices", str(devices), "--out", str(out), *extra]
    done = subprocess.run(command, cwd=REPO, capture_output=True, check=False, text=True, env=run_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 1-device run, then 2-rank runs (tested with the 1-device weights): as built, and broken twice."""
    root = tmp_path_factory.mktemp("ddp")
    csv = str(indexed_digits(root / "digits.csv"))
    common = ["--csv", csv, "--steps", str(STEPS), "--batch_size", str(BATCH), "--eval_batch_size", str(EVAL_BATCH)]
    one = root / "one"
    one.mkdir()
    distributed_probe.probe(argparse.Namespace(devices=1, out=str(one), csv=csv, steps=STEPS, batch_size=BATCH,
                                               eval_batch_size=EVAL_BATCH, test_weights=None))
    weights = str(one / f"weights-step{STEPS}.pt")
    two = {name: probe(root / name, 2, *common, "--test_weights", weights, *(["--break", name] if name else []))[0]
           for name in ("", "sharding", "weighting")}
    return {"one": one, "two": two[""], "broken_sharding": two["sharding"], "broken_weighting": two["weighting"]}


def relative_l2(a_path, b_path) -> float:
    a, b = (torch.cat([t.flatten() for t in torch.load(p, weights_only=True).values()]) for p in (a_path, b_path))
    return float((a - b).norm() / b.norm())


def ranks_rows(run) -> list[list[torch.Tensor]]:
    return [torch.load(run / f"rows-rank{r}.pt", weights_only=True) for r in range(2)]


def epoch_is_sharded(run) -> bool:
    """Each global step's rows: disjoint between the ranks; the epoch's rows: the training split, once each."""
    rank0, rank1 = ranks_rows(run)
    disjoint = all(not set(a.tolist()) & set(b.tolist()) for a, b in zip(rank0, rank1))
    everything = torch.cat([*rank0, *rank1]).tolist()
    return disjoint and len(everything) == FIT_ROWS and len(set(everything)) == FIT_ROWS


def weights_match(run, one, step) -> bool:
    return relative_l2(run / f"weights-step{step}.pt", one / f"weights-step{step}.pt") <= 1e-6


def confusion(run) -> torch.Tensor:
    return torch.load(run / "confusion.pt", weights_only=True)


def test_b_ranks_take_disjoint_rows_that_cover_the_split(runs):
    assert epoch_is_sharded(runs["two"])
    one_rows = torch.cat(torch.load(runs["one"] / "rows-rank0.pt", weights_only=True))
    assert sorted(one_rows.tolist()) == sorted(torch.cat([*ranks_rows(runs["two"])[0], *ranks_rows(runs["two"])[1]]).tolist())


def test_b_companion_unsharded_ranks_repeat_each_other(runs):
    assert not epoch_is_sharded(runs["broken_sharding"])


def test_a_one_step_on_two_ranks_gives_the_one_device_weights(runs):
    assert weights_match(runs["two"], runs["one"], step=1)
    assert weights_match(runs["two"], runs["one"], step=STEPS)  # the last, partial batch (67/67) as well


def test_a_companion_unweighted_shares_miss_the_one_device_weights(runs):
    assert not weights_match(runs["broken_weighting"], runs["one"], step=STEPS)


def test_c_test_confusion_over_two_ranks_equals_one_device(runs):
    two, one = confusion(runs["two"]), confusion(runs["one"])
    assert int(two.sum()) == TEST_ROWS and torch.equal(two, one)


def test_c_companion_unsharded_evaluation_counts_every_digit_twice(runs):
    broken = confusion(runs["broken_sharding"])
    assert int(broken.sum()) == 2 * TEST_ROWS and not torch.equal(broken, confusion(runs["one"]))


def _fit_py(out, devices, *extra):
    """scripts/fit.py's main on ``devices`` CPU ranks, 3 epochs of the indexed digits: in a probe process
    for several ranks (Lightning's launcher starts the others from its command line), in this one for one."""
    args = ["--data.path", str(out.parent / "digits.csv"), "--trainer.accelerator", "cpu",
            "--trainer.devices", str(devices), "--trainer.max_epochs", "3", "--trainer.enable_progress_bar",
            "false", "--trainer.enable_model_summary", "false", "--data.batch_size", str(BATCH), *extra]
    if devices == 1:
        out.mkdir(parents=True, exist_ok=True)
        with mock.patch.object(sys, "argv", ["fit.py"]):
            assert call(fit.main, args) == 0
        return out, None
    return probe(out, devices, "--fit-py", *args, "--trainer.strategy", "ddp")


def _last(root):
    (path,) = root.glob("lightning_logs/version_*/checkpoints/last.ckpt")
    return torch.load(path, weights_only=True)


EVERY_STEP = ("--checkpoint.every_n_train_steps", "1")  # a mid-epoch last.ckpt; the same callback state on resume


@pytest.fixture(scope="module")
def fit_runs(tmp_path_factory):
    """scripts/fit.py stopped after 4 of 9 steps (mid-epoch 2): on 2 ranks as built, on 2 ranks that all take
    themselves for rank 0, and on 1 device; and the run that never stops."""
    root = tmp_path_factory.mktemp("fitpy")
    indexed_digits(root / "digits.csv")
    out = {}
    for name, devices, extra in (("built", 2, ()), ("rank0", 2, ("--break", "rank0")), ("one", 1, ())):
        stop = ("--trainer.default_root_dir", str(root / name / "runs"), "--trainer.max_steps", "4", *EVERY_STEP)
        out[name] = _fit_py(root / name, devices, *stop, *extra)
    _fit_py(root / "straight", 1, "--trainer.default_root_dir", str(root / "straight" / "runs"), *EVERY_STEP)
    out["straight"] = _last(root / "straight" / "runs")
    return out


def written_once(run, done) -> bool:
    """metrics.json and the figures written once, by rank 0, as are the checkpoints; the final line printed once."""
    names = {r: (run / f"writes-rank{r}.txt").read_text().split() if (run / f"writes-rank{r}.txt").exists() else []
             for r in range(2)}
    once = all(names[0].count(a) == 1 for a in ["metrics.json", "confusion_matrix.png", "samples.png",
                                                 "misclassified.png"])
    return once and "last.ckpt" in names[0] and not names[1] and done.stdout.count("test accuracy") == 1


def test_d_artifacts_and_final_line_come_once_from_rank_0(fit_runs):
    run, done = fit_runs["built"]
    assert written_once(run, done), (done.stdout, *(p.read_text() for p in run.glob("writes-rank*.txt")))
    metrics = json.loads(next(run.glob("runs/lightning_logs/version_0/metrics.json")).read_text())
    assert metrics["world_size"] == 2 and metrics["test_samples"] == TEST_ROWS
    assert sum(map(sum, metrics["confusion_matrix"])) == TEST_ROWS
    assert metrics["train_rows_per_rank"] == [401, 399] and sum(metrics["train_rows_per_rank"]) == FIT_ROWS
    assert len(list(run.glob("runs/lightning_logs/version_*"))) == 1


def test_d_companion_every_rank_acting_as_rank_0_is_caught(fit_runs):
    run, done = fit_runs["rank0"]
    assert not written_once(run, done)


@pytest.mark.parametrize(("first", "then"), [("built", 1), ("one", 2)])
def test_a_run_stopped_mid_epoch_resumes_on_another_device_count(fit_runs, first, then):
    """A run stopped mid-epoch on 2 ranks continues on 1 device with --ckpt_path last, and the reverse: the
    batch position is kept, and the weights are those of the run that never stopped."""
    folder = fit_runs[first][0]
    runs = folder / "runs"
    assert _last(runs)["global_step"] == 4 and _last(runs)["epoch"] == 1
    _fit_py(folder.parent / f"{first}-resumed", then, "--trainer.default_root_dir", str(runs), "--ckpt_path", "last",
            *EVERY_STEP)
    resumed, straight = _last(runs), fit_runs["straight"]
    assert resumed["global_step"] == straight["global_step"] == 9
    a, b = (torch.cat([v.flatten() for k, v in c["state_dict"].items() if k.startswith("net.")])
            for c in (resumed, straight))
    assert float((a - b).norm() / b.norm()) <= 1e-6
