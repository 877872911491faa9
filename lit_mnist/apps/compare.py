"""``python scripts/compare.py --out DIR``: the original's next steps, measured side by side.

Trains each variant on built-in MNIST (48,000 train / 12,000 validation / the official 10,000 test)
with the same seed(s) and writes ``compare.json``, ``compare.md`` and ``compare.png`` (test accuracy
against fit time).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from matplotlib.figure import Figure

from lit_mnist import atomic
from lit_mnist.apps import plots
from lit_mnist.apps.entry import ArgumentParser, quiet_console
from lit_mnist.apps.timed_fit import timed_fit
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.errors import DataError
from lit_mnist.model.module import LitMNIST


@dataclass(frozen=True)
class Variant:
    name: str
    arch: str
    normalize: bool
    augment: bool
    batch_size: int
    epochs: int
    lr_decay: float = 1.0
    options: dict = field(default_factory=dict)  # more LitMNIST arguments
    trainer: dict = field(default_factory=dict)  # more Trainer arguments (a recipe's validation interval)


FAST_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "cnn_fast.yaml"


def fast_recipe() -> Variant:
    """The shipped ``fit.py --config lit_mnist/configs/cnn_fast.yaml``, as a variant."""
    recipe = yaml.safe_load(FAST_RECIPE.read_text())
    model, trainer = dict(recipe["model"]), dict(recipe["trainer"])
    return Variant("cnn fast (configs/cnn_fast.yaml)", model.pop("arch"), recipe["data"]["normalize"], False,
                   recipe["data"]["batch_size"], trainer.pop("max_epochs"), options=model, trainer=trainer)


def variants(dense_epochs: int, cnn_epochs: int) -> list[Variant]:
    return [
        Variant("dense raw (the original)", "dense", False, False, 500, dense_epochs),
        Variant("dense normalised", "dense", True, False, 500, dense_epochs),
        Variant("dense normalised + augmented", "dense", True, True, 500, dense_epochs),
        Variant("cnn normalised", "cnn", True, False, 128, cnn_epochs, lr_decay=0.8),
        Variant("cnn normalised + augmented", "cnn", True, True, 128, cnn_epochs, lr_decay=0.8),
        fast_recipe(),
    ]


def variant_module(variant: Variant) -> LitMNIST:
    """The LitMNIST a variant trains."""
    return LitMNIST(arch=variant.arch, normalize=variant.normalize, lr_decay=variant.lr_decay, **variant.options)


def train(variant: Variant, seed: int, accelerator: str = "auto", path: str | None = None) -> dict:
    L.seed_everything(seed, verbose=False)
    data = MNISTDataModule(path=path, batch_size=variant.batch_size, normalize=variant.normalize,
                           augment=variant.augment, shuffle_seed=seed)
    data.prepare_data()
    data.setup("fit")
    model = variant_module(variant)
    seconds, trainer = timed_fit(model, data, variant.epochs, accelerator, **variant.trainer)
    accuracy = float(trainer.callback_metrics["test/acc"])
    n = len(data.splits["test"][1])
    return {"seed": seed, "test_accuracy": accuracy, "errors": round((1 - accuracy) * n), "test_rows": n,
            "fit_seconds": seconds, "parameters": sum(p.numel() for p in model.net.parameters()),
            "data_source": data.data_source}


def summarise(variant: Variant, runs: list[dict]) -> dict:
    return {**asdict(variant), "runs": runs,
            "test_accuracy": statistics.mean(r["test_accuracy"] for r in runs),
            "errors": statistics.mean(r["errors"] for r in runs),
            "fit_seconds": statistics.median(r["fit_seconds"] for r in runs),
            "parameters": runs[0]["parameters"]}


def markdown(rows: list[dict], device: str) -> str:
    lines = [f"# Variants on MNIST ({rows[0]['runs'][0]['data_source']}, {rows[0]['runs'][0]['test_rows']} test digits; {device})", "",
             "| variant | epochs | batch | learning rate | test accuracy | errors | parameters | fit seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['epochs']} | {r['batch_size']} | {_schedule(r)} | {r['test_accuracy']:.2%} | "
              f"{r['errors']:.0f} | {r['parameters']:,} | {r['fit_seconds']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def _schedule(r: dict) -> str:
    options = r.get("options", {})
    if options.get("one_cycle"):
        return f"one-cycle, peak {options['lr']}"
    lr = options.get("lr", 1e-3)
    return f"{lr} x {r['lr_decay']}/epoch" if r["lr_decay"] != 1.0 else f"{lr}"


def figure(rows: list[dict]) -> Figure:
    fig = Figure(figsize=(8, 5), layout="tight")
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


def check_accelerator(name: str) -> None:
    """Refuse an accelerator the Trainer cannot use before anything trains, in one line."""
    try:
        L.Trainer(accelerator=name, devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as e:
        raise DataError(f"--accelerator {name}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    quiet_console()
    parser = ArgumentParser(prog="compare.py", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.json, compare.md, compare.png")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds trained per variant (mean reported)")
    parser.add_argument("--dense_epochs", type=int, default=15, help="epochs of the dense variants (the original: 15)")
    parser.add_argument("--cnn_epochs", type=int, default=12, help="epochs of the CNN variants")
    parser.add_argument("--only", nargs="+", help="names (or prefixes) of the variants to run; default: all")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto, as Lightning's Trainer takes it")
    parser.add_argument("--data.path", dest="path", help="a digits CSV instead of built-in MNIST (80/20 split)")
    args = parser.parse_args(argv)
    if min(args.dense_epochs, args.cnn_epochs) < 1:
        raise DataError(f"--dense_epochs and --cnn_epochs must be at least 1, got {args.dense_epochs}, {args.cnn_epochs}")
    every = variants(args.dense_epochs, args.cnn_epochs)
    chosen = [v for v in every if not args.only or any(v.name.startswith(o) for o in args.only)]
    if not chosen:
        raise DataError(f"--only {' '.join(args.only)}: no such variant; they are: {'; '.join(v.name for v in every)}")
    check_accelerator(args.accelerator)
    rows = []
    for variant in chosen:
        runs = [train(variant, seed, args.accelerator, args.path) for seed in args.seeds]
        rows.append(summarise(variant, runs))
        print(f"{variant.name:32s} {rows[-1]['test_accuracy']:.2%}  {rows[-1]['fit_seconds']:.1f} s", flush=True)
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.accelerator != "cpu" else "CPU"
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out / "compare.json", json.dumps({"device": device, "variants": rows}, indent=2) + "\n")
    atomic.write_text(args.out / "compare.md", markdown(rows, device))
    plots.save_png(figure(rows), args.out / "compare.png")
    print(f"written: {args.out / 'compare.md'}")
    return 0
