"""Keras's step order (BaseOptimizer.apply): clip the gradients, decay every variable (``w -= w * wd * lr``, biases
included), update at the step's rate (the schedule at Keras's count, 0 at the first step), constrain. Each check
has companions: the same steps in another order, or decaying otherwise, fail it."""

import math

import numpy as np
import pytest
import torch

from lit_mnist.model import optimizers
from tests.model.optimizers import references
from tests.model.optimizers.test_families import GRADS, WEIGHTS, close

DECAY = 0.1
SCHEDULE = {"exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5}}
SGD = {"sgd": {"learning_rate": SCHEDULE, "momentum": 0.9, "weight_decay": DECAY, "clipnorm": 1.0}}


def rate(t):
    return 0.1 * 0.5 ** (t / 2)


def _max_norm(w):  # a constraint that binds on these weights
    return w * np.minimum(1.0, 1.5 / np.maximum(np.linalg.norm(w, axis=0, keepdims=True), 1e-7))


def _max_norm_torch(p):
    return p * torch.clamp(1.5 / torch.linalg.vector_norm(p, dim=0, keepdim=True).clamp(min=1e-7), max=1.0)


EXPECTED = references.keras_steps("sgd", WEIGHTS, GRADS, rate=rate, weight_decay=DECAY, clipnorm=1.0, momentum=0.9,
                                  constrain=_max_norm)


def _run(item, before=None, after=None, constrain=True):
    """The registry's optimizer of ``item`` over the weights; ``before(p, t)`` / ``after(p, t)`` hand-made work
    around each step (the mutations)."""
    params = [torch.nn.Parameter(torch.tensor(w)) for w in WEIGHTS]
    optimizer = optimizers.build(item, params, [(p, _max_norm_torch) for p in params] if constrain else [])
    for t, step in enumerate(GRADS):
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        with torch.no_grad():
            for p in params:
                before and before(p, t)
        optimizer.step()
        with torch.no_grad():
            for p in params:
                after and after(p, t)
    return [p.detach().numpy() for p in params]


def _without_decay():
    return {"sgd": {**SGD["sgd"], "weight_decay": None}}


def test_clip_decay_update_constrain_in_keras_s_order():
    assert close(_run(SGD), EXPECTED)


def test_the_constraint_binds_and_decay_and_clipping_move_the_steps():
    """The features are not idle: without each, the weights end elsewhere."""
    assert not close(_run(SGD, constrain=False), EXPECTED, rtol=1e-4)
    assert not close(_run(_without_decay()), EXPECTED, rtol=1e-4)
    assert not close(_run({"sgd": {**SGD["sgd"], "clipnorm": None}}), EXPECTED, rtol=1e-4)


def _decay(p, t):
    p.sub_(p * DECAY * rate(t))


def test_the_same_decay_by_hand_before_the_step_passes():
    """The mutations' own check: the hand-made decay, where Keras decays, passes."""
    assert close(_run(_without_decay(), before=_decay), EXPECTED)


def test_decay_after_the_update_fails_the_check():
    def decay_then_constrain(p, t):  # update, decay, constrain
        _decay(p, t)
        p.copy_(_max_norm_torch(p))
    assert not close(_run(_without_decay(), after=decay_then_constrain, constrain=False), EXPECTED, rtol=1e-4)


def test_decay_coupled_into_the_gradient_fails_the_check():
    def coupled(p, t):  # torch's weight_decay: an L2 term in the gradient, under the clipping and the momentum
        p.grad.add_(p, alpha=DECAY)
    assert not close(_run(_without_decay(), before=coupled), EXPECTED, rtol=1e-4)


def test_decay_without_the_biases_fails_the_check():
    def kernels_only(p, t):
        if p.dim() > 1:
            _decay(p, t)
    assert not close(_run(_without_decay(), before=kernels_only), EXPECTED, rtol=1e-4)


def test_a_schedule_stepped_per_epoch_fails_the_check():
    """A schedule read once an epoch (here, every 3 steps) rather than at every step's count."""
    plan = optimizers.schedule(SCHEDULE)
    params = [torch.nn.Parameter(torch.tensor(w)) for w in WEIGHTS]
    optimizer = optimizers.build(SGD, params, [(p, _max_norm_torch) for p in params])
    optimizers.set_schedule(optimizer, lambda t: plan(3 * (t // 3)))
    for step in GRADS:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        optimizer.step()
    assert not close([p.detach().numpy() for p in params], EXPECTED, rtol=1e-4)


def test_the_rate_is_read_from_the_group_each_step_without_a_schedule():
    """A constant rate is each group's ``lr`` as it stands (what reduce_lr_on_plateau lowers)."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = optimizers.build({"sgd": {"learning_rate": 0.1}}, [p])
    p.grad = torch.ones(1, dtype=torch.float64)
    optimizer.step()
    optimizer.param_groups[0]["lr"] = 0.01
    optimizer.step()
    assert p.item() == pytest.approx(-0.11)


@pytest.mark.parametrize("clip, expected", [
    ({"clipnorm": 0.5}, lambda g: [x * 0.5 / max(np.linalg.norm(x), 0.5) for x in g]),
    ({"clipvalue": 0.3}, lambda g: [np.clip(x, -0.3, 0.3) for x in g]),
    ({"global_clipnorm": 0.5}, lambda g: [x * 0.5 / math.sqrt(sum(np.sum(y * y) for y in g)) for x in g]),
])
def test_each_kind_of_clipping_is_keras_s(clip, expected):
    params = [torch.nn.Parameter(torch.tensor(w)) for w in WEIGHTS]
    optimizer = optimizers.build({"sgd": {"learning_rate": 1.0, **clip}}, params)
    for p, g in zip(params, GRADS[0]):
        p.grad = torch.tensor(g)
    optimizer.step()
    moved = [w - p.detach().numpy() for w, p in zip(WEIGHTS, params)]
    assert close(moved, expected(GRADS[0]))
    assert not close(moved, GRADS[0], rtol=1e-3)  # the clipping bound


def test_the_count_and_the_schedule_s_rate_survive_a_state_dict_round_trip():
    a = _run(SGD)
    params = [torch.nn.Parameter(torch.tensor(w)) for w in WEIGHTS]
    first = optimizers.build(SGD, params, [(p, _max_norm_torch) for p in params])
    for step in GRADS[:2]:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        first.step()
    state = first.state_dict()
    resumed = optimizers.build(SGD, params, [(p, _max_norm_torch) for p in params])
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["iterations"] == 2 and resumed.param_groups[0]["lr"] == pytest.approx(rate(2))
    for step in GRADS[2:]:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        resumed.step()
    assert close([p.detach().numpy() for p in params], a)


def test_an_earlier_keras_adam_state_goes_on_at_its_count():
    """A checkpoint of an earlier lit-mnist kept the count as ``keras_step``."""
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = optimizers.build("adam", [p])
    state = optimizer.state_dict()
    state["param_groups"][0].pop("iterations")
    state["param_groups"][0]["keras_step"] = 7
    optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["iterations"] == 7 and "keras_step" not in optimizer.param_groups[0]
