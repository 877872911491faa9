"""Every command runs through entry.run: main's exit code kept, a user error one line and exit 2."""

import importlib
import subprocess
import sys

import pytest

from lit_mnist.apps.entry import call
from tests.conftest import REPO, require, run_env

PROBE = """
from lit_mnist.apps.entry import run

def main(argv=None):
    print("ran")
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


def test_run_exits_with_the_code_of_main():
    done = _python(PROBE)
    assert done.returncode == 3 and done.stdout == "ran\n", done.stderr


def test_a_user_error_is_one_line_and_exit_code_2():
    done = _python(USER_ERROR)
    assert done.returncode == 2
    assert done.stderr == "error: digits.csv: line 3, column pixel7: not a number\n"


def test_a_commands_settings_put_no_module_of_their_own_in_sys_modules():
    code = ("import sys\nfrom lit_mnist.apps import entry\nbefore = set(sys.modules)\nentry.quiet_process()\n"
            "print(sorted(set(sys.modules) - before))")
    done = _python(code)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_command_prints_what_the_data_say_as_they_are_read_one_line_each():
    code = ("import logging\nfrom lit_mnist.apps import entry\nentry.quiet_process()\n"
            "logging.getLogger('lit_mnist.data.cache').info('images/: 12 images in 2 classes, decoded in 0.1 s')\n"
            "logging.getLogger('lit_mnist.data.cache').debug('not said')")
    done = _python(code)
    assert done.stdout == "images/: 12 images in 2 classes, decoded in 0.1 s\n" and done.stderr == "", done.stderr


def test_companion_without_the_command_s_settings_the_note_is_not_seen():
    done = _python("import logging\nlogging.getLogger('lit_mnist.data.cache').info('images/: 12 images')")
    assert done.stdout == "" and "12 images" not in done.stderr


@pytest.mark.parametrize("name, argv, expected", [
    ("predict", [], "the following arguments are required: --checkpoint, --input, --output"),
    ("predict", ["--checkpoint", "m.ckpt", "--input", "d.csv", "--output", "o.csv", "--batch_size", "q"],
     "argument --batch_size: invalid int value: 'q'"),
    ("export", ["--checkpoint", "m.ckpt", "--out", "m.onnx", "--bogus"], "unrecognized arguments: --bogus"),
    ("serve", ["--checkpoint", "m.ckpt", "--port", "http"], "argument --port: invalid int value: 'http'"),
    ("compare", ["--out", "o", "--seeds"], "argument --seeds: expected at least one argument"),
])
def test_every_commands_parser_refuses_in_one_line_and_exit_2(capsys, name, argv, expected):
    if name == "serve":
        require("fastapi", "serve")  # the service's module imports FastAPI
    command = importlib.import_module(f"lit_mnist.apps.{name}")
    assert call(command.main, argv) == 2
    assert capsys.readouterr().err == f"error: {expected} ({name}.py --help lists the options)\n"


def test_a_command_leaves_the_seed_unsaid_and_keeps_lightnings_other_messages(monkeypatch):
    """By the level of Lightning's seeding logger, not by the text of records."""
    import io
    import logging

    from lit_mnist.apps.entry import quiet_process

    handler = logging.StreamHandler(io.StringIO())
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    level = seed_log.level
    ours = logging.getLogger("lit_mnist")  # quiet_process gives it a console handler: undone after the test
    monkeypatch.setattr(ours, "handlers", [])
    monkeypatch.setattr(ours, "propagate", True)
    monkeypatch.setattr(ours, "level", ours.level)
    for name in ("lightning.fabric.utilities.seed", "lightning.pytorch.utilities.rank_zero"):
        monkeypatch.setattr(logging.getLogger(name), "handlers", [handler])
        monkeypatch.setattr(logging.getLogger(name), "propagate", False)
    seed_log.setLevel(logging.INFO)  # setLevel, not the attribute: logging caches each logger's isEnabledFor
    try:
        seed_log.info("Seed set to 41")
        assert "Seed set to 41" in handler.stream.getvalue()  # the companion: unset, it is said
        quiet_process()
        seed_log.info("[rank: 1] Seed set to 42")
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")
        printed = handler.stream.getvalue()
        assert "Seed set to 42" not in printed and "GPU available: False" in printed
    finally:
        seed_log.setLevel(level)
