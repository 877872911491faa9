"""Weight transfer from Keras's layout (no TensorFlow needed: the layouts are numpy arrays)."""

import numpy as np
import torch

from lit_mnist.model.net import ConvNet
from parity import transfer


def test_flatten_permutation_maps_torch_features_to_keras_features():
    c, h, w = 3, 4, 5
    chw = np.random.default_rng(0).standard_normal((c, h, w))
    keras_flat = chw.transpose(1, 2, 0).ravel()  # Keras flattens the channels-last (h, w, c) map
    torch_flat = chw.ravel()  # torch flattens (c, h, w)
    assert np.array_equal(keras_flat[transfer.flatten_permutation((c, h, w))], torch_flat)


def test_keras_cnn_weights_land_where_torch_computes_the_same():
    """A conv kernel (h, w, in, out) becomes (out, in, h, w); the dense rows after Flatten are permuted,
    so that torch's flattened features meet the weights Keras gave the same features."""
    torch.manual_seed(0)
    net = ConvNet(channels=(4, 6))
    rng = np.random.default_rng(1)
    keras_arrays = [rng.standard_normal(p.shape[::-1] if p.ndim == 2 else
                                        (tuple(p.shape[2:]) + (p.shape[1], p.shape[0]) if p.ndim == 4 else p.shape))
                    .astype(np.float32) for p in net.parameters()]
    transfer.load_weights(net, keras_arrays)
    conv = net.features[0].weight.detach().numpy()
    assert np.array_equal(conv, keras_arrays[0].transpose(3, 2, 0, 1))
    features = torch.randn(2, 6, 4, 4)
    ours = net.head[1](net.head[0](features)).detach().numpy()
    keras_features = features.permute(0, 2, 3, 1).reshape(2, -1).numpy()  # channels-last, flattened
    theirs = keras_features @ keras_arrays[4] + keras_arrays[5]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_dense_weights_are_transposed_without_a_permutation():
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)
    (weight,) = transfer.to_torch_layout([kernel], feature_shape=None)
    assert torch.equal(weight, torch.from_numpy(kernel.T.copy()))
