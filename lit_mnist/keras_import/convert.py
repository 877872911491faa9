"""A Keras model's config and weights as a layer list and its weights: what LitMNIST builds and loads.

Sequential models, and Functional models that are a single chain, of the layer list's layers (Dense, Conv2D,
DepthwiseConv2D, SeparableConv2D,
MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D, Cropping2D, Flatten,
Reshape, Dropout, SpatialDropout2D, GaussianNoise, GaussianDropout, BatchNormalization, LayerNormalization,
Activation, LeakyReLU, PReLU, Rescaling, adapted Normalization), ReLU, Softmax and ELU (as the items that compute the
same) and InputLayer. Layers
that act in training only and pass their input through at inference (random augmentation such as RandomFlip or
RandomRotation, AlphaDropout, ActivityRegularization, or a Sequential of them alone) are left out, and listed:
the imported net predicts as the model does. The model's last softmax, as the last
Dense's activation or a layer of its own, is the loss's in LitMNIST and folded into the head; a model ending in
logits is imported as such, and says so; a binary classifier's sigmoid unit becomes a two-class head of the same
probabilities. Arguments that only shape training (initialisers, regularizers, constraints, a dropout's seed)
are ignored and listed; one that changes what the layer computes and that the net cannot honour
(``dilation_rate``, ``groups``, ``ReLU(max_value)``, channels-first data) is refused in one line naming the
layer. Nothing of the file is executed: a ``Lambda`` layer (which carries Python bytecode) or a custom class is
refused by its name, before anything else is read of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from lit_mnist.errors import DataError
from lit_mnist.keras_import.read import KerasFile
from lit_mnist.model.kinds import EQUIVALENTS, KERAS_CLASSES, KINDS
from lit_mnist.model.layers import HEAD, IMPLIED_IMAGE, RESERVED_NAMES, Layer, LayerError, equivalent, resolve

TRAINING_ONLY = re.compile(r".*_(initializer|regularizer|constraint)$|^(seed|noise_shape|renorm.*|synchronized|trainable)$")
IGNORED_QUIETLY = {"name", "module", "registered_name", "build_config", "shared_object_id", "batch_input_shape",
                   "batch_shape"}  # the input's shape, which Keras 2 keeps on a first layer too
MODELS = {"Sequential", "Functional", "Model"}
_EQUIVALENT_CLASSES = {e.keras_class: name for name, e in EQUIVALENTS.items()}  # read as the items computing the same
# layers that act in training only (augmentation, alpha dropout, an activity penalty) and pass their input through
# at inference: left out of the imported net, and listed
TRAINING_ONLY_LAYERS = {"RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast",
                        "RandomBrightness", "RandomShear", "RandomErasing", "RandomGaussianBlur", "RandomSharpness",
                        "RandomPerspective", "RandomElasticTransform", "RandomInvert", "RandomPosterization",
                        "RandomColorDegeneration", "RandomColorJitter", "RandomGrayscale", "RandomHue",
                        "RandomSaturation", "RandAugment", "AugMix", "CutMix", "MixUp", "AlphaDropout",
                        "ActivityRegularization"}


@dataclass
class Imported:
    """The layer list (``items``) for ``num_classes`` classes of ``image_shape`` images and its weights by the net's
    layer names; the file's layer each net layer comes from (``keras_names``, with ``where`` it is for messages);
    the model's ``output`` (``softmax``, ``logits`` or a binary ``sigmoid``); the arguments ``ignored``."""

    items: list[dict]
    num_classes: int
    image_shape: tuple[int, int]
    input_shape: tuple[int, ...]
    output: str
    weights: dict[str, dict[str, np.ndarray]]
    keras_names: dict[str, str]
    where: dict[str, str]
    ignored: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    item: dict
    file_name: str
    where: str

    @property
    def kind(self) -> str:
        return next(iter(self.item))

    @property
    def args(self) -> dict:
        return self.item[self.kind]


class _Refused(Exception):
    pass


def convert(keras_file: KerasFile, image_shape: tuple[int, int] | None = None, input_scale: float | None = None,
            input_offset: float = 0.0, allow_nonfinite: bool = False) -> Imported:
    """The file's model as a layer list; ``input_scale`` and ``input_offset``: the preprocessing done outside the
    model (``x * scale + offset`` of grey levels 0-255), put in front as a ``rescaling`` item."""
    path = keras_file.path
    layers, input_shape = _chain(keras_file)
    entries, ignored = [], []
    for index, layer in enumerate(layers, start=1):
        config = layer.get("config") or {}
        where = f"layer {index} '{config.get('name', '?')}' ({layer.get('class_name')})"
        if _training_only(layer):
            ignored.append(f"{where}: left out (it acts in training only; identity at inference)")
            continue
        try:
            item = _item(layer, keras_file.weights.get(config.get("name"), []), ignored, where,
                         keras2=keras_file.layout == "h5 (Keras 2)")
        except _Refused as e:
            raise DataError(f"{path}: {where}: {e}") from None
        if item is not None:
            entries.append(_Entry(item, str(config.get("name")), where))
    output = _fold_softmax(path, entries)
    shape = _image_shape(path, input_shape, image_shape)
    front = []
    if len(input_shape) > 1:  # the row of grey levels as the model's input image, which its layers see
        front.append(_Entry({IMPLIED_IMAGE: {"name": "input_reshape", "target_shape": [*shape, 1]}}, "", "the input"))
    if input_scale is not None or input_offset:
        scale = 1.0 if input_scale is None else input_scale
        front.append(_Entry({"rescaling": {"name": "input_rescaling", "scale": scale, "offset": input_offset}}, "",
                            "the input's preprocessing"))
    entries = front[::-1] + entries
    _name(entries)
    resolved = _resolve(path, entries, entries[-1].args["units"], shape)
    by_name = {}
    for entry, layer in zip(entries, (layer for layer in resolved if layer.position is not None)):
        by_name[layer.name] = entry
    weights = {name: _variables(path, entry, keras_file.weights.get(entry.file_name, []), allow_nonfinite)
               for name, entry in by_name.items() if KINDS[entry.kind].variables}
    if output == "sigmoid":
        head = resolved[-1].name
        weights[head] = _two_classes(weights[head])
    return Imported([entry.item for entry in entries], entries[-1].args["units"], shape, input_shape, output, weights,
                    {name: entry.file_name for name, entry in by_name.items() if entry.file_name},
                    {name: entry.where for name, entry in by_name.items()}, ignored)


def _chain(keras_file: KerasFile) -> tuple[list[dict], tuple[int, ...]]:
    """The model's layers in order (its inputs left out) and its input shape (without the batch axis)."""
    path, model = keras_file.path, keras_file.config
    cls, config = model.get("class_name"), model["config"]
    layers = config.get("layers")
    if cls not in MODELS or not isinstance(layers, list) or not layers:
        raise DataError(f"{path}: a model of class {cls!r}: lit-mnist imports Sequential models and Functional models "
                        "that are a single chain of layers")
    if not all(_well_formed(layer) for layer in layers):
        raise DataError(f"{path}: its layers are not described as Keras describes them")
    numbered = [layer for layer in layers if layer.get("class_name") != "InputLayer"]  # as Keras's model.layers
    for index, layer in enumerate(numbered, start=1):  # before anything else: code or classes of the file's own
        name, layer_cls = (layer.get("config") or {}).get("name", "?"), layer.get("class_name")
        if _training_only(layer):
            continue
        if layer_cls in MODELS:
            raise DataError(f"{path}: layer {index} '{name}' ({layer_cls}): a model inside the model is not imported")
        if layer_cls not in KERAS_CLASSES and layer_cls not in ("InputLayer", *_EQUIVALENT_CLASSES):
            what = "carries Python code, which is never run" if layer_cls == "Lambda" else "is not a layer lit-mnist has"
            raise DataError(f"{path}: layer {index} '{name}' ({layer_cls}): {what}")
    if cls != "Sequential":
        _check_chain(path, config, layers)
    shape = _input_shape(model, layers)
    if shape is None:
        raise DataError(f"{path}: the model's input shape is not in the file (a model never built)")
    return numbered, shape


def _well_formed(layer) -> bool:
    """A layer as Keras describes one: its class's name, and its config a mapping whose name is text."""
    return (isinstance(layer, dict) and isinstance(layer.get("class_name"), str)
            and isinstance(layer.get("config", {}), dict) and isinstance((layer.get("config") or {}).get("name", ""), str))


def _training_only(layer: dict) -> bool:
    """A layer that passes its input through at inference, or a model inside the model made of such layers alone
    (Keras's tutorials put their augmentation in a Sequential of its own)."""
    if layer.get("class_name") in TRAINING_ONLY_LAYERS:
        return True
    inner = (layer.get("config") or {}).get("layers") if layer.get("class_name") in MODELS else None
    return isinstance(inner, list) and bool(inner) and all(
        isinstance(one, dict) and (one.get("class_name") == "InputLayer" or _training_only(one)) for one in inner)


def _input_shape(model: dict, layers: list[dict]) -> tuple[int, ...] | None:
    candidates = [layer.get("config", {}).get(key) for layer in layers for key in ("batch_shape", "batch_input_shape")]
    candidates += [model["config"].get("build_input_shape"), (model.get("build_config") or {}).get("input_shape")]
    shape = next((c for c in candidates if isinstance(c, list) and len(c) >= 2), None)
    if shape is None or not all(isinstance(v, int) and v > 0 for v in shape[1:]):
        return None
    return tuple(shape[1:])


def _check_chain(path, config: dict, layers: list[dict]) -> None:
    """A Functional model: each layer takes the previous one's output alone, and the last is the output."""
    names = [layer.get("config", {}).get("name") or layer.get("name") for layer in layers]
    for previous, layer, name in zip(names, layers[1:], names[1:]):
        inbound = _inbound(layer.get("inbound_nodes"))
        if inbound != [previous]:
            raise DataError(f"{path}: layer '{name}' takes {inbound or 'nothing'}: lit-mnist imports Functional models "
                            "that are a single chain (each layer taking the one before)")
    outputs = _inbound(config.get("output_layers"))
    if outputs != [names[-1]]:
        raise DataError(f"{path}: the model's outputs are {outputs}: a single chain ends in its last layer")


def _inbound(nodes) -> list[str]:
    """The names of the layers whose outputs ``nodes`` (Keras 3's or Keras 2's form) take."""
    found = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                found.append(value["config"]["keras_history"][0])
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
                found.append(value[0])  # Keras 2: [layer, node, tensor, kwargs]
                return
            for v in value:
                walk(v)

    walk(nodes)
    return found


def _item(layer: dict, variables: list, ignored: list[str], where: str, keras2: bool = False) -> dict | None:
    """The layer as a list item, or None for what takes no place in the net (an input). ``keras2``: the file is
    Keras 2's, whose hard_sigmoid is another function (``clip(0.2 x + 0.5, 0, 1)``, Keras 3's ``relu6(x + 3) / 6``)."""
    cls, config = layer["class_name"], layer.get("config") or {}
    if cls == "InputLayer":
        return None
    if cls in _EQUIVALENT_CLASSES:
        own = {k: v for k, v in config.items() if k not in IGNORED_QUIETLY and k not in ("trainable", "dtype")}
        if cls == "Softmax" and own.get("axis") in ([-1], (-1,)):
            own["axis"] = -1
        try:
            return equivalent(_EQUIVALENT_CLASSES[cls], own)
        except ValueError as e:
            raise _Refused(str(e)) from None
    kind = KERAS_CLASSES[cls]
    spec = KINDS[kind]
    config = spec.from_keras(config)
    known = {*spec.required, *spec.optional, *spec.defaults_only}
    args = {}
    for key, value in config.items():
        if key in IGNORED_QUIETLY:
            continue
        if key == "dtype":
            _dtype(value, where, ignored)
        elif TRAINING_ONLY.match(key):  # the weights are the file's: how they started, or were held, is past
            if value not in (None, True, False, *spec.defaults_only.get(key, ())):
                ignored.append(f"{where}: {key}")
        elif key in known:
            args[key] = value
        elif value is not None:
            raise _Refused(f"argument {key}={value!r}, which the net has not")
    if "activation" in args and not isinstance(args["activation"], str):
        raise _Refused("an activation that is not one of Keras's by name")
    if keras2 and args.get("activation") == "hard_sigmoid":
        raise _Refused("Keras 2's hard_sigmoid (clip(0.2 x + 0.5, 0, 1)), which the net has not (it has Keras 3's)")
    if getattr(spec, "adapted", None):
        _adapted(args, variables, spec.adapted)
    return {kind: args}


def _dtype(value, where: str, ignored: list[str]) -> None:
    name = value.get("config", {}).get("name") if isinstance(value, dict) else value
    if name not in (None, "float32"):
        ignored.append(f"{where}: dtype {name} (computed in float32 here)")


def _adapted(args: dict, variables: list, names: tuple[str, ...]) -> None:
    """An adapted Normalization's mean and variance, from its weights (``names``, in order) where the config has
    none."""
    if args.get("mean") is not None and args.get("variance") is not None:
        return
    arrays = {name or default: array for (name, array), default in zip(variables, names)}
    if "mean" not in arrays or "variance" not in arrays:
        raise _Refused("a Normalization that was never adapted (no mean and variance)")
    args["mean"], args["variance"] = (np.asarray(arrays[k], dtype=np.float64).ravel().tolist() for k in ("mean", "variance"))


def _fold_softmax(path, entries: list[_Entry]) -> str:
    """Take the model's last softmax into the head (the loss's, in LitMNIST): ``softmax`` or ``logits``; or a binary
    classifier's Dense(1) with a sigmoid: ``sigmoid``, its head then two units of softmax (see :func:`_two_classes`)."""
    after = None  # an Activation layer of the output's own
    if len(entries) > 1 and entries[-1].kind == "activation" and entries[-1].args.get("activation") in ("softmax",
                                                                                                       "sigmoid"):
        after = entries.pop().args["activation"]
    last = entries[-1] if entries else None
    if last is None or last.kind != HEAD:
        raise DataError(f"{path}: the model ends in {last.where if last else 'no layer'}: lit-mnist imports classifiers "
                        "whose last layer is a Dense (with softmax, or giving logits)")
    activation = last.args.get("activation") or "linear"
    if after is not None and activation != "linear":
        raise DataError(f"{path}: {last.where}: activation {activation!r} before a {after} layer: lit-mnist imports "
                        "classifiers whose last Dense gives class probabilities or logits")
    activation = after or activation
    if after == "softmax":  # Dense(K) then Softmax: the one output layer, as the layer list reads it
        last.args["activation"] = "softmax"
    if activation == "sigmoid" and last.args.get("units") == 1:
        last.args.update(units=2, activation="softmax")
        return "sigmoid"
    if activation not in ("softmax", "linear"):
        raise DataError(f"{path}: {last.where}: the model's output has activation {activation!r}; lit-mnist imports "
                        "classifiers whose last Dense gives class probabilities (softmax, or one unit's sigmoid) or "
                        "logits")
    return "softmax" if activation == "softmax" else "logits"


def _two_classes(head: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A sigmoid unit's weights as two classes' logits, 0 and z: their softmax is (1 - sigmoid(z), sigmoid(z))."""
    return {name: np.concatenate([np.zeros_like(value), value], axis=-1) for name, value in head.items()}


def _image_shape(path, input_shape: tuple[int, ...], given) -> tuple[int, int]:
    if len(input_shape) == 3 and input_shape[2] != 1:
        raise DataError(f"{path}: the model takes {input_shape[2]} channels: lit-mnist's images are grey (one channel)")
    if len(input_shape) in (2, 3):
        shape = tuple(input_shape[:2])
        if given is not None and tuple(given) != shape:
            raise DataError(f"{path}: the model takes {shape[0]}x{shape[1]} images, not --image_shape {list(given)}")
        return shape
    if len(input_shape) != 1:
        raise DataError(f"{path}: the model's input is {list(input_shape)}: rows of pixels or images are imported")
    if given is not None:
        if given[0] * given[1] != input_shape[0]:
            raise DataError(f"{path}: --image_shape {list(given)} holds {given[0] * given[1]} pixels; the model's rows "
                            f"have {input_shape[0]}")
        return tuple(given)
    side = round(input_shape[0] ** 0.5)
    if side * side != input_shape[0]:
        raise DataError(f"{path}: rows of {input_shape[0]} pixels are no square image: give --image_shape H W")
    return side, side


def _name(entries: list[_Entry]) -> None:
    """The file's layer names where they are usable module names (Keras's own are: dense, conv2d_1, ...)."""
    for entry in entries:
        name = entry.file_name
        if entry.file_name and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) and name not in RESERVED_NAMES:
            entry.args.setdefault("name", name)


def _resolve(path, entries: list[_Entry], num_classes: int, shape: tuple[int, int]) -> list[Layer]:
    try:
        return resolve([entry.item for entry in entries], num_classes, shape)
    except LayerError as e:  # an item's error is said of the file's layer that made the item
        if e.item is None:
            raise DataError(f"{path}: {e}") from None
        raise DataError(f"{path}: {entries[e.item - 1].where}: {e.detail}") from None


def _variables(path, entry: _Entry, variables: list, allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """A layer's weights by Keras's variable names: as the file names them, or in the layer's own order; a NaN or
    an infinity in one is refused (a model that would predict garbage) unless ``allow_nonfinite``."""
    args = entry.args
    expected = list(KINDS[entry.kind].present(args))
    if len(variables) != len(expected):
        raise DataError(f"{path}: {entry.where}: {len(variables)} weights in the file; the layer has {len(expected)} "
                        f"({', '.join(expected)})")
    names = [name if name in expected else default for (name, _), default in zip(variables, expected)]
    arrays = {name: np.asarray(array, dtype=np.float32) for name, (_, array) in zip(names, variables)}
    bad = next((name for name, array in arrays.items() if not np.isfinite(array).all()), None)
    if bad is not None and not allow_nonfinite:
        raise DataError(f"{path}: {entry.where}: its {bad} holds NaN or infinite values (--allow-nonfinite imports "
                        "it to inspect)")
    return arrays
