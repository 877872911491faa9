"""The equivalence test of level 3: two one-sided Welch t-tests (TOST) of the difference of mean accuracies, and
whether the seeds were enough for the margin at all.

The test passes when the 90% interval of the difference (Lightning - Keras) lies inside +-margin. An interval
wider than the margin's whole span (2 x margin) fits nowhere: whatever the means, the test fails, and the failure
says nothing about the frameworks, only that the seeds were too few. That case is said in words, with about how
many seeds the measured spreads would need. No TensorFlow here: the arithmetic is tested on made-up accuracies.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MARGIN = 0.005  # equivalence margin of the mean accuracies: +-0.5 points
ALPHA = 0.05
MOST_SEEDS = 10_000  # beyond this, "about how many" is not worth a number


def equivalence(keras_acc: list[float], lightning_acc: list[float], margin: float = MARGIN,
                alpha: float = ALPHA) -> dict:
    """TOST of the difference of means (Lightning - Keras) against +-``margin``, Welch's t (unequal variances)."""
    a, b = np.asarray(lightning_acc, dtype=float), np.asarray(keras_acc, dtype=float)
    p_lower = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue  # H0: diff <= -margin
    p_upper = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue  # H0: diff >= +margin
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(1 - 2 * alpha)
    p = float(max(p_lower, p_upper))
    return {"difference": float(a.mean() - b.mean()), "interval": [float(interval.low), float(interval.high)],
            "confidence": 1 - 2 * alpha, "margin": margin, "p_value": p, "alpha": alpha,
            "keras_sd": float(b.std(ddof=1)), "lightning_sd": float(a.std(ddof=1)), "seeds": min(len(a), len(b)),
            "seeds_needed": seeds_needed(keras_acc, lightning_acc, margin, alpha), "passed": bool(p < alpha)}


def seeds_needed(keras_acc: list[float], lightning_acc: list[float], margin: float = MARGIN,
                 alpha: float = ALPHA) -> int | None:
    """The fewest seeds a framework for which the interval, with the measured spreads, is narrower than the
    margin's span: the least that lets the test pass at all (the count and its t quantile change, the spreads
    are taken as measured). None: no spread to go by, or more than ``MOST_SEEDS``."""
    var_k, var_l = np.var(keras_acc, ddof=1), np.var(lightning_acc, ddof=1)
    if not var_k + var_l > 0:
        return None
    n = np.arange(2, MOST_SEEDS + 1)
    df = (n - 1) * (var_k + var_l) ** 2 / (var_k**2 + var_l**2)  # Welch-Satterthwaite, n seeds a side
    width = 2 * stats.t.ppf(1 - alpha, df) * np.sqrt((var_k + var_l) / n)
    enough = np.flatnonzero(width < 2 * margin)
    return int(n[enough[0]]) if len(enough) else None


def too_few_seeds(tost: dict) -> str | None:
    """The sentence that says the seeds were too few for the margin (the interval wider than its span), or None
    where they were not: a narrower interval that fails, fails on the difference."""
    low, high = tost["interval"]
    width, margin = high - low, tost["margin"]
    if not width > 2 * margin:
        return None
    needed = tost.get("seeds_needed")
    about = f" (about {needed} a framework)" if needed else ""
    return (f"the {tost['seeds']} seeds give an interval of width {100 * width:.2f} points, wider than the margin "
            f"+-{100 * margin:.2f} points: more seeds are needed{about}")
