"""lit_mnist must stay importable and trainable without TensorFlow: only parity/ may import it."""

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO, require_the_parity_extra, run_env

FORBIDDEN = {"tensorflow", "keras", "tf_keras"}


def imports_of(source: str) -> set[str]:
    """The top-level packages that a module's source imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_of_lit_mnist_imports_tensorflow_or_keras():
    importing = {str(path.relative_to(REPO)): imports_of(path.read_text()) & FORBIDDEN
                 for path in (REPO / "lit_mnist").rglob("*.py")}
    assert len(importing) > 30 and not {path: names for path, names in importing.items() if names}


def test_the_scan_sees_an_import_of_tensorflow_anywhere_in_a_module():
    """The companion: an import inside a function, or of a submodule, is found."""
    assert imports_of("def f():\n    import tensorflow.keras as k\n") == {"tensorflow"}
    assert imports_of("from keras import layers\n") == {"keras"}

PROBE = """
import sys
sys.modules['tensorflow'] = None  # any import of TensorFlow now raises ImportError
import lit_mnist, lit_mnist.apps.fit, lit_mnist.apps.report, lit_mnist.apps.import_keras
from torch.utils.tensorboard import SummaryWriter
SummaryWriter(sys.argv[1]).add_scalar('x', 1.0)
print('ok')
"""


@pytest.mark.slow
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


def test_a_keras_file_by_hand_imports_in_process(tmp_path, capsys):
    """The importer's path without TensorFlow (the file is written with json and h5py alone; the process that has
    none at all: the slow test below)."""
    from lit_mnist.apps import import_keras
    from lit_mnist.apps.entry import call

    out = tmp_path / "tiny.ckpt"
    assert call(import_keras.main, [str(_keras_file_by_hand(tmp_path / "tiny.keras")), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2x2 images, 3 classes, ending in softmax" in printed and "not verified against Keras" in printed
    assert out.is_file() and out.with_suffix(".yaml").is_file()


@pytest.mark.slow
def test_a_keras_file_imports_without_tensorflow(tmp_path):
    model = _keras_file_by_hand(tmp_path / "tiny.keras")
    out = tmp_path / "tiny.ckpt"
    result = subprocess.run([sys.executable, "-c", IMPORT, str(model), str(out)], cwd=REPO, capture_output=True,
                            check=False, text=True)
    assert result.returncode == 0, result.stderr
    assert "2x2 images, 3 classes, ending in softmax" in result.stdout and "not verified against Keras" in result.stdout
    assert out.is_file() and out.with_suffix(".yaml").is_file()


FIT = """
import sys
from lit_mnist.apps import fit
from lit_mnist.apps.entry import call
code = call(fit.main, sys.argv[1:])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(code)
"""


@pytest.mark.slow
def test_a_fit_imports_no_tensorflow_where_it_is_installed(write_csv, tmp_path):
    """TensorBoard's writer would import it (lit_mnist.compat.tensorboard_without_tensorflow)."""
    require_the_parity_extra()
    args = ["--data.path", str(write_csv(n=200)), "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path / "runs")]
    result = subprocess.run([sys.executable, "-c", FIT, *args], cwd=REPO, capture_output=True, check=False, text=True,
                            env=run_env(LIT_MNIST_DATA_DIR=str(tmp_path / "data")))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "tensorflow imported: False"
    assert list((tmp_path / "runs").rglob("events.out.tfevents*"))
