"""Every command runs through entry.run: main's exit code kept, a user error one line and exit 2."""

import subprocess
import sys

import pytest

from lit_mnist.apps import compare, export, predict, serve
from lit_mnist.apps.entry import call
from tests.conftest import REPO, run_env

PROBE = """
import gc
from lit_mnist.apps.entry import run

def main(argv=None):
    print(gc.get_freeze_count() > 10_000)
    return 3

run(main)
"""

USER_ERROR = """
from lit_mnist.apps.entry import run
from lit_mnist.errors import DataError

def main(argv=None):
    raise DataError("digits.csv: line 3, column pixel7: not a number")

run(main)
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env(), cwd=REPO,
                          check=False)


def test_run_exits_with_the_code_of_main_after_freezing():
    done = _python(PROBE)
    assert done.returncode == 3 and done.stdout.strip() == "True", done.stderr


def test_a_user_error_is_one_line_and_exit_code_2():
    done = _python(USER_ERROR)
    assert done.returncode == 2
    assert done.stderr == "error: digits.csv: line 3, column pixel7: not a number\n"


def test_importing_the_library_leaves_sys_modules_alone():
    done = _python("import sys, lit_mnist, lit_mnist.apps.fit\nprint('tensorboard.compat.notf' in sys.modules)")
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("command, argv, expected", [
    (predict, [], "the following arguments are required: --checkpoint, --input, --output"),
    (predict, ["--checkpoint", "m.ckpt", "--input", "d.csv", "--output", "o.csv", "--batch_size", "q"],
     "argument --batch_size: invalid int value: 'q'"),
    (export, ["--checkpoint", "m.ckpt", "--out", "m.onnx", "--bogus"], "unrecognized arguments: --bogus"),
    (serve, ["--checkpoint", "m.ckpt", "--port", "http"], "argument --port: invalid int value: 'http'"),
    (compare, ["--out", "o", "--seeds"], "argument --seeds: expected at least one argument"),
])
def test_every_commands_parser_refuses_in_one_line_and_exit_2(capsys, command, argv, expected):
    assert call(command.main, argv) == 2
    name = command.__name__.rsplit(".", 1)[-1]
    assert capsys.readouterr().err == f"error: {expected} ({name}.py --help lists the options)\n"


def test_quiet_console_drops_lightnings_tips_and_keeps_its_messages(monkeypatch):
    """On the console handler that importing Lightning makes in a command's process, when the root logger has
    none. It is made here: pytest's log capture may have been on the root logger when this process imported
    Lightning, which then made none (test_fit.py checks a real run's console)."""
    import io
    import logging

    import lightning.pytorch  # noqa: F401 (sets its logger's level)

    from lit_mnist.apps.entry import quiet_console

    handler = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logging.getLogger("lightning.pytorch"), "handlers", [handler])
    monkeypatch.setattr(logging.getLogger("lightning.pytorch"), "propagate", False)
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    log.info("Tip: try installing litlogger")
    assert "litlogger" in handler.stream.getvalue()  # the companion: without the filter, the tip is printed
    quiet_console()
    log.info("Tip: try installing litlogger again")
    log.info("[rank: 1] Seed set to 42")  # a second rank's, in a run on several devices
    log.info("GPU available: False")
    printed = handler.stream.getvalue()
    assert "again" not in printed and "Seed set to" not in printed and "GPU available: False" in printed
