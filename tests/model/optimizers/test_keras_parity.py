"""Each optimizer of the registry, and each schedule, against Keras 3 itself: a few steps with fixed gradients on
float64 variables, clipping, weight decay and a schedule included.

Keras keeps its rate in a float32 variable, and on the TensorFlow backend casts its Python-float betas to the
variables' float64 through float32 (``tf.cast(0.999, float64)`` is 0.99900001287...): the betas here are exact in
float32 (0.875, 1 - 2**-10), so that float64 compares the formulas, not that rounding (6.6e-6 of a step with
0.999)."""

import numpy as np
import pytest

from tests.conftest import require_the_parity_extra

require_the_parity_extra()

import keras

from lit_mnist.model import optimizers
from parity.keras_reference import _KERAS_OPTIMIZERS, _KERAS_SCHEDULES
from tests.model.optimizers.test_families import CASES, GRADS, WEIGHTS, ours

pytestmark = pytest.mark.parity


def keras_steps(name: str, args: dict, rate):
    variables = [keras.Variable(w, dtype="float64") for w in WEIGHTS]
    optimizer = getattr(keras.optimizers, _KERAS_OPTIMIZERS[name])(learning_rate=rate, **args)
    for step in GRADS:
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g, "float64") for g in step], variables))
    return [np.asarray(v.numpy()) for v in variables]


def moved_alike(a, b, rtol=2e-6) -> bool:
    """The steps taken agree: each variable's displacement from the start, relative to its size."""
    return all(np.linalg.norm((x - w) - (y - w)) <= rtol * np.linalg.norm(y - w) for x, y, w in zip(a, b, WEIGHTS))


EXACT_BETAS = {"beta_1": 0.875, "beta_2": 1 - 2**-10}  # exact in float32


def exact(name: str, own: dict) -> dict:
    """``own`` with betas Keras holds exactly (the Adam family's and Lion's)."""
    if name in ("adam", "adamw", "nadam", "adamax", "lion"):
        return {**own, **EXACT_BETAS}
    return own


SCHEDULE = {"exponential_decay": {"initial_learning_rate": 0.01, "decay_steps": 2, "decay_rate": 0.5}}


@pytest.mark.parametrize("name, own", CASES, ids=[f"{n} {o}" if o else n for n, o in CASES])
def test_each_optimizer_steps_as_keras_s(name, own):
    rate, own = 0.01 if name == "sgd" else 0.001, exact(name, own)
    assert moved_alike(ours({name: {"learning_rate": rate, **own}}), keras_steps(name, own, rate))


@pytest.mark.parametrize("extra", [{"weight_decay": 0.05, "clipnorm": 0.5}, {"global_clipnorm": 0.3},
                                   {"clipvalue": 0.2, "weight_decay": 0.01}], ids=["decay clipnorm", "global", "value"])
@pytest.mark.parametrize("name", ["adamw", "sgd", "nadam", "lion"])
def test_clipping_decay_and_a_schedule_in_keras_s_order(name, extra):
    plan = optimizers.schedule(SCHEDULE)
    keras_rate = keras.optimizers.schedules.ExponentialDecay(**plan.args)
    own = {"momentum": 0.9} if name == "sgd" else exact(name, {})
    assert moved_alike(ours({name: {"learning_rate": SCHEDULE, **own, **extra}}),
                       keras_steps(name, {**own, **extra}, keras_rate))


def test_the_comparison_sees_decay_coupled_into_the_gradient():
    """The companion: torch's coupled weight decay (torch_adam's) is not AdamW's."""
    keras_adamw = keras_steps("adamw", exact("adamw", {"weight_decay": 0.05}), 0.01)
    coupled = ours({"torch_adam": {"lr": 0.01, "eps": 1e-7, "weight_decay": 0.05, "betas": list(EXACT_BETAS.values())}})
    assert not moved_alike(coupled, keras_adamw, rtol=1e-3)


SCHEDULES = [
    {"exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5, "staircase": True}},
    {"piecewise_constant_decay": {"boundaries": [3, 9], "values": [0.1, 0.05, 0.01]}},
    {"cosine_decay": {"initial_learning_rate": 0.1, "decay_steps": 20, "alpha": 0.1}},
    {"cosine_decay": {"initial_learning_rate": 0.0, "decay_steps": 20, "warmup_target": 0.1, "warmup_steps": 5}},
    {"cosine_decay_restarts": {"initial_learning_rate": 0.1, "first_decay_steps": 4, "t_mul": 2.0, "m_mul": 0.8}},
    {"inverse_time_decay": {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}},
    {"polynomial_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "power": 2.0, "cycle": True}},
]


@pytest.mark.parametrize("item", SCHEDULES, ids=[next(iter(s)) for s in SCHEDULES])
def test_each_schedule_is_keras_s_at_every_step(item):
    ours_plan = optimizers.schedule(item)
    theirs = getattr(keras.optimizers.schedules, _KERAS_SCHEDULES[ours_plan.name])(**ours_plan.args)
    ours_rates = [ours_plan(t) for t in range(40)]
    keras_rates = [float(theirs(t)) for t in range(40)]
    assert ours_rates == pytest.approx(keras_rates, rel=1e-6, abs=1e-8)
