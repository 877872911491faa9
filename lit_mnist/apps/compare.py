"""``python scripts/compare.py --out DIR [--seeds S ...] [--only NAME ...] [fit.py's options]``: the original's
next steps, measured side by side.

Each variant is a set of ``fit.py`` options (a shipped config, and options on top of it); options after
compare.py's own go to every variant (``--data.path train.csv``, ``--trainer.accelerator gpu``,
``--trainer.max_epochs 3``, ...). Each trains on the same data with the same seed(s); the command writes
``compare.json``, ``compare.md`` and ``compare.png`` (test accuracy against fit time).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from matplotlib.figure import Figure

from lit_mnist import atomic
from lit_mnist.apps import plots
from lit_mnist.apps.cli import MNISTCLI, make_cli
from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.errors import DataError
from lit_mnist.model import optimizers

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FAST_RECIPE = CONFIGS / "cnn_fast.yaml"
VARIANTS = {
    "dense raw (the original)": [],
    "dense normalised": ["--data.normalize", "true"],
    "dense normalised + augmented": ["--data.normalize", "true", "--data.augment", "true"],
    "cnn normalised (configs/cnn.yaml)": ["--config", str(CONFIGS / "cnn.yaml")],
    "cnn normalised + augmented": ["--config", str(CONFIGS / "cnn.yaml"), "--data.augment", "true"],
    "cnn fast (configs/cnn_fast.yaml)": ["--config", str(FAST_RECIPE)],
}
QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


class CompareCLI(MNISTCLI):
    command = "compare.py"


def variant(options: list[str], seed: int, trainer_defaults: dict | None = None) -> CompareCLI:
    """A variant's model, data and Trainer as ``fit.py`` would build them from ``options``, seeded with ``seed``
    (its weights and its batches' order), writing nothing."""
    args = [*options, "--seed_everything", str(seed), "--data.shuffle_seed", str(seed)]
    return make_cli(CompareCLI, args, __doc__, trainer_defaults={**QUIET, **(trainer_defaults or {})},
                    save_config_callback=None)


def train(name: str, options: list[str], seed: int) -> dict:
    cli = variant(options, seed)
    model, data, trainer = cli.model, cli.datamodule, cli.trainer
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    trainer.test(model, datamodule=data, verbose=False)
    accuracy = float(trainer.callback_metrics["test/acc"])
    n = len(data.splits["test"][1])
    hp = model.hparams
    return {"seed": seed, "test_accuracy": accuracy, "errors": round((1 - accuracy) * n), "test_rows": n,
            "fit_seconds": seconds, "parameters": sum(p.numel() for p in model.net.parameters()),
            "data_source": data.data_source, "epochs": trainer.max_epochs, "batch_size": data.hparams.batch_size,
            "schedule": _schedule(hp), "device": str(model.device)}


def summarise(name: str, options: list[str], runs: list[dict]) -> dict:
    first = runs[0]
    return {"name": name, "options": options, "runs": runs, "epochs": first["epochs"], "batch_size": first["batch_size"],
            "schedule": first["schedule"], "parameters": first["parameters"],
            "test_accuracy": statistics.mean(r["test_accuracy"] for r in runs),
            "errors": statistics.mean(r["errors"] for r in runs),
            "fit_seconds": statistics.median(r["fit_seconds"] for r in runs)}


def _schedule(hp) -> str:
    """The learning rate in a few words: a number, or the schedule's name and its starting (or peak) rate."""
    rate = optimizers.learning_rate(hp.optimizer)
    if not isinstance(rate, dict):
        return f"{rate}"
    (name, args), = rate.items()
    if name == "one_cycle":
        return f"one-cycle, peak {args['max_lr']}"
    if name == "exponential_decay" and args["decay_steps"] == "epoch" and args["staircase"]:
        return f"{args['initial_learning_rate']} x {args['decay_rate']}/epoch"
    return f"{name.replace('_', ' ')} from {args.get('initial_learning_rate', args.get('values', ['?'])[0])}"


def markdown(rows: list[dict]) -> str:
    run = rows[0]["runs"][0]
    lines = [f"# Variants ({run['data_source']}, {run['test_rows']} test rows; {run['device']})", "",
             "| variant | epochs | batch | learning rate | test accuracy | errors | parameters | fit seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['epochs']} | {r['batch_size']} | {r['schedule']} | {r['test_accuracy']:.2%} | "
              f"{r['errors']:.0f} | {r['parameters']:,} | {r['fit_seconds']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict]) -> Figure:
    fig = plots.figure(figsize=(8, 5), layout="tight")
    ax = fig.add_subplot()
    middle = statistics.median(r["fit_seconds"] for r in rows)
    for r in rows:
        ax.scatter(r["fit_seconds"], 100 * r["test_accuracy"], s=60)
        right = r["fit_seconds"] > middle  # labels of the right-hand points go to their left, inside the axes
        ax.annotate(r["name"], (r["fit_seconds"], 100 * r["test_accuracy"]), textcoords="offset points",
                    xytext=(-8 if right else 6, -10), ha="right" if right else "left", fontsize=8)
    ax.set(xscale="log", xlabel="fit seconds (log scale)", ylabel="test accuracy (%)",
           title="Test accuracy against training time")
    ax.grid(alpha=0.3)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="compare.py", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.json, compare.md, compare.png")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds trained per variant (mean reported)")
    parser.add_argument("--only", nargs="+", help="names (or prefixes) of the variants to run; default: all")
    args, options = parser.parse_known_args(argv)
    chosen = {name: opts for name, opts in VARIANTS.items() if not args.only or any(name.startswith(o) for o in args.only)}
    if not chosen:
        raise DataError(f"--only {' '.join(args.only)}: no such variant; they are: {'; '.join(VARIANTS)}")
    for opts in chosen.values():  # every variant's options are checked before anything trains
        variant([*opts, *options], args.seeds[0])
    rows = []
    for name, opts in chosen.items():
        runs = [train(name, [*opts, *options], seed) for seed in args.seeds]
        rows.append(summarise(name, [*opts, *options], runs))
        print(f"{name:36s} {rows[-1]['test_accuracy']:.2%}  {rows[-1]['fit_seconds']:.1f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out / "compare.json", json.dumps({"variants": rows}, indent=2) + "\n")
    atomic.write_text(args.out / "compare.md", markdown(rows))
    plots.save_png(figure(rows), args.out / "compare.png")
    print(f"written: {args.out / 'compare.md'}")
    return 0
