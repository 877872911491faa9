"""``python scripts/fit.py``: train with the original settings, test, write the run's artifacts.

LightningCLI gives every Trainer option, ``--config`` YAML and ``--print_config`` for free.
Bad input ends the run with ``error: ...`` on one line and exit code 2, before anything is written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ModelSummary, ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from lit_mnist.apps.checkpoints import AtomicCheckpointIO, check_resumable
from lit_mnist.apps.cli import MNISTCLI, make_cli
from lit_mnist.apps.entry import leave_together, quiet_process
from lit_mnist.apps.interrupt import GracefulInterrupt
from lit_mnist.apps.report import RunReport
from lit_mnist.apps.summary import LayerSummary
from lit_mnist.compat import tensorboard_without_tensorflow
from lit_mnist.errors import DataError


class CommandSettings(Callback):
    """Carries the command's process settings (``entry.quiet_process``, and TensorBoard's writer without
    TensorFlow) into the processes that a spawning strategy (``ddp_spawn``) starts: fresh interpreters that run
    no command but unpickle the Trainer, this callback with it, before anything creates the logger's writer (the
    first hook, ``setup``, is too late). Constructing it applies the settings, and unpickling constructs it anew."""

    def __init__(self) -> None:
        quiet_process()
        tensorboard_without_tensorflow()

    def __reduce__(self):
        return (type(self), ())


class FitCLI(MNISTCLI):
    command = "fit.py"

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.groups["checkpoint"].title = "Checkpoints (Lightning's ModelCheckpoint; last.ckpt resumes a run)"
        parser.set_defaults({"checkpoint.save_last": True})
        parser.add_lightning_class_args(RunReport, "report")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="checkpoint to resume from ('last')")

    def instantiate_trainer(self, **kwargs):
        config = self.config_init.get("trainer", {})
        callbacks = list(config.get("callbacks") or [])
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            # Lightning's default (Rich, when rich is installed) redraws at every step, costing the fit time
            callbacks.append(TQDMProgressBar(refresh_rate=10))
        if config.get("enable_model_summary") is not False and not any(isinstance(c, ModelSummary) for c in callbacks):
            callbacks.append(LayerSummary())  # each layer's sizes, parameters and (in a graph) inputs
        self.interrupt = GracefulInterrupt()
        kwargs["callbacks"] = [*callbacks, self.interrupt, CommandSettings()]
        if not config.get("plugins"):
            kwargs["plugins"] = [AtomicCheckpointIO()]
        root = Path(config.get("default_root_dir") or os.getcwd())  # where the runs go, as the Trainer's default
        self.resume_from = self._resume_point(root)
        # every input is checked before the Trainer exists (the data were loaded to size the model): a refusal is
        # then the command's only line
        _check_writable(root)
        if config.get("logger") in (None, True):
            # Lightning's default logger, without its hp_metric placeholder (-1): RunReport logs the real one;
            # a resumed run logs on into the directory of the run it continues
            version = Path(self.resume_from).parents[1].name if self.config_init.get("ckpt_path") == "last" else None
            logger = TensorBoardLogger(save_dir=str(root), version=version, default_hp_metric=False)
            # the run's version is chosen now, in the process the user started: a spawning strategy fits and
            # tests in two launches, and each would otherwise pick a new version_N for its half of the run
            logger.version  # noqa: B018 (the property chooses and keeps it)
            kwargs["logger"] = logger
        return super().instantiate_trainer(**kwargs)

    def _resume_point(self, root: Path) -> str | None:
        """The checkpoint ``--ckpt_path`` continues, checked before anything trains: ``last`` is the newest run's
        last.ckpt (the logger then continues that run's directory); ``hpc`` is left to Lightning (SLURM's)."""
        ckpt_path = self.config_init.get("ckpt_path")
        if ckpt_path in (None, "hpc"):
            return ckpt_path
        if ckpt_path == "best":  # Lightning's name for a test's checkpoint: a fit has no best one before it starts
            raise DataError("--ckpt_path best: a run continues from 'last' or from a checkpoint file")
        if ckpt_path == "last":
            found = sorted(root.glob("lightning_logs/version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
            if not found:
                raise DataError(f"{root}: nothing to resume (no lightning_logs/version_*/checkpoints/last.ckpt)")
            ckpt_path = str(found[-1])
        check_resumable(ckpt_path, self.model)  # else Lightning's traceback, after the data is prepared
        return ckpt_path


def _check_writable(root: Path) -> None:
    """The runs' folder must be a folder we can create and write in: else a one-line error, not a traceback
    from deep inside the logger. Nothing is created here: the Trainer, made next, may still refuse its options."""
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: is a file; the runs' folder (--trainer.default_root_dir) must be a folder")
    folder = root.absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise DataError(f"{root}: cannot create the runs' folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" ({existing})"
        raise DataError(f"{root}: the runs' folder{where} is not writable")


def _make_cli(args: list[str] | None) -> FitCLI:
    return make_cli(FitCLI, args, "Train a classifier of digit-like images (by default the original Keras "
                    "notebook's model), test it, and write the run's metrics.json, figures, checkpoints and "
                    "TensorBoard logs.", save_config_kwargs={"overwrite": True})


def main(args: list[str] | None = None) -> int:
    cli = None
    try:
        cli = _make_cli(args)
        data, model, trainer = cli.datamodule, cli.model, cli.trainer
        trainer.fit(model, datamodule=data, ckpt_path=cli.resume_from)
        trainer.test(model, datamodule=data, verbose=False)
    except SystemExit:  # Lightning ends an interrupted fit with sys.exit(1)
        saved = getattr(getattr(cli, "interrupt", None), "saved_to", None)
        if saved is None:
            raise
        print(f"interrupted: resumable checkpoint {saved}; continue with the same options and --ckpt_path last",
              file=sys.stderr)
        return 130
    run_dir = Path(trainer.log_dir)  # a collective on several devices: every rank asks
    leave_together(trainer)
    if not trainer.is_global_zero:  # rank 0 alone speaks for the run
        return 0
    accuracy = float(trainer.callback_metrics["test/acc"])
    n = len(data.splits["test"][0])
    print(f"test accuracy {accuracy:.4f} on {n} images ({data.data_source}); run directory: {run_dir}")
    return 0
