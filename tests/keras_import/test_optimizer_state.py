"""The optimizer's saved step count, read from the file as Keras writes it (a .keras file's optimizer/vars/0, an
.h5 file's optimizer_weights/<optimizer>/iteration, Keras 2's iter:0): the importer says the optimizer starts
afresh from it. A count that is not one, or a soft link in its place, is read as no count or refused in one line."""

import h5py
import numpy as np
import pytest

from lit_mnist.keras_import.read import read_keras_file
from tests.keras_import.test_read import BIAS, KERNEL, _h5, _keras, _refused, _weights


def _with_optimizer(value, name="0"):
    def write(h5, variables):
        variables["0"], variables["1"] = KERNEL, BIAS
        h5.create_group("optimizer/vars")[name] = value
    return _weights(write)


def _h5_with(path, name, value):
    def write(h5, group):
        group["dense/kernel:0"], group["dense/bias:0"] = KERNEL, BIAS
        h5.create_group("optimizer_weights/Adam")[name] = value
    return _h5(path, write)


@pytest.mark.parametrize("name", ["iteration", "iter:0"])  # Keras 3's name, Keras 2's
def test_the_step_count_is_read_from_both_layouts(tmp_path, name):
    keras_file = read_keras_file(_keras(tmp_path / "m.keras", weights=_with_optimizer(np.int64(12))))
    h5_file = read_keras_file(_h5_with(tmp_path / "m.h5", name, np.int64(7)))
    assert (keras_file.optimizer_steps, h5_file.optimizer_steps) == (12, 7)


@pytest.mark.parametrize("value", [np.zeros(3), np.float32(2.5), np.float32(np.nan), np.int64(-1)])
def test_companion_what_is_no_count_is_read_as_none(tmp_path, value):
    assert read_keras_file(_keras(tmp_path / "m.keras", weights=_with_optimizer(value))).optimizer_steps is None
    assert read_keras_file(_h5_with(tmp_path / "m.h5", "iteration", value)).optimizer_steps is None


def test_a_file_saved_without_its_optimizer_has_no_count(tmp_path):
    assert read_keras_file(_keras(tmp_path / "m.keras")).optimizer_steps is None
    assert read_keras_file(_h5(tmp_path / "m.h5")).optimizer_steps is None


def test_a_soft_link_in_the_counts_place_is_refused_in_one_line(tmp_path, capsys):
    def write(h5, variables):
        variables["0"], variables["1"] = KERNEL, BIAS
        h5.create_group("optimizer/vars")["0"] = h5py.SoftLink("/layers/dense/vars/1")
    _refused(tmp_path, capsys, _keras(tmp_path / "m.keras", weights=_weights(write)), "optimizer/vars/0 is a soft link")
