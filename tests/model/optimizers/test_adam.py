"""KerasAdam follows Keras 3's update formula, which stock torch Adam does not."""

import numpy as np
import pytest
import torch

from lit_mnist.model.module import LitMNIST
from lit_mnist.model.optimizers import KerasAdam


def keras_reference(theta, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """keras/src/optimizers/adam.py update_step, in float64 numpy."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        theta = theta - alpha * m / (np.sqrt(v) + eps)
    return theta


def _run(optimizer_cls, theta, grads, **kwargs):
    p = torch.nn.Parameter(torch.tensor(theta))
    opt = optimizer_cls([p], **kwargs)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy()


def test_matches_the_keras_formula_and_stock_adam_does_not():
    rng = np.random.default_rng(0)
    theta = rng.normal(size=1000)
    grads = [rng.normal(scale=10.0 ** rng.integers(-8, 0), size=1000) for _ in range(25)]
    expected = keras_reference(theta, grads)
    ours = _run(KerasAdam, theta, grads)
    stock = _run(torch.optim.Adam, theta, grads, lr=1e-3, eps=1e-7)
    rel = lambda a: np.linalg.norm(a - expected) / np.linalg.norm(expected - theta)
    assert rel(ours) < 1e-9  # float64: exact up to rounding
    assert rel(stock) > 1e-4  # epsilon applied after bias correction: a different update


def test_module_default_optimizer_settings():
    opt = LitMNIST().configure_optimizers()
    assert isinstance(opt, KerasAdam) and opt.defaults["fused"]
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["epsilon"]) == (1e-3, (0.9, 0.999), 1e-7)
    assert type(LitMNIST(optimizer="keras_adam").configure_optimizers()) is KerasAdam  # the former name
    stock = LitMNIST(optimizer="torch_adam").configure_optimizers()
    assert type(stock) is torch.optim.Adam


def test_state_keeps_iterations_count_and_moments():
    p = torch.nn.Parameter(torch.ones(3))
    opt = KerasAdam([p])
    for _ in range(4):
        p.grad = torch.full((3,), 0.5)
        opt.step()
    state = opt.state[p]
    assert state["step"] == 4 and opt.param_groups[0]["iterations"] == 4
    torch.testing.assert_close(state["exp_avg"], torch.full((3,), 0.5 * (1 - 0.9**4)))


def test_step_count_survives_a_state_dict_round_trip():
    """A resumed run must go on with the right epsilon: the count travels in the checkpoint."""
    rng = np.random.default_rng(1)
    theta, grads = rng.normal(size=50), [rng.normal(size=50) for _ in range(6)]
    p = torch.nn.Parameter(torch.tensor(theta))
    opt = KerasAdam([p])
    for g in grads[:3]:
        p.grad = torch.tensor(g)
        opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    resumed = KerasAdam([q])
    resumed.load_state_dict(opt.state_dict())
    for g in grads[3:]:
        q.grad = torch.tensor(g)
        resumed.step()
    torch.testing.assert_close(q.detach(), torch.tensor(keras_reference(theta, grads)), rtol=1e-12, atol=1e-15)


def test_a_group_without_gradients_takes_no_step():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = KerasAdam([{"params": [p]}, {"params": [q]}])
    p.grad = torch.ones(2)
    opt.step()
    assert [g["iterations"] for g in opt.param_groups] == [1, 0]
    assert opt.param_groups[1]["eps"] == pytest.approx(1e-7 / (1 - 0.999) ** 0.5)
