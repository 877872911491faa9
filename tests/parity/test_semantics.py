"""Keras's layer semantics, checked against Keras itself by the parity levels: each passes as built, and each,
broken on purpose in the torch net, is caught by a level (small generated images: the semantics, not MNIST)."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import require_the_parity_extra

require_the_parity_extra()

from lit_mnist.model import net as nets
from lit_mnist.model import optimizers
from lit_mnist.model.kinds.normalization import BatchNormalization
from parity import forward, steps
from parity.twins import Twins

pytestmark = pytest.mark.parity

SHAPE = (12, 12)  # the generated images' (the ``images`` fixture, conftest.py)


def _twins(layers, normalize=True):
    return Twins({"layers": layers, "num_classes": 4, "image_shape": list(SHAPE)}, (80.0, 60.0) if normalize else None)


def _forward(twins, images, module=None):
    x = images[0][1200:]
    return forward.forward_parity(twins.keras(seed=3), x, module or twins.lightning())


def _steps(twins, images, make_module=None, n=2):
    x, y = images
    part = (x[:1200], y[:1200])
    train = tuple(torch.from_numpy(a[:960]) for a in part)
    return steps.step_parity(part, train, twins, steps=n, make_module=make_module)


def _broken(twins, kind, mutate):
    """A maker of Lightning twins whose first ``kind`` module is changed by ``mutate(module)``."""
    def make(t):
        module = t.lightning()
        mutate(next(m for layer, m in zip(module.net.layers, module.net) if layer.kind == kind))
        return module
    return make


BN_DENSE = [{"dense": {"units": 32, "use_bias": False}}, "batch_normalization", {"activation": "relu"}]


def test_companion_torchs_momentum_convention_is_caught_by_the_moving_statistics(images):
    """torch's momentum is the weight of the batch (0.1 by default): read as Keras's, the statistics move 10x."""
    twins = _twins(BN_DENSE)
    make = _broken(twins, "batch_normalization", lambda bn: setattr(bn, "momentum", 0.9))
    result = _steps(twins, images, make)
    assert not result["passed"] and result["moving_rel_diff"] > 100 * steps.MAX_MOVING_REL


def test_companion_the_unbiased_moving_variance_is_caught(images):
    """torch's running_var takes the batch variance times n / (n - 1): 500 rows make it 0.2% larger."""
    twins = _twins(BN_DENSE)

    class Unbiased(BatchNormalization):
        def forward(self, x):
            out = super().forward(x)
            if self.training:  # what the biased update added, made unbiased
                with torch.no_grad():
                    batch = x.var(0, unbiased=False)
                    self.moving_variance.add_((1 - self.momentum) * batch / (len(x) - 1))
            return out

    result = _steps(twins, images, _broken(twins, "batch_normalization",
                                           lambda bn: setattr(bn, "__class__", Unbiased)))
    assert not result["passed"] and result["moving_rel_diff"] > 10 * steps.MAX_MOVING_REL
    assert result["l2_rel_diff"] <= steps.MAX_L2_REL  # the weights' step is the same: only the statistic moved


def test_companion_torchs_epsilon_is_caught_where_the_variance_is_near_one(images):
    """Keras's epsilon is 1e-3, torch's 1e-5: where the batch variance is near 1 (a dense layer on standardised
    pixels) the normalised values differ by ~5e-4."""
    twins = _twins(BN_DENSE)
    make = _broken(twins, "batch_normalization", lambda bn: setattr(bn, "epsilon", 1e-5))
    module = make(twins)
    variance = module.net[0](torch.from_numpy(images[0][:500]).double().sub(80).div(60).float()).var(0)
    assert 0.2 < float(variance.median()) < 5  # the variance this test is about
    result = _steps(twins, images, make)
    assert not result["passed"] and result["loss_rel_diff"] > 3 * steps.MAX_LOSS_REL  # measured: ~7e-5


CONV_SAME = [{"conv2d": {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}},
             "flatten"]


def test_companion_symmetric_same_padding_is_caught(images):
    """torch's own "same" pads both sides alike (and refuses strides); 12 -> 6 either way, so shapes agree."""
    twins = _twins(CONV_SAME)

    def symmetric(conv):
        conv.pads, conv.padding = None, (1, 1)

    result = _forward(twins, images, _broken(twins, "conv2d", symmetric)(twins))
    assert not result["passed"] and result["max_abs_diff"] > 1e-3


AVG_SAME = [{"conv2d": {"filters": 4, "kernel_size": 1}},
            {"average_pooling2d": {"pool_size": 3, "strides": 2, "padding": "same"}}, "flatten"]


def test_companion_counting_the_padded_cells_is_caught(images):
    twins = _twins(AVG_SAME)

    def counting(pool):
        pool.inverse_count = torch.ones_like(pool.inverse_count)  # the window's full count: torch's default

    result = _forward(twins, images, _broken(twins, "average_pooling2d", counting)(twins))
    assert not result["passed"]


FLATTEN = [{"conv2d": {"filters": 3, "kernel_size": 3}}, {"max_pooling2d": 2}, "flatten",
           {"dense": {"units": 16, "activation": "tanh"}}]


GLOBAL = [{"conv2d": {"filters": 6, "kernel_size": 3}}, {"leaky_re_lu": 0.1}, "global_average_pooling2d",
          {"dense": {"units": 8, "activation": "leaky_relu"}}, "leaky_re_lu"]
GLOBAL_MAX = [{"conv2d": {"filters": 6, "kernel_size": 3, "activation": "relu6"}},
              {"global_max_pooling2d": {"keepdims": True}}, "flatten"]
MARGINS = [{"zero_padding2d": [[1, 0], [2, 1]]}, {"conv2d": {"filters": 4, "kernel_size": 3, "activation": "relu"}},
           {"cropping2d": [[2, 1], [0, 3]]}, "flatten"]


LN_DENSE = [{"dense": {"units": 16, "activation": "tanh"}}, "layer_normalization", {"activation": "relu"}]
LN_CONV = [{"conv2d": {"filters": 4, "kernel_size": 3}}, {"layer_normalization": {"center": False}}, "flatten"]
SEPARABLE = [{"conv2d": {"filters": 3, "kernel_size": 3}},
             {"depthwise_conv2d": {"kernel_size": 3, "depth_multiplier": 2, "strides": 2, "padding": "same",
                                   "activation": "relu"}},
             {"separable_conv2d": {"filters": 4, "kernel_size": [3, 2], "depth_multiplier": 2, "padding": "same"}},
             "flatten"]
PRELU = [{"conv2d": {"filters": 3, "kernel_size": 3}}, {"p_re_lu": {"alpha_initializer": "random_uniform"}},
         {"conv2d": {"filters": 4, "kernel_size": 3}}, {"p_re_lu": {"shared_axes": [1, 2]}}, "flatten",
         {"dense": 8}, "prelu"]


@pytest.mark.parametrize("layers", [BN_DENSE, CONV_SAME, AVG_SAME, FLATTEN, GLOBAL, GLOBAL_MAX, MARGINS, LN_DENSE,
                                    LN_CONV, PRELU, SEPARABLE],
                         ids=["batch normalization", "same padding, stride 2", "same average pooling", "flatten",
                              "global average pooling, leaky relus", "global max pooling, keepdims",
                              "zero padding and cropping", "layer normalization", "layer normalization of channels",
                              "prelu", "depthwise and separable convolutions"])
def test_each_layer_matches_keras_in_inference_and_training(images, layers):
    twins = _twins(layers)
    assert _forward(twins, images)["passed"]
    result = _steps(twins, images)
    assert result["passed"], result
    assert result["has_moving_statistics"] == (layers is BN_DENSE)


def test_companion_a_layer_normalization_of_the_whole_map_is_caught(images):
    """torch's usual nn.LayerNorm([C, H, W]) normalises each image's whole map; Keras's axis -1, each pixel's channels."""
    twins = _twins(LN_CONV)

    def whole_map(norm):
        norm.forward = lambda x: F.layer_norm(x, x.shape[1:], eps=norm.epsilon) * norm.gamma.view(1, -1, 1, 1)

    result = _forward(twins, images, _broken(twins, "layer_normalization", whole_map)(twins))
    assert not result["passed"]


def test_companion_a_prelus_slopes_read_in_torchs_layout_are_caught(images):
    """Keras's alpha is (h, w, c); read as if it were (c, h, w), each slope meets another pixel's value."""
    twins = _twins(PRELU)

    def channels_first(prelu):
        prelu.forward = lambda x: torch.where(x >= 0, x, prelu.alpha.reshape(x.shape[1:]) * x)

    result = _forward(twins, images, _broken(twins, "p_re_lu", channels_first)(twins))
    assert not result["passed"]


def test_companion_depthwise_channels_numbered_the_other_way_are_caught(images):
    """Keras's output channel c * multiplier + j, read as j * channels + c: the sizes agree, the channels do not."""
    twins = _twins(SEPARABLE)

    def other_order(layer):
        def forward(x):
            m, c, h, w = layer.weight.shape
            y = F.conv2d(F.pad(x, layer.pads), layer.weight.reshape(c * m, 1, h, w), layer.bias, layer.strides, groups=c)
            return layer.act(y)
        layer.forward = forward

    result = _forward(twins, images, _broken(twins, "depthwise_conv2d", other_order)(twins))
    assert not result["passed"]


def test_depthwise_and_separable_kernels_draw_with_keras_fans():
    import keras

    torch.manual_seed(0)
    ours = nets.build_net([{"conv2d": {"filters": 8, "kernel_size": 1}},
                           {"separable_conv2d": {"filters": 64, "kernel_size": 5, "depth_multiplier": 4}}, "flatten"],
                          4, (20, 20)).separable_conv2d
    theirs = keras.layers.SeparableConv2D(64, 5, depth_multiplier=4)
    theirs.build((None, 20, 20, 8))
    for name in ("depthwise_kernel", "pointwise_kernel"):
        ours_std, keras_std = float(getattr(ours, name).std()), float(getattr(theirs, name).numpy().std())
        assert abs(ours_std - keras_std) < 0.05 * keras_std, name


def test_companion_a_channels_first_flatten_is_caught(images):
    """The dense kernel after it loads without complaint (the sizes agree) and meets the features in another order."""
    twins = _twins(FLATTEN)
    module = twins.lightning()
    module.net.flatten.forward = lambda x: x.flatten(1)  # (c, h, w) order, torch's nn.Flatten of NCHW
    result = _forward(twins, images, module)
    assert not result["passed"] and result["argmax_agreement"] < 0.99


@pytest.mark.parametrize("activation", ["relu", "elu", "gelu", "tanh", "sigmoid", "softmax", "silu", "softplus", "selu",
                                        "leaky_relu", "relu6", "celu", "mish", "softsign", "exponential", "hard_tanh",
                                        "tanh_shrink", "log_sigmoid", "hard_sigmoid", "hard_silu", "hard_swish",
                                        "hard_shrink", "soft_shrink"])
def test_every_activation_matches_keras(images, activation):
    twins = _twins([{"dense": {"units": 12, "activation": activation}}, {"dense": {"units": 8, "activation": "tanh"}}])
    assert _forward(twins, images)["passed"]


def test_companion_the_tanh_approximate_gelu_is_caught(images):
    twins = _twins([{"dense": {"units": 12, "activation": "gelu"}}])
    module = twins.lightning()
    module.net.dense.act = lambda x: F.gelu(x, approximate="tanh")
    assert not _forward(twins, images, module)["passed"]


def test_companion_keras_2s_hard_sigmoid_is_caught(images):
    twins = _twins([{"dense": {"units": 12, "activation": "hard_sigmoid"}}])
    module = twins.lightning()
    module.net.dense.act = lambda x: (0.2 * x + 0.5).clamp(0, 1)
    assert not _forward(twins, images, module)["passed"]


def test_companion_margins_on_the_wrong_sides_are_caught(images):
    """Padding and cropping with top and bottom, left and right swapped: the sizes agree, the map is shifted."""
    twins = _twins(MARGINS)

    def swapped(margins):
        left, right, top, bottom = margins.pads
        margins.pads = (right, left, bottom, top)

    module = _broken(twins, "zero_padding2d", swapped)(twins)
    assert not _forward(twins, images, module)["passed"]


def test_companion_torchs_leaky_relu_slope_is_caught(images):
    """torch's LeakyReLU slopes by 0.01 where Keras's layer does by 0.3."""
    twins = _twins(GLOBAL)
    module = _broken(twins, "leaky_re_lu", lambda layer: setattr(layer, "negative_slope", 0.01))(twins)
    assert not _forward(twins, images, module)["passed"]


def test_rescaling_and_normalization_items_match_keras(images):
    twins = _twins([{"rescaling": {"scale": 0.0039, "offset": -0.5}},
                    {"normalization": {"mean": 0.1, "variance": 0.04}}, {"dense": 16}], normalize=False)
    assert _forward(twins, images)["passed"]
    assert _steps(twins, images)["passed"]


@pytest.mark.parametrize("layers", [[{"dense": 16}, {"dropout": 0.5}],
                                    [{"conv2d": {"filters": 4, "kernel_size": 3}}, {"spatial_dropout2d": 0.5}, "flatten"],
                                    [{"gaussian_noise": 0.3}, {"dense": 16}, {"gaussian_dropout": 0.4}]],
                         ids=["dropout", "spatial dropout", "gaussian noise and dropout"])
def test_dropout_is_identity_at_the_steps_level_and_the_report_says_so(images, layers):
    twins = _twins(layers)
    assert twins.has_dropout
    result = _steps(twins, images)
    assert result["passed"] and result["dropout_as_identity"]


def _spread(layer, x) -> tuple[float, float]:
    """The mean and standard deviation of a noise layer's training output over ``x``."""
    out = np.asarray(layer(x))
    return float(out.mean()), float(out.std())


def _same_spread(ours, theirs) -> bool:
    return abs(ours[0] - theirs[0]) < 0.02 and abs(ours[1] - theirs[1]) < 0.02 * max(theirs[1], 0.1)


@pytest.mark.parametrize("kind, argument", [("gaussian_noise", 0.7), ("gaussian_dropout", 0.3)])
def test_gaussian_noise_and_dropout_spread_as_keras_s_and_a_wrong_spread_is_caught(kind, argument):
    import keras

    ones = np.ones((50, 4_000), np.float32)
    theirs = _spread(lambda x: getattr(keras.layers, "GaussianNoise" if kind == "gaussian_noise" else "GaussianDropout")(
        argument, seed=1)(x, training=True), ones)
    torch.manual_seed(0)
    module = nets.build_net([{kind: argument}], 4, (1, 4_000))[0].train()
    assert _same_spread(_spread(lambda x: module(torch.from_numpy(x)), ones), theirs)
    module.stddev = argument if kind == "gaussian_dropout" else argument ** 2  # the rate as the spread; a variance
    assert not _same_spread(_spread(lambda x: module(torch.from_numpy(x)), ones), theirs)


def _optimizer_twins(**options):
    return Twins({"layers": [{"dense": 16, "activation": "tanh"}, "batch_normalization"], "num_classes": 4,
                  "image_shape": list(SHAPE), **options}, (80.0, 60.0))


@pytest.mark.parametrize("options", [{"optimizer": "sgd"}, {"optimizer": {"sgd": {"momentum": 0.9}}},
                                     {"optimizer": {"sgd": {"momentum": 0.9, "nesterov": True,
                                                            "learning_rate": {"one_cycle": {"max_lr": 0.05}}}}},
                                     {"optimizer": "rmsprop"}, {"optimizer": {"rmsprop": {"momentum": 0.5, "rho": 0.8,
                                                                                          "epsilon": 1e-3}}}],
                         ids=["sgd", "sgd momentum", "sgd nesterov one-cycle", "rmsprop", "rmsprop momentum"])
def test_keras_s_sgd_and_rmsprop_take_the_same_steps(images, options):
    assert _steps(_optimizer_twins(**options), images)["passed"]


class _TorchStyleSGD(torch.optim.Optimizer):
    """torch's momentum: of gradients (``m = momentum * m + g; theta -= lr * m``), not of steps as Keras's."""

    def __init__(self, params, lr, momentum):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in (p for p in group["params"] if p.grad is not None):
                m = self.state[p].setdefault("momentum", torch.zeros_like(p))
                p.sub_(m.mul_(group["momentum"]).add_(p.grad), alpha=group["lr"])


class _TorchStyleRMSprop(torch.optim.Optimizer):
    """torch's epsilon: outside the root (``g / (sqrt(v) + eps)``), not inside as Keras's."""

    def __init__(self, params, lr, rho, epsilon):
        super().__init__(params, {"lr": lr, "rho": rho, "epsilon": epsilon})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in (p for p in group["params"] if p.grad is not None):
                v = self.state[p].setdefault("velocity", torch.zeros_like(p))
                v.mul_(group["rho"]).addcmul_(p.grad, p.grad, value=1 - group["rho"])
                p.sub_(p.grad * group["lr"] / (v.sqrt() + group["epsilon"]))


@pytest.mark.parametrize("options, broken", [
    ({"optimizer": {"sgd": {"momentum": 0.9}}}, lambda m, lr: _TorchStyleSGD(m.parameters(), lr, 0.9)),
    ({"optimizer": {"rmsprop": {"epsilon": 1e-3}}}, lambda m, lr: _TorchStyleRMSprop(m.parameters(), lr, 0.9, 1e-3)),
], ids=["torch's momentum", "torch's epsilon"])
def test_companion_torch_s_sgd_momentum_or_rmsprop_epsilon_fails_the_steps_level(images, options, broken):
    twins = _optimizer_twins(**options)

    def make_module(t):
        module = t.lightning()
        rate = optimizers.learning_rate(module.hparams.optimizer)
        module.make_optimizer = lambda lr=None, fit=None: broken(module, lr or rate)
        return module

    assert not _steps(twins, images, make_module=make_module)["passed"]


def _std_and_top(weights: np.ndarray) -> tuple[float, float]:
    return float(weights.std()), float(np.abs(weights).max())


def _keras_kernel(initializer: str) -> np.ndarray:
    import keras

    layer = keras.layers.Dense(300, kernel_initializer=initializer)
    layer.build((None, 400))
    return layer.kernel.numpy()


@pytest.mark.parametrize("initializer", ["random_normal", "random_uniform", "truncated_normal", "orthogonal",
                                         "glorot_normal"])
def test_kernel_initialisers_draw_as_keras_draws(initializer):
    torch.manual_seed(0)
    ours = nets.build_net([{"dense": {"units": 300, "kernel_initializer": initializer}}], 4, (20, 20)).dense.weight
    (std, top), (keras_std, keras_top) = _std_and_top(ours.detach().numpy()), _std_and_top(_keras_kernel(initializer))
    assert abs(std - keras_std) < 0.02 * keras_std and abs(top - keras_top) < 0.15 * keras_top


def test_companion_torchs_default_init_is_caught_by_the_std_and_top():
    torch.manual_seed(0)
    ours = nets.build_net([{"dense": 300}], 4, (20, 20), init="torch").dense.weight.detach().numpy()
    assert abs(_std_and_top(ours)[0] - _std_and_top(_keras_kernel("glorot_uniform"))[0]) > 0.02 * _std_and_top(ours)[0]
