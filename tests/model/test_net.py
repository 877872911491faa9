"""The net a layer list builds: Keras's semantics where torch's differ, checked against direct computations
(tests/parity/ checks them against Keras itself)."""

import math

import pytest
import torch
import torch.nn.functional as F

from lit_mnist.model.layers import LayerError
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.net import build_net


def test_the_default_net_is_the_original():
    net = build_net(None, 10, (28, 28))
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(128, 784), (128,), (64, 128), (64,), (128, 64), (128,), (10, 128), (10,)]
    assert [name for name, _ in net.named_children()] == ["dense", "dense_1", "dense_2", "dense_3"]


def test_keras_init_is_glorot_uniform_with_zero_bias_and_he_when_asked():
    torch.manual_seed(0)
    net = build_net([{"dense": {"units": 200, "kernel_initializer": "he_uniform"}}], 10, (28, 28))
    for module, (fan_in, fan_out), scale in ((net.dense, (784, 200), 6 / 784), (net.dense_1, (200, 10), 6 / 210)):
        bound = math.sqrt(scale)
        w = module.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.97 * bound  # fills the range
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.05 * bound  # uniform's std
        assert torch.count_nonzero(module.bias) == 0


def test_a_conv_kernel_is_drawn_with_keras_fans():
    torch.manual_seed(0)
    net = build_net([{"conv2d": {"filters": 64, "kernel_size": 5}}, "flatten"], 10, (28, 28))
    bound = math.sqrt(6 / (25 * 1 + 25 * 64))  # receptive field times the channels in and out
    w = net.conv2d.weight.detach()
    assert bound * 0.97 < w.abs().max() <= bound


def test_torch_init_is_the_pytorch_default_and_refuses_an_initialiser_the_list_names():
    torch.manual_seed(0)
    first = LitMNIST(init="torch").net.dense
    assert first.weight.abs().max() <= 1 / math.sqrt(784) + 1e-6  # kaiming_uniform(a=sqrt 5): 0.0357, not 0.0811
    assert torch.count_nonzero(first.bias) > 0
    with pytest.raises(LayerError, match="kernel_initializer 'he_normal' with init 'torch'"):
        build_net([{"dense": {"units": 3, "kernel_initializer": "he_normal"}}], 10, (28, 28), init="torch")


def test_forward_returns_probabilities_for_the_learned_sizes():
    probs = LitMNIST(num_classes=25, image_shape=(8, 8))(torch.randint(0, 256, (4, 64), dtype=torch.uint8))
    assert probs.shape == (4, 25)
    torch.testing.assert_close(probs.sum(1), torch.ones(4))


def test_same_padding_puts_the_extra_row_and_column_at_the_bottom_right_as_tensorflow():
    net = build_net([{"conv2d": {"filters": 1, "kernel_size": 3, "strides": 2, "padding": "same", "use_bias": False}},
                     "flatten"], 10, (4, 4))
    x = torch.rand(2, 1, 4, 4)
    # TF: out = ceil(4 / 2) = 2, total padding (2 - 1) * 2 + 3 - 4 = 1, all of it after
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), net.conv2d.weight, stride=2)
    torch.testing.assert_close(net[:2](x.flatten(1)), expected)
    symmetric = F.conv2d(x, net.conv2d.weight, stride=2, padding=1)  # torch's choice would differ
    assert not torch.allclose(symmetric, expected)


def test_same_average_pooling_leaves_padded_cells_out_of_the_count():
    net = build_net([{"average_pooling2d": {"pool_size": 3, "strides": 1, "padding": "same"}}, "flatten"], 10, (3, 3))
    torch.testing.assert_close(net[:3](torch.ones(1, 9)), torch.ones(1, 9))  # Keras: a 3x3 map of ones stays ones


def test_same_max_pooling_pads_with_minus_infinity():
    net = build_net([{"max_pooling2d": {"pool_size": 2, "padding": "same"}}, "flatten"], 10, (3, 3))
    out = net[:3](-torch.arange(1.0, 10.0).reshape(1, 9))
    torch.testing.assert_close(out, torch.tensor([[-1.0, -3.0, -7.0, -9.0]]))  # never the padding's 0


def test_pooling_floors_with_valid_padding():
    net = build_net([{"max_pooling2d": 2}, "flatten"], 10, (5, 5))
    assert net[:3](torch.rand(1, 25)).shape == (1, 4)  # 5 // 2 = 2 per side


def test_flatten_is_channels_last_as_keras():
    net = build_net([{"reshape": [2, 3, 4]}, "flatten"], 10, (4, 6))
    x = torch.arange(24.0).reshape(1, 24)
    torch.testing.assert_close(net[:2](x), x)  # Keras's reshape then flatten give the row back: (h, w, c) order
    conv = build_net([{"conv2d": {"filters": 2, "kernel_size": 1, "use_bias": False}}, "flatten"], 10, (2, 2))
    with torch.no_grad():
        conv.conv2d.weight.copy_(torch.tensor([1.0, 10.0]).view(2, 1, 1, 1))
    assert conv[:3](torch.tensor([[1.0, 2.0, 3.0, 4.0]])).tolist() == [[1, 10, 2, 20, 3, 30, 4, 40]]


def test_batch_normalization_moves_its_statistics_by_one_minus_momentum_with_the_biased_variance():
    net = build_net([{"batch_normalization": {"momentum": 0.9}}], 10, (1, 3))
    bn = net.batch_normalization
    x = torch.tensor([[1.0, 2.0, 0.0], [3.0, 6.0, 0.0], [5.0, 1.0, 4.0]])
    out = bn(x)
    mean, biased = x.mean(0), x.var(0, unbiased=False)
    torch.testing.assert_close(out, (x - mean) / torch.sqrt(biased + 1e-3))  # Keras's epsilon 1e-3
    torch.testing.assert_close(bn.moving_mean, 0.1 * mean)  # 0.9 * 0 + 0.1 * batch
    torch.testing.assert_close(bn.moving_variance, 0.9 + 0.1 * biased)  # biased: torch's running_var is unbiased
    bn.eval()
    torch.testing.assert_close(bn(x), (x - bn.moving_mean) / torch.sqrt(bn.moving_variance + 1e-3))


def test_batch_normalization_of_an_image_works_per_channel():
    net = build_net([{"conv2d": {"filters": 3, "kernel_size": 1}}, "batch_normalization", "flatten"], 10, (4, 4))
    out = net[:3](torch.rand(8, 16) * 255)
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    assert net.batch_normalization.moving_mean.shape == (3,)


def test_normalization_and_rescaling_follow_keras():
    net = build_net([{"normalization": {"mean": [1.0, 2.0], "variance": [4.0, 0.0]}},
                     {"rescaling": {"scale": 0.5, "offset": 1.0}}], 10, (1, 2))
    out = net[:2](torch.tensor([[5.0, 2.0]]))
    # (x - mean) / max(sqrt(variance), 1e-7), then x * 0.5 + 1
    torch.testing.assert_close(out, torch.tensor([[(5 - 1) / 2 * 0.5 + 1, 0.0 * 0.5 + 1]]))


def test_activations_are_keras_s():
    x = torch.linspace(-3, 3, 13).reshape(1, 13)
    exact = build_net([{"activation": "gelu"}], 10, (1, 13)).activation(x)
    torch.testing.assert_close(exact, x * 0.5 * (1 + torch.erf(x / math.sqrt(2))))  # the exact gelu, as Keras's
    image = build_net([{"conv2d": {"filters": 4, "kernel_size": 1, "activation": "softmax"}}, "flatten"], 10, (2, 2))
    probs = image[:2](torch.rand(3, 4))
    torch.testing.assert_close(probs.sum(1), torch.ones(3, 2, 2))  # over the channels, Keras's last axis


def test_leaky_relus_use_keras_s_slopes_the_layer_s_and_the_activation_s():
    x = torch.linspace(-3, 3, 13).reshape(1, 13)
    net = build_net(["leaky_re_lu", {"leaky_re_lu": 0.05}, {"activation": "leaky_relu"}], 10, (1, 13))
    torch.testing.assert_close(net[:1](x), torch.where(x < 0, 0.3 * x, x))  # LeakyReLU's default
    torch.testing.assert_close(net[1:2](x), torch.where(x < 0, 0.05 * x, x))
    torch.testing.assert_close(net[2:3](x), torch.where(x < 0, 0.2 * x, x))  # the leaky_relu activation's default


def test_zero_padding_surrounds_the_map_with_zeros_and_cropping_cuts_its_edges():
    net = build_net([{"zero_padding2d": [[1, 0], [2, 3]]}, {"cropping2d": [[0, 1], [2, 0]]}, "flatten"], 10, (2, 3))
    image = torch.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    padded = net[1](image)
    assert padded.shape == (1, 1, 3, 8) and padded.sum() == image.sum()
    torch.testing.assert_close(padded[0, 0, 1:, 2:5], image[0, 0])  # one row above, two columns left
    torch.testing.assert_close(net[2](padded), padded[..., :2, 2:])


def test_spatial_dropout_drops_whole_channels_and_scales_the_rest():
    net = build_net([{"reshape": [4, 4, 64]}, {"spatial_dropout2d": 0.5}, "flatten"], 10, (32, 32)).train()
    torch.manual_seed(0)
    out = net[1](torch.ones(2, 64, 4, 4))
    per_channel = out.amax(dim=(2, 3))
    assert set(per_channel.unique().tolist()) == {0.0, 2.0} and torch.equal(out.amin(dim=(2, 3)), per_channel)


def test_gaussian_noise_and_dropout_act_in_training_only_with_keras_s_spread():
    net = build_net([{"gaussian_noise": 0.8}, {"gaussian_dropout": 0.2}], 10, (100, 100))
    ones = torch.ones(4, 10_000)
    torch.manual_seed(0)
    noisy, dropped = net[0](ones), net[1](ones)
    assert abs(noisy.mean().item() - 1) < 0.02 and abs(noisy.std().item() - 0.8) < 0.01  # x + N(0, stddev)
    assert abs(dropped.mean().item() - 1) < 0.01 and abs(dropped.std().item() - 0.5) < 0.01  # x * N(1, sqrt(r / (1 - r)))
    net.eval()
    assert torch.equal(net[0](ones), ones) and torch.equal(net[1](ones), ones)


def test_global_pooling_takes_each_channel_s_mean_or_maximum():
    x = torch.rand(2, 3, 4, 5).to(memory_format=torch.channels_last)
    average = build_net([{"reshape": [4, 5, 3]}, "global_average_pooling2d"], 10, (4, 15))[1]
    torch.testing.assert_close(average(x), x.mean(dim=(2, 3)))
    kept = build_net([{"reshape": [4, 5, 3]}, {"global_max_pooling2d": {"keepdims": True}}, "flatten"], 10, (4, 15))
    torch.testing.assert_close(kept[1](x), x.amax(dim=(2, 3)).reshape(2, 3, 1, 1))


def test_the_net_accepts_uint8_rows_and_returns_logits():
    net = build_net(None, 10, (28, 28))
    rows = torch.randint(0, 256, (3, 784), dtype=torch.uint8)
    torch.testing.assert_close(net(rows), net(rows.float()))
    assert net(rows).sum(1).abs().max() > 1.01  # logits: the head's softmax is the loss's


@pytest.mark.parametrize("initializer, check", [
    ("random_normal", lambda w: abs(w.std() - 0.05) < 0.002 and w.abs().max() > 0.15),
    ("normal", lambda w: abs(w.std() - 0.05) < 0.002),  # Keras's alias
    ("random_uniform", lambda w: w.abs().max() <= 0.05 and w.abs().max() > 0.0499 and abs(w.std() - 0.05 / 3**0.5) < 0.002),
    ("truncated_normal", lambda w: w.abs().max() <= 0.1 and abs(w.std() - 0.05 * 0.87962566) < 0.002),
    ("ones", lambda w: bool((w == 1).all())),
    ("orthogonal", lambda w: torch.allclose(w @ w.T, torch.eye(len(w)), atol=1e-5)),
])
def test_keras_fixed_scale_and_orthogonal_initialisers(initializer, check):
    torch.manual_seed(0)
    w = build_net([{"dense": {"units": 100, "kernel_initializer": initializer}}], 10, (28, 28)).dense.weight.detach()
    assert check(w)


def test_a_bias_initialiser_other_than_zeros_is_drawn_and_refused_with_torchs_defaults():
    torch.manual_seed(0)
    net = build_net([{"dense": {"units": 500, "bias_initializer": "random_uniform"}}], 10, (28, 28))
    assert 0.049 < net.dense.bias.detach().abs().max() <= 0.05
    with pytest.raises(LayerError, match="bias_initializer 'ones' with init 'torch'"):
        build_net([{"dense": {"units": 3, "bias_initializer": "ones"}}], 10, (28, 28), init="torch")


def test_torch_init_refuses_a_depthwise_kernel_it_has_no_default_for():
    with pytest.raises(LayerError, match=r"item 1 \(depthwise_conv2d\): init 'torch' .* has no default"):
        build_net([{"depthwise_conv2d": 3}, "flatten"], 10, (8, 8), init="torch")


# regularizers and constraints: computed in Keras's layout, added and applied as Keras adds and applies them

def _dense(units=4, **args):
    return build_net([{"dense": {"units": units, **args}}], 3, (2, 3))  # 6 inputs, 4 units: a non-square kernel


def test_a_weight_penalty_is_its_variables_in_keras_layout_and_leaves_the_bias_alone():
    torch.manual_seed(0)
    net = _dense(kernel_regularizer={"orthogonal_regularizer": {"factor": 0.5}}, bias_initializer="ones")
    keras_kernel = net.dense.weight.T  # (in, out) = (6, 4)
    from lit_mnist.model.regularizers import orthogonal

    torch.testing.assert_close(net.penalty(), orthogonal(keras_kernel, 0.5, "rows"))
    assert not torch.allclose(net.penalty(), orthogonal(net.dense.weight, 0.5, "rows"))  # companion: torch's layout
    l2 = _dense(kernel_regularizer={"l2": 0.1}, bias_initializer="ones")
    torch.testing.assert_close(l2.penalty(), 0.1 * l2.dense.weight.square().sum())
    with_bias = 0.1 * (l2.dense.weight.square().sum() + l2.dense.bias.square().sum())
    assert not torch.allclose(l2.penalty(), with_bias)  # companion: a penalty that took the biases too differs
    both = _dense(kernel_regularizer={"l2": 0.1}, bias_regularizer={"l1": 0.2}, bias_initializer="ones")
    torch.testing.assert_close(both.penalty(), 0.1 * both.dense.weight.square().sum() + 0.2 * 4)


def test_an_activity_penalty_is_divided_by_the_batch_size_as_keras_3_divides_it():
    net = _dense(activity_regularizer={"l1": 0.1})
    x = torch.randn(5, 6)
    out = net.dense(x)  # the layer's output (no penalty recorded: not through the net)
    assert net.penalty().item() == 0.0
    net(x)
    torch.testing.assert_close(net.penalty(), 0.1 * out.abs().sum() / 5)
    assert not torch.allclose(net.penalty(), 0.1 * out.abs().sum())  # companion: undivided, it is another penalty
    torch.testing.assert_close(net.penalty(batch_size=2.5), 0.1 * out.abs().sum() / 2.5)  # a rank's share
    net(torch.zeros(0, 6))
    assert net.penalty().item() == 0.0  # an empty batch adds nothing (Keras's divide_no_nan)


def test_the_heads_activity_penalty_is_of_its_softmax_as_kerass_layer_outputs():
    net = build_net([{"dense": 8}, {"dense": {"units": 3, "activation": "softmax", "activity_regularizer": "l1"}}],
                    3, (2, 3))
    assert net.layers[-1].head
    net(torch.randn(4, 6) * 10)
    torch.testing.assert_close(net.penalty(), torch.tensor(0.01))  # each row's probabilities sum to 1


def test_a_constraint_acts_on_each_units_incoming_weights_in_keras_layout():
    torch.manual_seed(0)
    net = _dense(kernel_constraint={"max_norm": 0.5}, kernel_initializer="ones")
    (parameter, project), = net.constraints()
    assert parameter is net.dense.weight
    projected = project(parameter.detach())
    # Keras's axis 0 of the (in, out) kernel: each unit's 6 incoming weights, torch's rows
    torch.testing.assert_close(projected.norm(dim=1), torch.full((4,), 0.5), rtol=1e-6, atol=1e-6)
    from lit_mnist.model.constraints import max_norm

    wrong = max_norm(parameter.detach(), 0.5, axis=0)  # companion: axis 0 of torch's (out, in) weight
    assert not torch.allclose(wrong.norm(dim=1), torch.full((4,), 0.5), atol=1e-3)
    conv = build_net([{"conv2d": {"filters": 5, "kernel_size": [2, 3],
                                  "kernel_constraint": {"max_norm": {"max_value": 0.1, "axis": [0, 1, 2]}}}},
                      "flatten"], 3, (4, 5))
    (kernel, project), = conv.constraints()
    torch.testing.assert_close(project(kernel.detach()).flatten(1).norm(dim=1), torch.full((5,), 0.1))


def _train(items, steps=5, check=None):
    torch.manual_seed(0)
    net = build_net(items, 3, (2, 3))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x), y)
        (loss + net.penalty() if net.regularized else loss).backward()
        optimizer.step()
        with torch.no_grad():
            for parameter, project in net.constraints():
                parameter.copy_(project(parameter))
        if check is not None:
            check(net)
    return net


def test_training_with_an_l2_penalty_and_max_norm_moves_otherwise_and_the_constraint_holds_after_every_step():
    def holds(net):
        assert net.dense.weight.norm(dim=1).max() <= 0.3 + 1e-6

    plain = _train([{"dense": 8}])
    l2 = _train([{"dense": {"units": 8, "kernel_regularizer": {"l2": 0.5}}}])
    constrained = _train([{"dense": {"units": 8, "kernel_constraint": {"max_norm": 0.3}}}], check=holds)
    assert plain.dense.weight.norm() > l2.dense.weight.norm() + 0.05  # the penalty pulls the kernel in
    assert not torch.allclose(plain.dense.weight, constrained.dense.weight, atol=1e-3)
    assert plain.dense.weight.norm(dim=1).max() > 0.3  # the constraint binds: without it the norms exceed it
    assert not plain.regularized and plain.constraints() == []


def test_the_module_minimises_and_reports_the_loss_with_the_penalty_and_logs_it_apart():
    torch.manual_seed(0)
    module = LitMNIST(layers=[{"dense": {"units": 8, "kernel_regularizer": {"l2": 0.05},
                                         "activity_regularizer": {"l1": 0.01}}}], num_classes=3, image_shape=(2, 3))
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    loss = module.loss_and_sums((x, y))
    data = F.cross_entropy(module.net(x), y)
    penalty = module.net.penalty()
    torch.testing.assert_close(loss, data + penalty)
    torch.testing.assert_close(module._train_totals[0], (data + penalty).detach() * 10)  # Keras's loss holds it
    torch.testing.assert_close(module._train_penalty, penalty.detach() * 10)
    module._evaluate((x, y), "val")
    torch.testing.assert_close(module.val_loss.compute(), (data + penalty).detach())  # as Keras's val_loss
    assert not LitMNIST(num_classes=3, image_shape=(2, 3)).net.regularized  # the original's net: no penalty at all
