"""Keras's learning-rate schedules by hand-computed values at Keras's step count (0 at the first step), torch's
one-cycle step for step, and the fit's step counts (``decay_steps: epoch``, one_cycle's whole fit)."""

import math

import pytest
import torch

from lit_mnist.model.optimizers import Fit, schedule


@pytest.mark.parametrize("item, expected", [
    ({"exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}},
     {0: 0.1, 5: 0.1 * 0.5**0.5, 10: 0.05, 25: 0.1 * 0.5**2.5}),
    ({"ExponentialDecay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": True}},
     {9: 0.1, 10: 0.05, 25: 0.025}),
    ({"piecewise_constant_decay": {"boundaries": [3, 6], "values": [1.0, 0.5, 0.1]}},
     {0: 1.0, 3: 1.0, 4: 0.5, 6: 0.5, 7: 0.1}),
    ({"cosine_decay": {"initial_learning_rate": 0.1, "decay_steps": 10}}, {0: 0.1, 5: 0.05, 10: 0.0, 20: 0.0}),
    ({"cosine_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.2}}, {5: 0.1 * (0.4 + 0.2), 10: 0.02}),
    ({"cosine_decay": {"initial_learning_rate": 0.0, "decay_steps": 10, "warmup_target": 0.1, "warmup_steps": 4}},
     {0: 0.0, 2: 0.05, 4: 0.1, 9: 0.05, 14: 0.0, 30: 0.0}),
    ({"cosine_decay_restarts": {"initial_learning_rate": 0.1, "first_decay_steps": 10, "t_mul": 1.0, "m_mul": 0.5}},
     {0: 0.1, 5: 0.05, 10: 0.05, 15: 0.025}),
    ({"cosine_decay_restarts": {"initial_learning_rate": 0.1, "first_decay_steps": 10}},  # t_mul 2: 10, then 20 steps
     {10: 0.1, 20: 0.05, 30: 0.1}),
    ({"inverse_time_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}},
     {0: 0.1, 10: 0.1 / 1.5, 15: 0.1 / 1.75}),
    ({"inverse_time_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": True}},
     {15: 0.1 / 1.5}),
    ({"polynomial_decay": {"initial_learning_rate": 0.1, "decay_steps": 10}},
     {0: 0.1, 5: (0.1 - 1e-4) * 0.5 + 1e-4, 10: 1e-4, 20: 1e-4}),
    ({"polynomial_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "power": 2.0, "cycle": True}},
     {15: (0.1 - 1e-4) * (1 - 15 / 20) ** 2 + 1e-4}),
])
def test_each_schedule_gives_keras_s_rate_at_keras_s_count(item, expected):
    plan = schedule(item)
    assert {step: plan(step) for step in expected} == pytest.approx(expected, abs=1e-12)


def test_the_comparison_sees_a_count_off_by_one():
    """The companion: read one step late (a count from 1), exponential decay's rates differ."""
    plan = schedule({"exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}})
    assert plan(0 + 1) != pytest.approx(0.1, abs=1e-6)


def test_one_cycle_is_torch_s_step_for_step():
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([p], lr=0.01)
    torch_schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=50)
    ours = schedule({"one_cycle": {"max_lr": 0.01, "total_steps": 50}})
    rates = []
    for _ in range(50):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if len(rates) < 50:
            torch_schedule.step()
    assert [ours(t) for t in range(50)] == rates  # the very floats: a run keeps its figures


def test_the_fit_s_counts_resolve_epoch_and_one_cycle_s_length():
    per_epoch = schedule({"exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": "epoch",
                                                "decay_rate": 0.5, "staircase": True}}, Fit(7, 21))
    assert [per_epoch(t) for t in (0, 6, 7, 13, 14)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    cycle = schedule({"one_cycle": {"max_lr": 0.01}}, Fit(7, 21))
    assert cycle.resolved()["total_steps"] == 21 and cycle(20) == pytest.approx(0.01 / 25 / 1e4)
    with pytest.raises(ValueError, match="not yet known"):
        schedule({"one_cycle": {"max_lr": 0.01}})(0)


@pytest.mark.parametrize("item, expected", [
    ("cosine", "learning_rate: unknown 'cosine' (known: exponential_decay, piecewise_constant_decay, cosine_decay"),
    ({"exponential_decay": {"initial_learning_rate": 0.1, "decay_rate": 0.5}}, ("learning_rate exponential_decay: "
     "decay_steps is required")),
    ({"exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": 0, "decay_rate": 0.5}},
     "learning_rate exponential_decay: decay_steps must be a positive integer or 'epoch', got 0"),
    ({"cosine_decay": {"initial_learning_rate": 0.1, "decay_steps": 5, "warmup": 3}},
     "learning_rate cosine_decay: unknown argument 'warmup' (known: initial_learning_rate, decay_steps, alpha"),
    ({"piecewise_constant_decay": {"boundaries": [3], "values": [1.0]}},
     "learning_rate piecewise_constant_decay: values must be a list one longer than boundaries"),
])
def test_a_bad_schedule_is_one_line_naming_it(item, expected):
    with pytest.raises(ValueError) as e:
        schedule(item)
    assert str(e.value).startswith(expected) and "\n" not in str(e.value)


def test_math_is_float64_python():
    assert isinstance(schedule({"cosine_decay": {"initial_learning_rate": 0.1, "decay_steps": 3}})(1), float)
    assert math.isfinite(schedule({"cosine_decay_restarts": {"initial_learning_rate": 0.1,
                                                              "first_decay_steps": 3}})(1000))
