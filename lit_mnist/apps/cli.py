"""The one configuration system of the commands that train (fit.py, parity.py, compare.py): LightningCLI over
``LitMNIST`` and ``MNISTDataModule``, with the sizes the data imply linked into the model.

``--config run.yaml``, ``--print_config`` and every ``--model.*``, ``--data.*`` and ``--trainer.*`` option work
the same in each command. A refused option is one line (``lit_mnist.apps.entry`` prints it, exit 2).
"""

from __future__ import annotations

from argparse import ArgumentError
from typing import Any

from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lit_mnist.apps.callbacks import KerasReduceLROnPlateau, keras_callbacks, schedule_of
from lit_mnist.apps.callbacks.monitors import check_monitor, translate_lightning_monitors
from lit_mnist.apps.callbacks.reduce_lr_on_plateau import refusal
from lit_mnist.apps.checkpoints import start_from
from lit_mnist.apps.entry import usage_error
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.errors import DataError
from lit_mnist.model import optimizers
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.optimizers import legacy

TRAINER_DEFAULTS = {
    "max_epochs": 15,  # the original: fit(epochs=15, batch_size=500, validation_split=0.2)
    "accelerator": "auto",
    "num_sanity_val_steps": 0,  # Keras runs no sanity pass; neither do we
    "log_every_n_steps": 10,
}


class MNISTCLI(LightningCLI):
    """The datamodule learns the class count, the image shape (and takes the class names); LightningCLI hands
    them to the model when it builds it (``apply_on="instantiate"``), so they are not options of the model."""

    command = "lit-mnist"  # the command's name in its messages

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.normalize", "model.normalize")  # the statistics travel in the model
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.preparation", "model.preparation", apply_on="instantiate")
        # a list, as YAML and the checkpoint keep it (plain data, not a Python tuple)
        parser.link_arguments("data.image_shape", "model.image_shape", compute_fn=list, apply_on="instantiate")
        parser.add_argument("--callbacks", type=list[Any] | None, default=None,
                            help="Keras's callbacks, as fit(callbacks=[...]): a list of items such as "
                            "'[{reduce_lr_on_plateau: {monitor: val_loss, patience: 2}}, csv_logger: history.csv]' "
                            "(docs/training.md; Lightning's own callbacks: --trainer.callbacks)")

    def before_instantiate_classes(self) -> None:
        """The Keras items, every monitor named and the optimizer are checked before the data are read (to size
        the model)."""
        self.keras_callbacks = keras_callbacks(self.config.get("callbacks"))
        _check_lightning_monitors(self.config, self.parser.callback_keys)
        _refuse_lightning_training_options(self.config.get("trainer") or {})
        model = self.config.get("model") or {}
        flat = {key: model.get(key) for key in legacy.FLAT}  # the model's own checks, before the data load
        if not legacy.is_legacy(flat):
            legacy.refuse_flat(flat)
            optimizers.as_item(model.get("optimizer", "adam"))

    def instantiate_classes(self) -> None:
        """The net starts from ``--model.init_from``'s checkpoint, read here, by the command, rather than by the
        model's constructor: the model package reads no file and imports nothing of the commands. (Lightning's
        ``after_instantiate_classes`` hook is newer than the oldest Lightning supported.)"""
        super().instantiate_classes()
        init_from = self.model.hparams.get("init_from")
        if init_from:
            start_from(self.model, init_from)

    def instantiate_trainer(self, **kwargs):
        given = kwargs["callbacks"] if "callbacks" in kwargs else self.config_init.get("trainer", {}).get("callbacks")
        kwargs["callbacks"] = [*(given or []), *getattr(self, "keras_callbacks", [])]
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (TypeError, ImportError) as e:  # the Trainer's other checks of device options (devices=-1 on a
            raise MisconfigurationException(str(e)) from None  # CPU, an accelerator whose package is missing)
        _check_launch(trainer)
        translate_lightning_monitors(trainer.callbacks)
        check_settable_lr(getattr(self, "keras_callbacks", []), self.model)
        return trainer


def _check_lightning_monitors(config, callback_keys) -> None:
    """Lightning's callbacks (``--trainer.callbacks``, and a command's own, fit.py's ``--checkpoint``) monitor
    what the model logs, by its name or Keras's; else one line listing the names, before anything is built."""
    trainer_callbacks = (config.get("trainer") or {}).get("callbacks") or []
    named = [(f"--trainer.callbacks {c.class_path.rsplit('.', 1)[-1]}", c.get("init_args"))
             for c in (trainer_callbacks if isinstance(trainer_callbacks, list) else [trainer_callbacks])
             if hasattr(c, "class_path")]
    named += [(f"--{key}", config.get(key)) for key in callback_keys]
    for where, init_args in named:
        monitor = init_args.get("monitor") if init_args is not None and hasattr(init_args, "get") else None
        if monitor is not None:
            check_monitor(monitor, where)


def check_settable_lr(callbacks, model) -> None:
    """As Keras, reduce_lr_on_plateau refuses a learning rate that a schedule sets: one line, before training."""
    schedule = schedule_of(model)
    reducer = next((c for c in callbacks if isinstance(c, KerasReduceLROnPlateau)), None)
    if schedule is not None and reducer is not None:
        raise DataError(f"callbacks item {reducer.position} (reduce_lr_on_plateau): {refusal(schedule)}")


# Lightning's Trainer options that manual optimization cannot honour, with their Keras spelling
_KERAS_SPELLING = {
    "gradient_clip_val": "clipping is the optimizer's, as in Keras: --model.optimizer '{adam: {clipnorm: 1.0}}' "
                         "(or clipvalue, global_clipnorm)",
    "gradient_clip_algorithm": "clipping is the optimizer's, as in Keras: --model.optimizer '{adam: {clipnorm: 1.0}}' "
                               "(clipnorm: by norm; clipvalue: by value; global_clipnorm: all gradients' norm)",
    "accumulate_grad_batches": "gradient accumulation (Keras's gradient_accumulation_steps) is not offered: "
                               "a larger --data.batch_size is the same step",
}
_LIGHTNING_DEFAULTS = {"gradient_clip_val": None, "gradient_clip_algorithm": None, "accumulate_grad_batches": 1}


def _refuse_lightning_training_options(trainer) -> None:
    """``--trainer.gradient_clip_val`` and its kind are refused in one line naming the Keras spelling, before
    anything is built (the model steps its optimizer itself, which Lightning's clipping and accumulation need
    not to)."""
    for key, default in _LIGHTNING_DEFAULTS.items():
        value = trainer.get(key, default)
        if value not in (default, None):
            raise DataError(f"--trainer.{key} {value}: {_KERAS_SPELLING[key]}")


def _check_launch(trainer) -> None:
    """Where a launcher (torchrun, SLURM) started the processes, their number must be the devices per node
    times the nodes: checked now, before the data or the model reach the Trainer, as one line that says which
    numbers to change (Lightning checks it too, later, with a traceback from every rank)."""
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if environment is None or not environment.creates_processes_externally:
        return
    try:
        environment.validate_settings(num_devices=trainer.num_devices, num_nodes=trainer.num_nodes)
    except ValueError:
        processes = environment.world_size()
        raise DataError(
            f"the launcher started {processes} processes, but --trainer.devices {trainer.num_devices} x "
            f"--trainer.num_nodes {trainer.num_nodes} make {trainer.num_devices * trainer.num_nodes}: give each node's "
            "processes as --trainer.devices (torchrun's --nproc_per_node) and the nodes as --trainer.num_nodes "
            "(its --nnodes)") from None


def make_cli(cli_class: type[MNISTCLI], args: list[str] | None, description: str,
             trainer_defaults: dict[str, Any] | None = None, **kwargs) -> MNISTCLI:
    """``cli_class`` over the command line ``args``, built (model, data, Trainer) but not run; a refused option
    raises a one-line :class:`DataError`."""
    try:
        return cli_class(
            LitMNIST,
            MNISTDataModule,
            run=False,
            args=args,
            seed_everything_default=42,
            trainer_defaults={**TRAINER_DEFAULTS, **(trainer_defaults or {})},
            auto_configure_optimizers=False,  # the model's optimizer is --model.optimizer, recorded in the hparams
            parser_kwargs={"description": description, "exit_on_error": False},  # a refusal raises: one line below
            **kwargs,
        )
    except DataError:  # the classes' and the commands' own refusals are already one line
        raise
    except ArgumentError as e:  # the parser's refusals: unknown options, values of the wrong type
        raise DataError(usage_error(cli_class.command, str(e))) from None
    except (ValueError, MisconfigurationException) as e:  # the classes' checks of option values
        raise DataError(f"invalid option: {' '.join(str(e).split())}") from None
