"""``python scripts/parity.py --out DIR``: run the three parity levels; exit 1 if any fails."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lit_mnist.apps.entry import ArgumentParser, quiet_console
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.errors import DataError
from lit_mnist.model.net import ConvNet
from parity import forward, keras_reference, report, statistics, steps
from parity.twins import Twins

# dense: the original's settings; cnn: as the project trains it (standardised pixels), for 2 epochs, which
# keeps a 10-seed run near 6 minutes on 2 CPU cores (docs/parity.md)
DEFAULT_EPOCHS = {"dense": 15, "cnn": 2}
DEFAULT_NORMALIZE = {"dense": False, "cnn": True}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="parity.py", description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder for parity.json, parity.md and the figure")
    parser.add_argument("--model.arch", dest="arch", choices=sorted(DEFAULT_EPOCHS), default="dense",
                        help="the network compared: dense (the original) or cnn")
    parser.add_argument("--model.stem", dest="stem", choices=ConvNet.STEMS, default="pool",
                        help="the CNN's first block: a conv then 2x2 max-pooling, or the conv at stride 2")
    parser.add_argument("--data.normalize", dest="normalize", type=_boolean,
                        help="both standardise the pixels with the training split's mean and std "
                             "(default: dense raw 0-255, as the original; cnn standardised)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds trained per framework (at least 3)")
    parser.add_argument("--epochs", type=int, help="epochs of each training (default: dense 15, as the original; cnn 2)")
    parser.add_argument("--margin", type=float, default=statistics.MARGIN,
                        help="equivalence margin of the mean test accuracies, as a fraction (0.005: +-0.5 points)")
    parser.add_argument("--steps", type=int, default=20, help="teacher-forced training steps compared")
    parser.add_argument("--data.path", dest="path", help="CSV to use instead of built-in MNIST")
    parser.add_argument("--data.test_path", dest="test_path", help="a second CSV as the test set")
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be at least 3 (seed-to-seed variation needs pairs)")
    if args.stem != "pool" and args.arch != "cnn":
        parser.error(f"--model.stem {args.stem} is the CNN's; add --model.arch cnn")
    if args.epochs is not None and args.epochs < 1 or args.steps < 1 or not 0 < args.margin < 1:
        parser.error("--epochs and --steps must be positive and --margin in (0, 1)")
    if args.normalize is None:
        args.normalize = DEFAULT_NORMALIZE[args.arch]
    return args


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def load_data(path: str | None, test_path: str | None, normalize: bool = False) -> MNISTDataModule:
    datamodule = MNISTDataModule(path=path, test_path=test_path, normalize=normalize)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def check_steps(n_steps: int, train_rows: int) -> None:
    """The teacher-forced steps walk one epoch of the training split: refuse more than it has batches."""
    batches = -(-train_rows // keras_reference.BATCH_SIZE)
    if n_steps > batches:
        raise DataError(f"--steps {n_steps}: one epoch of the {train_rows} training rows is {batches} "
                        f"batch{'es' * (batches > 1)} of {keras_reference.BATCH_SIZE}; use --steps {batches} or fewer")


def run(datamodule: MNISTDataModule, twins: Twins, seeds: int, n_steps: int, margin: float = statistics.MARGIN) -> dict:
    x_part, y_part = (t.numpy() for t in datamodule.train_part)
    x_test, y_test = (t.numpy() for t in datamodule.splits["test"])
    keras_runs, lightning_runs, first_keras = [], [], None
    for seed in range(seeds):  # alternate the frameworks so that machine noise hits both alike
        record, model = statistics.train_keras((x_part, y_part), (x_test, y_test), seed, twins)
        keras_runs.append(record)
        if first_keras is None:  # the forward level checks the first trained Keras model
            first_keras = model
        lightning_runs.append(statistics.train_lightning(datamodule, seed, twins))
    result = {
        "arch": twins.arch,
        "net": twins.name,
        "normalize": twins.pixel_stats is not None,
        "epochs": twins.epochs,
        "data_source": datamodule.data_source,
        "train_rows": len(x_part),
        "test_rows": len(x_test),
        "seeds": list(range(seeds)),
        "forward": forward.forward_parity(first_keras, x_test, twins.lightning()),
        "steps": steps.step_parity((x_part, y_part), datamodule.splits["train"], twins, steps=n_steps),
    }
    verdict = statistics.compare(keras_runs, lightning_runs, twins.arch, margin)
    result["confusion"] = verdict.pop("confusion")  # parity.json's confusion.* fields
    result["statistics"] = verdict
    for name, runs in (("keras", keras_runs), ("lightning", lightning_runs)):
        result[name] = {"test_accuracy": [r["test_accuracy"] for r in runs],
                        "fit_seconds": [r["fit_seconds"] for r in runs], "runs": runs}
    result["seconds"] = {name: sum(result[name]["fit_seconds"]) for name in ("keras", "lightning")}
    result["passed"] = all(result[level]["passed"] for level in ("forward", "steps", "statistics"))
    return result


def main(argv: list[str] | None = None) -> int:
    quiet_console()
    args = parse_args(argv)
    start = time.perf_counter()
    datamodule = load_data(args.path, args.test_path, args.normalize)
    check_steps(args.steps, len(datamodule.splits["train"][0]))
    twins = Twins(args.arch, datamodule.pixel_stats, args.epochs or DEFAULT_EPOCHS[args.arch], args.stem)
    result = run(datamodule, twins, args.seeds, args.steps, args.margin)
    result["total_seconds"] = time.perf_counter() - start
    report.write(args.out, result)
    levels = ", ".join(f"{level} {'pass' if result[level]['passed'] else 'FAIL'}"
                       for level in ("forward", "steps", "statistics"))
    print(f"parity {'PASSED' if result['passed'] else 'FAILED'} ({levels}); report: {args.out / 'parity.md'}")
    return 0 if result["passed"] else 1
