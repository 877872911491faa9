import math

import pytest
import torch
import torch.nn.functional as F

from lit_mnist.model.module import LitMNIST
from lit_mnist.model.net import ConvNet, DenseNet, keras_init_


def test_architecture_is_the_original():
    shapes = [tuple(p.shape) for p in DenseNet().parameters()]
    assert shapes == [(128, 784), (128,), (64, 128), (64,), (128, 64), (128,), (10, 128), (10,)]


def test_keras_init_is_glorot_uniform_with_zero_bias():
    torch.manual_seed(0)
    net = keras_init_(DenseNet())
    for layer in [m for m in net.modules() if isinstance(m, torch.nn.Linear)]:
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        w = layer.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.97 * bound  # fills the Glorot range
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.05 * bound  # uniform's std
        assert torch.count_nonzero(layer.bias) == 0


def test_torch_init_option_is_the_pytorch_default():
    torch.manual_seed(0)
    first = LitMNIST(init="torch").net.layers[0]
    assert first.weight.abs().max() <= 1 / math.sqrt(784) + 1e-6  # kaiming_uniform(a=sqrt 5): 0.0357, not 0.0811
    assert torch.count_nonzero(first.bias) > 0


def test_forward_returns_probabilities():
    probs = LitMNIST()(torch.randint(0, 256, (4, 784), dtype=torch.uint8))
    torch.testing.assert_close(probs.sum(1), torch.ones(4))


def test_the_cnn_pools_before_its_relu_with_the_same_result_and_channels_last_weights():
    torch.manual_seed(0)
    net = keras_init_(ConvNet())
    conv1, conv2 = net.features[0], net.features[3]
    assert conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (8, 784)).float()
    relu_then_pool = torch.nn.Sequential(conv1, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                         conv2, torch.nn.ReLU(), torch.nn.MaxPool2d(2))
    expected = net.head(relu_then_pool(x.reshape(-1, 1, 28, 28)))
    torch.testing.assert_close(net(x), expected)


def test_cnn_channels_set_the_conv_widths():
    net = ConvNet(channels=(8, 16))
    assert net.features[0].out_channels == 8 and net.features[3].out_channels == 16
    assert net.feature_shape == (16, 4, 4) and net.head[1].in_features == 256


def test_a_stride_stem_takes_every_other_position_of_the_conv_and_does_not_pool():
    torch.manual_seed(0)
    net = ConvNet(channels=(8, 16), stem="stride")
    conv1 = net.features[0]
    assert conv1.stride == (2, 2) and not any(isinstance(m, torch.nn.MaxPool2d) for m in net.features[:3])
    images = torch.randint(0, 256, (3, 1, 28, 28)).float()
    every_position = F.conv2d(images, conv1.weight, conv1.bias)  # 24x24
    torch.testing.assert_close(net.features[:2](images), every_position[:, :, ::2, ::2].relu())  # 12x12
    assert net.feature_shape == (16, 4, 4) and net(images.flatten(1)).shape == (3, 10)


def test_an_unknown_stem_is_refused():
    with pytest.raises(ValueError, match="stem must be one of"):
        LitMNIST(arch="cnn", stem="average")
