"""Layer lists that branch and join: inputs by name, Keras's merge layers and their shape rules, the net that
runs them (checked against direct computations; tests/parity/ checks graphs against Keras itself)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lit_mnist.model.layers import LayerError, as_items, resolve
from lit_mnist.model.net import build_net
from tests.conftest import residual_list

RESIDUAL = residual_list()


def test_a_graph_resolves_with_each_item_s_inputs_and_keras_shapes():
    layers = {layer.name: layer for layer in resolve(RESIDUAL, 10, (28, 28))}
    assert layers["stem"].inputs == ("input_reshape",)
    assert layers["add"].inputs == ("stem", "batch_normalization")
    assert layers["add"].output_shape == (28, 28, 16)
    assert layers["side"].inputs == ("stem",)
    assert layers["concatenate"].inputs == ("activation", "side")
    assert layers["concatenate"].output_shape == (28, 28, 24)  # channels joined: Keras's axis -1
    assert layers["dense"].input_shape == (14 * 14 * 24,) and layers["dense"].head


def test_the_net_computes_the_graph_as_its_layers_say():
    torch.manual_seed(0)
    net = build_net(RESIDUAL, 10, (28, 28)).eval()
    x = torch.rand(3, 784) * 255
    image = net.input_reshape(x)
    stem = net.stem(image)
    block = F.relu(stem + net.batch_normalization(net.conv2d(stem)))
    joined = torch.cat([block, net.side(stem)], dim=1)  # NCHW: dim 1 is Keras's channels axis
    expected = net.dense(net.flatten(net.max_pooling2d(joined)))
    torch.testing.assert_close(net(x), expected)


def test_the_shipped_residual_config_is_the_graph_these_tests_check():
    import yaml

    from lit_mnist.apps.compare import CONFIGS

    assert yaml.safe_load((CONFIGS / "residual.yaml").read_text())["model"]["layers"] == RESIDUAL


def test_a_chain_runs_as_a_sequential_and_a_graph_by_its_plan():
    assert build_net([{"conv2d": [4, 3]}, "flatten"], 10, (8, 8)).plan is None
    assert build_net(RESIDUAL, 10, (28, 28)).plan is not None


def test_concatenated_maps_flatten_in_keras_s_channels_last_order():
    """Concatenating [a, b] on the channels and flattening numbers pixel (i, j)'s channels a's then b's: Keras's
    (h, w, c) order. Concatenating in torch's order (a's map, then b's) would break the dense after it."""
    items = [{"input": [2, 2, 1]}, {"rescaling": {"scale": 1.0, "name": "a"}},
             {"rescaling": {"scale": -1.0, "inputs": "input", "name": "b"}}, {"concatenate": {"inputs": ["a", "b"]}},
             "flatten"]
    net = build_net(items, 3, (2, 2))
    x = torch.arange(1.0, 5.0).view(1, 4)
    assert net.outputs(x)["flatten"].tolist() == [[1, -1, 2, -2, 3, -3, 4, -4]]


@pytest.mark.parametrize(("kind", "expected"), [
    ("add", lambda a, b: a + b), ("subtract", lambda a, b: a - b), ("multiply", lambda a, b: a * b),
    ("average", lambda a, b: (a + b) / 2), ("maximum", np.maximum), ("minimum", np.minimum)])
def test_each_merge_computes_what_keras_s_does(kind, expected):
    items = [{"input": [6]}, {"dense": {"units": 5, "name": "a"}}, {"dense": {"units": 5, "inputs": "input", "name": "b"}},
             {kind: {"inputs": ["a", "b"]}}]
    net = build_net(items, 4, (2, 3)).eval()
    x = torch.rand(2, 6)
    a, b = net.a(x).detach().numpy(), net.b(x).detach().numpy()
    np.testing.assert_allclose(net.outputs(x)[kind].detach().numpy(), expected(a, b), rtol=1e-6)


def test_a_merge_broadcasts_sizes_of_one_as_keras_does():
    """Squeeze-and-excitation: a map times its channels' weights, (h, w, c) * (1, 1, c)."""
    items = [{"input": [4, 4, 1]}, {"conv2d": {"filters": 3, "kernel_size": 1, "name": "maps"}},
             {"global_average_pooling2d": {"keepdims": True}},
             {"conv2d": {"filters": 3, "kernel_size": 1, "activation": "sigmoid", "name": "weights"}},
             {"multiply": {"inputs": ["maps", "weights"]}}, "flatten"]
    net = build_net(items, 2, (4, 4)).eval()
    assert net.layers[4].output_shape == (4, 4, 3)
    outputs = net.outputs(torch.rand(2, 16))
    torch.testing.assert_close(outputs["multiply"], outputs["maps"] * outputs["weights"])


def test_keras_s_rule_gives_a_row_the_missing_axes_after_the_batch():
    items = [{"input": [4, 4, 1]}, {"conv2d": {"filters": 3, "kernel_size": 1, "name": "maps"}},
             "global_average_pooling2d", {"multiply": {"inputs": ["maps", "global_average_pooling2d"]}}, "flatten"]
    net = build_net(items, 2, (4, 4)).eval()
    x = torch.rand(2, 16)
    maps = net.maps(net.input_reshape(x))
    expected = maps * maps.mean(dim=(2, 3))[:, :, None, None]
    torch.testing.assert_close(net.outputs(x)["flatten"], net.flatten(expected))


@pytest.mark.parametrize(("change", "message"), [
    ({2: {"conv2d": {"filters": 8, "kernel_size": 3, "padding": "same"}}},
     (r"^model.layers item 5 \(add\): its inputs' shapes 28x28x16, 28x28x8 do not match \(each axis must be equal, "
     r"or 1 in all but one\)$")),
    ({4: {"add": {"inputs": ["stem", "nothing"]}}},
     r"^model.layers item 5 \(add\): inputs names 'nothing', which is no earlier item \(earlier: input, stem, "),
    ({4: {"add": {"inputs": ["stem", "side"]}}}, r"^model.layers item 5 \(add\): inputs names 'side', which is no earlier"),
    ({4: {"add": {"inputs": "stem"}}}, r"^model.layers item 5 \(add\): joins 2 or more inputs, not 1: name them in its inputs$"),
    ({4: "add"}, r"^model.layers item 5 \(add\): joins 2 or more inputs, not 1"),
    ({2: {"conv2d": {"filters": 16, "kernel_size": 3, "padding": "same", "inputs": ["stem", "stem"]}}},
     r"^model.layers item 3 \(conv2d\): takes one input, not 2 \(a merge item"),
    ({7: {"concatenate": {"inputs": ["stem", "side"]}}},
     (r"^model.layers item 6 \(activation\): its output is used by no later item \(name it in a later item's inputs, or "
     r"leave the item out\)$")),
    ({7: {"concatenate": {"inputs": ["activation", "side"], "axis": 2}}},
     (r"^model.layers item 8 \(concatenate\): its inputs' shapes 28x28x16, 28x28x8 differ on an axis other than the one "
     r"joined \(2\)$")),
    ({4: {"add": {"inputs": 3}}}, r"^model.layers item 5 \(add\): inputs must be the name of an earlier item"),
])
def test_a_graph_that_cannot_be_built_is_one_line_naming_the_item(change, message):
    items = list(RESIDUAL)
    for index, item in change.items():
        items[index] = item
    with pytest.raises(LayerError, match=message):
        build_net(items, 10, (28, 28))


def test_a_graph_round_trips_through_its_config_form():
    layers = resolve(RESIDUAL, 10, (28, 28))
    items = as_items(layers)
    assert items[3] == {"batch_normalization": {"axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True,
                                                "scale": True, "beta_regularizer": None, "gamma_regularizer": None,
                                                "activity_regularizer": None, "beta_constraint": None,
                                                "gamma_constraint": None}}
    assert items[4]["add"]["inputs"] == ["stem", "batch_normalization"]
    assert resolve(items, 10, (28, 28)) == layers


def test_a_branch_from_the_raw_row_gets_its_own_image():
    """Without a declared image, each branch that needs one reshapes the row itself (as the chain does)."""
    items = [{"conv2d": {"filters": 2, "kernel_size": 3, "name": "a"}},
             {"conv2d": {"filters": 2, "kernel_size": 3, "inputs": "input", "name": "b"}},
             {"add": {"inputs": ["a", "b"]}}, "flatten"]
    layers = resolve(items, 3, (5, 5))
    assert [layer.kind for layer in layers[:3]] == ["reshape", "conv2d", "reshape"]
    assert resolve(as_items(layers), 3, (5, 5)) == layers
