"""Level 3's equivalence test on made-up accuracies: when the seeds are too few for the margin it says so in words,
and only then (no training, no TensorFlow)."""

import numpy as np
import pytest

from parity import tost

M = 0.005  # the default margin, +-0.5 points


def spread(n: int, mean: float, sd: float) -> list[float]:
    """``n`` accuracies with exactly this mean and sample standard deviation."""
    z = np.linspace(-1, 1, n)
    return list(mean + sd * (z - z.mean()) / z.std(ddof=1))


def width(result: dict) -> float:
    low, high = result["interval"]
    return high - low


def test_an_interval_wider_than_the_margin_says_the_seeds_are_too_few():
    result = tost.equivalence(spread(3, 0.94, 0.01), spread(3, 0.94, 0.01))  # equal means: fails on the seeds alone
    assert width(result) > 2 * M and not result["passed"]
    sentence = tost.too_few_seeds(result)
    assert sentence == (f"the 3 seeds give an interval of width {100 * width(result):.2f} points, wider than the "
                        f"margin +-0.50 points: more seeds are needed (about {result['seeds_needed']} a framework)")


def test_a_narrow_interval_that_fails_fails_on_the_difference_without_the_sentence():
    result = tost.equivalence(spread(10, 0.94, 0.001), spread(10, 0.95, 0.001))  # a point apart, tightly
    assert not result["passed"] and width(result) < M
    assert tost.too_few_seeds(result) is None


def test_companion_an_interval_wider_than_the_margin_but_not_its_span_gets_no_sentence():
    """Between +-margin and its whole span the interval still fits inside, so more seeds are not what it needs:
    a rule that compared the width with the margin alone (not twice it) would say they were."""
    result = tost.equivalence(spread(10, 0.94, 0.0045), spread(10, 0.945, 0.0045))
    assert M < width(result) < 2 * M and not result["passed"]
    assert tost.too_few_seeds(result) is None


def test_a_passing_result_gets_no_sentence():
    result = tost.equivalence(spread(10, 0.94, 0.002), spread(10, 0.9405, 0.002))
    assert result["passed"] and tost.too_few_seeds(result) is None


@pytest.mark.parametrize(("n", "sd"), [(3, 0.01), (5, 0.004), (3, 0.003)])
def test_the_seeds_needed_are_the_fewest_whose_interval_fits(n, sd):
    keras_acc, lightning_acc = spread(n, 0.94, sd), spread(n, 0.94, sd * 1.5)
    needed = tost.seeds_needed(keras_acc, lightning_acc)
    assert needed is not None and needed > n
    at = tost.equivalence(spread(needed, 0.94, sd), spread(needed, 0.94, sd * 1.5))
    before = tost.equivalence(spread(needed - 1, 0.94, sd), spread(needed - 1, 0.94, sd * 1.5))
    assert width(at) < 2 * M <= width(before)


def test_no_spread_no_estimate():
    assert tost.seeds_needed([0.9, 0.9, 0.9], [0.9, 0.9, 0.9]) is None
