"""A Keras model's config (as checked records, ``records.py``) and weights as a layer list and its weights: what
LitMNIST builds and loads.

Sequential and Functional models of one input and one output, whose layers are kinds the layer list has
(``lit_mnist/model/kinds/``: each kind's Keras class, and the Keras classes read as the items that compute the
same), and InputLayer. A Functional model's graph becomes a list with ``inputs``; a model inside the model is
inlined. Layers that act in training only and pass their input through at inference (random augmentation such
as RandomFlip or RandomRotation, AlphaDropout, ActivityRegularization, or a Sequential of them alone) are left
out, and listed: the imported net predicts as the model does. The model's last softmax, as the last Dense's
activation or a layer of its own, is the loss's in LitMNIST and folded into the head; a model ending in logits
is imported as such, and says so; a binary classifier's sigmoid unit becomes a two-class head of the same
probabilities. Regularizers and constraints are carried into the list (Keras's saved form, ``{class_name: L2,
config: {l2: 0.001}}``, read as the item ``{L2: {l2: 0.001}}``; one that is not Keras's own is refused in one line
naming the layer, as the list refuses it). Arguments that only shaped training past (initialisers, a dropout's
seed) are ignored and listed; one that changes what the layer computes and that the net cannot honour
(``dilation_rate``, ``groups``, channels-first data) is refused in one line naming the layer, as are several
inputs or outputs, a shared layer and tensor arithmetic saved as a layer. Nothing of the file is executed: a
``Lambda`` layer (which carries Python bytecode) or a custom class is refused by its name, before anything else
is read of it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from lit_mnist.errors import DataError
from lit_mnist.keras_import.read import KerasFile
from lit_mnist.keras_import.records import LayerRecord, ModelRecord
from lit_mnist.model.kinds import EQUIVALENTS, KERAS_CLASSES, KINDS
from lit_mnist.model.kinds.objects import family
from lit_mnist.model.layers import (
    HEAD,
    IMPLIED_IMAGE,
    INPUT,
    RESERVED_NAMES,
    Layer,
    LayerError,
    equivalent,
    kept_shape,
    resolve,
)

TRAINING_ONLY = re.compile(r".*_(initializer|regularizer|constraint)$|^(seed|noise_shape|renorm.*|synchronized|trainable)$")
IGNORED_QUIETLY = {"name", "module", "registered_name", "build_config", "shared_object_id", "batch_input_shape",
                   "batch_shape"}  # the input's shape, which Keras 2 keeps on a first layer too
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
    image_shape: tuple[int, ...]
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
    inputs: list[str] = field(default_factory=lambda: [INPUT])

    @property
    def kind(self) -> str:
        return next(iter(self.item))

    @property
    def args(self) -> dict:
        return self.item[self.kind]


class _Refused(Exception):
    pass


def convert(keras_file: KerasFile, image_shape: tuple[int, ...] | None = None, input_scale: float | None = None,
            input_offset: float = 0.0, allow_nonfinite: bool = False) -> Imported:
    """The file's model as a layer list; ``input_scale`` and ``input_offset``: the preprocessing done outside the
    model (``x * scale + offset`` of grey levels 0-255), put in front as a ``rescaling`` item."""
    path = keras_file.path
    graph = _Graph(keras_file)
    entries, ignored = [], graph.ignored
    for node in graph.nodes:
        layer, where = node.layer, node.where
        try:
            item = _item(layer, keras_file.weights.get(node.key, []), ignored, where,
                         keras2=keras_file.layout == "h5 (Keras 2)")
        except _Refused as e:
            raise DataError(f"{path}: {where}: {e}") from None
        if item is None:
            continue
        entry = _Entry(item, node.key, where, list(node.inputs))
        entries.append(entry)
    output = _fold_softmax(path, entries)
    input_shape = graph.input_shape
    shape = _image_shape(path, input_shape, image_shape)
    front = []
    if input_scale is not None or input_offset:
        scale = 1.0 if input_scale is None else input_scale
        front.append(_Entry({"rescaling": {"name": "input_rescaling", "scale": scale, "offset": input_offset}}, "",
                            "the input's preprocessing", [INPUT]))
    if len(input_shape) > 1:  # the row of grey levels as the model's input image, which its layers see
        front.append(_Entry({IMPLIED_IMAGE: {"name": "input_reshape", "target_shape": [*shape[:2], shape[2] if len(shape) == 3 else 1]}}, "", "the input",
                            [front[-1].args["name"] if front else INPUT]))
    if front:
        for entry in entries:
            entry.inputs = [front[-1].args["name"] if ref == INPUT else ref for ref in entry.inputs]
    entries = front + entries
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


@dataclass
class _Node:
    """A layer of the file at its path (``key``: its name, or ``<model>/<layer>`` within a model inside the
    model), and the paths of the layers it takes (``INPUT``: the model's input)."""

    layer: LayerRecord
    key: str
    inputs: list[str]

    @property
    def where(self) -> str:
        return self.layer.where


class _Graph:
    """The model's layers as one graph, in an order where each comes after those it takes: a Sequential's layers
    each taking the one before, a Functional model's as its ``inbound_nodes`` say, a model inside the model
    inlined (its input being what it is called on, its output standing for it), layers that act in training only
    left out (their input standing for them)."""

    def __init__(self, keras_file: KerasFile) -> None:
        self.path, model = keras_file.path, keras_file.model
        self.nodes: list[_Node] = []
        self.ignored: list[str] = []
        self._check_classes(model)
        self.input_shape = _input_shape(model)
        if self.input_shape is None:
            raise DataError(f"{self.path}: the model's input shape is not in the file (a model never built)")
        self.output = self._model(model, "", INPUT, "")

    def _check_classes(self, model: ModelRecord) -> None:
        """Every layer a layer lit-mnist has, before anything else is read of them: no code or classes of the
        file's own."""
        for layer in model.layers:
            cls = layer.class_name
            if cls == "InputLayer" or _training_only(layer):
                continue
            if layer.model is not None:
                self._check_classes(layer.model)
            elif _is_operation(layer):
                raise DataError(f"{self.path}: {layer.where}: an operation on tensors saved as a layer (module "
                                f"{layer.module or cls!r}), not one of Keras's layers: write it as a layer")
            elif cls not in KERAS_CLASSES and cls not in _EQUIVALENT_CLASSES:
                what = "carries Python code, which is never run" if cls == "Lambda" else "is not a layer lit-mnist has"
                raise DataError(f"{self.path}: {layer.where}: {what}")

    def _model(self, model: ModelRecord, prefix: str, given: str, where: str) -> str:
        """Add a model's layers taking ``given``; the path of its output."""
        if model.class_name == "Sequential":
            ref = given
            for layer in model.layers:
                if layer.class_name != "InputLayer":
                    ref = self._layer(layer, prefix, [ref])
            return ref
        inputs, outputs = model.inputs, model.outputs
        if len(inputs) != 1 or len(outputs) != 1:
            many = f"takes {len(inputs)} inputs" if len(inputs) != 1 else f"gives {len(outputs)} outputs"
            raise DataError(f"{self.path}: {where}the model {many} ({', '.join(inputs or outputs)}): lit-mnist imports "
                            "models of one input and one output")
        local = {inputs[0]: given}
        for layer in model.layers:
            if layer.class_name == "InputLayer":
                local.setdefault(layer.name, given)
                continue
            if len(layer.calls) > 1:
                raise DataError(f"{self.path}: {layer.where}: called {len(layer.calls)} times (a shared layer): "
                                "lit-mnist imports each layer called once")
            takes = layer.calls[0] if layer.calls else ()
            missing = next((ref for ref in takes if ref not in local), None)
            if not takes or missing is not None:
                raise DataError(f"{self.path}: {layer.where}: takes {missing or 'nothing'!r}, which is no layer "
                                "before it")
            local[layer.name] = self._layer(layer, prefix, [local[ref] for ref in takes])
        if outputs[0] not in local:  # an input layer the model does not take
            raise DataError(f"{self.path}: {where}the model's output {outputs[0]!r} is no layer of it")
        return local[outputs[0]]

    def _layer(self, layer: LayerRecord, prefix: str, inputs: list[str]) -> str:
        """Add one layer taking ``inputs``; the path of its output."""
        if _training_only(layer):
            self.ignored.append(f"{layer.where}: left out (it acts in training only; identity at inference)")
            return inputs[0]
        if layer.model is not None:
            return self._model(layer.model, f"{prefix}{layer.name}/", inputs[0], f"{layer.where} > ")
        self.nodes.append(_Node(layer, prefix + layer.name, inputs))
        return prefix + layer.name


def _is_operation(layer: LayerRecord) -> bool:
    """A tensor operation Keras saved as a layer: Keras 3's ``x + 3.0`` (a class of ``keras.src.ops``, whose names
    are also merge layers' names), Keras 2's TFOpLambda."""
    return layer.class_name in ("TFOpLambda", "SlicingOpLambda") or (layer.module or "").startswith("keras.src.ops")


def _training_only(layer: LayerRecord) -> bool:
    """A layer that passes its input through at inference, or a model inside the model made of such layers alone
    (Keras's tutorials put their augmentation in a Sequential of its own)."""
    if layer.class_name in TRAINING_ONLY_LAYERS:
        return True
    return layer.model is not None and all(one.class_name == "InputLayer" or _training_only(one)
                                           for one in layer.model.layers)


def _input_shape(model: ModelRecord) -> tuple[int, ...] | None:
    candidates = [layer.config.get(key) for layer in model.layers for key in ("batch_shape", "batch_input_shape")]
    candidates += [model.config.get("build_input_shape"), model.build_config.get("input_shape")]
    shape = next((c for c in candidates if isinstance(c, list) and len(c) >= 2), None)
    if shape is None or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape[1:]):
        return None
    return tuple(shape[1:])


def _item(layer: LayerRecord, variables: list, ignored: list[str], where: str, keras2: bool = False) -> dict | None:
    """The layer as a list item, or None for what takes no place in the net (an input). ``keras2``: the file is
    Keras 2's, whose hard_sigmoid is another function (``clip(0.2 x + 0.5, 0, 1)``, Keras 3's ``relu6(x + 3) / 6``)."""
    cls, config = layer.class_name, layer.config
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
    missing = [key for key in spec.required if key not in config]
    if missing:
        raise _Refused(f"{', '.join(missing)} missing (Keras writes {'them' if len(missing) > 1 else 'it'})")
    known = {*spec.required, *spec.optional, *spec.defaults_only}
    args = {}
    for key, value in config.items():
        if key in IGNORED_QUIETLY:
            continue
        if key == "dtype":
            _dtype(value, where, ignored)
        elif key in known and family(key):  # a regularizer or constraint: fine-tuning keeps it
            args[key] = _object(value)
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


def _object(value):
    """A regularizer or constraint as Keras saves it (``{module, class_name, config, registered_name}``) as the
    list's item ``{class_name: config}``, which the list checks (an unknown class is refused there)."""
    if isinstance(value, dict) and "class_name" in value:
        return {value["class_name"]: value.get("config") or {}}
    return value


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
    if (len(entries) > 1 and entries[-1].kind == "activation" and entries[-1].inputs == [entries[-2].file_name]
            and entries[-1].args.get("activation") in ("softmax", "sigmoid")):
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


def _image_shape(path, input_shape: tuple[int, ...], given) -> tuple[int, ...]:
    """``(H, W)`` of grey images or ``(H, W, 3)`` of colour ones: the model's input, or its rows' as ``given``
    (``--image_shape``) or from their count."""
    if len(input_shape) == 3 and input_shape[2] not in (1, 3):
        alpha = ": drop the alpha channel first" if input_shape[2] == 4 else ""
        raise DataError(f"{path}: the model takes {input_shape[2]} channels; lit-mnist's images have 1 (grey) or 3 "
                        f"(colour){alpha}")
    if len(input_shape) in (2, 3):
        shape = _kept(path, input_shape, "the model's input")
        if given is not None and _kept(path, given, "--image_shape") != shape:
            raise DataError(f"{path}: the model takes {'x'.join(map(str, shape))} images, not --image_shape "
                            f"{list(given)}")
        return shape
    if len(input_shape) != 1:
        raise DataError(f"{path}: the model's input is {list(input_shape)}: rows of pixels or images are imported")
    if given is not None:
        if math.prod(given) != input_shape[0]:
            raise DataError(f"{path}: --image_shape {list(given)} holds {math.prod(given)} values; the model's rows "
                            f"have {input_shape[0]}")
        return _kept(path, given, "--image_shape")
    values = input_shape[0]
    side, colour = math.isqrt(values), math.isqrt(values // 3)
    if side * side == values:  # as fit.py reads a CSV's count: a square is grey, three times a square colour
        return side, side
    if values % 3 == 0 and colour * colour * 3 == values:
        return colour, colour, 3
    raise DataError(f"{path}: rows of {values} values are neither a square grey image nor a square colour one: give "
                    "--image_shape H W (or H W 3)")


def _kept(path, shape, what: str) -> tuple[int, ...]:
    """``shape`` as the model keeps it (``layers.kept_shape``); one that no image has is refused naming the file."""
    try:
        return kept_shape(shape)
    except LayerError as e:
        raise DataError(f"{path}: {what}: {e}") from None


def _name(entries: list[_Entry]) -> None:
    """Each entry named as the file names its layer where that is a usable module name (Keras's own are: dense,
    conv2d_1, ...), else as near as one is; and ``inputs`` given (by those names) where an entry does not take the
    one before it."""
    names, taken = {INPUT: INPUT}, set(RESERVED_NAMES)
    for entry in entries:
        given = entry.args.get("name") or entry.file_name.rsplit("/", 1)[-1]
        name = re.sub(r"[^A-Za-z0-9_]", "_", given)
        name = name if re.match(r"[A-Za-z]", name) else f"layer_{name}"
        if name in taken and entry.file_name:
            name = re.sub(r"[^A-Za-z0-9_]", "_", entry.file_name)
        base, count = name, 0
        while name in taken:
            count += 1
            name = f"{base}_{count}"
        taken.add(name)
        names[entry.file_name or entry.args["name"]] = entry.args["name"] = name
    previous = INPUT
    for entry in entries:
        inputs = [names[ref] for ref in entry.inputs]
        if inputs != [previous]:
            entry.args["inputs"] = inputs[0] if len(inputs) == 1 else inputs
        previous = entry.args["name"]


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
