"""Keras's constraints: the item grammar, the projections against hand-computed values and against Keras itself,
on non-square weights so that a wrong axis shows."""

import numpy as np
import pytest
import torch

from lit_mnist.model.constraints import max_norm, min_max_norm, non_neg, projection, unit_norm
from lit_mnist.model.kinds.objects import check_fits, check_object, to_keras

W = torch.tensor([[3.0, 0.0, -1.0], [4.0, 0.5, 2.0]], dtype=torch.float64)  # columns' norms 5, 0.5, sqrt(5)
EPS = 1e-7


@pytest.mark.parametrize(("given", "parsed"), [
    ("max_norm", {"max_norm": {"max_value": 2, "axis": 0}}),
    ({"MaxNorm": 3}, {"max_norm": {"max_value": 3, "axis": 0}}),
    ({"max_norm": {"max_value": 3, "axis": [0, 1, 2]}}, {"max_norm": {"max_value": 3, "axis": [0, 1, 2]}}),
    ("min_max_norm", {"min_max_norm": {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}}),
    ("NonNeg", {"non_neg": {}}),
    ({"unit_norm": 1}, {"unit_norm": {"axis": 1}}),
    ({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 0}}, {"max_norm": {"max_value": 3, "axis": 0}}),
])
def test_an_item_names_a_constraint_with_keras_defaults(given, parsed):
    assert check_object("kernel_constraint", given) == parsed


@pytest.mark.parametrize(("given", "message"), [
    ("max_nrom", ("kernel_constraint 'max_nrom' is not a known constraint (did you mean 'max_norm'? known: max_norm, "
                 "min_max_norm, non_neg, unit_norm)")),
    ({"non_neg": 1}, "kernel_constraint non_neg takes no arguments"),
    ({"max_norm": {"axis": "rows"}}, "axis must be an axis or a list of axes"),
    ({"max_norm": {"max_value": "big"}}, "max_value must be a number"),
])
def test_a_constraint_that_is_not_kerass_is_one_line(given, message):
    with pytest.raises(ValueError) as error:
        check_object("kernel_constraint", given)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_axis_outside_the_variable_is_refused():
    check_fits("kernel_constraint", {"max_norm": {"max_value": 2, "axis": [0, 1, 2]}}, 4)
    with pytest.raises(ValueError, match="axis 2 is not an axis of its variable, of rank 2"):
        check_fits("kernel_constraint", {"max_norm": {"max_value": 2, "axis": 2}}, 2)


def test_max_norm_scales_each_column_over_the_limit_and_keeps_the_others():
    out = max_norm(W, max_value=2, axis=0)
    expected = W * torch.tensor([2 / (5 + EPS), 0.5 / (0.5 + EPS), 2 / (5**0.5 + EPS)], dtype=W.dtype)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(max_norm(W, 2, axis=1), out)  # companion: the other axis is another projection


def test_min_max_norm_moves_by_rate_towards_the_interval():
    out = min_max_norm(W, min_value=1.0, max_value=3.0, rate=0.5, axis=0)
    norms = torch.tensor([5.0, 0.5, 5**0.5], dtype=W.dtype)
    desired = 0.5 * norms.clamp(1, 3) + 0.5 * norms
    torch.testing.assert_close(out, W * desired / (EPS + norms))


def test_unit_norm_and_non_neg():
    torch.testing.assert_close(unit_norm(W, axis=1), W / (EPS + W.norm(dim=1, keepdim=True)))
    torch.testing.assert_close(non_neg(W), W.clamp(min=0))
    # epsilon is added to the norm, not a floor of it: a norm of 1 ends just under 1
    assert unit_norm(torch.tensor([[1.0], [0.0]], dtype=torch.float64))[0, 0].item() == 1 / (1 + EPS)


def test_a_list_of_axes_is_torchs_tuple():
    w = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    out = projection({"max_norm": {"max_value": 0.5, "axis": [0, 1, 2]}})(w)
    assert torch.allclose(out.flatten(0, 2).norm(dim=0), torch.full((5,), 0.5, dtype=w.dtype), atol=1e-6)


ITEMS = [{"max_norm": {"max_value": 1.5, "axis": 0}}, {"max_norm": {"max_value": 1.5, "axis": [0, 1, 2]}},
         {"min_max_norm": {"min_value": 2.0, "max_value": 2.5, "rate": 0.7, "axis": 0}},
         {"non_neg": {}}, {"unit_norm": {"axis": [0, 1, 2]}}, {"unit_norm": {"axis": 1}}]


@pytest.mark.parity
@pytest.mark.parametrize("item", ITEMS, ids=lambda item: "-".join(map(str, item.values())))
def test_each_constraint_is_kerass_on_the_same_weights(item):
    from tests.conftest import require_the_parity_extra

    require_the_parity_extra()
    import keras

    w = np.random.default_rng(1).normal(size=(3, 2, 4, 5)).astype(np.float32)  # a conv kernel: (h, w, in, out)
    if item.get("unit_norm", {}).get("axis") == 1 or item.get("max_norm", {}).get("axis") == 0 or "min_max_norm" in item:
        w = w.reshape(12, 10)  # a dense kernel: (in, out)
    expected = keras.ops.convert_to_numpy(keras.constraints.get(to_keras(item))(keras.ops.convert_to_tensor(w)))
    np.testing.assert_allclose(projection(item)(torch.from_numpy(w)).numpy(), expected, rtol=1e-6, atol=1e-7)
