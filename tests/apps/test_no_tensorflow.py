"""lit_mnist must stay importable and trainable without TensorFlow: only parity/ may import it."""

import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import sys
sys.modules['tensorflow'] = None  # any import of TensorFlow now raises ImportError
import lit_mnist, lit_mnist.apps.fit, lit_mnist.apps.report, lit_mnist.apps.import_keras
from torch.utils.tensorboard import SummaryWriter
SummaryWriter(sys.argv[1]).add_scalar('x', 1.0)
print('ok')
"""


def test_lit_mnist_never_imports_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=REPO, capture_output=True, check=False, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


IMPORT = """
import sys
sys.modules['tensorflow'] = None  # any import of TensorFlow now raises ImportError
sys.modules['keras'] = None
from lit_mnist.apps.entry import call
from lit_mnist.apps import import_keras
sys.exit(call(import_keras.main, [sys.argv[1], '--out', sys.argv[2]]))
"""


def _keras_file_by_hand(path):
    """A Keras 3 .keras file (Sequential: Input(4), Dense(3, softmax)) written with json and h5py alone."""
    import io
    import json
    import zipfile

    import h5py
    import numpy as np

    dense = {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "softmax", "use_bias": True}}
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "input_layer"}}, dense]}}
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        variables = h5.create_group("layers/dense/vars")
        variables.attrs["name"] = "dense"
        variables["0"], variables["1"] = np.ones((4, 3), np.float32), np.zeros(3, np.float32)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())
    return path


def test_a_keras_file_imports_without_tensorflow(tmp_path):
    model = _keras_file_by_hand(tmp_path / "tiny.keras")
    out = tmp_path / "tiny.ckpt"
    result = subprocess.run([sys.executable, "-c", IMPORT, str(model), str(out)], cwd=REPO, capture_output=True,
                            check=False, text=True)
    assert result.returncode == 0, result.stderr
    assert "2x2 images, 3 classes, ending in softmax" in result.stdout and "not verified against Keras" in result.stdout
    assert out.is_file() and out.with_suffix(".yaml").is_file()
