"""A Keras model's regularizers and constraints come over on import (.keras and .h5) and act as Keras's: the
same weights give the same penalty and the same constrained weights."""

import numpy as np
import pytest
import torch

from lit_mnist.errors import DataError
from lit_mnist.keras_import.convert import convert
from lit_mnist.keras_import.read import read_keras_file
from lit_mnist.model.layers import resolve
from lit_mnist.model.net import KerasNet
from tests.conftest import require_the_parity_extra

pytestmark = pytest.mark.parity


def _model():
    require_the_parity_extra()
    import keras

    keras.utils.set_random_seed(0)
    L, R, C = keras.layers, keras.regularizers, keras.constraints
    return keras, keras.Sequential([
        keras.Input((6, 5, 1)),
        L.Conv2D(3, (2, 3), kernel_regularizer=R.L1(0.02), kernel_constraint=C.MaxNorm(0.4, axis=[0, 1, 2])),
        L.Flatten(),
        L.Dense(7, activation="relu", kernel_regularizer=R.L2(0.001), bias_regularizer=R.L1L2(l1=0.1, l2=0.2),
                kernel_constraint=C.MaxNorm(3), activity_regularizer=R.L1(0.05)),
        L.Dense(4, activation="softmax", kernel_regularizer=R.OrthogonalRegularizer(0.3, "columns")),
    ])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_l2_max_norm_and_the_others_are_carried_and_act_as_kerass(tmp_path, suffix):
    keras, model = _model()
    for layer in model.layers:  # biases that are not zero, so a bias penalty shows
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.linspace(-1, 1, layer.bias.shape[0]).astype(np.float32))
    path = tmp_path / f"model{suffix}"
    model.save(path)
    imported = convert(read_keras_file(path))
    dense = next(item["dense"] for item in imported.items if "dense" in item)
    assert dense["kernel_regularizer"] == {"L2": {"l2": 0.001}}
    assert dense["kernel_constraint"] == {"MaxNorm": {"max_value": 3, "axis": 0}}
    layers = resolve(imported.items, imported.num_classes, imported.image_shape)
    assert layers[-1].args["kernel_regularizer"] == {"orthogonal_regularizer": {"factor": 0.30000001192092896,
                                                                                "mode": "columns"}}
    net = KerasNet(layers)
    from lit_mnist.model.keras_layout import load_weights

    load_weights(net, imported.weights)
    x = np.random.default_rng(0).uniform(0, 1, (9, 30)).astype(np.float32)
    model(x.reshape(9, 6, 5, 1))
    expected = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    net(torch.from_numpy(x))
    assert net.penalty().item() == pytest.approx(expected, rel=1e-5)
    assert net.penalty().item() != pytest.approx(expected - float(model.losses[0]), rel=1e-3)  # the activity counts
    assert net.penalty(batch_size=1).item() != pytest.approx(expected, rel=1e-3)  # companion: undivided activity
    conv = model.layers[0]
    (kernel, project), (_dense_kernel, _) = net.constraints()
    theirs = keras.ops.convert_to_numpy(conv.kernel_constraint(conv.kernel * 5.0))
    with torch.no_grad():
        ours = project(kernel * 5.0)
    np.testing.assert_allclose(net.layers[1].spec.to_keras("kernel", ours), theirs, rtol=1e-6, atol=1e-7)


def test_a_regularizer_keras_does_not_have_is_refused_naming_the_layer(tmp_path):
    _keras, model = _model()
    path = tmp_path / "model.keras"
    model.save(path)
    keras_file = read_keras_file(path)
    dense = next(layer for layer in keras_file.model.layers if layer.class_name == "Dense")
    dense.config["kernel_regularizer"] = {"module": "mine", "class_name": "MyPenalty", "config": {}}
    with pytest.raises(DataError) as error:
        convert(keras_file)
    assert "'MyPenalty' is not a known regularizer" in str(error.value) and "Dense" in str(error.value)
    assert "\n" not in str(error.value)
