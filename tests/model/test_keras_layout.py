"""Keras's layout and KerasNet's (no TensorFlow needed: the layouts are numpy arrays)."""

import numpy as np
import torch

from lit_mnist.model import keras_layout
from lit_mnist.model.net import build_net

CNN = [{"conv2d": {"filters": 4, "kernel_size": 3}}, "batch_normalization", "flatten", {"dense": 6}]


def _keras_layout(net):
    """Random arrays in Keras's layout for every variable of ``net``."""
    rng = np.random.default_rng(1)
    weights = {}
    for layer, name, tensor in keras_layout.pairs(net):
        shape = tuple(tensor.shape)
        shape = shape[::-1] if len(shape) == 2 else (shape[2], shape[3], shape[1], shape[0]) if len(shape) == 4 else shape
        weights.setdefault(layer, {})[name] = rng.standard_normal(shape).astype(np.float32) ** 2
    return weights


def test_keras_arrays_land_where_torch_computes_what_keras_would():
    """A conv kernel (h, w, in, out) becomes (out, in, h, w), a dense kernel is transposed; the dense after the
    flatten needs no permutation, since the net flattens channels-last as Keras does."""
    net = build_net(CNN, 5, (5, 5)).eval()
    weights = _keras_layout(net)
    keras_layout.load_weights(net, weights)
    x = torch.rand(2, 25)
    # Keras's arithmetic in numpy, channels-last throughout
    image = x.numpy().reshape(2, 5, 5, 1)
    kernel, bias = weights["conv2d"]["kernel"], weights["conv2d"]["bias"]
    conv = np.stack([[[(image[:, i:i + 3, j:j + 3, :, None] * kernel).sum((1, 2, 3)) for j in range(3)]
                      for i in range(3)]], 0)[0].transpose(2, 0, 1, 3) + bias  # (N, 3, 3, 4)
    bn = weights["batch_normalization"]
    normed = (conv - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) * bn["gamma"] + bn["beta"]
    expected = normed.reshape(2, -1) @ weights["dense"]["kernel"] + weights["dense"]["bias"]
    np.testing.assert_allclose(net[:5](x).detach().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_the_layouts_round_trip():
    net = build_net(CNN, 5, (5, 5))
    weights = _keras_layout(net)
    keras_layout.load_weights(net, weights)
    again = keras_layout.keras_weights(net)
    assert again.keys() == weights.keys()
    for layer in weights:
        for name, array in weights[layer].items():
            np.testing.assert_array_equal(again[layer][name], array)


def test_weights_of_another_net_are_refused_in_one_line():
    net = build_net(CNN, 5, (5, 5))
    weights = _keras_layout(build_net([{"conv2d": {"filters": 3, "kernel_size": 3}}, "flatten"], 5, (5, 5)))
    try:
        keras_layout.load_weights(net, weights)
    except ValueError as e:
        assert str(e).startswith("the Keras weights do not fit this network: conv2d/kernel")
    else:
        raise AssertionError("loaded weights of another net")
