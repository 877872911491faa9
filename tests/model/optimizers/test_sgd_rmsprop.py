"""Keras's SGD and RMSprop: their updates written out by hand, their defaults, and their arguments refused where
another optimizer is chosen (Keras itself checks them in tests/parity/test_semantics.py)."""

import math
import re

import pytest
import torch

from lit_mnist.model.module import LitMNIST
from lit_mnist.model.optimizers import KerasRMSprop, KerasSGD


def _steps(optimizer_class, grads, **options) -> list[float]:
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    optimizer = optimizer_class([p], **options)
    values = []
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        optimizer.step()
        values.append(p.item())
    return values


def test_sgd_momentum_accumulates_steps_as_keras_s():
    lr, mu = 0.1, 0.9
    m1 = -lr * 2.0
    m2 = mu * m1 - lr * 3.0
    assert _steps(KerasSGD, [2.0, 3.0], lr=lr, momentum=mu) == pytest.approx([1 + m1, 1 + m1 + m2])
    nesterov = _steps(KerasSGD, [2.0, 3.0], lr=lr, momentum=mu, nesterov=True)
    assert nesterov == pytest.approx([1 + mu * m1 - lr * 2.0, 1 + mu * m1 - lr * 2.0 + mu * m2 - lr * 3.0])
    assert _steps(KerasSGD, [2.0], lr=lr) == pytest.approx([1 - lr * 2.0])


def test_rmsprop_takes_epsilon_inside_the_root_as_keras_s():
    lr, rho, eps = 0.01, 0.9, 0.5
    v1 = (1 - rho) * 4.0
    assert _steps(KerasRMSprop, [2.0], lr=lr, rho=rho, epsilon=eps) == pytest.approx([1 - lr * 2.0 / math.sqrt(v1 + eps)])
    v2 = rho * v1 + (1 - rho) * 1.0
    m1 = lr * 2.0 / math.sqrt(v1 + eps)
    m2 = 0.5 * m1 + lr * 1.0 / math.sqrt(v2 + eps)
    assert _steps(KerasRMSprop, [2.0, 1.0], lr=lr, rho=rho, epsilon=eps, momentum=0.5) == pytest.approx(
        [1 - m1, 1 - m1 - m2])


@pytest.mark.parametrize("optimizer, lr, kind", [("sgd", 0.01, KerasSGD), ("rmsprop", 1e-3, KerasRMSprop)])
def test_the_learning_rate_defaults_to_keras_s_for_the_optimizer(optimizer, lr, kind):
    module = LitMNIST(optimizer=optimizer)
    assert module.hparams.optimizer[optimizer]["learning_rate"] == lr and isinstance(module.make_optimizer(), kind)
    assert module.make_optimizer().param_groups[0]["lr"] == lr
    assert LitMNIST(optimizer=optimizer, lr=0.2).make_optimizer().param_groups[0]["lr"] == 0.2


@pytest.mark.parametrize("optimizer, expected", [
    ({"adam": {"momentum": 0.9}}, ("optimizer adam: unknown argument 'momentum' (did you mean 'ema_momentum'? known: "
                                   "learning_rate, beta_1")),
    ({"sgd": {"rho": 0.5}}, "optimizer sgd: unknown argument 'rho' (known: learning_rate, momentum, nesterov"),
    ({"sgd": {"epsilon": 1e-3}}, "optimizer sgd: unknown argument 'epsilon'"),
    ({"rmsprop": {"beta_1": 0.8}}, "optimizer rmsprop: unknown argument 'beta_1'"),
    ({"sgd": {"momentum": 1.0}}, "optimizer sgd: momentum must be a number in [0, 1), got 1.0"),
])
def test_an_argument_of_another_optimizer_is_refused_not_ignored(optimizer, expected):
    with pytest.raises(ValueError, match="^" + re.escape(expected)):
        LitMNIST(optimizer=optimizer)
