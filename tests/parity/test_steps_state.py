"""Level 2's state moved into torch without Keras: every optimizer's slots by Keras's names (renamed where the torch
optimizer keeps another), Nadam's u_product, the step count from which each side computes its own rate; and the
report's rate columns."""

import numpy as np
import pytest
import torch

from lit_mnist.model import optimizers
from lit_mnist.model.keras_layout import variables
from lit_mnist.model.module import LitMNIST
from parity import report, transfer


def _module(optimizer) -> LitMNIST:
    return LitMNIST(layers=[{"dense": 3}], num_classes=2, image_shape=[2, 2], optimizer=optimizer).double()


def _keras_slots(module: LitMNIST, names: list[str]) -> dict:
    """Made-up Keras slots, in Keras's layout, each variable's slot ``name`` filled with ``k + 1`` (its index)."""
    slots = {}
    for layer, name, tensor in variables(module.net):
        shape = layer.spec.to_keras(name, tensor.detach()).shape
        slots.setdefault(layer.name, {})[name] = {slot: np.full(shape, k + 1.0) for k, slot in enumerate(names)}
    return slots


@pytest.mark.parametrize("item, keras_names, torch_names", [
    ({"adam": {"amsgrad": True}}, ["momentum", "velocity", "velocity_hat"], ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    ("adamax", ["momentum", "norm"], ["momentum", "norm"]),
    ({"rmsprop": {"centered": True, "momentum": 0.5}}, ["velocity", "momentum", "average_gradient"],
     ["velocity", "momentum", "average_gradient"]),
    ("adagrad", ["accumulator"], ["accumulator"]),
    ("adadelta", ["accumulated_grad", "accumulated_delta_var"], ["accumulated_grad", "accumulated_delta_var"]),
    ("lion", ["momentum"], ["momentum"]),
    ("nadam", ["momentum", "velocity"], ["momentum", "velocity"]),
], ids=["adam amsgrad", "adamax", "rmsprop centered", "adagrad", "adadelta", "lion", "nadam"])
def test_every_slot_arrives_under_the_torch_optimizer_s_name(item, keras_names, torch_names):
    module = _module(item)
    optimizer = module.make_optimizer()
    transfer.load_optimizer_state(optimizer, module.net, _keras_slots(module, keras_names), 7)
    for p in module.parameters():
        state = optimizer.state[p]
        for k, name in enumerate(torch_names):
            assert torch.equal(state[name], torch.full_like(p, k + 1.0)), name
    assert all(group["iterations"] == 7 for group in optimizer.param_groups)


def test_companion_without_the_renaming_adam_s_slots_are_not_where_torch_reads_them(monkeypatch):
    """torch's Adam keeps Keras's momentum and velocity as exp_avg and exp_avg_sq: left under Keras's names, the
    check above fails (torch would start its moments afresh)."""
    from lit_mnist.model.optimizers import state

    monkeypatch.setattr(state, "TORCH_ADAM_SLOTS", {})
    module = _module({"adam": {"amsgrad": True}})
    optimizer = module.make_optimizer()
    transfer.load_optimizer_state(optimizer, module.net, _keras_slots(module, ["momentum", "velocity", "velocity_hat"]), 7)
    assert not any("exp_avg" in optimizer.state[p] for p in module.parameters())


def test_nadam_s_product_of_momentum_factors_and_the_count_reach_the_groups():
    module = _module("nadam")
    optimizer = module.make_optimizer()
    transfer.load_optimizer_state(optimizer, module.net, _keras_slots(module, ["momentum", "velocity"]), 4,
                                  {"u_product": 0.25})
    assert [(g["u_product"], g["iterations"]) for g in optimizer.param_groups] == [(0.25, 4)] * len(optimizer.param_groups)


def test_the_torch_side_computes_its_rate_from_its_own_schedule_at_keras_s_count():
    item = {"sgd": {"learning_rate": {"exponential_decay": {"initial_learning_rate": 0.5, "decay_steps": 1,
                                                            "decay_rate": 0.5}}}}
    module = _module(item)
    optimizer = module.make_optimizer(fit=optimizers.Fit(10, 100))
    transfer.load_optimizer_state(optimizer, module.net, _keras_slots(module, []), 3)
    assert optimizer.param_groups[0]["lr"] == 0.5 * 0.5**3


def _steps(curve_rates) -> dict:
    curve = [{"step": i + 1, "keras_loss": 1.0, "torch_loss": 1.0, "l2_rel_diff": 0.0, "loss_rel_diff": 0.0,
              "free_running_l2_rel_diff": 0.0, "keras_learning_rate": k, "torch_learning_rate": t}
             for i, (k, t) in enumerate(curve_rates)]
    limits = {"l2_rel_diff": 1e-5, "loss_rel_diff": 1e-5, "moving_rel_diff": 1e-7, "learning_rate_rel_diff": 1e-6}
    return {"n": len(curve), "l2_rel_diff": 0.0, "loss_rel_diff": 0.0, "moving_rel_diff": 0.0,
            "learning_rate_rel_diff": 0.5, "limits": limits, "passed": False, "has_moving_statistics": False,
            "dropout_as_identity": False, "curve": curve}


def test_the_report_shows_both_rates_at_every_step_and_the_worst_gap():
    result = {"net": "dense", "num_classes": 2, "image_shape": [2, 2], "normalize": False, "epochs": 1,
              "batch_size": 4, "data_source": "x.csv", "train_rows": 8, "test_rows": 2, "seeds": [], "passed": False,
              "levels": ["forward", "steps"], "steps": _steps([(0.5, 0.5), (0.25, 0.5)]),
              "forward": {"n": 2, "max_abs_diff": 0.0, "argmax_agreement": 1.0, "passed": True,
                          "limits": {"max_abs_diff": 1e-4, "argmax_agreement": 0.999}}}
    text = report.markdown(result)
    assert "| 2 steps | worst relative difference of the learning rates (each side's own schedule) | | 5.00e-01 | <= 1e-06 |" in text
    assert "| Keras rate | torch rate |" in text and "| 0.25 | 0.5 |" in text
