"""Level 3, statistical parity: both frameworks trained independently over several seeds.

* **Equivalence of mean accuracy**: a two one-sided Welch t-test (TOST) must put the difference of the
  mean test accuracies (Lightning - Keras) within +-``margin`` at 95%: both one-sided tests reject a
  difference beyond the margin, i.e. the 90% confidence interval of the difference lies inside it.
  Equal means are not assumed; they have to be shown, and too few seeds fail (too wide an interval): where
  no result could have passed, the verdict says so in words (parity/tost.py).
* **Sanity band**: every single accuracy in a band, stated with each run (by default from halfway between
  chance, 1/K for K classes, and a perfect score, up to 1).
* **Confusion structure**: the noise floor is Keras's own seed-to-seed variation, the mean absolute
  difference between row-normalised confusion matrices of two Keras seeds (averaged over all pairs);
  Lightning-vs-Keras pairs may differ by at most ``NOISE_FACTOR`` times that, and the most frequent
  confusions must be largely the same: at least ``MIN_SHARED_PAIRS`` of each framework's top
  ``TOP_PAIRS`` among the other's top ``WITHIN_TOP`` (the middle of a top-5 is near-tied, so exact
  top-5 membership swaps with the seeds).
"""

from __future__ import annotations

import itertools

import lightning as L
import numpy as np
from sklearn.metrics import confusion_matrix

from lit_mnist.apps.callbacks import keras_callbacks as keras_items
from lit_mnist.apps.timed_fit import timed_fit
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST
from parity import callbacks, keras_reference
from parity.tost import ALPHA, MARGIN, equivalence, too_few_seeds
from parity.twins import ORIGINAL, Twins

__all__ = ["ALPHA", "MARGIN", "compare", "equivalence", "too_few_seeds", "train_keras", "train_lightning"]

NOISE_FACTOR = 1.5
TOP_PAIRS, WITHIN_TOP, MIN_SHARED_PAIRS = 5, 10, 3


def default_band(num_classes: int) -> tuple[float, float]:
    """Accuracies a training that learned anything reaches: from halfway between chance and perfect, to 1."""
    chance = 1 / num_classes
    return (round(chance + (1 - chance) / 2, 4), 1.0)


def train_keras(twins: Twins, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray], seed: int):
    """One seed of the Keras twin's training; returns (its run record, the trained model)."""
    per_call = 1 if callbacks.batch_checked(twins.callbacks) else keras_reference.STEPS_PER_EXECUTION
    model = twins.keras(seed, twins.steps_per_epoch(len(train[0])), per_call)
    seconds = keras_reference.fit(model, twins, train, val, seed=seed,
                                  callbacks=callbacks.keras_callbacks(twins.callbacks))
    predicted = keras_reference.predict(model, test[0]).argmax(1)
    return _record(seed, test[1], predicted, seconds, twins.num_classes, len(model.history.epoch)), model


def train_lightning(datamodule: MNISTDataModule, seed: int, twins: Twins = ORIGINAL, **options) -> dict:
    """One seed of the Lightning twin (``options``: other LitMNIST arguments, for deliberate breakages), with the
    twins' Keras callbacks as items, made anew."""
    L.seed_everything(seed, verbose=False)
    datamodule.hparams.shuffle_seed = seed
    module: LitMNIST = twins.lightning(**options)
    seconds, trainer = timed_fit(module, datamodule, twins.epochs, check_val_every_n_epoch=twins.validation_freq,
                                 callbacks=keras_items(twins.callbacks))
    confusion = module.test_confusion.compute().numpy().astype(int)
    return {"seed": seed, "test_accuracy": float(np.trace(confusion) / confusion.sum()),
            "confusion": confusion.tolist(), "fit_seconds": seconds, "epochs": trainer.current_epoch}


def _record(seed: int, truth: np.ndarray, predicted: np.ndarray, seconds: float, num_classes: int,
            epochs: int) -> dict:
    confusion = confusion_matrix(truth, predicted, labels=range(num_classes))
    return {"seed": seed, "test_accuracy": float(np.trace(confusion) / confusion.sum()),
            "confusion": confusion.tolist(), "fit_seconds": seconds, "epochs": epochs}


def row_normalised(confusion) -> np.ndarray:
    c = np.asarray(confusion, dtype=float)
    return c / np.maximum(c.sum(axis=1, keepdims=True), 1)


def mean_abs_diff(a, b) -> float:
    return float(np.abs(row_normalised(a) - row_normalised(b)).mean())


def top_pairs(runs: list[dict], k: int = TOP_PAIRS) -> list[list[int]]:
    """The k most frequent confusions (truth, predicted), counted over all seeds (fewer with fewer classes)."""
    total = np.sum([r["confusion"] for r in runs], axis=0)
    np.fill_diagonal(total, -1)
    k = min(k, len(total) * (len(total) - 1))
    order = np.argsort(total, axis=None, kind="stable")[::-1][:k]
    return [[int(i), int(j)] for i, j in zip(*np.unravel_index(order, total.shape))]


def confusion_structure(keras_runs: list[dict], lightning_runs: list[dict]) -> dict:
    within = [mean_abs_diff(a["confusion"], b["confusion"]) for a, b in itertools.combinations(keras_runs, 2)]
    across = [mean_abs_diff(a["confusion"], b["confusion"]) for a in keras_runs for b in lightning_runs]
    threshold = NOISE_FACTOR * float(np.mean(within))
    pairs_k, pairs_l = top_pairs(keras_runs), top_pairs(lightning_runs)
    wide_k, wide_l = top_pairs(keras_runs, WITHIN_TOP), top_pairs(lightning_runs, WITHIN_TOP)
    shared = min(sum(p in wide_l for p in pairs_k), sum(p in wide_k for p in pairs_l))
    needed = min(MIN_SHARED_PAIRS, len(pairs_k))
    return {"mean_abs_diff": float(np.mean(across)), "threshold": threshold,
            "keras_seed_to_seed": float(np.mean(within)), "noise_factor": NOISE_FACTOR,
            "top_pairs": {"keras": pairs_k, "lightning": pairs_l}, "shared_top_pairs": shared,
            "min_shared_top_pairs": needed, "within_top": WITHIN_TOP,
            "passed": float(np.mean(across)) <= threshold and shared >= needed}


def compare(keras_runs: list[dict], lightning_runs: list[dict], band: tuple[float, float], margin: float = MARGIN) -> dict:
    keras_acc = [r["test_accuracy"] for r in keras_runs]
    lightning_acc = [r["test_accuracy"] for r in lightning_runs]
    in_band = all(band[0] <= a <= band[1] for a in keras_acc + lightning_acc)
    tost = equivalence(keras_acc, lightning_acc, margin)
    confusion = confusion_structure(keras_runs, lightning_runs)
    return {
        "accuracy": {"keras_mean": float(np.mean(keras_acc)), "lightning_mean": float(np.mean(lightning_acc)),
                     "band": list(band), "all_in_band": in_band, "equivalence": tost,
                     "too_few_seeds": too_few_seeds(tost),
                     "passed": in_band and tost["passed"]},
        "confusion": confusion,
        "passed": in_band and tost["passed"] and confusion["passed"],
    }
