"""The network as a list of layers in Keras's own vocabulary, checked and sized before anything is built.

Each item of ``--model.layers`` is one Keras layer: its class name in snake_case (Keras's default layer
name: ``dense``, ``conv2d``, ``max_pooling2d``, ``batch_normalization``, ...; Keras's class name itself,
``Conv2D``, and its aliases, ``MaxPool2D``, are read too) mapped to its arguments, by Keras's names and with
Keras's defaults::

    - conv2d: {filters: 8, kernel_size: 3, padding: same, activation: relu}
    - max_pooling2d: {pool_size: 2}
    - flatten: {}
    - dense: {units: 64, activation: tanh}

A bare name (``- flatten``) is an item without arguments, and a value that is not a mapping is the layer's
first argument, as Keras's first positional one (``- dropout: 0.25``, ``- activation: relu``, ``- dense: 64``),
or for ``dense`` and ``conv2d`` a list of the positional ones (``- conv2d: [32, 3]``); further keys are
arguments, as in Keras's call (``{dense: 256, activation: relu}``). Keras's ReLU, Softmax and ELU layers are
read as the items that compute the same. The layers see the flat row of H*W grey levels until the first layer
of images (conv, pooling, padding, cropping, spatial dropout), which sees it as HxWx1 (a ``reshape`` item may
say so itself), unless the input is declared as Keras declares it (an ``input`` item, or the first layer's
``input_shape``): it must then be the data's, and an image declared is an image from the first layer on.
The output layer, a ``dense`` of ``num_classes`` units whose softmax the loss takes, is appended, unless
the list already ends with such a dense (softmax or linear activation, or a softmax after it), which is then
the head.

:func:`resolve` turns a list into :class:`Layer` records, every argument filled in and every shape
known (Keras's, channels-last and without the batch axis), or raises :class:`LayerError` naming the item.
Nothing here needs torch: the Keras twin and the importer read the same records.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lit_mnist.errors import DataError

ACTIVATIONS = ("linear", "relu", "elu", "gelu", "tanh", "sigmoid", "softmax", "silu", "swish", "softplus", "selu",
               "leaky_relu", "relu6", "celu", "mish", "softsign", "exponential", "hard_tanh", "tanh_shrink",
               "log_sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "hard_shrink", "soft_shrink")
BIAS_INITIALIZERS = ("zeros", "ones", "random_normal", "random_uniform", "truncated_normal")
KERNEL_INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                       "orthogonal", *BIAS_INITIALIZERS)
_INITIALIZER_ALIASES = {"normal": "random_normal", "uniform": "random_uniform"}  # Keras's own aliases
_REGULARIZED = ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint")
_CHANNELS_LAST = ("channels_last", None)


class LayerError(DataError):
    """A layer list that cannot be built: one line naming the item. ``item`` (its position in the list, from 1)
    and ``detail`` (what is wrong with it) where the error is an item's, for whoever names it otherwise (the
    importer names the file's layer)."""

    def __init__(self, message: str, item: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.item, self.detail = item, detail


@dataclass(frozen=True)
class Where:
    """An item of the list, as its errors name it: ``model.layers item 3 (dense)``; no position: the output
    layer that the list implies."""

    position: int | None
    kind: str | None = None

    def __str__(self) -> str:
        if self.position is None:
            return "the output layer"
        return f"model.layers item {self.position}" + (f" ({self.kind})" if self.kind is not None else "")

    def error(self, detail: str) -> LayerError:
        return LayerError(f"{self}: {detail}", item=self.position, detail=detail)


@dataclass(frozen=True)
class Kind:
    """One Keras layer class: ``keras_class``, its first positional argument, the arguments it needs, those it
    takes (with Keras's defaults), and those honoured only at Keras's default (each maps to the values that
    mean the default)."""

    keras_class: str
    first: str
    required: tuple[str, ...] = ()
    optional: Mapping[str, Any] = field(default_factory=dict)
    defaults_only: Mapping[str, tuple] = field(default_factory=dict)
    image_only: bool = False  # needs an HxWxC input (conv, pooling)
    positional: tuple[str, ...] = ()  # Keras's order of the arguments, where a list may give them positionally


_POOLING = {"strides": None, "padding": "valid"}
KINDS: dict[str, Kind] = {
    "dense": Kind("Dense", "units", ("units",),
                  {"activation": "linear", "use_bias": True, "kernel_initializer": "glorot_uniform",
                   "bias_initializer": "zeros"},
                  {**dict.fromkeys(_REGULARIZED, (None,)), "lora_rank": (None,), "quantization_config": (None,)},
                  positional=("units", "activation", "use_bias", "kernel_initializer", "bias_initializer")),
    "conv2d": Kind("Conv2D", "filters", ("filters", "kernel_size"),
                   {"strides": (1, 1), "padding": "valid", "activation": "linear", "use_bias": True,
                    "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"},
                   {**dict.fromkeys(_REGULARIZED, (None,)), "data_format": _CHANNELS_LAST, "dilation_rate": (1, (1, 1)),
                    "groups": (1,)}, image_only=True,
                   positional=("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
                               "activation", "use_bias", "kernel_initializer", "bias_initializer")),
    "depthwise_conv2d": Kind(
        "DepthwiseConv2D", "kernel_size", ("kernel_size",),
        {"strides": (1, 1), "padding": "valid", "depth_multiplier": 1, "activation": "linear", "use_bias": True,
         "depthwise_initializer": "glorot_uniform", "bias_initializer": "zeros"},
        {"depthwise_regularizer": (None,), "bias_regularizer": (None,), "activity_regularizer": (None,),
         "depthwise_constraint": (None,), "bias_constraint": (None,), "data_format": _CHANNELS_LAST,
         "dilation_rate": (1, (1, 1)), "groups": (1,)}, image_only=True,
        positional=("kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate",
                    "activation", "use_bias", "depthwise_initializer", "bias_initializer")),
    "separable_conv2d": Kind(
        "SeparableConv2D", "filters", ("filters", "kernel_size"),
        {"strides": (1, 1), "padding": "valid", "depth_multiplier": 1, "activation": "linear", "use_bias": True,
         "depthwise_initializer": "glorot_uniform", "pointwise_initializer": "glorot_uniform", "bias_initializer": "zeros"},
        {"depthwise_regularizer": (None,), "pointwise_regularizer": (None,), "bias_regularizer": (None,),
         "activity_regularizer": (None,), "depthwise_constraint": (None,), "pointwise_constraint": (None,),
         "bias_constraint": (None,), "data_format": _CHANNELS_LAST, "dilation_rate": (1, (1, 1)), "groups": (1,)},
        image_only=True,
        positional=("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier",
                    "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer")),
    "max_pooling2d": Kind("MaxPooling2D", "pool_size", (), {"pool_size": (2, 2), **_POOLING},
                          {"data_format": _CHANNELS_LAST}, image_only=True),
    "average_pooling2d": Kind("AveragePooling2D", "pool_size", ("pool_size",), _POOLING,
                              {"data_format": _CHANNELS_LAST}, image_only=True),
    "global_average_pooling2d": Kind("GlobalAveragePooling2D", "data_format", (), {"keepdims": False},
                                     {"data_format": _CHANNELS_LAST}, image_only=True),
    "global_max_pooling2d": Kind("GlobalMaxPooling2D", "data_format", (), {"keepdims": False},
                                 {"data_format": _CHANNELS_LAST}, image_only=True),
    "zero_padding2d": Kind("ZeroPadding2D", "padding", (), {"padding": ((1, 1), (1, 1))},
                           {"data_format": _CHANNELS_LAST}, image_only=True),
    "cropping2d": Kind("Cropping2D", "cropping", (), {"cropping": ((0, 0), (0, 0))}, {"data_format": _CHANNELS_LAST},
                       image_only=True),
    "flatten": Kind("Flatten", "data_format", (), {}, {"data_format": _CHANNELS_LAST}),
    "reshape": Kind("Reshape", "target_shape", ("target_shape",)),
    "dropout": Kind("Dropout", "rate", ("rate",), {}, {"noise_shape": (None,), "seed": (None,)}),
    "spatial_dropout2d": Kind("SpatialDropout2D", "rate", ("rate",), {},
                              {"seed": (None,), "noise_shape": (None,), "data_format": _CHANNELS_LAST}, image_only=True),
    "gaussian_noise": Kind("GaussianNoise", "stddev", ("stddev",), {}, {"seed": (None,)}),
    "gaussian_dropout": Kind("GaussianDropout", "rate", ("rate",), {}, {"seed": (None,)}),
    "batch_normalization": Kind(
        "BatchNormalization", "axis", (), {"axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True},
        {"beta_initializer": ("zeros",), "gamma_initializer": ("ones",), "moving_mean_initializer": ("zeros",),
         "moving_variance_initializer": ("ones",), "beta_regularizer": (None,), "gamma_regularizer": (None,),
         "beta_constraint": (None,), "gamma_constraint": (None,), "renorm": (False,), "renorm_clipping": (None,),
         "renorm_momentum": (0.99,), "synchronized": (False,)}),
    "layer_normalization": Kind(
        "LayerNormalization", "axis", (), {"axis": -1, "epsilon": 1e-3, "center": True, "scale": True},
        {"beta_initializer": ("zeros",), "gamma_initializer": ("ones",), "beta_regularizer": (None,),
         "gamma_regularizer": (None,), "beta_constraint": (None,), "gamma_constraint": (None,), "rms_scaling": (False,)}),
    "activation": Kind("Activation", "activation", ("activation",)),
    "leaky_re_lu": Kind("LeakyReLU", "negative_slope", (), {"negative_slope": 0.3}),
    "p_re_lu": Kind("PReLU", "alpha_initializer", (), {"alpha_initializer": "zeros", "shared_axes": None},
                    {"alpha_regularizer": (None,), "alpha_constraint": (None,)}),
    "rescaling": Kind("Rescaling", "scale", ("scale",), {"offset": 0.0}),
    "normalization": Kind("Normalization", "axis", ("mean", "variance"), {"axis": -1}, {"invert": (False,)}),
}
# Keras layers that compute what an item above computes, read as that item: first argument, arguments and defaults
EQUIVALENTS: dict[str, tuple[str, dict]] = {
    "re_lu": ("max_value", {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}),
    "softmax": ("axis", {"axis": -1}),
    "elu": ("alpha", {"alpha": 1.0}),
}
KERAS_CLASSES = {spec.keras_class: kind for kind, spec in KINDS.items()}  # Dense -> dense, ...
# a kind may also be written as Keras's class name (Conv2D) or one of Keras's aliases (MaxPool2D, max_pool2d)
_ALIASES = {**KERAS_CLASSES, "ReLU": "re_lu", "relu": "re_lu", "Softmax": "softmax", "ELU": "elu",
            "Input": "input_layer", "InputLayer": "input_layer", "input": "input_layer",
            **{alias: kind for kind, aliases in (("max_pooling2d", ("MaxPool2D", "max_pool2d")),
                                                 ("average_pooling2d", ("AvgPool2D", "avg_pool2d")),
                                                 ("global_average_pooling2d", ("GlobalAvgPool2D", "global_avg_pool2d")),
                                                 ("global_max_pooling2d", ("GlobalMaxPool2D", "global_max_pool2d")),
                                                 ("leaky_re_lu", ("leaky_relu",)),
                                                 ("p_re_lu", ("prelu",)))
               for alias in aliases}}
# every Keras layer takes these; only what we can honour is accepted
_COMMON_DEFAULTS_ONLY = {"trainable": (True,), "dtype": (None, "float32")}
ORIGINAL = (  # the original notebook's hidden layers; its Dense(10, softmax) is the head appended from the data
    {"dense": {"units": 128, "activation": "relu"}},
    {"dense": {"units": 64, "activation": "relu"}},
    {"dense": {"units": 128, "activation": "relu"}},
)
CONVOLUTIONS = ("conv2d", "depthwise_conv2d", "separable_conv2d")
_NORMALIZING = ("batch_normalization", "layer_normalization")  # over the last axis, with gamma and beta
_PER_VALUE = {"dropout", "gaussian_noise", "gaussian_dropout", "leaky_re_lu"}  # each value on its own, any shape
_ELEMENTWISE = {"dropout", "gaussian_noise", "gaussian_dropout", "activation", "leaky_re_lu", "p_re_lu", "rescaling",
                "normalization", "batch_normalization", "layer_normalization"}  # they keep the row's shape


@dataclass(frozen=True)
class Layer:
    """One resolved layer: ``args`` holds every argument (Keras's defaults filled in, pairs as tuples);
    ``position`` is the item's number in the list (1-based), None for a layer the list implies (the reshape
    before the first conv, the appended head); shapes are Keras's: ``(features,)`` or ``(height, width,
    channels)``, without the batch axis."""

    kind: str
    args: dict
    name: str
    position: int | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    head: bool = False
    named: bool = False  # the item gave its name (else Keras's automatic one)

    @property
    def keras_class(self) -> str:
        return KINDS[self.kind].keras_class

    def describe(self) -> str:
        return f"item {self.position} ({self.kind})" if self.position else f"the implied {self.kind} ({self.name})"


def resolve(items: Iterable | None, num_classes: int, image_shape: tuple[int, int]) -> list[Layer]:
    """Check ``items`` (None: the original's) against an image of ``image_shape`` and ``num_classes`` classes,
    and size every layer; the output layer is appended unless the list ends with it."""
    height, width = _image_shape(image_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise LayerError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    items = list(ORIGINAL if items is None else items) if not isinstance(items, (str, Mapping)) else [items]
    layers: list[Layer] = []
    names: dict[str, int] = {}
    shape: tuple[int, ...] = (height * width,)
    raw_row = True  # still the input row: only elementwise layers so far
    declared, grid = False, False  # grid: an HxW input declared, seen by Keras's layers as H rows until a flatten
    for position, item in enumerate(items, start=1):
        kind, args, input_shape = _parse_item(position, item)
        where = Where(position, kind)
        if input_shape is not None:
            if declared or layers:
                raise where.error("only the first layer declares the input's shape (Keras reads it there alone)")
            declared, grid = True, _declared(where, input_shape, height, width)
            if len(input_shape) == 3:  # Keras's layers see an image from the start
                layers.append(Layer("reshape", {"target_shape": input_shape}, _name("reshape", "input_reshape", names),
                                    position, shape, input_shape, named=True))
                shape, raw_row = input_shape, False
        if kind == "input_layer":
            continue
        if grid:
            _check_on_grid(where, kind, args, height, width)
            grid = kind != "flatten"
        if KINDS[kind].image_only and len(shape) == 1:
            if not raw_row:
                raise where.error(f"needs an image, but its input is {shape[0]} features "
                                 "(a reshape item to [height, width, channels] first)")
            implied = Layer("reshape", {"target_shape": (height, width, 1)}, _name("reshape", None, names), None,
                            shape, (height, width, 1))
            layers.append(implied)
            shape = implied.output_shape
        try:
            output = output_shape(kind, args, shape)
        except ValueError as e:
            raise where.error(f"{e}") from None
        given = args.pop("name", None)
        layers.append(Layer(kind, args, _name(kind, given, names, where), position, shape, output, named=given is not None))
        raw_row = raw_row and kind in _ELEMENTWISE | {"flatten"}
        shape = output
    return _with_head(layers, names, shape, num_classes)


def _declared(where: Where, declared: tuple[int, ...], height: int, width: int) -> bool:
    """Check a declared input shape against the data's images; True where it is the HxW grid."""
    fits = {1: (height * width,), 2: (height, width), 3: (height, width, 1)}[len(declared)]
    if declared != fits:
        grey = "; lit-mnist's images are grey, one channel" if declared[:2] == (height, width) else ""
        raise where.error(f"the input's shape {list(declared)} is not the data's: their images are "
                         f"{height}x{width}, {height * width} grey levels a row{grey}; declare [{height * width}], "
                         f"[{height}, {width}] or [{height}, {width}, 1], or leave it out")
    return len(declared) == 2


def _check_on_grid(where: Where, kind: str, args: dict, height: int, width: int) -> None:
    """Keras's layers see a declared HxW input as H rows of W values; the row is the same only to a flatten and
    to layers that take each value on its own."""
    on_its_own = kind in {"flatten", *_PER_VALUE} or kind == "activation" and args["activation"] != "softmax" or (
        kind == "rescaling" and _number(args["scale"]) and _number(args["offset"]))
    if not on_its_own:
        raise where.error(f"its input is the {height}x{width} grid that the input's shape declares, which "
                         f"lit-mnist's layers take through a flatten only (declare [{height}, {width}, 1] for an image, "
                         f"or [{height * width}] for the row)")


def _with_head(layers: list[Layer], names: dict[str, int], shape: tuple[int, ...], num_classes: int) -> list[Layer]:
    if len(layers) > 1 and _is_softmax(layers[-1]) and layers[-2].kind == "dense" and layers[-2].args["activation"] == "linear":
        dense = layers.pop(-2)  # Dense(K) then Softmax: one output layer, as Dense(K, activation="softmax")
        layers[-1] = Layer(**{**dense.__dict__, "args": {**dense.args, "activation": "softmax"}})
    last = layers[-1] if layers else None
    if last and last.kind == "dense" and last.args["units"] == num_classes and last.args["activation"] in ("softmax", "linear"):
        layers[-1] = Layer(**{**last.__dict__, "head": True})
        return layers
    if last and (_is_softmax(last) or last.kind == "dense" and last.args["activation"] == "softmax"):
        what = (f"a softmax of {last.output_shape[0]} classes, but the data have {num_classes}: give its dense "
                f"{num_classes} units" if last.kind == "dense" else
                "a softmax that no dense of the classes takes: end it with a dense of the classes")
        detail = f"the list ends in {what}, or leave it out and the output layer is appended"
        if last.position is None:
            raise LayerError(f"model.layers {last.describe()}: {detail}")
        raise Where(last.position, last.kind).error(detail)
    if len(shape) != 1:
        raise LayerError(f"the output layer (dense, {num_classes} units) cannot follow {layers[-1].describe()}, whose "
                         f"output is {_fmt(shape)}: end the list with a flatten item")
    args = _fill("dense", {"units": num_classes, "activation": "softmax"}, Where(None, "dense"))
    return [*layers, Layer("dense", args, _name("dense", None, names), None, shape, (num_classes,), head=True)]


def _is_softmax(layer: Layer) -> bool:
    return layer.kind == "activation" and layer.args["activation"] == "softmax"


def _image_shape(image_shape) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise LayerError(f"image_shape must be [height, width], got {image_shape!r}") from None
    if height < 1 or width < 1:
        raise LayerError(f"image_shape must be two positive sizes, got {[height, width]}")
    if height * width > MAX_SIZE:
        raise LayerError(f"image_shape {[height, width]} holds {height * width:,} pixels, over 2**24")
    return height, width


def _parse_item(position: int, item) -> tuple[str, dict, tuple | None]:
    """An item as (kind, every argument with its default, the input shape it declares), or a LayerError naming
    it. A mapping's first key is the kind; further keys are arguments, as in Keras's call: ``{dense: 256,
    activation: relu}`` is Dense(256, ...); a list is the positional arguments of a layer whose first is a number
    (``{conv2d: [32, 3]}`` is Conv2D(32, 3))."""
    if isinstance(item, str):
        kind, given, more = _ALIASES.get(item.strip(), item.strip()), {}, {}
    elif isinstance(item, Mapping) and item:
        (kind, given), *more = item.items()
        kind, more = _ALIASES.get(kind, kind) if isinstance(kind, str) else kind, dict(more)
        given = _positional(position, kind, given)
    else:
        raise Where(position).error(f"expected one layer, as {{kind: {{argument: value}}}}, "
                         f"{{kind: first argument, argument: value}} or a bare kind, got {item!r}")
    if kind not in KINDS and kind not in EQUIVALENTS and kind != "input_layer":
        slip = _did_you_mean(kind, [*KINDS, *_ALIASES, *EQUIVALENTS])
        raise Where(position).error(f"unknown layer {kind!r} ({slip}known: {', '.join(KINDS)}, "
                         f"and {', '.join(EQUIVALENTS)} as the items they compute)")
    if not isinstance(given, Mapping):
        raise Where(position, kind).error(f"arguments must be a mapping, got {given!r}")
    twice = next((name for name in more if name in given), None)
    if twice is not None:
        raise Where(position, kind).error(f"argument {twice!r} is given twice")
    given, where = {**given, **more}, Where(position, kind)
    if kind == "input_layer":
        return kind, {}, _input_layer_shape(given, where)
    declared = _declared_shape(given, where)
    if kind in EQUIVALENTS:
        own = {k: given.pop(k) for k in list(given) if k not in ("name", *_COMMON_DEFAULTS_ONLY)}
        try:
            (kind, args), = equivalent(kind, own).items()
        except ValueError as e:
            raise where.error(f"{e}") from None
        given = {**args, **given}
    return kind, _fill(kind, given, where), declared


def equivalent(kind: str, given: Mapping) -> dict:
    """The item that computes what Keras's ReLU, Softmax or ELU layer (``kind``: re_lu, softmax, elu) with the
    arguments ``given`` computes, as ``{kind: {argument: value}}``; ValueError where no item does."""
    _, defaults = EQUIVALENTS[kind]
    unknown = [k for k in given if k not in defaults]
    if unknown:
        raise ValueError(f"unknown argument {unknown[0]!r} ({_did_you_mean(unknown[0], list(defaults))}{kind} takes "
                         f"{', '.join(defaults)})")
    args = {**defaults, **given}
    if kind == "re_lu":
        for name in ("max_value", "threshold"):
            if args[name] not in (defaults[name], 0):
                raise ValueError(f"{name} is not supported (only Keras's default, {defaults[name]!r})")
        slope = args["negative_slope"]
        if not (_number(slope) and slope >= 0):
            raise ValueError(f"negative_slope must be a number of at least 0, got {slope!r}")
        return {"leaky_re_lu": {"negative_slope": slope}} if slope else {"activation": {"activation": "relu"}}
    if kind == "softmax":
        if _plain(args["axis"]) not in (-1, (-1,)):
            raise ValueError(f"axis {args['axis']!r} is not supported (only the last axis, -1: the features or channels)")
        return {"activation": {"activation": "softmax"}}
    if args["alpha"] != 1.0 or isinstance(args["alpha"], bool):
        raise ValueError(f"alpha is not supported (only Keras's default, 1.0), got {args['alpha']!r}")
    return {"activation": {"activation": "elu"}}


def _declared_shape(given: dict, where: Where) -> tuple | None:
    """The input shape an item declares as Keras's layers may (``input_shape``, ``input_dim``, Keras 2's
    ``batch_input_shape``), taken out of ``given``."""
    declared = [(key, given.pop(key)) for key in ("input_shape", "input_dim", "batch_input_shape") if key in given]
    if not declared:
        return None
    if len(declared) > 1:
        raise where.error(f"{declared[0][0]} and {declared[1][0]} both declare the input shape")
    key, value = declared[0]
    if key == "input_dim":
        value = [value]
    elif key == "batch_input_shape":
        value = value[1:] if isinstance(value, (list, tuple)) and value else value
    return _shape(key, value, where)


def _input_layer_shape(given: dict, where: Where) -> tuple:
    """The shape an ``input_layer`` item (Keras's ``Input`` or ``InputLayer``) declares."""
    allowed = {"shape": None, "batch_shape": None, "batch_size": None, "name": None, "dtype": None, "sparse": False,
               "ragged": False, "optional": False}
    unknown = [k for k in given if k not in allowed]
    if unknown:
        raise where.error(f"unknown argument {unknown[0]!r} (input_layer takes shape or batch_shape, "
                         "batch_size, name, dtype)")
    for name in ("sparse", "ragged", "optional"):
        if given.get(name) not in (None, False):
            raise where.error(f"{name} is not supported (only Keras's default, False)")
    if given.get("dtype") not in (None, "float32"):
        raise where.error(f"dtype {given['dtype']!r} is not supported (the grey levels are float32)")
    if ("shape" in given) == ("batch_shape" in given):
        raise where.error("give the input's shape, as shape (without the batch axis) or batch_shape")
    if "shape" in given:
        return _shape("shape", given["shape"], where)
    value = given["batch_shape"]
    return _shape("batch_shape", value[1:] if isinstance(value, (list, tuple)) and value else value, where)


def _shape(name: str, value, where: Where) -> tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(values) <= 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise where.error(f"{name} must be one to three positive sizes (without the batch axis), got {value!r}")
    return tuple(values)


def _positional(position: int, kind, given) -> dict:
    """``given`` as Keras's call would take it: a mapping of arguments, a first positional argument, or a list of
    positional ones for a layer whose first argument is a number (not a size that may itself be a list)."""
    if given is None:
        return {}
    if isinstance(given, Mapping) or kind not in KINDS and kind not in EQUIVALENTS and kind != "input_layer":
        return given
    if kind == "input_layer":
        return {"shape": given}
    spec = KINDS.get(kind)
    if spec is None or not spec.positional or not isinstance(given, (list, tuple)):
        return {_first(kind): given}  # Keras's first positional argument: dropout: 0.25
    if len(given) > len(spec.positional):
        raise Where(position, kind).error(f"{len(given)} positional arguments; Keras's {spec.keras_class} "
                         f"takes at most {len(spec.positional)} ({', '.join(spec.positional)})")
    return dict(zip(spec.positional, given))


def _first(kind: str) -> str:
    return KINDS[kind].first if kind in KINDS else EQUIVALENTS[kind][0]


def _fill(kind: str, given: dict, where: Where) -> dict:
    spec = KINDS[kind]
    unknown = [k for k in given if k not in (*spec.required, *spec.optional, *spec.defaults_only, "name",
                                             *_COMMON_DEFAULTS_ONLY)]
    if unknown:
        takes = ", ".join([*spec.required, *spec.optional]) or "no arguments"
        known = [*spec.required, *spec.optional, *spec.defaults_only]
        raise where.error(f"unknown argument {unknown[0]!r} ({_did_you_mean(unknown[0], known)}{kind} takes "
                         f"{takes})")
    missing = [k for k in spec.required if k not in given]
    if missing:
        raise where.error(f"missing argument {missing[0]!r}")
    for name, defaults in {**spec.defaults_only, **_COMMON_DEFAULTS_ONLY}.items():
        if name in given and _plain(given.pop(name)) not in [_plain(d) for d in defaults]:
            raise where.error(f"{name} is not supported (only Keras's default, {defaults[0]!r})")
    # in Keras's order: what it needs, then what it takes (given or its default)
    args = {**{k: given[k] for k in spec.required}, **{k: given.get(k, v) for k, v in spec.optional.items()},
            **({"name": given["name"]} if "name" in given else {})}
    try:
        return _checked(kind, args)
    except (TypeError, ValueError) as e:
        raise where.error(f"{e}") from None


def _did_you_mean(name, known: list[str]) -> str:
    """``"did you mean 'x'? "`` for the known name ``name`` is likely a slip of (its case, a letter or two), else ""."""
    if not isinstance(name, str):
        return ""
    alike = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f"did you mean {alike[0]!r}? " if alike else ""


def _plain(value):
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _checked(kind: str, args: dict) -> dict:
    """Values checked and put in one form: pairs as tuples, names lower-case, numbers as numbers."""
    if "units" in args:
        args["units"] = _positive_int("units", args["units"])
    for name in ("filters", "depth_multiplier"):
        if name in args:
            args[name] = _positive_int(name, args[name])
    for name in ("kernel_size", "pool_size"):
        if name in args:
            args[name] = _pair(name, args[name])
    if "strides" in args:
        args["strides"] = None if args["strides"] is None and kind not in CONVOLUTIONS else _pair("strides", args["strides"])
    if "padding" in args:
        args["padding"] = _margins("padding", args["padding"]) if kind == "zero_padding2d" else \
            _choice("padding", args["padding"], ("valid", "same"))
    if "cropping" in args:
        args["cropping"] = _margins("cropping", args["cropping"])
    if "activation" in args:
        args["activation"] = _choice("activation", "linear" if args["activation"] is None else args["activation"],
                                     ACTIVATIONS)
    for name in ("center", "scale") if kind in _NORMALIZING else ("keepdims", "use_bias"):
        if name in args and not isinstance(args[name], bool):
            raise ValueError(f"{name} must be true or false, got {args[name]!r}")
    for name, choices in (("kernel_initializer", KERNEL_INITIALIZERS), ("depthwise_initializer", KERNEL_INITIALIZERS),
                          ("pointwise_initializer", KERNEL_INITIALIZERS), ("bias_initializer", BIAS_INITIALIZERS),
                          ("alpha_initializer", BIAS_INITIALIZERS)):
        if name in args:
            value = _INITIALIZER_ALIASES.get(args[name], args[name]) if isinstance(args[name], str) else args[name]
            args[name] = _choice(name, value, choices)
    if kind == "leaky_re_lu" and not (_number(args["negative_slope"]) and args["negative_slope"] >= 0):
        raise ValueError(f"negative_slope must be a number of at least 0, got {args['negative_slope']!r}")
    if kind == "gaussian_noise" and not (_number(args["stddev"]) and 0 <= args["stddev"] <= 1):
        raise ValueError(f"stddev must be a number in [0, 1], as Keras's is (on raw grey levels 0-255, after a "
                         f"rescaling item), got {args['stddev']!r}")
    if kind in ("dropout", "spatial_dropout2d", "gaussian_dropout") and not (_number(args["rate"]) and 0 <= args["rate"] < 1):
        raise ValueError(f"rate must be a number in [0, 1), got {args['rate']!r}")
    if kind == "batch_normalization" and not (_number(args["momentum"]) and 0 <= args["momentum"] < 1):
        raise ValueError(f"momentum must be in [0, 1), got {args['momentum']!r}")
    if kind in _NORMALIZING and not (_number(args["epsilon"]) and args["epsilon"] > 0):
        raise ValueError(f"epsilon must be positive, got {args['epsilon']!r}")
    if kind == "reshape":
        args["target_shape"] = _target_shape(args["target_shape"])
    if kind == "p_re_lu" and args["shared_axes"] is not None:
        axes = args["shared_axes"] if isinstance(args["shared_axes"], (list, tuple)) else [args["shared_axes"]]
        if not axes or any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in axes):
            raise ValueError(f"shared_axes must be axes of the input counted from 1 (Keras's: 1, 2 the height and "
                             f"width of an image), got {args['shared_axes']!r}")
        args["shared_axes"] = tuple(sorted(set(axes)))
    for name in ("scale", "offset") if kind == "rescaling" else ("mean", "variance") if kind == "normalization" else ():
        args[name] = _numbers(name, args[name])
    if kind == "normalization" and min(_flat(args["variance"])) < 0:
        raise ValueError("variance must not be negative")
    return args


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


MAX_SIZE = 1 << 24  # a layer's size (units, filters, a kernel's side) or an image's pixels: past it, no digit net


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > MAX_SIZE:
        raise ValueError(f"{name} must be a positive integer at most 2**24, got {value}")
    return value


def _pair(name: str, value) -> tuple[int, int]:
    values = [value, value] if not isinstance(value, (list, tuple)) else list(value)
    if len(values) != 2:
        raise ValueError(f"{name} must be an integer or two, got {value!r}")
    return tuple(_positive_int(name, v) for v in values)


def _margins(name: str, value) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's ((top, bottom), (left, right)), from one size, (rows, columns) or the pairs themselves."""
    wrong = ValueError(f"{name} must be sizes of at least 0: n, [rows, columns] or [[top, bottom], [left, right]]; "
                       f"got {value!r}")

    def size(v) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise wrong
        return v

    if not isinstance(value, (list, tuple)):
        return ((size(value),) * 2,) * 2
    if len(value) != 2:
        raise wrong
    if all(isinstance(v, (list, tuple)) for v in value):
        if any(len(v) != 2 for v in value):
            raise wrong
        return tuple((size(a), size(b)) for a, b in value)
    return tuple((size(v), size(v)) for v in value)


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    text = value.lower() if isinstance(value, str) else value
    if text not in choices:
        raise ValueError(f"{name} {value!r} is not supported ({_did_you_mean(text, list(choices))}one of: "
                         f"{', '.join(choices)})")
    return text


def _target_shape(value) -> tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 3) or any(isinstance(v, bool) or not isinstance(v, int) or v == 0 or v < -1
                                        for v in values) or values.count(-1) > 1:
        raise ValueError(f"target_shape must be [features] or [height, width, channels] (positive, one -1 allowed), "
                         f"got {value!r}")
    return tuple(values)


def _numbers(name: str, value):
    """A number, or a list of them (one per feature or channel, on the last axis)."""
    if _number(value):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(_number(v) for v in value):
        return tuple(float(v) for v in value)
    raise ValueError(f"{name} must be a number or a list of numbers, got {value!r}")


def _flat(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _name(kind: str, given, names: dict[str, int], where: Where | None = None) -> str:
    """Keras's naming: dense, dense_1, dense_2, ...; a given name must be a usable, unused module name."""
    if given is None:
        count = names.get(kind, 0)
        while (name := kind if count == 0 else f"{kind}_{count}") in names:
            count += 1
        names[kind] = count + 1
    else:
        if not isinstance(given, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", given) or given in RESERVED_NAMES:
            raise where.error(f"name must be letters, digits and '_', starting with a letter, and not one of "
                             f"the net's own attributes; got {given!r}")
        if given in names:
            raise where.error(f"name {given!r} is used twice")
        name = given
    names[name] = names.get(name, 1)
    return name


# attributes of the torch container the layers become children of
RESERVED_NAMES = {"forward", "training", "layers", "train", "eval", "to", "type", "float", "double", "half", "cuda", "cpu",
             "parameters", "buffers", "children", "modules", "apply", "state_dict", "extra_repr", "append", "extend",
             "insert", "pop", "dump_patches", "call_super_init", "T_destination"}


def _fmt(shape: tuple[int, ...]) -> str:
    return f"{shape[0]} features" if len(shape) == 1 else "x".join(map(str, shape))


def output_shape(kind: str, args: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The Keras shape a layer of ``kind`` makes of an input of ``shape``, or ValueError saying why it does not fit."""
    if kind == "dense":
        if len(shape) != 1:
            raise ValueError(f"its input is a {_fmt(shape)} map: a flatten item must come first")
        return (args["units"],)
    if kind in CONVOLUTIONS:
        channels = shape[2] * args["depth_multiplier"] if kind == "depthwise_conv2d" else args["filters"]
        return (*_window_output(shape, args["kernel_size"], args["strides"], args["padding"], "kernel"), channels)
    if kind in ("max_pooling2d", "average_pooling2d"):
        strides = args["strides"] or args["pool_size"]
        return (*_window_output(shape, args["pool_size"], strides, args["padding"], "pool"), shape[2])
    if kind in ("zero_padding2d", "cropping2d"):
        (top, bottom), (left, right) = signed_margins(kind, args)
        height, width = shape[0] + top + bottom, shape[1] + left + right
        if height < 1 or width < 1:
            raise ValueError(f"cropping {-top - bottom} rows and {-left - right} columns leaves nothing of its "
                             f"{shape[0]}x{shape[1]} input map")
        return (height, width, shape[2])
    if kind in ("global_average_pooling2d", "global_max_pooling2d"):
        return (1, 1, shape[2]) if args["keepdims"] else (shape[2],)
    if kind == "flatten":
        return (math.prod(shape),)
    if kind == "reshape":
        return _reshaped(shape, args["target_shape"])
    last = shape[-1]
    if kind == "p_re_lu" and args["shared_axes"] and max(args["shared_axes"]) > len(shape):
        raise ValueError(f"shared_axes {list(args['shared_axes'])}: its input, {_fmt(shape)}, has axes 1-{len(shape)}")
    if kind in (*_NORMALIZING, "normalization") and _plain(args["axis"]) not in (-1, len(shape), (-1,), (len(shape),)):
        raise ValueError(f"axis {args['axis']} is not supported (only the last axis, -1: the features or channels)")
    for name in ("scale", "offset", "mean", "variance"):
        if name in args and isinstance(args[name], tuple) and len(args[name]) not in (1, last):
            raise ValueError(f"{name} has {len(args[name])} values; its input's last axis has {last}")
    return shape


def signed_margins(kind: str, args: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) rows and columns a zero_padding2d adds (positive) or a cropping2d cuts
    (negative)."""
    if kind == "zero_padding2d":
        return args["padding"]
    return tuple((-a, -b) for a, b in args["cropping"])


def _window_output(shape, window, strides, padding, what: str) -> tuple[int, int]:
    """Keras's output size of a convolution or pooling window: "valid" floor((n - k) / s) + 1, "same" ceil(n / s)."""
    sizes = shape[:2]
    if padding == "same":
        return tuple(-(-n // s) for n, s in zip(sizes, strides))
    if any(n < k for n, k in zip(sizes, window)):
        raise ValueError(f"{what} {window[0]}x{window[1]} does not fit its {sizes[0]}x{sizes[1]} input map "
                         "(padding 'valid'; 'same' pads)")
    return tuple((n - k) // s + 1 for n, k, s in zip(sizes, window, strides))


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: ``max((ceil(n / s) - 1) * s + k - n, 0)`` in all, the smaller half
    before and the extra cell after (at the bottom or right)."""
    total = max((-(-size // stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _reshaped(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    size = math.prod(shape)
    known = math.prod(v for v in target if v != -1)
    if -1 in target:
        if size % known:
            raise ValueError(f"cannot reshape {_fmt(shape)} ({size} values) to {list(target)}")
        target = tuple(size // known if v == -1 else v for v in target)
    if math.prod(target) != size:
        raise ValueError(f"cannot reshape {_fmt(shape)} ({size} values) to {list(target)} ({math.prod(target)} values)")
    return target


def as_items(layers: Iterable[Layer], implied: bool = False) -> list[dict]:
    """The layers as list items again (``{kind: {argument: value}}``, pairs as lists, defaults kept): what a
    config file holds. ``implied``: keep the layers the list implies (the reshape, the appended head)."""
    def plain(value):
        return [plain(v) for v in value] if isinstance(value, tuple) else value

    return [{layer.kind: {**({"name": layer.name} if layer.named else {}), **{k: plain(v) for k, v in layer.args.items()}}}
            for layer in layers if implied or layer.position is not None]
