"""lit_mnist must stay importable and trainable without TensorFlow: only parity/ may import it."""

import subprocess
import sys

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
