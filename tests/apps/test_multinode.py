"""Several machines, on loopback: two torchrun "nodes" of one rank each train as one job, as the 2-rank tests
check it on one machine (tests/apps/test_distributed.py); a launch whose size disagrees with the options stops
at once, with one line from each rank."""

import json
import socket
import subprocess
import sys
import time

import pytest
import torch

from tests.apps.test_distributed import BATCH, TEST_ROWS, indexed_digits, net_weights
from tests.conftest import REPO, run_env

pytestmark = [pytest.mark.slow, pytest.mark.distributed]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fit_args(csv, root, *extra) -> list[str]:
    return ["scripts/fit.py", "--data.path", str(csv), "--trainer.accelerator", "cpu", "--trainer.max_steps", "1",
            "--data.batch_size", str(BATCH), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(root), *extra]


def two_nodes(tmp_path, csv, name, *options) -> tuple[list[subprocess.CompletedProcess], list[str], float]:
    """scripts/fit.py on two torchrun nodes (--nnodes 2, one process each, rendezvous on 127.0.0.1): what each
    torchrun printed, what each rank printed (its stdout and stderr, as torchrun's --redirects keep them), and
    the seconds it took."""
    port, root = _free_port(), tmp_path / name
    start = time.monotonic()
    nodes = [subprocess.Popen([*TORCHRUN, "--nnodes", "2", "--node_rank", str(rank), "--nproc_per_node", "1",
                               "--master_addr", "127.0.0.1", "--master_port", str(port), "--redirects", "3",
                               "--log_dir", str(root / f"torchrun-{rank}"), *_fit_args(csv, root / "runs", *options)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=run_env(OMP_NUM_THREADS="1")) for rank in range(2)]
    done = [subprocess.CompletedProcess(node.args, node.wait(timeout=300), node.communicate()[0], "") for node in nodes]
    ranks = [next((root / f"torchrun-{rank}").rglob("stdout.log")).read_text()
             + next((root / f"torchrun-{rank}").rglob("stderr.log")).read_text() for rank in range(2)]
    return done, ranks, time.monotonic() - start


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return indexed_digits(tmp_path_factory.mktemp("nodes") / "digits.csv")


def test_two_nodes_train_as_one_job(tmp_path, csv):
    done, ranks, _ = two_nodes(tmp_path, csv, "job", "--trainer.num_nodes", "2", "--trainer.devices", "1",
                           "--trainer.strategy", "ddp")
    assert [d.returncode for d in done] == [0, 0], done[0].stdout[-3000:] + done[1].stdout[-3000:]
    (run,) = (tmp_path / "job" / "runs" / "lightning_logs").iterdir()  # one report, from rank 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["test_samples"] == TEST_ROWS
    assert sum(map(sum, metrics["confusion_matrix"])) == TEST_ROWS  # each test digit counted once
    assert "".join(ranks).count("test accuracy") == 1
    # the first step over two nodes is the one-device step
    one = tmp_path / "one"
    alone = subprocess.run([sys.executable, *_fit_args(csv, one)], cwd=REPO, capture_output=True, text=True,
                           check=False, env=run_env(OMP_NUM_THREADS="1"))
    assert alone.returncode == 0, alone.stderr[-3000:]
    (checkpoint_two,) = run.glob("checkpoints/last.ckpt")
    (checkpoint_one,) = one.glob("lightning_logs/version_0/checkpoints/last.ckpt")
    a, b = (net_weights(torch.load(path, weights_only=True)) for path in (checkpoint_two, checkpoint_one))
    assert float((a - b).norm() / b.norm()) <= 1e-6


def test_a_launch_that_disagrees_with_the_options_stops_at_once_with_one_line_from_each_rank(tmp_path, csv):
    done, ranks, seconds = two_nodes(tmp_path, csv, "mismatch", "--trainer.num_nodes", "1", "--trainer.devices", "1",
                                     "--trainer.strategy", "ddp")
    assert seconds < 120 and all(d.returncode != 0 for d in done)
    expected = ("error: the launcher started 2 processes, but --trainer.devices 1 x --trainer.num_nodes 1 make 1: "
                "give each node's processes as --trainer.devices (torchrun's --nproc_per_node) and the nodes as "
                "--trainer.num_nodes (its --nnodes)")
    for rank in ranks:
        assert rank.strip().splitlines()[-1] == expected and "Traceback" not in rank, rank
    assert all("exitcode  : 2" in d.stdout for d in done)  # each rank's own exit code, in torchrun's summary
    assert not (tmp_path / "mismatch" / "runs").exists()


def test_companion_the_same_launch_without_the_check_ends_in_lightnings_tracebacks(tmp_path, csv, monkeypatch):
    """What the check spares: Lightning finds the mismatch too, later, as a traceback from every rank."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import lit_mnist.apps.cli as cli\ncli._check_launch = lambda trainer: None\n")
    _, ranks, _ = two_nodes(tmp_path, csv, "unchecked", "--trainer.num_nodes", "1", "--trainer.devices", "1",
                            "--trainer.strategy", "ddp")
    assert all("Traceback" in rank and "does not match the world size (2)" in rank for rank in ranks)
