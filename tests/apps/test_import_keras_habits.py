"""A Keras model's training habits survive its import: compiled with AdamW, an ExponentialDecay schedule, clipnorm,
an l2 kernel regularizer and a max_norm kernel constraint, trained a few steps by Keras and saved as .keras and as
.h5, it imports with none of them dropped, and trains on from its checkpoint. The optimizer's state (its step
count and slots) is carried: the first fine-tuning step is Keras's after ``load_model``, which goes on from the
saved step, and not the restart's (``load_weights`` then ``compile()``)."""

import os
import sys

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import require_the_parity_extra

require_the_parity_extra()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras

from lit_mnist.apps import import_keras
from lit_mnist.apps.checkpoints import start_from
from lit_mnist.apps.entry import call
from lit_mnist.keras_import.compiled import compile_options
from lit_mnist.model import optimizers
from lit_mnist.model.module import LitMNIST

pytestmark = pytest.mark.parity
L = keras.layers
STEPS = 4  # Keras's steps before saving: 40 rows, batch 10


def _rows(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 16), dtype=np.float32), rng.integers(0, 3, n)


def _optimizer():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=2, decay_rate=0.5)
    return keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The model, trained STEPS steps, saved in both formats."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16,)),
        L.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.l2(0.01),
                kernel_constraint=keras.constraints.max_norm(0.5)),
        L.Dense(3, activation="softmax", kernel_regularizer=keras.regularizers.l2(0.001))])
    model.compile(optimizer=_optimizer(), loss="sparse_categorical_crossentropy")
    model.fit(*_rows(0), batch_size=10, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == STEPS
    folder = tmp_path_factory.mktemp("habits")
    for suffix in (".keras", ".h5"):
        model.save(folder / f"model{suffix}")
    return folder


EXPECTED_OPTIMIZER = {"adamw": {"learning_rate": {"exponential_decay": {
    "initial_learning_rate": 0.01, "decay_steps": 2, "decay_rate": 0.5, "staircase": False}},
    "weight_decay": 0.01, "clipnorm": 1.0}}


def _import(saved, suffix, capsys):
    out = saved / f"imported{suffix.replace('.', '_')}.ckpt"
    assert call(import_keras.main, [str(saved / f"model{suffix}"), "--out", str(out)]) == 0
    return out, capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_optimizer_its_schedule_clipping_decay_regularizers_and_constraints_all_carry(saved, suffix, capsys):
    out, printed = _import(saved, suffix, capsys)
    lines = printed.splitlines()
    assert not [line for line in lines if "not carried" in line], printed
    assert not [line for line in lines if "ignored" in line and ("regularizer" in line or "constraint" in line)]
    assert f"optimizer state: its optimizer had taken {STEPS} steps; carried (the step count and its slots)" in printed
    model = yaml.safe_load(out.with_suffix(".yaml").read_text())["model"]
    assert model["optimizer"] == EXPECTED_OPTIMIZER
    hidden, head = model["layers"]  # the head kept, for its regularizer
    assert hidden["dense"]["kernel_regularizer"] == {"L2": {"l2": 0.01}}
    assert hidden["dense"]["kernel_constraint"] == {"MaxNorm": {"max_value": 0.5, "axis": 0}}
    assert head["dense"]["kernel_regularizer"] == {"L2": {"l2": 0.001}} and head["dense"]["units"] == 3


def test_fit_trains_on_from_the_import_with_the_carried_habits(saved, capsys, tmp_path, write_csv, monkeypatch):
    from lit_mnist.apps import fit

    out, _ = _import(saved, ".keras", capsys)
    monkeypatch.setattr(sys, "argv", ["fit.py"])
    csv = write_csv(n=90, pixels=16, classes=3)
    assert call(fit.main, ["--config", str(out.with_suffix(".yaml")), "--model.init_from", str(out),
                           "--data.path", str(csv), "--trainer.max_epochs", "2", "--trainer.enable_progress_bar",
                           "false", "--trainer.default_root_dir", str(tmp_path / "runs")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    trained = torch.load(next((tmp_path / "runs").glob("lightning_logs/*/checkpoints/last.ckpt")), weights_only=True)
    assert trained["hyper_parameters"]["optimizer"] == optimizers.as_item(EXPECTED_OPTIMIZER)
    # the hidden layer's kernel (its name is Keras's, which counts the models built before in the process);
    # torch's (out, in): max_norm's axis 0 is each row here
    kernel = next(v for k, v in trained["state_dict"].items() if k.startswith("net.") and k.endswith(".weight"))
    assert float(torch.linalg.vector_norm(kernel, dim=1).max()) <= 0.5 + 1e-6


def _fine_tuned(saved, capsys, suffix=".keras", name="model", drop_state=False):
    """lit-mnist's first fine-tuning step from the import, on a batch: (the step's rate, the net's weights after)."""
    out, _ = _import(saved, suffix, capsys) if name == "model" else _import_named(saved, name, suffix, capsys)
    options = yaml.safe_load(out.with_suffix(".yaml").read_text())["model"]
    model = LitMNIST(**options, num_classes=3, image_shape=(4, 4), init_from=str(out))
    start_from(model, out)
    if drop_state:  # the restart: the slots and the step count left behind
        model.optimizer_state = None
    optimizer = model.make_optimizer()
    rate = optimizer.param_groups[0]["lr"]
    x, y = _rows(1, 10)
    optimizer.zero_grad()
    model.compute_loss((torch.from_numpy(x), torch.from_numpy(y)))[0].backward()
    optimizer.step()
    dense, head = model.net.layers[0].name, model.net.layers[1].name
    net = model.net
    return rate, [getattr(net, dense).weight.detach().T.numpy(), getattr(net, dense).bias.detach().numpy(),
                  getattr(net, head).weight.detach().T.numpy(), getattr(net, head).bias.detach().numpy()]


def _import_named(saved, name, suffix, capsys):
    out = saved / f"imported_{name}{suffix.replace('.', '_')}.ckpt"
    assert call(import_keras.main, [str(saved / f"{name}{suffix}"), "--out", str(out)]) == 0
    return out, capsys.readouterr().out


def _keras_step(model) -> tuple[float, list[np.ndarray]]:
    rate = float(model.optimizer.learning_rate)
    model.train_on_batch(*_rows(1, 10))
    return rate, model.get_weights()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_first_fine_tuning_step_is_keras_after_load_model(saved, capsys, suffix):
    rate, weights = _fine_tuned(saved, capsys, suffix)
    continued = keras.models.load_model(saved / "model.keras")  # the same state (Keras's own .h5 load_model
    assert int(continued.optimizer.iterations) == STEPS        # restores it, then refuses the model's variables)
    keras_rate, keras_weights = _keras_step(continued)
    # the schedule goes on from STEPS: the same rate, Keras holding it in float32
    assert np.float32(rate) == np.float32(keras_rate) == np.float32(0.01 * 0.5 ** (STEPS / 2))
    for ours, theirs in zip(weights, keras_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_companion_with_the_slots_dropped_the_step_is_the_restarts_which_the_check_tells_apart(saved, capsys):
    """The optimizer restarted (step 0, zero moments) takes Keras's step after load_weights then compile(), not
    load_model's: the check above fails on it."""
    rate, weights = _fine_tuned(saved, capsys, drop_state=True)
    restarted = keras.models.load_model(saved / "model.keras")
    restarted.compile(optimizer=_optimizer(), loss="sparse_categorical_crossentropy")  # a fresh optimizer
    restart_rate, restart_weights = _keras_step(restarted)
    assert rate == pytest.approx(restart_rate, rel=1e-6) and restart_rate == pytest.approx(0.01)
    for ours, theirs in zip(weights, restart_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-6)
    continued = keras.models.load_model(saved / "model.keras")
    keras_rate, keras_weights = _keras_step(continued)
    assert rate != pytest.approx(keras_rate)
    assert max(np.abs(o - t).max() for o, t in zip(weights, keras_weights, strict=True)) > 2e-6


@pytest.fixture(scope="module")
def saved_sgd(saved):
    """A model under SGD with momentum (a constant rate: its variable is saved), trained STEPS steps."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((16,)), L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.fit(*_rows(0), batch_size=10, epochs=1, shuffle=False, verbose=0)
    for suffix in (".keras", ".h5"):
        model.save(saved / f"sgd{suffix}")
    return saved


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_sgd_with_momentum_goes_on_from_its_saved_momentum(saved_sgd, capsys, suffix):
    rate, weights = _fine_tuned(saved_sgd, capsys, suffix, name="sgd")
    keras_rate, keras_weights = _keras_step(keras.models.load_model(saved_sgd / "sgd.keras"))
    assert np.float32(rate) == np.float32(keras_rate)
    for ours, theirs in zip(weights, keras_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-6)
    _, restarted = _fine_tuned(saved_sgd, capsys, suffix, name="sgd", drop_state=True)  # companion: momentum lost
    assert max(np.abs(o - t).max() for o, t in zip(restarted, keras_weights, strict=True)) > 2e-6


def _serialized(obj) -> dict:
    return keras.saving.serialize_keras_object(obj)


KERAS_OPTIMIZERS = [  # each with arguments off Keras's defaults, as the registry names them
    ("adam", keras.optimizers.Adam, {"learning_rate": 0.002, "beta_1": 0.8, "amsgrad": True, "clipvalue": 0.5}),
    ("adamw", keras.optimizers.AdamW, {"learning_rate": 0.002, "weight_decay": 0.01, "global_clipnorm": 1.0}),
    ("sgd", keras.optimizers.SGD, {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", keras.optimizers.RMSprop, {"rho": 0.8, "momentum": 0.5, "centered": True}),
    ("nadam", keras.optimizers.Nadam, {"beta_2": 0.99, "weight_decay": 0.001}),
    ("adamax", keras.optimizers.Adamax, {"epsilon": 1e-6}),
    ("adagrad", keras.optimizers.Adagrad, {"initial_accumulator_value": 0.5}),
    ("adadelta", keras.optimizers.Adadelta, {"learning_rate": 1.0, "rho": 0.9}),
    ("lion", keras.optimizers.Lion, {"beta_1": 0.8, "beta_2": 0.9}),
]


@pytest.mark.parametrize("name, cls, arguments", KERAS_OPTIMIZERS, ids=[o[0] for o in KERAS_OPTIMIZERS])
def test_every_keras_optimizer_the_registry_knows_imports_as_its_item(name, cls, arguments):
    options, notes = compile_options(_serialized(cls(**arguments)))
    assert notes == [] and options == {"optimizer": {name: arguments}}
    assert set(optimizers.KNOWN) - {"torch_adam"} == {o[0] for o in KERAS_OPTIMIZERS}  # none left untried


S = keras.optimizers.schedules
KERAS_SCHEDULES = [
    ("exponential_decay", S.ExponentialDecay(0.01, 100, 0.9, staircase=True)),
    ("piecewise_constant_decay", S.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])),
    ("cosine_decay", S.CosineDecay(0.001, 100, alpha=0.1, warmup_target=0.01, warmup_steps=10)),
    ("cosine_decay_restarts", S.CosineDecayRestarts(0.01, 50, t_mul=1.5, m_mul=0.5, alpha=0.1)),
    ("inverse_time_decay", S.InverseTimeDecay(0.01, 10, 0.5)),
    ("polynomial_decay", S.PolynomialDecay(0.01, 100, end_learning_rate=0.001, power=2.0, cycle=True)),
]


@pytest.mark.parametrize("name, schedule", KERAS_SCHEDULES, ids=[s[0] for s in KERAS_SCHEDULES])
def test_every_keras_schedule_imports_as_its_item_and_gives_keras_rates(name, schedule):
    options, notes = compile_options(_serialized(keras.optimizers.SGD(schedule)))
    assert notes == [] and next(iter(options["optimizer"]["sgd"]["learning_rate"])) == name
    ours = optimizers.lr_schedule(options["optimizer"])
    for step in (0, 5, 15, 60, 150):
        assert ours(step) == pytest.approx(float(schedule(step)), rel=1e-5), step


class Halving(keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        return 0.01 / (1 + step)

    def get_config(self):
        return {}


@pytest.mark.parametrize("optimizer, note", [
    (keras.optimizers.Ftrl(), "its optimizer, Ftrl, is not one lit-mnist has"),
    (keras.optimizers.Lamb(), "its optimizer, Lamb, is not one lit-mnist has"),
    (keras.optimizers.SGD(Halving()), "learning_rate="),
])
def test_an_optimizer_or_schedule_the_registry_has_not_is_a_one_line_note(optimizer, note):
    options, notes = compile_options(_serialized(optimizer))
    assert len(notes) == 1 and note in notes[0] and "not carried" in notes[0] and "\n" not in notes[0]
    LitMNIST(**options)  # what did carry is a valid item
