"""The layer list: Keras's vocabulary and defaults, the sizes of every layer, and one-line refusals naming the item."""

import pytest

from lit_mnist.model.layers import ORIGINAL, LayerError, as_items, resolve


def test_the_default_is_the_original_with_the_output_layer_appended_from_the_data():
    layers = resolve(None, 10, (28, 28))
    assert [(layer.name, layer.output_shape) for layer in layers] == [
        ("dense", (128,)), ("dense_1", (64,)), ("dense_2", (128,)), ("dense_3", (10,))]
    assert layers[-1].head and layers[-1].position is None and layers[-1].args["activation"] == "softmax"
    assert layers[0].args == {"units": 128, "activation": "relu", "use_bias": True,
                              "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
                              **dict.fromkeys(("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                               "kernel_constraint", "bias_constraint"))}  # Keras's defaults
    assert resolve(ORIGINAL, 25, (8, 8))[-1].output_shape == (25,) and resolve(ORIGINAL, 25, (8, 8))[0].input_shape == (64,)


@pytest.mark.parametrize("activation", ["softmax", "linear"])
def test_a_list_that_ends_with_the_output_layer_keeps_it_as_the_head(activation):
    layers = resolve([{"dense": {"units": 32, "activation": "relu"}}, {"dense": {"units": 7, "activation": activation}}],
                     7, (28, 28))
    assert len(layers) == 2 and layers[-1].head and layers[-1].position == 2


def test_a_dense_of_another_width_at_the_end_gets_the_head_after_it():
    layers = resolve([{"dense": {"units": 7, "activation": "relu"}}], 10, (28, 28))
    assert len(layers) == 2 and not layers[0].head and layers[1].head


def test_the_first_conv_sees_the_row_as_an_image_and_shapes_follow_keras():
    layers = resolve([{"conv2d": {"filters": 8, "kernel_size": 3, "padding": "same", "strides": 2}},
                      "batch_normalization", {"max_pooling2d": 2},
                      {"average_pooling2d": {"pool_size": 3, "strides": 1, "padding": "same"}},
                      {"dropout": 0.25}, "flatten", {"dense": {"units": 64, "activation": "tanh"}}], 10, (28, 28))
    shapes = [(layer.name, layer.output_shape) for layer in layers]
    assert shapes == [("reshape", (28, 28, 1)), ("conv2d", (14, 14, 8)), ("batch_normalization", (14, 14, 8)),
                      ("max_pooling2d", (7, 7, 8)), ("average_pooling2d", (7, 7, 8)), ("dropout", (7, 7, 8)),
                      ("flatten", (392,)), ("dense", (64,)), ("dense_1", (10,))]
    assert layers[0].position is None and layers[1].position == 1


def test_global_pooling_gives_each_channel_one_value_and_keepdims_a_1x1_map():
    layers = resolve([{"conv2d": {"filters": 6, "kernel_size": 3}}, "global_average_pooling2d", {"dense": 4}], 10, (9, 7))
    assert [layer.output_shape for layer in layers] == [(9, 7, 1), (7, 5, 6), (6,), (4,), (10,)]
    kept = resolve([{"conv2d": {"filters": 6, "kernel_size": 3}}, {"global_max_pooling2d": {"keepdims": True}},
                    "flatten"], 10, (9, 7))
    assert kept[2].output_shape == (1, 1, 6) and kept[2].args == {"keepdims": True}


def test_zero_padding_and_cropping_take_keras_s_three_forms_of_margins():
    layers = resolve([{"zero_padding2d": 2}, {"cropping2d": [[1, 0], [0, 3]]}, {"zero_padding2d": [1, 2]},
                      {"spatial_dropout2d": 0.3}, "cropping2d", "flatten"], 3, (8, 6))
    assert [layer.output_shape for layer in layers[:6]] == [(8, 6, 1), (12, 10, 1), (11, 7, 1), (13, 11, 1),
                                                            (13, 11, 1), (13, 11, 1)]
    assert layers[1].args == {"padding": ((2, 2), (2, 2))} and layers[3].args == {"padding": ((1, 1), (2, 2))}
    assert layers[5].args == {"cropping": ((0, 0), (0, 0))}  # Keras's default: nothing cut
    assert resolve(["zero_padding2d", "flatten"], 3, (8, 6))[1].output_shape == (10, 8, 1)  # Keras's default: 1


def test_leaky_relu_is_elementwise_with_keras_s_slope():
    layers = resolve(["leaky_re_lu", {"leaky_re_lu": 0.1}, {"conv2d": {"filters": 2, "kernel_size": 3}}, "flatten"], 3,
                     (8, 8))
    assert layers[0].args == {"negative_slope": 0.3} and layers[1].args == {"negative_slope": 0.1}
    assert layers[2].kind == "reshape" and layers[0].output_shape == (64,)  # still the row: the conv sees the image


def test_a_value_that_is_not_a_mapping_is_the_first_positional_argument():
    layers = resolve([{"reshape": [8, 8, 1]}, {"max_pooling2d": 2}, "flatten", {"dropout": 0.5}, {"activation": "gelu"},
                      {"dense": 16}], 3, (8, 8))
    assert layers[0].args["target_shape"] == (8, 8, 1) and layers[1].args["pool_size"] == (2, 2)
    assert layers[3].args["rate"] == 0.5 and layers[4].args["activation"] == "gelu" and layers[5].args["units"] == 16


def test_keras_s_class_names_and_aliases_name_the_same_layers():
    snake = resolve([{"conv2d": {"filters": 4, "kernel_size": 3}}, "max_pooling2d", {"average_pooling2d": 1},
                     "global_average_pooling2d", {"dense": 8}, "leaky_re_lu", "leaky_re_lu"], 3, (10, 10))
    keras_words = resolve([{"Conv2D": {"filters": 4, "kernel_size": 3}}, "MaxPool2D", {"avg_pool2d": 1},
                           "GlobalAvgPool2D", {"Dense": 8}, "leaky_relu", "LeakyReLU"], 3, (10, 10))
    assert [(a.kind, a.name, a.args) for a in snake] == [(b.kind, b.name, b.args) for b in keras_words]
    assert [next(iter(item)) for item in as_items(keras_words)][:2] == ["conv2d", "max_pooling2d"]


def test_further_keys_of_an_item_are_arguments_as_in_keras_s_call():
    """``{dense: 256, activation: relu}`` reads as Dense(256, activation="relu"): the first key is the layer."""
    short = resolve([{"conv2d": 8, "kernel_size": 3, "padding": "same"}, "flatten",
                     {"dense": 16, "activation": "relu"}, {"dense": {"units": 4}, "use_bias": False}], 3, (6, 6))
    long = resolve([{"conv2d": {"filters": 8, "kernel_size": 3, "padding": "same"}}, "flatten",
                    {"dense": {"units": 16, "activation": "relu"}}, {"dense": {"units": 4, "use_bias": False}}], 3, (6, 6))
    assert [(a.kind, a.args) for a in short] == [(b.kind, b.args) for b in long]
    with pytest.raises(LayerError, match=r"^model.layers item 1 \(dense\): argument 'units' is given twice$"):
        resolve([{"dense": {"units": 3}, "units": 4}], 3, (6, 6))
    with pytest.raises(LayerError, match=r"item 1 \(activation\): unknown argument 'dense'"):
        resolve([{"activation": "relu", "dense": 3}], 3, (6, 6))  # the first key is the layer


def test_items_round_trip_through_their_config_form():
    items = [{"conv2d": {"filters": 4, "kernel_size": [3, 3], "name": "stem"}}, "flatten", {"dense": 12}]
    layers = resolve(items, 5, (10, 10))
    again = resolve(as_items(layers), 5, (10, 10))
    assert [(a.name, a.args, a.output_shape) for a in layers] == [(b.name, b.args, b.output_shape) for b in again]
    assert layers[1].name == "stem" and as_items(layers)[0]["conv2d"]["name"] == "stem"


REFUSED = {
    "unknown layer": ([{"lstm": {"units": 3}}], "model.layers item 1: unknown layer 'lstm' (known: dense, conv2d"),
    "unknown argument": ([{"dense": {"units": 3, "unitz": 4}}],
                         "item 1 (dense): unknown argument 'unitz' (did you mean 'units'? dense takes units"),
    "a layer's case": ([{"conv2D": {"filters": 3, "kernel_size": 3}}],
                       "model.layers item 1: unknown layer 'conv2D' (did you mean 'conv2d'? known: dense, conv2d"),
    "a layer's slip": (["batch_normalisation"], "unknown layer 'batch_normalisation' (did you mean 'batch_normalization'?"),
    "an activation's slip": ([{"dense": {"units": 3, "activation": "leakyrelu"}}],
                             "activation 'leakyrelu' is not supported (did you mean 'leaky_relu'? one of: linear"),
    "an argument's slip": ([{"conv2d": {"filters": 3, "kernal_size": 3}}],
                           "unknown argument 'kernal_size' (did you mean 'kernel_size'? conv2d takes"),
    "missing argument": ([{"conv2d": {"filters": 3}}], "item 1 (conv2d): missing argument 'kernel_size'"),
    "regularizer": ([{"dense": {"units": 3, "kernel_regularizer": "l3"}}],
                    ("item 1 (dense): kernel_regularizer 'l3' is not a known regularizer (known: l1, l2, l1_l2, "
                    "orthogonal_regularizer)")),
    "constraint": ([{"conv2d": {"filters": 3, "kernel_size": 3, "bias_constraint": "MaxNorms"}}],
                   ("item 1 (conv2d): bias_constraint 'MaxNorms' is not a known constraint (did you mean 'MaxNorm'? "
                   "known: max_norm, min_max_norm, non_neg, unit_norm)")),
    "dilation": ([{"conv2d": {"filters": 3, "kernel_size": 3, "dilation_rate": 2}}],
                 "item 1 (conv2d): dilation_rate is not supported (only Keras's default, 1)"),
    "initializer": ([{"dense": {"units": 3, "kernel_initializer": "identity"}}],
                    "item 1 (dense): kernel_initializer 'identity' is not supported (one of: glorot_uniform"),
    "activation": ([{"dense": {"units": 3, "activation": "sparsemax"}}], "item 1 (dense): activation 'sparsemax' is not supported"),
    "slope": ([{"leaky_re_lu": -0.1}], "item 1 (leaky_re_lu): negative_slope must be a number of at least 0, got -0.1"),
    "keepdims": ([{"conv2d": {"filters": 2, "kernel_size": 3}}, {"global_average_pooling2d": {"keepdims": "yes"}}],
                 "item 2 (global_average_pooling2d): keepdims must be true or false, got 'yes'"),
    "cropping everything": ([{"cropping2d": [4, 0]}, "flatten"],
                            "item 1 (cropping2d): cropping 8 rows and 0 columns leaves nothing of its 8x8 input map"),
    "bad margins": ([{"zero_padding2d": [1, 2, 3]}, "flatten"],
                    "item 1 (zero_padding2d): padding must be sizes of at least 0: n, [rows, columns]"),
    "negative margin": ([{"zero_padding2d": -1}, "flatten"], "item 1 (zero_padding2d): padding must be sizes"),
    "spatial rate": ([{"spatial_dropout2d": 1}, "flatten"], "item 1 (spatial_dropout2d): rate must be a number"),
    "noise's stddev": ([{"gaussian_noise": -0.1}], "item 1 (gaussian_noise): stddev must be a number in [0, 1]"),
    "noise on raw pixels": ([{"gaussian_noise": 20}], ("item 1 (gaussian_noise): stddev must be a number in [0, 1], as "
                                                       "Keras's is (on raw grey levels 0-255, after a rescaling item), "
                                                       "got 20")),
    "gaussian dropout's rate": ([{"gaussian_dropout": 1.0}], "item 1 (gaussian_dropout): rate must be a number in [0, 1)"),
    "global pooling of a row": ([{"dense": 8}, "global_max_pooling2d"], "item 2 (global_max_pooling2d): needs an image"),
    "kernel too large": ([{"conv2d": {"filters": 3, "kernel_size": 5}}, {"conv2d": {"filters": 3, "kernel_size": 5}}],
                         "item 2 (conv2d): kernel 5x5 does not fit its 4x4 input map"),
    "dense after conv": ([{"conv2d": {"filters": 3, "kernel_size": 3}}, {"dense": 4}],
                         "item 2 (dense): its input is a 6x6x3 map: a flatten item must come first"),
    "head after conv": ([{"conv2d": {"filters": 3, "kernel_size": 3}}],
                        "the output layer (dense, 10 units) cannot follow item 1 (conv2d), whose output is 6x6x3: end the list with a flatten item"),
    "conv after dense": ([{"dense": 16}, {"conv2d": {"filters": 3, "kernel_size": 3}}],
                         "item 2 (conv2d): needs an image, but its input is 16 features"),
    "reshape size": ([{"reshape": [5, 5, 1]}], "item 1 (reshape): cannot reshape 64 features (64 values) to [5, 5, 1]"),
    "bad rate": ([{"dropout": 1.5}], "item 1 (dropout): rate must be a number in [0, 1), got 1.5"),
    "bad units": ([{"dense": 0}], "item 1 (dense): units must be a positive integer, got 0"),
    "two names": ([{"dense": {"units": 3, "name": "a"}}, {"dense": {"units": 3, "name": "a"}}],
                  "item 2 (dense): name 'a' is used twice"),
    "reserved name": ([{"dense": {"units": 3, "name": "forward"}}], "item 1 (dense): name must be letters"),
    "bn axis": ([{"batch_normalization": {"axis": 0}}], "item 1 (batch_normalization): axis 0 is not supported"),
    "not a layer": ([[1, 2]], "model.layers item 1: expected one layer"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_list_that_cannot_be_built_is_one_line_naming_the_item(case):
    items, expected = REFUSED[case]
    with pytest.raises(LayerError) as error:
        resolve(items, 10, (8, 8))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_sizes_are_checked():
    with pytest.raises(LayerError, match="num_classes must be an integer of at least 2"):
        resolve(None, 1, (28, 28))
    with pytest.raises(LayerError, match=r"image_shape must be positive sizes"):
        resolve(None, 10, (0, 28))


# Keras's own idioms, as a user copying a model writes them

def _summary(items, num_classes=10, shape=(28, 28)):
    return [(layer.kind, layer.args, layer.input_shape, layer.output_shape, layer.head)
            for layer in resolve(items, num_classes, shape)]


def test_a_list_gives_keras_positional_arguments_of_dense_and_conv2d():
    assert _summary([{"conv2d": [8, 3, 2, "same"], "activation": "relu"}, "flatten", {"dense": [64, "tanh"]}]) == \
        _summary([{"conv2d": {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}},
                  "flatten", {"dense": {"units": 64, "activation": "tanh"}}])
    with pytest.raises(LayerError, match=r"item 1 \(dense\): 6 positional arguments; Keras's Dense takes at most 5"):
        resolve([{"dense": [64, "relu", True, "he_normal", "zeros", 1]}], 10, (28, 28))
    # a size that may itself be a list stays the first argument
    assert resolve([{"max_pooling2d": [3, 2]}, "flatten"], 10, (28, 28))[1].args["pool_size"] == (3, 2)


@pytest.mark.parametrize("item, expected", [
    ({"re_lu": {}}, ("activation", {"activation": "relu"})),
    ("ReLU", ("activation", {"activation": "relu"})),
    ({"relu": {"negative_slope": 0.1}}, ("leaky_re_lu", {"negative_slope": 0.1})),
    ({"Softmax": {"axis": -1}}, ("activation", {"activation": "softmax"})),
    ({"ELU": 1.0}, ("activation", {"activation": "elu"})),
    ({"ReLU": {"max_value": 6.0}}, ("activation", {"activation": "relu6"})),  # MobileNet's
])
def test_relu_softmax_and_elu_layers_are_the_items_that_compute_the_same(item, expected):
    layer = resolve([item, {"dense": 16}], 10, (28, 28))[0]
    assert (layer.kind, layer.args) == expected


@pytest.mark.parametrize("item, message", [
    ({"re_lu": {"max_value": 4}}, (r"item 1 \(re_lu\): max_value 4 is not supported \(only None, or 6 without a "
                                   r"negative_slope: relu6\)")),
    ({"re_lu": {"max_value": 6, "negative_slope": 0.1}}, r"item 1 \(re_lu\): max_value 6 is not supported"),
    ({"re_lu": {"threshold": 0.5}}, r"item 1 \(re_lu\): threshold is not supported"),
    ({"softmax": {"axis": 1}}, r"item 1 \(softmax\): axis 1 is not supported"),
    ({"elu": 0.5}, r"item 1 \(elu\): alpha is not supported"),
    ({"re_lu": {"slope": 0.5}}, r"item 1 \(re_lu\): unknown argument 'slope'"),
])
def test_what_those_layers_cannot_compute_is_refused(item, message):
    with pytest.raises(LayerError, match=message):
        resolve([item, {"dense": 16}], 10, (28, 28))


@pytest.mark.parametrize("softmax", [{"activation": "softmax"}, "softmax", "Softmax"])
def test_dense_then_a_softmax_layer_is_the_output_layer(softmax):
    layers = resolve([{"dense": 32, "activation": "relu"}, {"dense": 10}, softmax], 10, (28, 28))
    assert [(layer.kind, layer.args["activation"], layer.head) for layer in layers] == [
        ("dense", "relu", False), ("dense", "softmax", True)]
    assert layers[-1].position == 2


def test_a_softmax_of_other_classes_than_the_datas_is_refused_not_followed_by_a_head():
    with pytest.raises(LayerError, match=r"item 2 \(dense\): the list ends in a softmax of 10 classes, but the data "
                                         r"have 4: give its dense 4 units"):
        resolve([{"dense": 32}, {"dense": 10, "activation": "softmax"}], 4, (28, 28))
    with pytest.raises(LayerError, match=r"item 3 \(activation\): the list ends in a softmax that no dense"):
        resolve([{"conv2d": [4, 3]}, "global_average_pooling2d", "softmax"], 4, (28, 28))


@pytest.mark.parametrize("first", [
    [{"input_layer": {"shape": [784]}}], [{"Input": [784]}], [{"InputLayer": {"batch_shape": [None, 784]}}]])
def test_an_input_of_the_row_adds_nothing(first):
    assert _summary([*first, {"dense": 64}]) == _summary([{"dense": 64}])


@pytest.mark.parametrize("declared", [{"input_dim": 784}, {"input_shape": [784]}, {"batch_input_shape": [None, 784]}])
def test_a_first_layer_may_declare_the_input_as_keras_2_notebooks_do(declared):
    assert _summary([{"dense": {"units": 64, **declared}}]) == _summary([{"dense": 64}])


def test_an_input_image_is_seen_as_one_from_the_first_layer():
    """Input((H, W, 1)) then a BatchNormalization: Keras normalises the one channel, not each pixel on its own."""
    layers = resolve([{"input": [8, 6, 1]}, "batch_normalization", {"conv2d": [4, 3]}, "flatten"], 3, (8, 6))
    assert [(layer.kind, layer.name, layer.input_shape, layer.output_shape) for layer in layers[:2]] == [
        ("reshape", "input_reshape", (48,), (8, 6, 1)), ("batch_normalization", "batch_normalization", (8, 6, 1), (8, 6, 1))]
    again = resolve(as_items(layers), 3, (8, 6))  # as a checkpoint's hyper-parameters hold it
    assert [(layer.name, layer.output_shape) for layer in again] == [(layer.name, layer.output_shape) for layer in layers]
    flat = resolve(["batch_normalization", {"conv2d": [4, 3]}, "flatten"], 3, (8, 6))
    assert flat[0].output_shape == (48,)  # without the declaration: per pixel, as Keras would on the row


def test_an_input_grid_is_taken_through_a_flatten_only():
    assert _summary([{"flatten": {"input_shape": [28, 28]}}, {"dense": 64}]) == _summary(["flatten", {"dense": 64}])
    assert _summary([{"input": [28, 28]}, {"dropout": 0.1}, "flatten"]) == _summary([{"dropout": 0.1}, "flatten"])
    with pytest.raises(LayerError, match=r"item 1 \(dense\): its input is the 28x28 grid that the input's shape "
                                         r"declares, which lit-mnist's layers take through a flatten only"):
        resolve([{"dense": {"units": 64, "input_shape": [28, 28]}}], 10, (28, 28))


@pytest.mark.parametrize("items, message", [
    ([{"dense": {"units": 64, "input_shape": [784]}}], (r"item 1 \(dense\): the input's shape \[784\] is not the "
                                                         r"data's: their images are 8x8, 64 grey levels a row")),
    ([{"input": [8, 8, 3]}, {"conv2d": [4, 3]}], r"not the data's: .*the data's images are grey, one channel"),
    ([{"dense": 64}, {"input": [64]}], r"item 2 \(input_layer\): only the first layer declares the input's shape"),
    ([{"input": [64]}, {"dense": {"units": 4, "input_dim": 64}}], r"item 2 \(dense\): only the first layer declares"),
    ([{"input": {"shape": [64], "dtype": "uint8"}}], r"item 1 \(input_layer\): dtype 'uint8' is not supported"),
    ([{"input": {}}], r"item 1 \(input_layer\): give the input's shape"),
    ([{"input": [0, 8]}], r"item 1 \(input_layer\): shape must be one to three positive sizes"),
    ([{"dense": {"units": 4, "input_dim": 64, "input_shape": [64]}}], r"input_shape and input_dim both declare"),
])
def test_a_declared_input_that_is_not_the_datas_is_refused_naming_the_item(items, message):
    with pytest.raises(LayerError, match=message):
        resolve(items, 10, (8, 8))


def test_layer_normalization_takes_keras_defaults_and_the_last_axis_only():
    layer = resolve([{"conv2d": [4, 3]}, "layer_normalization", "flatten"], 10, (8, 8))[2]
    assert (layer.args, layer.output_shape) == ({"axis": -1, "epsilon": 1e-3, "center": True, "scale": True,
                                                 **dict.fromkeys(("beta_regularizer", "gamma_regularizer",
                                                                  "activity_regularizer", "beta_constraint",
                                                                  "gamma_constraint"))}, (6, 6, 4))
    assert resolve([{"dense": 8}, {"layer_normalization": {"axis": [1]}}], 10, (8, 8))[1].args["axis"] == [1]
    for args, message in (({"axis": 1}, r"axis 1 is not supported \(only the last axis"),
                          ({"rms_scaling": True}, r"rms_scaling is not supported"),
                          ({"epsilon": 0}, r"epsilon must be positive")):
        with pytest.raises(LayerError, match=rf"item 2 \(layer_normalization\): {message}"):
            resolve([{"conv2d": [4, 3]}, {"layer_normalization": args}, "flatten"], 10, (8, 8))


def test_prelu_shares_its_slopes_along_the_axes_keras_numbers():
    layers = resolve([{"conv2d": [4, 3]}, {"PReLU": {"shared_axes": [2, 1]}}, "flatten", "prelu"], 10, (8, 8))
    assert layers[2].args == {"alpha_initializer": "zeros", "shared_axes": (1, 2), "alpha_regularizer": None,
                              "activity_regularizer": None, "alpha_constraint": None} and layers[4].kind == "p_re_lu"
    for axes, message in (([0], "shared_axes must be axes of the input counted from 1"),
                          ([4], r"shared_axes \[4\]: its input, 6x6x4, has axes 1-3")):
        with pytest.raises(LayerError, match=rf"item 2 \(p_re_lu\): {message}"):
            resolve([{"conv2d": [4, 3]}, {"p_re_lu": {"shared_axes": axes}}, "flatten"], 10, (8, 8))


def test_depthwise_and_separable_convolutions_size_as_keras():
    layers = resolve([{"conv2d": [3, 3]}, {"depthwise_conv2d": [3, 2, "same"], "depth_multiplier": 4},
                      {"SeparableConv2D": [5, 3]}, "flatten"], 10, (12, 12))
    assert [layer.output_shape for layer in layers[1:4]] == [(10, 10, 3), (5, 5, 12), (3, 3, 5)]
    with pytest.raises(LayerError, match=r"item 2 \(depthwise_conv2d\): depth_multiplier must be a positive integer"):
        resolve([{"conv2d": [3, 3]}, {"depthwise_conv2d": {"kernel_size": 3, "depth_multiplier": 0}}], 10, (12, 12))
