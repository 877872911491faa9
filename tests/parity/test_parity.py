"""The parity suite on real MNIST: it passes, and each level fails for the property it guards.

| broken on purpose                                  | caught by |
| -------------------------------------------------- | --------- |
| inputs scaled to 0-1 inside the network            | level 1 (forward) |
| a net given another layer list's weights           | level 1 (forward) |
| stock torch.optim.Adam                             | level 2 (teacher-forced steps) |
| validation rows taken from the front               | level 2 (the batches differ from Keras's) |
| PyTorch's default initialisation (raw pixels)      | level 3 (equivalence test over seeds) |

Each Keras layer semantic (BatchNormalization, "same" padding and average pooling, the flatten order, the
activations) has its own pair in test_semantics.py. CI runs the commands with a smaller budget than their
defaults (3 seeds, fewer epochs and steps, and a margin of +-1 point to match: 3 seeds cannot show +-0.5
points); the checks are the same.
"""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import require_the_parity_extra

require_the_parity_extra()

from lit_mnist.apps.compare import FAST_RECIPE, variant
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.net import KerasNet
from parity import forward, keras_reference, statistics, steps
from parity.cli import main as parity_main
from parity.twins import ORIGINAL, Twins
from tests.conftest import REPO, run_env

pytestmark = pytest.mark.parity
CONFIGS = REPO / "lit_mnist" / "configs"


@pytest.fixture(scope="session")
def mnist_env(tmp_path_factory, shared_mnist):
    return {"LIT_MNIST_MIRROR": shared_mnist.as_uri(), "LIT_MNIST_DATA_DIR": str(tmp_path_factory.mktemp("data"))}


# CI's budget: 3 seeds (+-1 point then: a 90% interval over 3 seeds is ~+-0.5 points wide by itself)
DENSE_BUDGET = ["--seeds", "3", "--margin", "0.01"]
LAYERS_BUDGET = ["--config", str(CONFIGS / "cnn_bn.yaml"), "--seeds", "3", "--margin", "0.01", "--steps", "10"]


@pytest.fixture(scope="session")
def _layers_command(tmp_path_factory, mnist_env, mnist):
    """scripts/parity.py for a layer list with BatchNormalization, dropout, "same" padding and average pooling
    (lit_mnist/configs/cnn_bn.yaml) as a user runs it, with CI's budget, started before the dense check
    (``report``) so that the two run together. Its OpenMP threads wait passively: a thread done first gives
    its core back instead of spinning on it (docs/parity.md). The data folder is filled first (``mnist``),
    which both would otherwise do."""
    out = tmp_path_factory.mktemp("parity-layers")
    log = (out / "log.txt").open("w+")
    command = [sys.executable, "scripts/parity.py", "--out", str(out), *LAYERS_BUDGET]
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
                               env=run_env(**mnist_env, OMP_WAIT_POLICY="PASSIVE"))
    yield process, log, out
    process.kill()
    log.close()


@pytest.fixture(scope="session")
def report(_layers_command, tmp_path_factory, mnist_env):
    """The dense check with CI's budget: parity.py's ``main`` run in this process, which has TensorFlow and
    Lightning imported already (a process of its own would import them again: ~15 s of CPU), while the layer
    list's command runs beside it. Under xdist's workers this process computes on one thread (conftest.py)."""
    out = tmp_path_factory.mktemp("parity-dense")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        for key, value in mnist_env.items():
            mp.setenv(key, value)
        code = parity_main(["--out", str(out), *DENSE_BUDGET])
    return subprocess.CompletedProcess(["parity.py"], code, printed.getvalue(), ""), out


@pytest.fixture(scope="session")
def layers_report(_layers_command):
    process, log, out = _layers_command
    process.wait(timeout=1200)
    log.seek(0)
    return subprocess.CompletedProcess(process.args, process.returncode, log.read(), ""), out


@pytest.fixture(scope="session")
def mnist(mnist_env):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in mnist_env.items():
            mp.setenv(key, value)
        datamodule = MNISTDataModule(normalize=True)  # pixel_stats for the twins that standardise
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule


def _twins(mnist, mnist_env, config: str, *options: str) -> Twins:
    """The twins of a shipped config (and options on top of it), on MNIST with its standardised pixels."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in mnist_env.items():
            mp.setenv(key, value)
        cli = variant(["--config", str(CONFIGS / config), *options], 0)
    return Twins.of(cli.model, mnist.pixel_stats, cli.trainer.max_epochs, cli.datamodule.hparams.batch_size)


def test_parity_command_passes_and_writes_its_report(report):
    result, out = report
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("parity PASSED")
    r = json.loads((out / "parity.json").read_text())
    assert r["passed"] and r["data_source"] == "mnist" and r["test_rows"] == 10000 and r["num_classes"] == 10
    assert r["forward"]["max_abs_diff"] <= 1e-4 and r["forward"]["argmax_agreement"] >= 0.999
    assert r["steps"]["n"] == 20 and len(r["steps"]["curve"]) == 20
    assert r["steps"]["l2_rel_diff"] <= 1e-5 and r["steps"]["loss_rel_diff"] <= 1e-5
    assert len(r["keras"]["test_accuracy"]) == len(r["lightning"]["test_accuracy"]) == 3
    assert all(0.90 <= a <= 0.965 for a in r["keras"]["test_accuracy"] + r["lightning"]["test_accuracy"])
    tost = r["statistics"]["accuracy"]["equivalence"]
    assert -0.01 < tost["interval"][0] <= tost["interval"][1] < 0.01 and tost["p_value"] < 0.05
    assert r["statistics"]["accuracy"]["band"] == [0.55, 1.0]  # from chance, 1/10
    confusion = r["confusion"]
    assert confusion["mean_abs_diff"] <= confusion["threshold"]
    assert {"keras", "lightning"} <= set(confusion["top_pairs"]) and r["seconds"]["keras"] > 0
    assert "| 2 steps |" in (out / "parity.md").read_text()
    assert (out / "confusion_side_by_side.png").stat().st_size > 10_000


def test_a_layer_list_with_batch_normalization_and_dropout_passes_every_level(layers_report):
    result, out = layers_report
    assert result.returncode == 0, result.stdout[-3000:]
    r = json.loads((out / "parity.json").read_text())
    assert r["passed"] and r["levels"] == ["forward", "steps", "statistics"] and r["normalize"]
    assert "batch_normalization" in r["net"] and "average_pooling2d" in r["net"] and "dropout" in r["net"]
    assert r["steps"]["n"] == 10 and r["steps"]["has_moving_statistics"] and r["steps"]["dropout_as_identity"]
    assert r["steps"]["moving_rel_diff"] <= steps.MAX_MOVING_REL
    assert r["statistics"]["accuracy"]["equivalence"]["passed"] and r["confusion"]["passed"]
    text = (out / "parity.md").read_text()
    assert "level 2 runs dropout as identity (rate 0) in both" in text and "moving statistics" in text


FAST_AS_KERAS_ADAM = "{adam: {learning_rate: {one_cycle: {max_lr: 0.01}}, beta_1: 0.7, beta_2: 0.9, epsilon: 1.0e-8}}"


@pytest.mark.parametrize("config, options", [("cnn.yaml", []), ("cnn_fast.yaml", ["--model.optimizer", FAST_AS_KERAS_ADAM])])
def test_the_shipped_cnns_agree_forward_and_step_by_step(mnist, mnist_env, config, options):
    """The pooling CNN, and the fast recipe's (stride stem, one-cycle schedule, label smoothing; Keras's Adam,
    as parity compares) at levels 1 and 2."""
    twins = _twins(mnist, mnist_env, config, *options)
    x = mnist.splits["test"][0][:2000].numpy()
    assert forward.forward_parity(twins.keras(seed=5), x, twins.lightning())["passed"]
    result = steps.step_parity(tuple(t.numpy() for t in mnist.train_part), mnist.splits["train"], twins, steps=3)
    assert result["passed"], result["curve"]


class ScaledInputs(KerasNet):
    def forward(self, x):
        return super().forward(x.float() / 255)


def test_forward_level_catches_a_changed_forward_pass(mnist):
    keras_model = ORIGINAL.keras(seed=5)
    x = mnist.splits["test"][0][:2000].numpy()
    assert forward.forward_parity(keras_model, x, LitMNIST())["passed"]
    broken = LitMNIST()
    broken.net.__class__ = ScaledInputs
    result = forward.forward_parity(keras_model, x, broken)
    assert not result["passed"] and result["max_abs_diff"] > 1e-2


def test_companion_a_net_of_another_list_with_the_same_weights_misses(mnist):
    """The pooling CNN's and a stride stem's parameters have the same shapes, so the stride twin's weights load
    into a pooling net without complaint; level 1 sees the difference."""
    stride = [{"conv2d": {"filters": 8, "kernel_size": 5, "strides": 2, "activation": "relu"}},
              {"conv2d": {"filters": 16, "kernel_size": 5}}, {"max_pooling2d": 2}, {"activation": "relu"}, "flatten",
              {"dense": {"units": 128, "activation": "relu"}}]
    pooling = [{"conv2d": {"filters": 8, "kernel_size": 5}}, {"max_pooling2d": 2}, {"activation": "relu"},
               {"conv2d": {"filters": 16, "kernel_size": 5}}, {"max_pooling2d": 2}, {"activation": "relu"}, "flatten",
               {"dense": {"units": 128, "activation": "relu"}}]
    twins = Twins({"layers": stride}, mnist.pixel_stats)
    x = mnist.splits["test"][0][:2000].numpy()
    keras_model = twins.keras(seed=5)
    assert forward.forward_parity(keras_model, x, twins.lightning())["passed"]
    other = twins.lightning(layers=pooling)  # its conv2d, conv2d_1, dense and dense_1 pair up with the twin's
    result = forward.forward_parity(keras_model, x, other)
    assert not result["passed"] and result["max_abs_diff"] > 1e-2


def test_parity_refuses_what_keras_has_no_twin_of_before_anything_trains(tmp_path, capsys, write_csv):
    from lit_mnist.apps.entry import call

    out = tmp_path / "report"
    for options, expected in [
        (["--config", str(FAST_RECIPE)], "--model.optimizer torch_adam is torch's Adam, which Keras has no twin of"),
        (["--data.augment", "true"], "--data.augment: the Keras twin has no such augmentation"),
        (["--seeds", "2"], "--seeds must be 0 (levels 1 and 2 only) or at least 3"),
    ]:
        assert call(parity_main, ["--out", str(out), "--data.path", str(write_csv(n=200)), *options]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {expected}") and err.count("\n") == 1
    assert not out.exists()


def test_levels_one_and_two_alone_on_a_csv_of_other_sizes(tmp_path, write_csv):
    """--seeds 0, the quick check, on 8x8 images of 25 classes (labels 0-24 without 9)."""
    out = tmp_path / "report"
    csv = write_csv(n=1200, pixels=64, classes=[k for k in range(25) if k != 9])
    code = parity_main(["--out", str(out), "--data.path", str(csv), "--seeds", "0", "--steps", "1",
                        "--model.layers", "[{reshape: [8, 8, 1]}, {conv2d: {filters: 4, kernel_size: 3}}, flatten]"])
    r = json.loads((out / "parity.json").read_text())
    assert code == 0 and r["passed"] and r["levels"] == ["forward", "steps"] and r["num_classes"] == 25
    assert r["image_shape"] == [8, 8] and "Level 3 (independent trainings over seeds) was not run" in (
        out / "parity.md").read_text()
    assert not (out / "confusion_side_by_side.png").exists()


def _steps(datamodule, make_module=None, n=10):
    x, y = (t.numpy() for t in datamodule.train_part)
    return steps.step_parity((x, y), datamodule.splits["train"], make_module=make_module, steps=n)


def test_step_level_catches_stock_torch_adam(mnist):
    result = _steps(mnist, make_module=lambda twins: twins.lightning(optimizer={"torch_adam": {"eps": 1e-7}}))
    assert not result["passed"]
    assert result["l2_rel_diff"] > 10 * steps.MAX_L2_REL  # measured: ~1e-4, vs ~1e-7 for KerasAdam
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


def test_statistical_level_catches_pytorch_default_init(mnist, report):
    """PyTorch's default initialisation trains raw pixels faster than Keras's Glorot-uniform, by more than
    the margin (~+1.5 points, five times the seeds' spread: two of its seeds show it). (On standardised
    pixels both initialisations train alike: there level 3 cannot tell them apart, and levels 1-2 start
    from Keras's weights.)"""
    r = json.loads((report[1] / "parity.json").read_text())
    torch_init = [statistics.train_lightning(mnist, seed, ORIGINAL, init="torch") for seed in r["seeds"][:2]]
    verdict = statistics.compare(r["keras"]["runs"], torch_init, (0.55, 1.0), margin=0.01)
    assert not verdict["passed"] and not verdict["accuracy"]["equivalence"]["passed"]
    assert verdict["accuracy"]["lightning_mean"] - verdict["accuracy"]["keras_mean"] > 0.01


def test_more_steps_than_one_epoch_has_batches_are_refused_before_anything_trains(write_csv, tmp_path, capsys):
    from lit_mnist.apps.entry import call

    csv = write_csv(n=1000)  # 800 training rows, 640 after validation: 2 batches of 500
    out = tmp_path / "report"
    assert call(parity_main, ["--out", str(out), "--data.path", str(csv), "--steps", "3", "--seeds", "3"]) == 2
    assert capsys.readouterr().err == ("error: --steps 3: one epoch of the 640 training rows is 2 batches of 500; "
                                       "use --steps 2 or fewer\n")
    assert not out.exists()


def test_keras_one_cycle_is_torchs_step_for_step():
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=50, cycle_momentum=False)
    theirs = keras_reference.OneCycle(0.01, 50)
    for step in range(50):
        assert float(theirs(step)) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-5)
        optimizer.step()
        schedule.step()


def test_our_validation_cut_is_keras_validation_split():
    """keras_validation_split (which parity/ uses: Keras has no public splitting function) against Keras's own."""
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    from lit_mnist.data.datamodule import keras_validation_split

    for n, fraction in [(33600, 0.2), (48000, 0.2), (10, 0.25), (7, 0.5), (999, 0.3)]:
        (train, _), _ = train_validation_split((np.arange(n), np.arange(n)), validation_split=fraction)
        assert len(train) == keras_validation_split(n, fraction)


def test_equivalence_test_needs_the_means_close_and_enough_seeds():
    rng = np.random.default_rng(0)
    keras_acc = list(0.944 + 0.0028 * rng.standard_normal(10))
    same = list(0.944 + 0.0028 * rng.standard_normal(10))
    assert statistics.equivalence(keras_acc, same)["passed"]
    shifted = [a + 0.006 for a in same]  # a real gap of 0.6 points
    assert not statistics.equivalence(keras_acc, shifted)["passed"]
    assert not statistics.equivalence(keras_acc[:3], same[:3])["passed"]  # 3 seeds: too wide an interval for +-0.5


def test_confusion_comparison_separates_alike_from_unlike():
    rng = np.random.default_rng(0)
    base = np.diag(np.full(10, 900)) + rng.integers(0, 20, (10, 10))

    def runs(matrix, n=3):
        return [{"test_accuracy": 0.93, "confusion": (matrix + rng.integers(0, 4, (10, 10))).tolist()}
                for _ in range(n)]

    alike = statistics.confusion_structure(runs(base), runs(base))
    assert alike["passed"]
    unlike_matrix = base.copy()
    unlike_matrix[3, 5] += 150  # a confusion Keras does not make
    unlike_matrix[4, 9] += 150
    unlike = statistics.confusion_structure(runs(base), runs(unlike_matrix))
    assert not unlike["passed"]


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
    twins = Twins(epochs=keras_reference.EPOCHS)
    orders = _epoch_orders(lambda model, x, y: keras_reference.fit(model, twins, (x[:800], y[:800]), (x[800:], y[800:]),
                                                                   seed=3))
    assert all(sorted(o) == list(range(800)) for o in orders)  # the 800 training rows, each once an epoch
    assert len({tuple(o) for o in orders}) == keras_reference.EPOCHS  # a new order every epoch
    assert orders == _epoch_orders(lambda model, x, y: keras_reference.fit(model, twins, (x[:800], y[:800]),
                                                                          (x[800:], y[800:]), seed=3))  # reproducible


def _reference_weights(steps_per_execution: int, swap_rows: bool = False) -> list[np.ndarray]:
    """The dense twin after 2 reference epochs on 1,680 random training rows, 4 batches an epoch (the last
    partial), which one graph call runs at STEPS_PER_EXECUTION."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (1680, 784)).astype(np.float32), rng.integers(0, 10, 1680)
    if swap_rows:  # two training rows trade images (not labels): a small change of a few updates
        x[[0, 1600]] = x[[1600, 0]]
    twins = Twins(epochs=2)
    model = twins.keras(seed=2, steps_per_execution=steps_per_execution)
    keras_reference.fit(model, twins, (x, y), (x[:0], y[:0]), seed=2)
    return [v.numpy() for v in model.trainable_variables]


def test_steps_per_execution_trains_the_same_weights():
    """The independent trainings run STEPS_PER_EXECUTION steps a graph call; the updates are the original's."""
    reference = _reference_weights(1)
    assert all(np.array_equal(a, b) for a, b in zip(reference, _reference_weights(keras_reference.STEPS_PER_EXECUTION)))


def test_companion_one_moved_row_changes_the_weights():
    reference = _reference_weights(1)
    assert not all(np.array_equal(a, b) for a, b in zip(reference, _reference_weights(1, swap_rows=True)))


def test_companion_keras_own_seeded_shuffle_replays_one_order():
    """What the reference works around: after set_random_seed, fit(shuffle=True) repeats the first epoch's order."""
    orders = _epoch_orders(keras_reference.fit_as_notebook)  # the notebook's call, as the benchmark times it
    assert len({tuple(o) for o in orders}) == 1


def test_top_confusions_must_rank_high_in_the_other_framework():
    rng = np.random.default_rng(1)
    base = np.diag(np.full(10, 900)) + rng.integers(0, 20, (10, 10))
    base[[9, 5, 2, 3, 8], [4, 3, 3, 8, 5]] += 60  # five clear top confusions
    runs = lambda matrix: [{"confusion": matrix.tolist()} for _ in range(3)]
    near = base.copy()
    near[2, 3] -= 45  # one drops to the middle of the ranking: still among the top 10
    assert statistics.confusion_structure(runs(base), runs(near))["shared_top_pairs"] >= 4
    mirrored = base.T.copy()  # every confusion i->j becomes j->i
    assert statistics.confusion_structure(runs(base), runs(mirrored))["shared_top_pairs"] < statistics.MIN_SHARED_PAIRS
