"""The packages' public names load their modules on first use: importing lit_mnist, or the command entry, loads
neither torch nor Lightning."""

import subprocess
import sys

import pytest

import lit_mnist
from tests.conftest import REPO, run_env


@pytest.mark.parametrize("statement", ["import lit_mnist", "import lit_mnist.data, lit_mnist.model",
                                       "from lit_mnist.apps.entry import run"])
def test_importing_the_package_loads_no_torch_or_lightning(statement):
    probe = f"import sys\n{statement}\nprint(sorted({{'torch', 'lightning'}} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False,
                          env=run_env())
    assert done.returncode == 0 and done.stdout == "[]\n", done.stderr[-2000:]


def test_the_public_names_are_the_modules_own():
    from lit_mnist.data.reader import Digits
    from lit_mnist.model.module import LitMNIST

    assert lit_mnist.LitMNIST is LitMNIST and lit_mnist.data.Digits is Digits and lit_mnist.model.LitMNIST is LitMNIST
    assert {"LitMNIST", "MNISTDataModule", "DataError"} <= set(dir(lit_mnist)) and "LitMNIST" in lit_mnist.__all__
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        lit_mnist.Nothing  # noqa: B018
