"""The scripts' runner keeps main's exit code and freezes the import-time heap before main runs."""

import subprocess
import sys

from tests.conftest import REPO, run_env

PROBE = """
import gc
from lit_mnist.entry import run

def main():
    print(gc.get_freeze_count() > 10_000)
    return 3

run(main)
"""


def test_run_exits_with_the_code_of_main_after_freezing():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=run_env(), cwd=REPO,
                          check=False)
    assert done.returncode == 3 and done.stdout.strip() == "True", done.stderr
