"""parity.json, parity.md and confusion_side_by_side.png: what a reviewer reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from lit_mnist import atomic
from lit_mnist.apps import plots


def write(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "parity.json", json.dumps(result, indent=2) + "\n")
    atomic.write_text(out / "parity.md", markdown(result))
    if "statistics" in result:
        plots.save_png(side_by_side(result), out / "confusion_side_by_side.png")


def _mean_confusion(runs: list[dict]) -> np.ndarray:
    return np.mean([r["confusion"] for r in runs], axis=0)


def side_by_side(result: dict) -> Figure:
    keras_cm = _mean_confusion(result["keras"]["runs"])
    lightning_cm = _mean_confusion(result["lightning"]["runs"])
    k = len(keras_cm)
    side = min(7 + max(0, k - 10) * 0.3, 20)
    fig = plots.figure(figsize=(3 * side, side * 0.93), layout="tight")
    panels = [("Keras (TensorFlow)", keras_cm, "Blues", ".0f"), ("Lightning (PyTorch)", lightning_cm, "Blues", ".0f"),
              ("Lightning - Keras", lightning_cm - keras_cm, "RdBu_r", ".1f")]
    for i, (title, matrix, cmap, fmt) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        centre = 0 if i == 2 else None
        sns.heatmap(matrix, annot=k <= plots.MAX_ANNOTATED, fmt=fmt, cmap=cmap, center=centre, ax=ax, square=True,
                    cbar=i == 2)
        ax.set(xlabel="Predicted", ylabel="True", title=f"{title}, mean of {len(result['keras']['runs'])} seeds")
    return fig


def summary(result: dict, path: Path) -> str:
    """The command's last line: the verdict of each level and, where the seeds were too few for the margin, why."""
    levels = ", ".join(f"{level} {'pass' if result[level]['passed'] else 'FAIL'}" for level in result["levels"])
    too_few = too_few_seeds(result)
    return (f"parity {'PASSED' if result['passed'] else 'FAILED'} ({levels}{'; ' + too_few if too_few else ''}); "
            f"report: {path}")


def too_few_seeds(result: dict) -> str | None:
    return result.get("statistics", {}).get("accuracy", {}).get("too_few_seeds")


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def markdown(r: dict) -> str:
    f, s = r["forward"], r["steps"]
    rows = [
        "| level | measure | Keras | Lightning | limit | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| 1 forward | max abs diff of softmax ({f['n']} test rows) | | {f['max_abs_diff']:.2e} | <= {f['limits']['max_abs_diff']:.0e} | {_verdict(f['passed'])} |",
        f"| 1 forward | argmax agreement | | {f['argmax_agreement']:.4%} | >= {f['limits']['argmax_agreement']:.1%} | |",
        f"| 2 steps | worst relative L2 of all parameters ({s['n']} teacher-forced steps) | | {s['l2_rel_diff']:.2e} | <= {s['limits']['l2_rel_diff']:.0e} | {_verdict(s['passed'])} |",
        f"| 2 steps | worst relative loss difference | | {s['loss_rel_diff']:.2e} | <= {s['limits']['loss_rel_diff']:.0e} | |",
        *([(f"| 2 steps | worst relative difference of the learning rates (each side's own schedule) | | "
            f"{s['learning_rate_rel_diff']:.2e} | <= {s['limits']['learning_rate_rel_diff']:.0e} | |")]
          if "learning_rate_rel_diff" in s else []),
    ]
    if s["has_moving_statistics"]:
        rows.append(f"| 2 steps | worst relative L2 of BatchNormalization's moving statistics | | {s['moving_rel_diff']:.2e} | "
                    f"<= {s['limits']['moving_rel_diff']:.0e} | |")
    if "statistics" in r:
        rows += _seed_rows(r)
    notes = ["Both frameworks compute in float32 on one device, as the original does."]
    if s["dropout_as_identity"]:
        notes.append("Dropout masks cannot be shared across frameworks: level 2 runs dropout as identity (rate 0) in "
                     "both; level 3 trains with it.")
    if "statistics" not in r:
        notes.append("Level 3 (independent trainings over seeds) was not run (--seeds 0).")
    elif r.get("callbacks"):
        notes.append(f"Level 3 trains both sides with the same Keras callbacks: {_items(r['callbacks'])}.")
    too_few = too_few_seeds(r)
    curve = [("| step | Keras loss | torch loss | rel L2 (forced) | rel loss diff | Keras rate | torch rate | "
              "rel L2 (free-running) |"), "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    curve += [f"| {c['step']} | {c['keras_loss']:.5f} | {c['torch_loss']:.5f} | {c['l2_rel_diff']:.2e} | "
              f"{c['loss_rel_diff']:.2e} | {_rate(c, 'keras')} | {_rate(c, 'torch')} | "
              f"{c['free_running_l2_rel_diff']:.2e} |" for c in s["curve"]]
    shape = "x".join(map(str, r["image_shape"]))
    return "\n".join([
        f"# Keras / Lightning parity: {'PASSED' if r['passed'] else 'FAILED'}", "",
        f"Net: {r['net']} ({r['num_classes']} classes, {shape} images).", "",
        (f"Data: {r['data_source']}; {r['train_rows']} training rows (the last part validates), {r['test_rows']} test "
         f"rows; {'standardised' if r['normalize'] else 'raw 0-255'} pixels; {r['epochs']} epochs of batch "
         f"{r['batch_size']} per training; seeds {r['seeds']}. " + " ".join(notes)), "",
        *rows, "",
        f"**Too few seeds**: {too_few} (level 3 fails).\n" if too_few else "",
        ("The equivalence test is two one-sided Welch t-tests: both must reject a difference of the mean "
         "accuracies beyond the margin at 5%, i.e. the 90% interval must lie inside it. The confusion threshold is "
         "Keras's own seed-to-seed variation (mean over all pairs of Keras seeds) times the noise factor; the "
         "Lightning figure is the mean over all Keras/Lightning seed pairs.") if "statistics" in r else "", "",
        "## Teacher-forced steps", "",
        ("Each torch step starts from Keras's state before that step (its weights, its optimizer's slots and step "
         "count); each side computes the step's learning rate from its own schedule. The free-running column (torch left to run "
         "on its own from the same start) is for information: it drifts, as float32 training in two frameworks does."),
        "", *curve, "",
    ])


def _rate(step: dict, side: str) -> str:
    rate = step.get(f"{side}_learning_rate")  # absent from a report written before the rates were compared
    return "" if rate is None else f"{rate:.6g}"


def _seed_rows(r: dict) -> list[str]:
    acc, conf = r["statistics"]["accuracy"], r["confusion"]
    eq = acc["equivalence"]
    keras_acc = ", ".join(f"{a:.4f}" for a in r["keras"]["test_accuracy"])
    lightning_acc = ", ".join(f"{a:.4f}" for a in r["lightning"]["test_accuracy"])
    return [
        f"| 3 trainings | test accuracy per seed | {keras_acc} | {lightning_acc} | in [{acc['band'][0]}, {acc['band'][1]}] | {_verdict(acc['all_in_band'])} |",
        f"| 3 trainings | mean test accuracy (sd) | {acc['keras_mean']:.4f} ({eq['keras_sd']:.4f}) | {acc['lightning_mean']:.4f} ({eq['lightning_sd']:.4f}) | | |",
        f"| 3 trainings | TOST: {eq['confidence']:.0%} interval of the difference (Lightning - Keras) | | [{eq['interval'][0]:+.4f}, {eq['interval'][1]:+.4f}] | within +-{eq['margin']:.4f} (p {eq['p_value']:.3g} < {eq['alpha']}) | {_verdict(eq['passed'])} |",
        f"| 3 trainings | confusion: mean abs diff, row-normalised | seed-to-seed {conf['keras_seed_to_seed']:.5f} | vs Keras {conf['mean_abs_diff']:.5f} | <= {conf['threshold']:.5f} | {_verdict(conf['passed'])} |",
        f"| 3 trainings | top {len(conf['top_pairs']['keras'])} confusions (truth->pred) | {_pairs(conf['top_pairs']['keras'])} | {_pairs(conf['top_pairs']['lightning'])} | >= {conf['min_shared_top_pairs']} in the other's top {conf['within_top']} | {conf['shared_top_pairs']} |",
        *([f"| 3 trainings | epochs run per seed (callbacks) | {_epochs(r['keras'])} | {_epochs(r['lightning'])} | <= {r['epochs']} | |"]
          if r.get("callbacks") else []),
        f"| | fit seconds per seed (median) | {np.median(r['keras']['fit_seconds']):.2f} | {np.median(r['lightning']['fit_seconds']):.2f} | | |",
    ]


def _pairs(pairs: list[list[int]]) -> str:
    return " ".join(f"{i}->{j}" for i, j in pairs)


def _epochs(side: dict) -> str:
    return ", ".join(str(run.get("epochs", "?")) for run in side["runs"])


def _items(callbacks) -> str:
    return ", ".join(f"`{item}`" for item in (callbacks if isinstance(callbacks, list) else [callbacks]))
