"""The parity suite on real MNIST: it passes, and each level fails for the property it guards.

| broken on purpose                          | caught by |
| ------------------------------------------ | --------- |
| inputs scaled to 0-1 inside the network    | level 1 (forward) |
| stock torch.optim.Adam                     | level 2 (teacher-forced steps) |
| validation rows taken from the front       | level 2 (the batches differ from Keras's) |
| PyTorch's default initialisation           | level 3 (accuracy over seeds) |
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

try:
    import tensorflow  # noqa: F401
except ImportError:
    if os.environ.get("CI"):  # CI installs the [parity] extra: a missing TensorFlow there is a failure
        raise
    pytest.skip("the parity suite needs the [parity] extra (pip install -e '.[parity]')", allow_module_level=True)

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.net import DenseNet
from parity import forward, keras_reference, statistics, steps
from parity.cli import load_data
from tests.conftest import REPO, run_env

pytestmark = pytest.mark.parity


@pytest.fixture(scope="session")
def mnist_env(tmp_path_factory, shared_mnist):
    return {"LIT_MNIST_MIRROR": shared_mnist.as_uri(), "LIT_MNIST_DATA_DIR": str(tmp_path_factory.mktemp("data"))}


@pytest.fixture(scope="session")
def report(tmp_path_factory, mnist_env):
    """One full run of the command, as a user runs it: 3 seeds per framework, 20 steps."""
    out = tmp_path_factory.mktemp("parity")
    result = subprocess.run([sys.executable, "scripts/parity.py", "--out", str(out), "--seeds", "3"], cwd=REPO,
                            capture_output=True, check=False, text=True, env=run_env(**mnist_env))
    return result, out


@pytest.fixture(scope="session")
def mnist(mnist_env):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in mnist_env.items():
            mp.setenv(key, value)
        return load_data(None, None)


def test_parity_command_passes_and_writes_its_report(report):
    result, out = report
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("parity PASSED")
    r = json.loads((out / "parity.json").read_text())
    assert r["passed"] and r["data_source"] == "mnist" and r["test_rows"] == 10000
    assert r["forward"]["max_abs_diff"] <= 1e-4 and r["forward"]["argmax_agreement"] >= 0.999
    assert r["steps"]["n"] == 20 and len(r["steps"]["curve"]) == 20
    assert r["steps"]["l2_rel_diff"] <= 1e-5 and r["steps"]["loss_rel_diff"] <= 1e-5
    assert len(r["keras"]["test_accuracy"]) == len(r["lightning"]["test_accuracy"]) == 3
    assert all(0.90 <= a <= 0.965 for a in r["keras"]["test_accuracy"] + r["lightning"]["test_accuracy"])
    confusion = r["confusion"]
    assert confusion["mean_abs_diff"] <= confusion["threshold"]
    assert {"keras", "lightning"} <= set(confusion["top_pairs"]) and r["seconds"]["keras"] > 0
    assert "| 2 steps |" in (out / "parity.md").read_text()
    assert (out / "confusion_side_by_side.png").stat().st_size > 10_000


class ScaledInputs(DenseNet):
    def forward(self, x):
        return super().forward(x.float() / 255)


def test_forward_level_catches_a_changed_forward_pass(mnist):
    keras_model = keras_reference.build_model(seed=5)
    x = mnist.splits["test"][0][:2000].numpy()
    assert forward.forward_parity(keras_model, x)["passed"]
    broken = LitMNIST()
    broken.net = ScaledInputs()
    result = forward.forward_parity(keras_model, x, module=broken)
    assert not result["passed"] and result["max_abs_diff"] > 1e-2


def _steps(datamodule, make_module=LitMNIST, n=10):
    x, y = (t.numpy() for t in datamodule.train_part)
    return steps.step_parity((x, y), datamodule.splits["train"], make_module=make_module, steps=n)


def test_step_level_catches_stock_torch_adam(mnist):
    result = _steps(mnist, make_module=lambda: LitMNIST(optimizer="adam"))
    assert not result["passed"]
    assert result["l2_rel_diff"] > 10 * steps.MAX_L2_REL  # measured: ~1e-4, vs ~1e-8 for KerasAdam
    assert result["loss_rel_diff"] <= steps.MAX_LOSS_REL  # each step starts from Keras's state: same loss


class ValidationFromFront(MNISTDataModule):
    def split_validation(self, x, y):
        cut = len(x) - int(len(x) * 0.2)
        return (x[len(x) - cut:], y[len(x) - cut:]), (x[: len(x) - cut], y[: len(x) - cut])


def test_step_level_catches_validation_taken_from_the_front(mnist, mnist_env, monkeypatch):
    for key, value in mnist_env.items():
        monkeypatch.setenv(key, value)
    broken = ValidationFromFront()
    broken.prepare_data()
    broken.setup("fit")
    assert len(broken.splits["train"][0]) == len(mnist.splits["train"][0])  # same sizes, other rows
    result = _steps(broken, n=3)
    assert not result["passed"] and result["loss_rel_diff"] > 1e-3


def test_statistical_level_catches_pytorch_default_init(report, mnist):
    keras_runs = json.loads((report[1] / "parity.json").read_text())["keras"]["runs"]
    torch_init = [statistics.train_lightning(mnist, seed, make_module=lambda: LitMNIST(init="torch"))
                  for seed in range(3)]
    verdict = statistics.compare(keras_runs, torch_init)
    assert not verdict["passed"] and not verdict["accuracy"]["passed"]
    assert verdict["accuracy"]["lightning_mean"] - verdict["accuracy"]["keras_mean"] > 0.01


def test_confusion_comparison_separates_alike_from_unlike():
    rng = np.random.default_rng(0)
    base = np.diag(np.full(10, 900)) + rng.integers(0, 20, (10, 10))

    def runs(matrix, n=3):
        return [{"test_accuracy": 0.93, "confusion": (matrix + rng.integers(0, 4, (10, 10))).tolist()}
                for _ in range(n)]

    alike = statistics.compare(runs(base), runs(base))
    assert alike["confusion"]["passed"]
    unlike_matrix = base.copy()
    unlike_matrix[3, 5] += 150  # a confusion Keras does not make
    unlike_matrix[4, 9] += 150
    unlike = statistics.compare(runs(base), runs(unlike_matrix))
    assert not unlike["confusion"]["passed"]


def _epoch_orders(fit) -> list[list[int]]:
    """The training rows' order in each epoch, seen by a model whose one input is the row's index."""
    import keras

    seen = []

    class Recorder(keras.Model):
        def train_step(self, data):
            seen.append(np.asarray(data[0][:, 0]).astype(int).tolist())
            return super().train_step(data)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((1,))
    model = Recorder(inputs, keras.layers.Dense(10, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    rows = np.arange(1000, dtype=np.float32)[:, None]
    fit(model, rows, np.zeros(1000, dtype=np.int64))
    per_epoch = len(seen) // keras_reference.EPOCHS
    return [[i for batch in seen[e * per_epoch:(e + 1) * per_epoch] for i in batch] for e in range(keras_reference.EPOCHS)]


def test_the_seeded_reference_reshuffles_every_epoch_reproducibly():
    orders = _epoch_orders(lambda model, x, y: keras_reference.fit(model, x, y, seed=3))
    assert all(sorted(o) == list(range(800)) for o in orders)  # the last 200 rows validate, as validation_split
    assert len({tuple(o) for o in orders}) == keras_reference.EPOCHS  # a new order every epoch
    assert orders == _epoch_orders(lambda model, x, y: keras_reference.fit(model, x, y, seed=3))  # reproducible


def test_companion_keras_own_seeded_shuffle_replays_one_order():
    """What the reference works around: after set_random_seed, fit(shuffle=True) repeats the first epoch's order."""
    orders = _epoch_orders(keras_reference.fit_as_notebook)  # the notebook's call, as the benchmark times it
    assert len({tuple(o) for o in orders}) == 1
