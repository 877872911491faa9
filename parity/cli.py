"""``python scripts/parity.py --out DIR [fit.py's options]``: run the three parity levels; exit 1 if any fails.

The net, the data and the training are ``fit.py``'s options (``--config``, ``--model.layers``, ``--data.*``,
``--trainer.max_epochs``, ...): the Keras twin is built from the same layer list and trained alike.
"""

from __future__ import annotations

import time
from pathlib import Path

from lit_mnist.apps.cli import MNISTCLI, check_settable_lr, make_cli
from lit_mnist.data.datamodule import MNISTDataModule, keras_validation_split
from lit_mnist.errors import DataError
from parity import forward, report, statistics, steps
from parity.twins import Twins


class ParityCLI(MNISTCLI):
    command = "parity.py"

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--out", type=Path, required=True, help="folder for parity.json, parity.md and the figure")
        parser.add_argument("--seeds", type=int, default=10,
                            help="trainings per framework at level 3 (at least 3; 0 runs only levels 1 and 2)")
        parser.add_argument("--margin", type=float, default=statistics.MARGIN,
                            help="equivalence margin of the mean test accuracies, as a fraction (0.005: +-0.5 points)")
        parser.add_argument("--band", type=tuple[float, float] | None, default=None,
                            help="every accuracy must lie in [low, high] (default: from halfway between chance, "
                                 "1/K, and 1, up to 1)")
        parser.add_argument("--steps", type=int, default=20, help="teacher-forced training steps compared")

    def instantiate_trainer(self, **kwargs):
        return None  # each training makes its own; the Trainer options are read from the config


def _check(cli: ParityCLI, datamodule: MNISTDataModule) -> None:
    config = cli.config
    if config.seeds != 0 and config.seeds < 3:
        raise DataError("--seeds must be 0 (levels 1 and 2 only) or at least 3 (seed-to-seed variation needs pairs)")
    if config.steps < 1 or not 0 < config.margin < 1:
        raise DataError("--steps must be positive and --margin in (0, 1)")
    if not (config.trainer.max_epochs or 0) >= 1:
        raise DataError("--trainer.max_epochs must be at least 1: each training of level 3 runs that many epochs")
    if "torch_adam" in cli.model.hparams.optimizer:
        raise DataError("--model.optimizer torch_adam is torch's Adam, which Keras has no twin of: parity compares "
                        "Keras's optimizers (adam, with the epsilon wanted: {adam: {epsilon: 1.0e-8}})")
    if datamodule.hparams.augment:
        raise DataError("--data.augment: the Keras twin has no such augmentation; compare without it")
    train_rows = len(datamodule.splits["train"][0])
    batches = -(-train_rows // datamodule.hparams.batch_size)
    if config.steps > batches:
        raise DataError(f"--steps {config.steps}: one epoch of the {train_rows} training rows is {batches} "
                        f"batch{'es' * (batches > 1)} of {datamodule.hparams.batch_size}; use --steps {batches} or fewer")


def run(datamodule: MNISTDataModule, twins: Twins, seeds: int, n_steps: int, margin: float = statistics.MARGIN,
        band: tuple[float, float] | None = None) -> dict:
    x_part, y_part = (t.numpy() for t in datamodule.train_part)
    cut = keras_validation_split(len(x_part), datamodule.hparams.val_split)
    train, val = (x_part[:cut], y_part[:cut]), (x_part[cut:], y_part[cut:])  # as Keras's validation_split cuts
    x_test, y_test = (t.numpy() for t in datamodule.splits["test"])
    keras_runs, lightning_runs = [], []
    first_keras = None
    for seed in range(seeds):  # alternate the frameworks so that machine noise hits both alike
        record, model = statistics.train_keras(twins, train, val, (x_test, y_test), seed)
        keras_runs.append(record)
        if first_keras is None:  # the forward level checks the first trained Keras model
            first_keras = model
        lightning_runs.append(statistics.train_lightning(datamodule, seed, twins))
    if first_keras is None:  # no trainings: the forward level checks an untrained twin
        first_keras = twins.keras(0)
    band = tuple(band or statistics.default_band(twins.num_classes))
    result = {
        "net": twins.name,
        "layers": twins.options.get("layers"),
        "num_classes": twins.num_classes,
        "image_shape": list(twins.image_shape),
        "normalize": twins.pixel_stats is not None,
        "epochs": twins.epochs,
        "batch_size": twins.batch_size,
        "data_source": datamodule.data_source,
        "train_rows": len(x_part),
        "test_rows": len(x_test),
        "seeds": list(range(seeds)),
        "callbacks": twins.callbacks,
        "forward": forward.forward_parity(first_keras, x_test, twins.lightning()),
        "steps": steps.step_parity((x_part, y_part), datamodule.splits["train"], twins, steps=n_steps,
                                   val_split=datamodule.hparams.val_split),
    }
    levels = ["forward", "steps"]
    if seeds:
        verdict = statistics.compare(keras_runs, lightning_runs, band, margin)
        result["confusion"] = verdict.pop("confusion")  # parity.json's confusion.* fields
        result["statistics"] = verdict
        for name, runs in (("keras", keras_runs), ("lightning", lightning_runs)):
            result[name] = {"test_accuracy": [r["test_accuracy"] for r in runs],
                            "fit_seconds": [r["fit_seconds"] for r in runs], "runs": runs}
        result["seconds"] = {name: sum(result[name]["fit_seconds"]) for name in ("keras", "lightning")}
        levels.append("statistics")
    result["levels"] = levels
    result["passed"] = all(result[level]["passed"] for level in levels)
    return result


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    cli = make_cli(ParityCLI, argv, __doc__.split("\n\n")[0].strip("`"), trainer_defaults={"logger": False})
    datamodule, config = cli.datamodule, cli.config
    _check(cli, datamodule)
    trainer = config.trainer
    check_settable_lr(cli.keras_callbacks, cli.model)  # as fit.py, before any training
    twins = Twins.of(cli.model, datamodule.pixel_stats, trainer.max_epochs, datamodule.hparams.batch_size,
                     trainer.check_val_every_n_epoch or 1, config.get("callbacks"))
    result = run(datamodule, twins, config.seeds, config.steps, config.margin, config.band)
    result["total_seconds"] = time.perf_counter() - start
    report.write(config.out, result)
    print(report.summary(result, config.out / "parity.md"))
    return 0 if result["passed"] else 1
