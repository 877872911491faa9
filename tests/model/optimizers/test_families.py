"""Each Keras optimizer of the registry against Keras's update written out by hand (``references.py``), on a few
steps with fixed gradients, float64; Keras itself checks them in test_keras_parity.py."""

import numpy as np
import pytest
import torch

from lit_mnist.model import optimizers
from tests.model.optimizers import references

RNG = np.random.default_rng(0)
WEIGHTS = [RNG.normal(size=(4, 3)), RNG.normal(size=3)]  # a kernel and a bias
GRADS = [[RNG.normal(scale=s, size=w.shape) for w in WEIGHTS] for s in (1.0, 0.1, 2.0, 0.01, 0.5)]


def ours(item, weights=WEIGHTS, grads=GRADS, constraints=None):
    """The weights after the registry's optimizer of ``item`` takes the steps (float64)."""
    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    optimizer = optimizers.build(item, params, [(p, constraints) for p in params] if constraints else [])
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        optimizer.step()
    return [p.detach().numpy() for p in params]


def close(a, b, rtol=1e-10) -> bool:
    return all(np.allclose(x, y, rtol=rtol, atol=1e-13) for x, y in zip(a, b))


CASES = [
    ("adam", {}), ("adam", {"amsgrad": True, "beta_1": 0.8}), ("adamw", {}), ("sgd", {}),
    ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}), ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.5, "centered": True, "rho": 0.8}), ("nadam", {}), ("adamax", {}), ("adagrad", {}),
    ("adadelta", {"rho": 0.9}), ("lion", {}),
]


@pytest.mark.parametrize("name, own", CASES, ids=[f"{n} {o}" if o else n for n, o in CASES])
def test_each_optimizer_takes_keras_s_steps(name, own):
    lr = 0.01 if name == "sgd" else 0.001
    decay = 0.004 if name == "adamw" else None
    expected = references.keras_steps(name, WEIGHTS, GRADS, rate=lambda t: lr, weight_decay=decay, **own)
    assert close(ours({name: own}), expected)


@pytest.mark.parametrize("name, wrong", [("rmsprop", {"centered": True}), ("adam", {"amsgrad": True}),
                                         ("sgd", {"nesterov": True, "momentum": 0.9}), ("adadelta", {"rho": 0.5})])
def test_the_comparison_sees_a_flag_flipped(name, wrong):
    """The companion: the same optimizer with a flag or argument other than the reference's fails the check."""
    lr = 0.01 if name == "sgd" else 0.001
    expected = references.keras_steps(name, WEIGHTS, GRADS, rate=lambda t: lr,
                                      **({"momentum": 0.9} if name == "sgd" else {}))
    assert not close(ours({name: wrong}), expected)


def test_torch_adam_is_the_stock_adam_and_not_keras_s():
    params = [torch.nn.Parameter(torch.tensor(w)) for w in WEIGHTS]
    stock = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    for step in GRADS:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        stock.step()
    ours_torch = ours({"torch_adam": {}})
    assert close(ours_torch, [p.detach().numpy() for p in params], rtol=1e-12)
    moved = lambda after: [a - w for a, w in zip(after, WEIGHTS)]
    assert not close(moved(ours_torch), moved(ours("adam")), rtol=1e-4)  # epsilon after the bias correction


def test_keras_adam_is_adam():
    assert optimizers.as_item("keras_adam") == optimizers.as_item("Adam") == optimizers.as_item({"adam": None})
