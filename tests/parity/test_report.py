"""parity.md and the command's last line, from made-up results: the seeds too few for the margin said in words
(the verdict still a failure), and the callbacks both sides trained with."""

from pathlib import Path

import numpy as np

from parity import report, tost

SEEDS = 3
LIMITS = {"max_abs_diff": 1e-4, "argmax_agreement": 0.999, "l2_rel_diff": 1e-4, "loss_rel_diff": 1e-4}


def result(keras_acc: list[float], lightning_acc: list[float], callbacks=None) -> dict:
    """A parity.json whose levels 1 and 2 pass and whose level 3 is these accuracies' equivalence test."""
    eq = tost.equivalence(keras_acc, lightning_acc)
    confusion = np.eye(4, dtype=int).tolist()
    runs = [{"seed": s, "test_accuracy": a, "confusion": confusion, "fit_seconds": 1.0, "epochs": 2}
            for s, a in enumerate(keras_acc)]
    accuracy = {"keras_mean": float(np.mean(keras_acc)), "lightning_mean": float(np.mean(lightning_acc)),
                "band": [0.6, 1.0], "all_in_band": True, "equivalence": eq, "too_few_seeds": tost.too_few_seeds(eq),
                "passed": eq["passed"]}
    return {
        "net": "dense -> dense", "num_classes": 4, "image_shape": [12, 12], "normalize": False, "epochs": 3,
        "batch_size": 500, "data_source": "digits.csv", "train_rows": 1200, "test_rows": 300,
        "seeds": list(range(SEEDS)), "callbacks": callbacks, "passed": False,
        "levels": ["forward", "steps", "statistics"],
        "forward": {"n": 300, "max_abs_diff": 1e-6, "argmax_agreement": 1.0, "limits": LIMITS, "passed": True},
        "steps": {"n": 2, "l2_rel_diff": 1e-7, "loss_rel_diff": 1e-7, "limits": LIMITS, "passed": True,
                  "has_moving_statistics": False, "dropout_as_identity": False, "curve": []},
        "statistics": {"accuracy": accuracy, "passed": False},
        "confusion": {"keras_seed_to_seed": 0.001, "mean_abs_diff": 0.001, "threshold": 0.0015, "passed": True,
                      "top_pairs": {"keras": [[0, 1]], "lightning": [[0, 1]]}, "min_shared_top_pairs": 1,
                      "within_top": 10, "shared_top_pairs": 1},
        "keras": {"test_accuracy": keras_acc, "fit_seconds": [1.0] * SEEDS, "runs": runs},
        "lightning": {"test_accuracy": lightning_acc, "fit_seconds": [1.0] * SEEDS, "runs": runs},
    }


WIDE = result([0.93, 0.95, 0.94], [0.95, 0.93, 0.94])  # equal means, an interval of ~3.5 points
NARROW = result([0.940, 0.9401, 0.9402], [0.950, 0.9501, 0.9502])  # a point apart, an interval of ~0.03 points


def test_seeds_too_few_for_the_margin_are_said_in_the_report_and_the_last_line():
    sentence = WIDE["statistics"]["accuracy"]["too_few_seeds"]
    assert sentence.startswith("the 3 seeds give an interval of width 3.") and "more seeds are needed (about" in sentence
    text = report.markdown(WIDE)
    assert text.startswith("# Keras / Lightning parity: FAILED") and f"**Too few seeds**: {sentence}" in text
    line = report.summary(WIDE, Path("out/parity.md"))
    assert line == f"parity FAILED (forward pass, steps pass, statistics FAIL; {sentence}); report: out/parity.md"


def test_companion_a_narrow_interval_that_fails_has_no_such_sentence():
    assert not NARROW["statistics"]["accuracy"]["equivalence"]["passed"]
    assert "Too few seeds" not in report.markdown(NARROW) and "seeds are needed" not in report.markdown(NARROW)
    assert report.summary(NARROW, Path("p.md")) == "parity FAILED (forward pass, steps pass, statistics FAIL); report: p.md"


def test_the_callbacks_both_sides_trained_with_and_the_epochs_they_ran_are_in_the_report():
    items = [{"early_stopping": {"monitor": "val_loss", "patience": 1}}]
    text = report.markdown(result([0.93, 0.95, 0.94], [0.95, 0.93, 0.94], items))
    assert "the same Keras callbacks: `{'early_stopping': {'monitor': 'val_loss', 'patience': 1}}`" in text
    assert "| 3 trainings | epochs run per seed (callbacks) | 2, 2, 2 | 2, 2, 2 | <= 3 | |" in text
    assert "epochs run per seed" not in report.markdown(WIDE)
