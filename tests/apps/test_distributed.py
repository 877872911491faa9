"""Data-parallel training on 2 CPU ranks (DDP over gloo) is the 1-device training, sharded.

Each check has a companion run with the property broken on purpose (tests/distributed_probe.py's
``--break``), which the same check must reject.
"""

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

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

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


def common(csv) -> dict:
    return {"kind": "probe", "csv": str(csv), "steps": STEPS, "batch_size": BATCH, "eval_batch_size": EVAL_BATCH}


def fit_py_args(root, name, *extra) -> list[str]:
    """scripts/fit.py on the indexed digits, 3 epochs, its runs in ``root/name/runs``."""
    return ["--data.path", str(root / "digits.csv"), "--trainer.accelerator", "cpu", "--trainer.max_epochs", "3",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--data.batch_size", str(BATCH), "--trainer.default_root_dir", str(root / name / "runs"), *EVERY_STEP,
            *extra]


EVERY_STEP = ("--checkpoint.every_n_train_steps", "1")  # a mid-epoch last.ckpt; the same callback state on resume
STOP = ("--trainer.max_steps", "4")  # 4 of the 9 steps: mid-epoch 2
TWO_RANKS = ("--trainer.devices", "2", "--trainer.strategy", "ddp")
# a list that branches and joins (no BatchNormalization: its batch statistics are each rank's own unless synced)
GRAPH = ("--model.layers", ("[{dense: {units: 32, activation: relu, name: hidden}}, {dense: {units: 32, name: block}}, "
         "{add: {inputs: [hidden, block]}}, {dense: {units: 8, inputs: input, name: skip}}, "
         "{concatenate: {inputs: [add, skip]}}]"))


def fit_here(root, name, *extra) -> None:
    """scripts/fit.py's main on one device, in this process."""
    (root / name).mkdir(parents=True, exist_ok=True)
    with mock.patch.object(sys, "argv", ["fit.py"]):
        assert call(fit.main, fit_py_args(root, name, "--trainer.devices", "1", *extra)) == 0


def launch(root, jobs: list[dict]) -> None:
    """All the 2-rank jobs in one launch of tests/distributed_probe.py (see its docstring)."""
    plan = root / "plan.json"
    plan.write_text(json.dumps(jobs))
    command = [sys.executable, "-m", "tests.distributed_probe", "--plan", str(plan)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, check=False, text=True, env=run_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """On one device, in this process: the probe's run and fit.py's, stopped after 4 of 9 steps and never
    stopped. Then, in one 2-rank launch: the probe as built (tested with the 1-device weights) and broken
    twice; fit.py stopped after 4 steps, as built and with every rank taking itself for rank 0; and the
    1-device stopped run resumed on 2 ranks."""
    root = tmp_path_factory.mktemp("ddp")
    csv = indexed_digits(root / "digits.csv")
    distributed_probe.probe({**common(csv), "out": str(root / "one")})
    fit_here(root, "fit-one", *STOP)
    assert _last(root / "fit-one" / "runs")["global_step"] == 4  # stopped mid-epoch: resumed on 2 ranks below
    fit_here(root, "straight")
    fit_here(root, "graph-straight", *GRAPH)
    weights = str(root / "one" / f"weights-step{STEPS}.pt")
    probes = [{**common(csv), "devices": 2, "out": str(root / name), "test_weights": weights, "break": broken}
              for name, broken in (("two", None), ("broken_sharding", "sharding"), ("broken_weighting", "weighting"))]
    fits = [{"kind": "fit_py", "out": str(root / name), "break": broken, "args": fit_py_args(root, name, *TWO_RANKS, *STOP)}
            for name, broken in (("fit-built", None), ("fit-rank0", "rank0"))]
    resume = {"kind": "fit_py", "out": str(root / "fit-one-resumed"),
              "args": fit_py_args(root, "fit-one", *TWO_RANKS, "--ckpt_path", "last")}
    grouped = {"kind": "fit_py", "out": str(root / "fit-grouped"),
               "args": fit_py_args(root, "fit-grouped", *TWO_RANKS, "--data.steps_per_execution", "2")}
    graph = {"kind": "fit_py", "out": str(root / "fit-graph"), "args": fit_py_args(root, "fit-graph", *TWO_RANKS, *GRAPH)}
    launch(root, [*probes, *fits, resume, grouped, graph])
    return {name: root / name for name in ("one", "two", "broken_sharding", "broken_weighting", "fit-built",
                                            "fit-rank0", "fit-one", "fit-grouped", "fit-graph")} | {"root": root}


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


def _last(root):
    (path,) = root.glob("lightning_logs/version_*/checkpoints/last.ckpt")
    return torch.load(path, weights_only=True)


def _read(path) -> str:
    return path.read_text() if path.exists() else ""


def written_once(run) -> bool:
    """metrics.json and the figures written once, by rank 0, as are the checkpoints; the final line printed once."""
    names = {r: _read(run / f"writes-rank{r}.txt").split() for r in range(2)}
    printed = "".join(_read(run / f"stdout-rank{r}.txt") for r in range(2))
    once = all(names[0].count(a) == 1 for a in ["metrics.json", "confusion_matrix.png", "samples.png",
                                                 "misclassified.png"])
    return once and "last.ckpt" in names[0] and not names[1] and printed.count("test accuracy") == 1


def test_d_artifacts_and_final_line_come_once_from_rank_0(runs):
    run = runs["fit-built"]
    assert written_once(run), [p.read_text() for p in run.glob("*-rank*.txt")]
    metrics = json.loads(next(run.glob("runs/lightning_logs/version_0/metrics.json")).read_text())
    assert metrics["world_size"] == 2 and metrics["test_samples"] == TEST_ROWS
    assert sum(map(sum, metrics["confusion_matrix"])) == TEST_ROWS
    assert metrics["train_rows_per_rank"] == [401, 399] and sum(metrics["train_rows_per_rank"]) == FIT_ROWS
    assert len(list(run.glob("runs/lightning_logs/version_*"))) == 1


def test_d_companion_every_rank_acting_as_rank_0_is_caught(runs):
    assert not written_once(runs["fit-rank0"])


def net_weights(checkpoint) -> torch.Tensor:
    return torch.cat([v.flatten() for k, v in checkpoint["state_dict"].items() if k.startswith("net.")])


def same_as_never_stopped(resumed, straight) -> bool:
    a, b = net_weights(resumed), net_weights(straight)
    return resumed["global_step"] == straight["global_step"] == 9 and float((a - b).norm() / b.norm()) <= 1e-6


def test_a_run_stopped_mid_epoch_on_2_ranks_resumes_on_1_device(runs):
    """The batch position is kept, and the weights are those of the run that never stopped."""
    stopped = _last(runs["fit-built"] / "runs")
    assert stopped["global_step"] == 4 and stopped["epoch"] == 1
    fit_here(runs["root"], "fit-built", "--ckpt_path", "last")
    assert same_as_never_stopped(_last(runs["fit-built"] / "runs"), _last(runs["root"] / "straight" / "runs"))


def test_a_run_stopped_mid_epoch_on_1_device_resumes_on_2_ranks(runs):
    """(The launch resumed it; the stopped run's own last.ckpt was overwritten by the resumed one.)"""
    assert same_as_never_stopped(_last(runs["fit-one"] / "runs"), _last(runs["root"] / "straight" / "runs"))


def test_two_ranks_taking_their_shares_in_groups_train_the_one_device_weights(runs):
    """--data.steps_per_execution 2 on 2 ranks: each rank's group holds its shares of 2 global batches."""
    assert same_as_never_stopped(_last(runs["fit-grouped"] / "runs"), _last(runs["root"] / "straight" / "runs"))


def test_a_graph_on_two_ranks_trains_its_one_device_weights(runs):
    graph = _last(runs["fit-graph"] / "runs")
    """(The weights check's companion, shares that miss them, is test_a_companion_unweighted_shares_...)"""
    graph = _last(runs["fit-graph"] / "runs")
    assert any(key.startswith("net.skip.") for key in graph["state_dict"])  # the graph's own layers
    assert same_as_never_stopped(graph, _last(runs["root"] / "graph-straight" / "runs"))


def test_a_strategy_that_launches_twice_keeps_one_run_directory(runs):
    """ddp_fork (as ddp_spawn) fits and tests in two launches: one version_N holds the whole run (fit.py
    chooses it before the launches), and the ranks train the 1-device weights. (What ddp_spawn adds, fresh
    interpreters, gets the command's settings by unpickling: tests/apps/test_fit.py.)"""
    root = runs["root"]
    done = subprocess.run([sys.executable, "scripts/fit.py", *fit_py_args(root, "fork", "--trainer.devices", "2",
                                                                          "--trainer.strategy", "ddp_fork")],
                          cwd=REPO, capture_output=True, check=False, text=True, env=run_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (root / "fork" / "runs" / "lightning_logs").iterdir()
    assert {"metrics.json", "config.yaml", "confusion_matrix.png", "checkpoints"} <= {p.name for p in run.iterdir()}
    assert done.stdout.count("test accuracy") == 1 and done.stdout.strip().endswith(f"run directory: {run}")
    assert json.loads((run / "metrics.json").read_text())["world_size"] == 2
    assert same_as_never_stopped(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True),
                                 _last(root / "straight" / "runs"))
