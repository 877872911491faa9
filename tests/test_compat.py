"""lit_mnist.compat's workarounds still read their dependencies right: each test fails when the dependency's
behaviour changes underneath it."""

import subprocess
import sys

import pytest
from jsonargparse import ActionConfigFile, ArgumentParser

from lit_mnist.compat import yaml_read_a_name_as_boolean
from tests.conftest import require_the_parity_extra, run_env


def _refusal(tmp_path, value: str) -> str:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--name", type=str)
    config = tmp_path / "run.yaml"
    config.write_text(f"name: {value}\n")
    with pytest.raises(Exception) as refused:  # jsonargparse's ArgumentError
        parser.parse_args(["--config", str(config)])
    return str(refused.value)


@pytest.mark.parametrize("value", ["no", "yes", "on", "off", "true"])
def test_jsonargparse_s_refusal_of_a_name_yaml_read_as_a_boolean_is_recognised(tmp_path, value):
    assert yaml_read_a_name_as_boolean(_refusal(tmp_path, value))


def test_another_refusal_is_not_taken_for_one(tmp_path):
    assert not yaml_read_a_name_as_boolean(_refusal(tmp_path, "[1, 2]"))


TENSORBOARD_PROBE = """
import sys
{switch}
from tensorboard.compat import tf
print(tf.io.gfile.__name__.split(".")[0], "tensorflow" in sys.modules)  # the file API the event writer uses
"""


def _tensorboard_s_tf(switch: str) -> str:
    done = subprocess.run([sys.executable, "-c", TENSORBOARD_PROBE.format(switch=switch)], capture_output=True,
                          text=True, check=False, env=run_env(TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_tensorboard_s_writer_takes_its_stand_in_for_tensorflow():
    switch = "from lit_mnist.compat import tensorboard_without_tensorflow\ntensorboard_without_tensorflow()"
    assert _tensorboard_s_tf(switch) == ["tensorboard", "False"]


@pytest.mark.slow
def test_without_the_switch_tensorboard_imports_tensorflow_where_it_is_installed():
    """The companion: the switch is what keeps TensorFlow out (where it is installed: the parity extra)."""
    require_the_parity_extra()
    assert _tensorboard_s_tf("") == ["tensorflow", "True"]
