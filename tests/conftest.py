"""Shared fixtures: small generated digit CSVs for unit tests, the real MNIST mirror for end-to-end tests."""

from __future__ import annotations

import ast
import contextlib
import gc
import gzip
import http.server
import importlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# pytest-xdist's workers (pyproject's addopts: one per core) share the cores: each runs torch and
# TensorFlow, and the processes it starts, on its share. Set before either is imported; with a thread per
# core in every worker, their spin-waits cost a third more CPU time.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    _share = str(max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _threads in THREAD_VARIABLES:
        os.environ.setdefault(_threads, _share)

import numpy as np
import pytest
from filelock import FileLock
from hypothesis import settings

# the fuzz tests' example counts: `make test` runs the fast profile, every other run (`make test-full`, CI) the full
settings.register_profile("full", max_examples=150)
settings.register_profile("fast", max_examples=25)
settings.load_profile("full")

REPO = Path(__file__).resolve().parents[1]
# the MNIST mirror the end-to-end tests download from (CI's: the shared folder beside the repository)
SHARED_MNIST = Path(os.environ.get("LIT_MNIST_TEST_MIRROR", REPO.parent / "shared" / "data" / "mnist"))


def require(module: str, extra: str | None = None):
    """The module a dependency (or ``extra``) installs, or, outside CI, a skip of the calling test (module) where
    it is missing (CI installs everything: a missing one there is a failure)."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    how = f"the [{extra}] extra (pip install -e '.[{extra}]')" if extra else f"{module} (pip install -e .)"
    return pytest.importorskip(module, reason=f"needs {how}")


def require_the_parity_extra() -> None:
    require("tensorflow", "parity")


def shared_file(name: str) -> Path:
    """A file of the MNIST mirror; outside CI the test is skipped where the mirror is not there."""
    path = SHARED_MNIST / name
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the MNIST mirror is missing: {path}")
        pytest.skip(f"needs the MNIST mirror ({SHARED_MNIST}; LIT_MNIST_TEST_MIRROR names another)")
    return path


def synthetic_digits(n: int, seed: int = 0, classes: int | list[int] = 10, pixels: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake images: class k lights up its own band of pixels, over uniform noise. ``classes``: how many
    (labels 0..classes-1), or the labels to draw from."""
    rng = np.random.default_rng(seed)
    kinds = list(range(classes)) if isinstance(classes, int) else list(classes)
    labels = rng.choice(kinds, size=n).astype(np.int64)
    images = rng.integers(0, 60, size=(n, pixels)).astype(np.uint8)
    band = max(1, pixels // (max(kinds) + 1))
    for k in kinds:
        images[labels == k, k * band : (k + 1) * band] = 250
    return images, labels


def hue_images(n: int, classes: int = 20, side: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Colour images (rows of side*side*3, each pixel's R, G, B in turn) whose classes differ in hue alone: a random
    grey pattern plus a chroma of the class's hue whose three channels sum to zero, so that every pixel's mean over
    its channels, and so any grey rendering of it, is the same whatever the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    grey = rng.uniform(60, 196, (n, side, side, 1))
    angle = 2 * np.pi * labels / classes
    chroma = np.stack([np.cos(angle + k * 2 * np.pi / 3) for k in range(3)], 1)[:, None, None, :] * 60
    noise = rng.normal(0, 4, (n, side, side, 3))
    noise -= noise.mean(axis=3, keepdims=True)
    return np.clip(np.rint(grey + chroma + noise), 0, 255).astype(np.uint8).reshape(n, -1), labels


_LIT_MNIST_LOGGER = (logging.getLogger("lit_mnist").propagate, logging.getLogger("lit_mnist").level)


@pytest.fixture(autouse=True)
def _lit_mnist_logger_as_it_was():
    """A command run in the test process (fit.py's main) gives the ``lit_mnist`` logger its console handler
    (``entry.quiet_process``), bound to the stdout of that moment: it would keep later tests' ``caplog`` from its
    records, and their ``capsys`` from its lines. Each test starts with the logger as the session found it, and
    leaves it so (a module's fixture may have run a command between two tests)."""
    logger = logging.getLogger("lit_mnist")

    def fresh() -> None:
        logger.handlers[:] = []
        logger.propagate, level = _LIT_MNIST_LOGGER
        logger.setLevel(level)

    fresh()
    yield
    fresh()


def residual_list(size: int = 28, filters: int = 16, side: int = 8) -> list:
    """The docs' graph example (lit_mnist/configs/residual.yaml) for ``size`` x ``size`` images: a residual block
    whose add takes the BatchNormalization's output, and a side branch from the stem concatenated on the channels."""
    return [
        {"input": [size, size, 1]},
        {"conv2d": {"filters": filters, "kernel_size": 3, "padding": "same", "activation": "relu", "name": "stem"}},
        {"conv2d": {"filters": filters, "kernel_size": 3, "padding": "same"}},
        "batch_normalization",
        {"add": {"inputs": ["stem", "batch_normalization"]}},
        {"activation": "relu"},
        {"conv2d": {"filters": side, "kernel_size": 1, "inputs": "stem", "name": "side"}},
        {"concatenate": {"inputs": ["activation", "side"]}},
        "max_pooling2d",
        "flatten",
    ]


def csv_text(pixels: np.ndarray, labels: np.ndarray | None, header: bool = True) -> str:
    from lit_mnist.data.reader import header as names_of  # here: xdist's controller runs no test and needs no torch

    names = names_of(pixels.shape[1]) if labels is not None else names_of(pixels.shape[1])[1:]
    rows = pixels if labels is None else np.column_stack([labels, pixels])
    lines = [",".join(names)] if header else []
    lines += [",".join(map(str, row)) for row in rows.tolist()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(name, n=60, header=True, gz=False, labels=True, seed=0, classes=10, pixels=784) -> Path of a
    generated digits CSV."""

    def write(name: str = "digits.csv", n: int = 60, header: bool = True, gz: bool = False, labels: bool = True,
              seed: int = 0, classes: int | list[int] = 10, pixels: int = 784) -> Path:
        pixels, y = synthetic_digits(n, seed, classes, pixels)
        data = csv_text(pixels, y if labels else None, header).encode()
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    return write


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own data and cache folder and no mirror unless it sets one."""
    monkeypatch.setenv("LIT_MNIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIT_MNIST_CACHE_DIR", str(tmp_path / "data" / "cache"))
    monkeypatch.delenv("LIT_MNIST_MIRROR", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    return shared_file("train-images-idx3-ubyte.gz").parent


@pytest.fixture
def http_mirror():
    """http_mirror(folder) -> 'http://127.0.0.1:PORT/': a loopback HTTP server over ``folder``."""
    servers = []

    def serve(folder: Path) -> str:
        handler = lambda *a, **k: _QuietHandler(*a, directory=str(folder), **k)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def run_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """A test module whose marks (its ``pytestmark``) the run deselects is not even imported: `make test` then
    imports no TensorFlow (the parity modules), seconds in every worker."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    marks = _module_marks(collection_path.read_text(encoding="utf-8"))
    return True if marks and not _selects(marks, config.getoption("markexpr")) else None


def _module_marks(source: str) -> set[str]:
    """The marks a module's ``pytestmark = pytest.mark.NAME`` (or a list of them) gives all its tests."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return {value.attr for value in values if isinstance(value, ast.Attribute)}
    return set()


def _selects(marks: set[str], expression: str) -> bool:
    """Whether ``-m expression`` keeps a test that carries ``marks``: pytest's grammar (names, and, or, not,
    parentheses) is Python's, each name true where it is one of ``marks``."""
    if not re.fullmatch(r"[\w\s()]*", expression):  # marks with arguments and the like: collect, pytest decides
        return True
    names = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not"}
    try:
        return bool(eval(expression or "True", {"__builtins__": {}}, {name: name in marks for name in names}))
    except SyntaxError:
        return True


def pytest_collection_modifyitems(items):
    """The parity tests first: their two commands are the longest part of the run, so the worker that takes
    them starts them at once while the others share out the rest (xdist keeps this order: pyproject's
    --no-loadscope-reorder)."""
    items.sort(key=lambda item: item.get_closest_marker("parity") is None)


def pytest_unconfigure(config):
    """Freeze the heap before the process exits, as the commands do (lit_mnist.apps.entry.run): then the exit
    does not scan the millions of objects that torch, Lightning and TensorFlow made (~2.5 s a process)."""
    gc.freeze()


@pytest.fixture(scope="session")
def main_run(tmp_path_factory, shared_mnist) -> Path:
    """The main command as a user runs it, once for the whole test run: ``scripts/fit.py`` with the original's
    settings (15 epochs) on real MNIST downloaded from the mirror into an empty data folder. Its run directory;
    ``console.txt`` beside ``lightning_logs`` holds what it printed. xdist's workers share it through their
    common temporary folder: the end-to-end test checks it, the tests that need a trained model load it."""
    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        shared = shared.parent
    root = shared / "main-run"
    with FileLock(shared / "main-run.lock"):
        if not (root / "console.txt").is_file():
            result = fit_command(root, LIT_MNIST_MIRROR=shared_mnist.as_uri(), LIT_MNIST_DATA_DIR=str(root / "data"))
            (root / "console.txt").write_text(result.stdout)
    return root / "lightning_logs" / "version_0"


def fit_command(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``scripts/fit.py *args`` in a process of its own, its runs under ``root``, no progress bar, ``env`` added to
    the environment; it must succeed."""
    result = subprocess.run([sys.executable, "scripts/fit.py", "--trainer.default_root_dir", str(root),
                             "--trainer.enable_progress_bar", "false", *args],
                            cwd=REPO, capture_output=True, check=False, text=True, env=run_env(**env))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def trained_checkpoint(main_run) -> Path:
    """The main command's last checkpoint (15 epochs; test accuracy ~0.947)."""
    return main_run / "checkpoints" / "last.ckpt"


def save_model(model, path: Path) -> Path:
    """``model`` saved as Lightning saves a module's part of a checkpoint: its weights, its hyper-parameters and
    the Lightning version (no Trainer state), which ``load_from_checkpoint`` needs."""
    import lightning
    import torch

    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(checkpoint: Path, *args: str) -> Iterator[str]:
    """``scripts/serve.py --checkpoint CHECKPOINT *args`` on a free loopback port, started as a user starts it;
    its URL (``http://127.0.0.1:PORT/``) once it answers, and stopped afterwards."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "scripts/serve.py", "--checkpoint", str(checkpoint), "--port",
                                str(port), *args], cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "v2/health/ready", timeout=2)
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def served_app(app) -> Iterator[str]:
    """A FastAPI app on uvicorn in a thread of this process, on a free loopback port; its URL."""
    import uvicorn

    from lit_mnist.apps.serve import listen

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
