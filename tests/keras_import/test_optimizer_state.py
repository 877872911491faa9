"""The optimizer's saved state, read from the file as Keras writes it (a .keras file's optimizer/vars/0, 1, ..., an
.h5 file's optimizer_weights/<optimizer>/iteration and slots, Keras 2's iter:0): its step count, and its slots
mapped onto the net's parameters in torch's layout, which the optimizer built for init_from goes on from. A count
that is not one is read as no count; a soft link in the optimizer's variables is refused in one line."""

import h5py
import numpy as np
import pytest

from lit_mnist.keras_import import optimizer_state as optimizer_state_module
from lit_mnist.keras_import.optimizer_state import optimizer_state
from lit_mnist.keras_import.read import read_keras_file
from lit_mnist.model import optimizers
from tests.keras_import.test_read import BIAS, KERNEL, _config, _h5, _keras, _refused, _weights


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


# The optimizer's slots, mapped onto the net: Keras 3 saves iterations, then each add_optimizer_variables call's
# names in turn for every trainable variable (Adam: kernel's momentum, kernel's velocity, bias's momentum, ...).
SLOTS = {name: np.full(shape, value, np.float32) + np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
         for name, shape, value in [("kernel_momentum", (4, 3), 100), ("kernel_velocity", (4, 3), 200),
                                    ("bias_momentum", (3,), 300), ("bias_velocity", (3,), 400)]}
ADAM_ORDER = ["kernel_momentum", "kernel_velocity", "bias_momentum", "bias_velocity"]


def _with_state(order=ADAM_ORDER, steps=7):
    def write(h5, variables):
        variables["0"], variables["1"] = KERNEL, BIAS
        saved = h5.create_group("optimizer/vars")
        saved["0"] = np.int64(steps)
        for index, name in enumerate(order, start=1):
            saved[str(index)] = SLOTS[name]
    return _weights(write)


def _h5_keras3(path, order=ADAM_ORDER, steps=7):
    """An .h5 as Keras 3 writes it: optimizer_weights/<optimizer>/<name>, in weight_names's order."""
    def write(h5, group):
        group["dense/kernel:0"], group["dense/bias:0"] = KERNEL, BIAS
        weights = h5.create_group("optimizer_weights")
        names = ["adam/iteration", *(f"adam/sequential_dense_{name}" for name in order)]
        weights.attrs["weight_names"] = [n.encode() for n in names]
        weights["adam/iteration"] = np.int64(steps)
        for name in order:
            weights[f"adam/sequential_dense_{name}"] = SLOTS[name]
    path = _h5(path, write)
    with h5py.File(path, "r+") as h5:
        h5.attrs["keras_version"] = "3.10.0"
    return path


def _model(keras_file):
    from lit_mnist.apps.import_keras import build
    from lit_mnist.keras_import.convert import convert

    return build(convert(keras_file), {}, keras_file.path)


@pytest.mark.parametrize("layout", ["keras", "h5"])
def test_the_slots_map_onto_the_parameters_in_torchs_layout(tmp_path, layout):
    path = _keras(tmp_path / "m.keras", weights=_with_state()) if layout == "keras" else _h5_keras3(tmp_path / "m.h5")
    keras_file = read_keras_file(path)
    state, note = optimizer_state(keras_file.optimizer_variables, {"adam": {}}, _model(keras_file))
    assert note is None and state["optimizer"] == "adam" and state["iterations"] == 7
    slots = state["slots"]
    np.testing.assert_array_equal(slots["net.dense.weight"]["momentum"].numpy(), SLOTS["kernel_momentum"].T)
    np.testing.assert_array_equal(slots["net.dense.weight"]["velocity"].numpy(), SLOTS["kernel_velocity"].T)
    np.testing.assert_array_equal(slots["net.dense.bias"]["momentum"].numpy(), SLOTS["bias_momentum"])
    np.testing.assert_array_equal(slots["net.dense.bias"]["velocity"].numpy(), SLOTS["bias_velocity"])


def test_companion_a_plan_of_one_call_per_slot_maps_them_elsewhere(tmp_path, monkeypatch):
    """Adam's slots come from one call for both names: read as two calls (every momentum, then every velocity),
    the kernel's velocity would be taken for the bias's momentum, which the check above tells apart."""
    keras_file = read_keras_file(_keras(tmp_path / "m.keras", weights=_with_state()))
    monkeypatch.setattr(optimizer_state_module, "slot_plan", lambda name, args: ([("momentum",), ("velocity",)], []))
    state, _ = optimizer_state(keras_file.optimizer_variables, {"adam": {}}, _model(keras_file))
    assert state is None or not np.array_equal(state["slots"]["net.dense.weight"]["velocity"].numpy(),
                                               SLOTS["kernel_velocity"].T)


def test_slots_that_do_not_fit_the_plan_are_not_carried_with_a_note(tmp_path):
    keras_file = read_keras_file(_keras(tmp_path / "m.keras", weights=_with_state(ADAM_ORDER[:3])))
    state, note = optimizer_state(keras_file.optimizer_variables, {"adam": {}}, _model(keras_file))
    assert state is None and "3 slot variables saved, 4 expected for adam" in note and "\n" not in note
    swapped = ["kernel_momentum", "bias_momentum", "kernel_velocity", "bias_velocity"]  # shapes out of place
    keras_file = read_keras_file(_keras(tmp_path / "n.keras", weights=_with_state(swapped)))
    state, note = optimizer_state(keras_file.optimizer_variables, {"adam": {}}, _model(keras_file))
    assert state is None and "not carried" in note


def test_a_keras_2_file_keeps_no_state_to_carry(tmp_path):
    assert read_keras_file(_h5_with(tmp_path / "m.h5", "iteration", np.int64(7))).optimizer_variables is None


def test_a_soft_link_among_the_slots_is_refused_in_one_line(tmp_path, capsys):
    def write(h5, variables):
        variables["0"], variables["1"] = KERNEL, BIAS
        saved = h5.create_group("optimizer/vars")
        saved["0"], saved["1"] = np.int64(3), SLOTS["kernel_momentum"]
        saved["2"] = h5py.SoftLink("/layers/dense/vars/0")
    _refused(tmp_path, capsys, _keras(tmp_path / "m.keras", weights=_weights(write)), "optimizer/vars/2 is a soft link")


def _restored(tmp_path, optimizer):
    keras_file = read_keras_file(_keras(tmp_path / "m.keras", weights=_with_state()))
    model = _model(keras_file)
    state, _ = optimizer_state(keras_file.optimizer_variables, {"adam": {}}, model)
    model.hparams.optimizer = optimizers.as_item(optimizer)
    model.optimizer_state = state
    return model, model.make_optimizer()


def test_the_optimizer_built_goes_on_from_the_state(tmp_path):
    model, optimizer = _restored(tmp_path, "adam")
    weight = model.net.dense.weight
    assert optimizer.param_groups[0]["iterations"] == 7 and float(optimizer.state[weight]["step"]) == 7
    np.testing.assert_array_equal(optimizer.state[weight]["exp_avg"].numpy(), SLOTS["kernel_momentum"].T)
    np.testing.assert_array_equal(optimizer.state[weight]["exp_avg_sq"].numpy(), SLOTS["kernel_velocity"].T)
    model.optimizer_state = None  # companion: without it, a fresh optimizer at step 0
    fresh = model.make_optimizer()
    assert fresh.param_groups[0]["iterations"] == 0 and not fresh.state


def test_a_schedule_goes_on_from_the_imported_count(tmp_path):
    _, optimizer = _restored(tmp_path, {"adam": {"learning_rate": {"exponential_decay": {
        "initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.5}}}})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 7)


def test_init_from_under_another_optimizer_restarts_it_with_one_line(tmp_path, capsys):
    from lit_mnist.apps import import_keras
    from lit_mnist.apps.checkpoints import start_from
    from lit_mnist.apps.entry import call
    from lit_mnist.model.module import LitMNIST

    config = {**_config(), "compile_config": {"optimizer": {"class_name": "Adam", "config": {}}, "loss": None}}
    out = tmp_path / "m.ckpt"
    assert call(import_keras.main, [_keras(tmp_path / "m.keras", config, _with_state()), "--out", str(out)]) == 0
    assert "carried (the step count and its slots)" in capsys.readouterr().out
    layers = [{"dense": {"units": 3, "activation": "softmax"}}]
    same = LitMNIST(layers=layers, num_classes=3, image_shape=(2, 2), optimizer="adam")
    start_from(same, out)
    assert same.optimizer_state["iterations"] == 7 and same.hparams.source["init_from"]["optimizer_state"]
    other = LitMNIST(layers=layers, num_classes=3, image_shape=(2, 2), optimizer="sgd")
    with pytest.warns(UserWarning, match="its optimizer state is adam's, and this run trains with sgd: the "
                                         "optimizer starts afresh"):
        start_from(other, out)
    assert other.optimizer_state is None and other.make_optimizer().param_groups[0]["iterations"] == 0


def test_a_state_that_does_not_fit_the_net_is_a_one_line_error(tmp_path):
    import torch

    from lit_mnist.apps.checkpoints import CheckpointError, start_from
    from lit_mnist.model.module import LitMNIST

    model = LitMNIST(layers=[{"dense": {"units": 3, "activation": "softmax"}}], num_classes=3, image_shape=(2, 2))
    path = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in model.net.state_dict().items()},
                "hyper_parameters": dict(model.hparams),
                "keras_optimizer_state": {"optimizer": "adam", "iterations": 3,
                                          "slots": {"net.dense.weight": {"momentum": torch.zeros(4, 3)}}}}, path)
    with pytest.raises(CheckpointError, match="keras_optimizer_state does not fit the net") as raised:
        start_from(LitMNIST(layers=[{"dense": {"units": 3, "activation": "softmax"}}], num_classes=3,
                            image_shape=(2, 2)), path)
    assert "\n" not in str(raised.value)
