"""``python scripts/parity.py --out DIR``: run the three parity levels; exit 1 if any fails."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lit_mnist.data.datamodule import MNISTDataModule
from parity import forward, report, statistics, steps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="parity.py", description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder for parity.json, parity.md and the figure")
    parser.add_argument("--seeds", type=int, default=3, help="seeds trained per framework (at least 3)")
    parser.add_argument("--steps", type=int, default=20, help="teacher-forced training steps compared")
    parser.add_argument("--data.path", dest="path", help="CSV to use instead of built-in MNIST")
    parser.add_argument("--data.test_path", dest="test_path", help="a second CSV as the test set")
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be at least 3 (seed-to-seed variation needs pairs)")
    return args


def load_data(path: str | None, test_path: str | None) -> MNISTDataModule:
    datamodule = MNISTDataModule(path=path, test_path=test_path)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def run(datamodule: MNISTDataModule, seeds: int, n_steps: int) -> dict:
    x_part, y_part = (t.numpy() for t in datamodule.train_part)
    x_test, y_test = (t.numpy() for t in datamodule.splits["test"])
    keras_runs, lightning_runs, first_keras = [], [], None
    for seed in range(seeds):  # alternate the frameworks so that machine noise hits both alike
        record, model = statistics.train_keras((x_part, y_part), (x_test, y_test), seed)
        keras_runs.append(record)
        if first_keras is None:  # the forward level checks the first trained Keras model
            first_keras = model
        lightning_runs.append(statistics.train_lightning(datamodule, seed))
    result = {
        "data_source": datamodule.data_source,
        "train_rows": len(x_part),
        "test_rows": len(x_test),
        "seeds": list(range(seeds)),
        "forward": forward.forward_parity(first_keras, x_test),
        "steps": steps.step_parity((x_part, y_part), datamodule.splits["train"], steps=n_steps),
    }
    verdict = statistics.compare(keras_runs, lightning_runs)
    result["confusion"] = verdict.pop("confusion")  # parity.json's confusion.* fields
    result["statistics"] = verdict
    for name, runs in (("keras", keras_runs), ("lightning", lightning_runs)):
        result[name] = {"test_accuracy": [r["test_accuracy"] for r in runs],
                        "fit_seconds": [r["fit_seconds"] for r in runs], "runs": runs}
    result["seconds"] = {name: sum(result[name]["fit_seconds"]) for name in ("keras", "lightning")}
    result["passed"] = all(result[level]["passed"] for level in ("forward", "steps", "statistics"))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    datamodule = load_data(args.path, args.test_path)
    result = run(datamodule, args.seeds, args.steps)
    result["total_seconds"] = time.perf_counter() - start
    report.write(args.out, result)
    levels = ", ".join(f"{level} {'pass' if result[level]['passed'] else 'FAIL'}"
                       for level in ("forward", "steps", "statistics"))
    print(f"parity {'PASSED' if result['passed'] else 'FAILED'} ({levels}); report: {args.out / 'parity.md'}")
    return 0 if result["passed"] else 1
