"""lit_mnist must stay importable and trainable without TensorFlow: only parity/ may import it."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = """
import sys
sys.modules['tensorflow'] = None  # any import of TensorFlow now raises ImportError
import lit_mnist, lit_mnist.apps.fit, lit_mnist.apps.report
from torch.utils.tensorboard import SummaryWriter
SummaryWriter(sys.argv[1]).add_scalar('x', 1.0)
print('ok')
"""


def test_lit_mnist_never_imports_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=REPO, capture_output=True, check=False, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


WRITER = """
import builtins
import sys

# as if TensorFlow were not installed (TensorBoard then takes its stub), noting whether anything asks for
# it: the probe learns whether TensorBoard wanted TensorFlow without paying its import
sys.modules["tensorflow"] = None
asked, plain_import = [], builtins.__import__


def noting_import(name, *args, **kwargs):
    if name == "tensorflow":
        asked.append(name)
    return plain_import(name, *args, **kwargs)


builtins.__import__ = noting_import
from lit_mnist.apps import entry
if sys.argv[2] == "command":
    entry.quiet_process()  # what every command does before it imports its module
from torch.utils.tensorboard import SummaryWriter
SummaryWriter(sys.argv[1]).add_scalar('x', 1.0)
print(bool(asked))
"""


@pytest.mark.parametrize(("process", "wants_tensorflow"), [("command", False), ("library", True)])
def test_commands_keep_tensorboard_from_loading_tensorflow(tmp_path, process, wants_tensorflow):
    """The commands' switch works, and only they make it: a library user's TensorBoard is left as it is, and
    asks for TensorFlow (which it then loads where it is installed)."""
    result = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), process], cwd=REPO, capture_output=True,
                            check=False, text=True)
    assert result.stdout.strip() == str(wants_tensorflow), result.stderr
