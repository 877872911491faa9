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
import sys
from lit_mnist.apps import entry
if sys.argv[2] == "command":
    entry.quiet_process()  # what every command does before it imports its module
from torch.utils.tensorboard import SummaryWriter
SummaryWriter(sys.argv[1]).add_scalar('x', 1.0)
print('tensorflow' in sys.modules)
"""


@pytest.mark.parametrize(("process", "loads_tensorflow"), [("command", False), ("library", True)])
def test_commands_keep_tensorboard_from_loading_tensorflow(tmp_path, process, loads_tensorflow):
    """The commands' switch works, and only they make it: a library user's TensorBoard is left as it is."""
    if loads_tensorflow:
        pytest.importorskip("tensorflow")
    result = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), process], cwd=REPO, capture_output=True, check=False,
                            text=True)
    assert result.stdout.strip() == str(loads_tensorflow), result.stderr
