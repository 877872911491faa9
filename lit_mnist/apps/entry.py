"""How every command runs: the one place that turns a user error into ``error: ...`` and exit code 2.

``scripts/*.py`` and the console commands of the package metadata (``lit-mnist-fit``, ...) all call
:func:`launch` with the module whose ``main(argv) -> int`` they run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import NoReturn

from lit_mnist.compat import yaml_read_a_name_as_boolean
from lit_mnist.errors import DataError


def quiet_process() -> None:
    """Settings for a command's own process, never made on import of the library (and made again by
    fit.py in the processes that a spawning strategy starts, which run no command).

    lit-mnist's own notes (a folder's images decoded, in how long; an array's values rescaled) are printed, one
    line each; Lightning's "Seed set to N" is left unsaid (the seed is recorded in the run's config.yaml and
    metrics.json; before a refusal it would be the line above it), TensorFlow's C++ start-up notes too (the
    parity suite and ``import_keras.py --check`` import it; a fit's TensorBoard writer does not), and one
    deprecation warning that Lightning itself triggers is silenced.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    said = logging.getLogger("lit_mnist")  # what the data say as they are read (images decoded, values rescaled)
    if not said.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        said.addHandler(handler)
        said.setLevel(logging.INFO)
        said.propagate = False
    # Lightning 2.6's own call of a torch API that torch has since deprecated: nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose refusals of a command line are user errors like any other: one line,
    ``error: ...``, exit code 2 (by :func:`call`), rather than argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        raise DataError(usage_error(self.prog, message))


def usage_error(prog: str, message: str) -> str:
    """A parser's refusal on one line, with where to find the options (and why a name became a boolean)."""
    hint = ""
    if yaml_read_a_name_as_boolean(message):
        hint = "; YAML reads no, yes, on, off, true and false as booleans: quote a name that is one, 'no'"
    return f"{' '.join(message.split())} ({prog} --help lists the options{hint})"


def call(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """``main(argv)``'s exit code; a user error is printed as one line, ``error: ...``, and gives 2."""
    try:
        return main(argv)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(main: Callable[[list[str] | None], int]) -> NoReturn:
    """Freeze what the imports made, run ``main``, exit with its code (see :func:`call`).

    torch and Lightning leave millions of objects that live until the process ends. Frozen, the cyclic
    garbage collector never scans them again, which shortens the process's exit (docs/performance.md). Only
    for processes that end after ``main``: a frozen object is never collected.
    """
    gc.freeze()
    code = call(main)
    if code == 2:
        leave_after_refusal(code)
    sys.exit(code)


def leave_after_refusal(code: int) -> NoReturn:
    """End the process once a refusal is printed, without the libraries' exit-time teardown.

    A user error often surfaces a moment after the data were read, while a native thread pool (pyarrow's
    CSV readers, torch's workers) is still settling; tearing such a pool down at exit can end in
    ``std::terminate`` (SIGABRT, "terminate called without an active exception") instead of exit code 2,
    now and then on a loaded machine. Nothing is left to save after a refusal (every artifact write is
    atomic and complete), so streams and logs are flushed and the process leaves at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def leave_together(trainer) -> None:
    """At the end of a run on several devices: wait until every rank is done, then close the process group
    (a rank that left first would reset the connections under the others while they still write)."""
    import torch.distributed

    if trainer.world_size > 1 and torch.distributed.is_initialized():
        trainer.strategy.barrier("end of run")
        torch.distributed.destroy_process_group()


def launch(module: str) -> NoReturn:
    """Run ``module.main`` as a command, with the process settings above made before it is imported."""
    quiet_process()
    main = importlib.import_module(module).main
    run(main)


def fit() -> NoReturn:
    launch("lit_mnist.apps.fit")


def predict() -> NoReturn:
    launch("lit_mnist.apps.predict")


def compare() -> NoReturn:
    launch("lit_mnist.apps.compare")


def export() -> NoReturn:
    launch("lit_mnist.apps.export")


def serve() -> NoReturn:
    launch("lit_mnist.apps.serve")


def import_keras() -> NoReturn:
    launch("lit_mnist.apps.import_keras")


def cache() -> NoReturn:
    launch("lit_mnist.apps.cache")


def parity() -> NoReturn:
    launch("parity.cli")
