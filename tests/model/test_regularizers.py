"""Keras's regularizers: the item grammar, the penalties against hand-computed values and against Keras itself."""

import numpy as np
import pytest
import torch

from lit_mnist.model.kinds.objects import check_fits, check_object, to_keras
from lit_mnist.model.regularizers import l1_l2, orthogonal, penalty

X = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=torch.float64)  # 2 x 3: rows and columns differ


@pytest.mark.parametrize(("given", "parsed"), [
    ("l2", {"l2": {"l2": 0.01}}),
    ("L2", {"l2": {"l2": 0.01}}),
    ({"l2": 0.001}, {"l2": {"l2": 0.001}}),
    ({"l2": {"l2": 0.001}}, {"l2": {"l2": 0.001}}),
    ({"L1": None}, {"l1": {"l1": 0.01}}),
    ("l1_l2", {"l1_l2": {"l1": 0.0, "l2": 0.0}}),  # Keras 3's l1_l2(): the class L1L2's defaults
    ({"L1L2": {"l2": 0.2}}, {"l1_l2": {"l1": 0.0, "l2": 0.2}}),
    ({"l1_l2": {"l1": 0.1, "l2": 0.2}}, {"l1_l2": {"l1": 0.1, "l2": 0.2}}),
    ("orthogonal_regularizer", {"orthogonal_regularizer": {"factor": 0.01, "mode": "rows"}}),
    ({"OrthogonalRegularizer": {"mode": "columns"}}, {"orthogonal_regularizer": {"factor": 0.01, "mode": "columns"}}),
    ({"class_name": "L2", "config": {"l2": 0.5}, "module": "keras.regularizers"}, {"l2": {"l2": 0.5}}),
    (None, None),
])
def test_an_item_names_a_regularizer_with_keras_defaults(given, parsed):
    assert check_object("kernel_regularizer", given) == parsed


@pytest.mark.parametrize(("given", "message"), [
    ("l3", "kernel_regularizer 'l3' is not a known regularizer (known: l1, l2, l1_l2, orthogonal_regularizer)"),
    ("max_norm", "kernel_regularizer 'max_norm' is not a known regularizer"),
    ({"l2": -1}, "kernel_regularizer l2's l2 must be a number of at least 0, got -1"),
    ({"l2": {"l1": 1}}, "kernel_regularizer l2: unknown argument 'l1' (l2 takes l2)"),
    ({"orthogonal_regularizer": {"mode": "diagonal"}}, "mode must be 'rows' or 'columns'"),
    ({"class_name": "MyPenalty", "config": {}}, "'MyPenalty' is not a known regularizer"),
    (["l2"], "kernel_regularizer must be a regularizer's name or {name: arguments}"),
])
def test_a_regularizer_that_is_not_kerass_is_one_line(given, message):
    with pytest.raises(ValueError) as error:
        check_object("kernel_regularizer", given)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_l1_and_l2_are_sums_times_the_factor():
    assert l1_l2(X, l1=0.1).item() == pytest.approx(0.1 * 7.5)
    assert l1_l2(X, l2=0.1).item() == pytest.approx(0.1 * 15.25)
    assert l1_l2(X, l1=0.1, l2=0.2).item() == pytest.approx(0.75 + 3.05)
    assert penalty({"l2": {"l2": 0.01}})(X).item() == pytest.approx(0.1525)
    assert penalty({"l1_l2": {"l1": 0.0, "l2": 0.0}})(X).item() == 0.0


def _orthogonal_by_hand(x: np.ndarray, factor: float) -> float:
    """The mean |cosine| of the distinct pairs of rows, times factor / 2."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(unit)
    pairs = [abs(unit[i] @ unit[j]) for i in range(n) for j in range(i + 1, n)]
    return factor * 0.5 * 2 * sum(pairs) / (n * (n - 1) / 2)  # Keras sums both triangles


def test_orthogonal_rows_and_columns_against_hand_computed_values():
    assert orthogonal(X, 0.3, "rows").item() == pytest.approx(_orthogonal_by_hand(X.numpy(), 0.3))
    assert orthogonal(X, 0.3, "columns").item() == pytest.approx(_orthogonal_by_hand(X.numpy().T, 0.3))
    assert orthogonal(X, 0.3, "rows").item() != pytest.approx(orthogonal(X, 0.3, "columns").item())  # the mode matters
    zero_row = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert orthogonal(zero_row, 1.0).item() == 0.0  # a zero row stays zero (Keras's rsqrt capped at 1 / epsilon)


def test_an_orthogonal_regularizer_needs_a_matrix_and_axes_must_be_the_variables():
    check_fits("kernel_regularizer", {"orthogonal_regularizer": {"factor": 0.01, "mode": "rows"}}, 2)
    with pytest.raises(ValueError, match="needs a matrix"):
        check_fits("kernel_regularizer", {"orthogonal_regularizer": {"factor": 0.01, "mode": "rows"}}, 4)


def test_the_keras_form_names_keras_class_and_config():
    assert to_keras({"l1_l2": {"l1": 0.1, "l2": 0.2}}) == {"module": "keras.regularizers", "class_name": "L1L2",
                                                          "config": {"l1": 0.1, "l2": 0.2}, "registered_name": None}


ITEMS = [{"l1": {"l1": 0.03}}, {"l2": {"l2": 0.02}}, {"l1_l2": {"l1": 0.01, "l2": 0.04}},
         {"orthogonal_regularizer": {"factor": 0.5, "mode": "rows"}},
         {"orthogonal_regularizer": {"factor": 0.5, "mode": "columns"}}]


@pytest.mark.parity
@pytest.mark.parametrize("item", ITEMS, ids=lambda item: "-".join(map(str, item.values())))
def test_each_regularizer_is_kerass_on_the_same_weights(item):
    from tests.conftest import require_the_parity_extra

    require_the_parity_extra()
    import keras

    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = float(keras.regularizers.get(to_keras(item))(keras.ops.convert_to_tensor(x)))
    assert penalty(item)(torch.from_numpy(x)).item() == pytest.approx(expected, rel=1e-6)
    if "orthogonal_regularizer" in item:  # companion: the other mode is another penalty, beyond the tolerance
        mode = item["orthogonal_regularizer"]["mode"]
        other = {"orthogonal_regularizer": {"factor": 0.5, "mode": "rows" if mode == "columns" else "columns"}}
        assert penalty(other)(torch.from_numpy(x)).item() != pytest.approx(expected, rel=1e-3)
