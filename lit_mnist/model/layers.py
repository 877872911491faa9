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
read as the items that compute the same. The layers see the flat row of H*W*C values (grey levels, or each
pixel's R, G, B in turn) until the first layer of images (conv, pooling, padding, cropping, spatial dropout),
which sees it as HxWxC (a ``reshape`` item may say so itself), unless the input is declared as Keras declares it (an ``input`` item, or the first layer's
``input_shape``): it must then be the data's, and an image declared is an image from the first layer on.
The output layer, a ``dense`` of ``num_classes`` units whose softmax the loss takes, is appended, unless
the list already ends with such a dense (softmax or linear activation, or a softmax after it), which is then
the head.

A list may branch and join, as Keras's Functional API does: an item's ``inputs`` names the earlier item or
items it takes, by layer name (Keras's default names, ``conv2d_1``, or the item's ``name``), and ``input`` is
the model's input; an item without ``inputs`` takes the item before it. Merge items (``add``, ``concatenate``,
...) join two or more. Every item's output must be used by a later one, but the last's, which is the model's.

:func:`resolve` turns a list into :class:`Layer` records, every argument filled in and every shape
known (Keras's, channels-last and without the batch axis), or raises :class:`LayerError` naming the item.
What each kind takes and computes is its own definition's (``lit_mnist/model/kinds/``); this module is the
list's grammar and the graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lit_mnist.errors import DataError
from lit_mnist.model.kinds import ALIASES, EQUIVALENTS, KERAS_CLASSES, KINDS, Layer
from lit_mnist.model.kinds.arguments import MAX_SIZE, did_you_mean, fmt, plain
from lit_mnist.model.kinds.objects import check_layer

__all__ = ["HEAD", "IMPLIED_IMAGE", "INPUT", "KERAS_CLASSES", "KINDS", "ORIGINAL", "RESERVED_NAMES", "Layer", "LayerError", "Where",
           "as_items", "equivalent", "image_size", "kept_shape", "resolve"]

INPUT = "input"  # the model's input, as an item's ``inputs`` names it
_INPUT_KIND = "input_layer"  # Keras's Input / InputLayer: declares the input's shape, takes no place in the net
_INPUT_SPELLINGS = {"Input": _INPUT_KIND, "InputLayer": _INPUT_KIND, "input": _INPUT_KIND}
# every Keras layer takes these; only what we can honour is accepted
_COMMON_DEFAULTS_ONLY = {"trainable": (True,), "dtype": (None, "float32")}
ORIGINAL = (  # the original notebook's hidden layers; its Dense(10, softmax) is the head appended from the data
    {"dense": {"units": 128, "activation": "relu"}},
    {"dense": {"units": 64, "activation": "relu"}},
    {"dense": {"units": 128, "activation": "relu"}},
)
HEAD = "dense"  # the output layer's kind
IMPLIED_IMAGE = "reshape"  # the kind that turns the input row into an image where a layer needs one
_FLATTEN = "flatten"  # the kind that takes a declared HxW grid as Keras does


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
class _Node:
    """An output an item may take: a layer's (``name``), or the model's input (``INPUT``); ``raw``: still the
    input row (only layers that keep each value in place so far); ``grid``: a declared HxW input, which Keras's
    layers see as H rows until a flatten."""

    name: str
    shape: tuple[int, ...]
    raw: bool = False
    grid: bool = False


class _Graph:
    """The layers of a list as they are resolved, and the outputs later items may name."""

    def __init__(self, height: int, width: int, channels: int) -> None:
        self.height, self.width, self.channels = height, width, channels
        self.layers: list[Layer] = []
        self.names: dict[str, int] = {}
        self.nodes: dict[str, _Node] = {INPUT: _Node(INPUT, (height * width * channels,), raw=True)}
        self.last = self.nodes[INPUT]
        self.used: set[str] = set()
        self.declared = False

    def declare(self, where: Where, declared: tuple[int, ...], name: str | None) -> None:
        """The input's shape, as an ``input`` item or the first layer declares it."""
        if self.declared or self.layers:
            raise where.error("only the first layer declares the input's shape (Keras reads it there alone)")
        self.declared = True
        grid = _declared(where, declared, self.height, self.width, self.channels)
        node = _Node(INPUT, self.last.shape, raw=True, grid=grid)
        if len(declared) == 3:  # Keras's layers see an image from the start
            layer = Layer(IMPLIED_IMAGE, {"target_shape": declared}, _name(IMPLIED_IMAGE, "input_reshape", self.names),
                          where.position, node.shape, declared, named=True, inputs=(INPUT,))
            self.layers.append(layer)
            self.used.add(INPUT)
            node = _Node(layer.name, declared)
        self.nodes[INPUT] = self.last = node
        if name is not None and name != INPUT:
            self.nodes[_name(_INPUT_KIND, name, self.names, where)] = node

    def add(self, where: Where, kind: str, args: dict, inputs: tuple[str, ...] | None) -> None:
        spec = KINDS[kind]
        sources = [self.last] if inputs is None else [self._node(where, ref) for ref in inputs]
        least, most = spec.arity
        if len(sources) < least or most is not None and len(sources) > most:
            raise where.error(_arity(least, most, len(sources)))
        if any(source.grid for source in sources) and not spec.acts_per_value(args):
            raise where.error(f"its input is the {self.height}x{self.width} grid that the input's shape declares, "
                              f"which lit-mnist's layers take through a flatten only (declare [{self.height}, "
                              f"{self.width}, 1] for an image, or [{self.height * self.width}] for the row)")
        if spec.image_only and len(sources[0].shape) == 1:
            sources = [self._image(where, sources[0])]
        shapes = [source.shape for source in sources]
        try:
            output = spec.merged_shape(args, shapes) if spec.merge else spec.output_shape(args, shapes[0])
        except ValueError as e:
            raise where.error(f"{e}") from None
        given = args.pop("name", None)
        layer = Layer(kind, args, _name(kind, given, self.names, where), where.position, shapes[0], output,
                      named=given is not None, inputs=tuple(s.name for s in sources), input_shapes=tuple(shapes))
        try:
            check_layer(layer)
        except ValueError as e:
            raise where.error(f"{e}") from None
        self.layers.append(layer)
        self.used.update(layer.inputs)
        # a flatten ends a grid, and keeps the row the input row; so do layers that keep each value in place
        raw = all(s.raw for s in sources) and (spec.keeps_shape or kind == _FLATTEN)
        grid = any(s.grid for s in sources) and kind != _FLATTEN
        self.nodes[layer.name] = self.last = _Node(layer.name, output, raw=raw, grid=grid)

    def _node(self, where: Where, ref) -> _Node:
        if not isinstance(ref, str) or ref not in self.nodes:
            known = ", ".join(self.nodes)
            raise where.error(f"inputs names {ref!r}, which is no earlier item (earlier: {known})")
        return self.nodes[ref]

    def _image(self, where: Where, source: _Node) -> _Node:
        """The input row as the HxWxC image a layer needs, by a reshape the list implies."""
        if not source.raw:
            raise where.error(f"needs an image, but its input is {source.shape[0]} features "
                              "(a reshape item to [height, width, channels] first)")
        shape = (self.height, self.width, self.channels)
        implied = Layer(IMPLIED_IMAGE, {"target_shape": shape}, _name(IMPLIED_IMAGE, None, self.names), None,
                        source.shape, shape, inputs=(source.name,))
        self.layers.append(implied)
        self.used.add(source.name)
        return _Node(implied.name, shape)

    def check_used(self) -> None:
        """Every layer's output goes on, but the last's (a branch nothing takes is a mistake: Keras would drop it)."""
        for layer in self.layers[:-1]:
            if layer.name not in self.used:
                where = Where(layer.position, layer.kind)
                raise where.error("its output is used by no later item (name it in a later item's inputs, or leave "
                                  "the item out)")


def _arity(least: int, most: int | None, given: int) -> str:
    if most == 1:
        return f"takes one input, not {given} (a merge item, such as add or concatenate, joins several)"
    if least == most:
        return f"joins exactly {least} inputs, not {given}: name them in its inputs"
    return f"joins {least} or more inputs, not {given}: name them in its inputs"


def resolve(items: Iterable | None, num_classes: int, image_shape: tuple[int, ...]) -> list[Layer]:
    """Check ``items`` (None: the original's) against images of ``image_shape`` (``[H, W]`` grey, ``[H, W, C]``)
    and ``num_classes`` classes, and size every layer; the output layer is appended unless the list ends with it."""
    height, width, channels = image_size(image_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise LayerError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    items = list(ORIGINAL if items is None else items) if not isinstance(items, (str, Mapping)) else [items]
    graph = _Graph(height, width, channels)
    for position, item in enumerate(items, start=1):
        kind, args, declared, inputs = _parse_item(position, item)
        where = Where(position, kind)
        if kind == _INPUT_KIND:
            graph.declare(where, declared, args.get("name"))
            continue
        if declared is not None:
            graph.declare(where, declared, None)
        graph.add(where, kind, args, inputs)
    graph.check_used()
    return _with_head(graph.layers, graph.names, graph.last, num_classes)


def _declared(where: Where, declared: tuple[int, ...], height: int, width: int, channels: int) -> bool:
    """Check a declared input shape against the data's images; True where it is the HxW grid (grey images)."""
    size = height * width * channels
    fits = [(size,), *([(height, width)] if channels == 1 else []), (height, width, channels)]
    if declared not in fits:
        images = (f"{height}x{width}, {size} grey levels a row" if channels == 1 else
                  f"{height}x{width}x{channels}, {size} values a row (each pixel's channels in turn)")
        other = ("" if declared[:2] != (height, width) else "; the data's images are grey, one channel"
                 if channels == 1 else f"; the data's images have {channels} channels")
        shapes = [str(list(f)) for f in fits]
        raise where.error(f"the input's shape {list(declared)} is not the data's: their images are {images}{other}; "
                          f"declare {', '.join(shapes[:-1])} or {shapes[-1]}, or leave it out")
    return len(declared) == 2


def _with_head(layers: list[Layer], names: dict[str, int], last: _Node, num_classes: int) -> list[Layer]:
    if (len(layers) > 1 and _is_softmax(layers[-1]) and layers[-2].kind == HEAD and layers[-1].inputs == (layers[-2].name,)
            and layers[-2].args["activation"] == "linear"):
        dense = layers.pop(-2)  # Dense(K) then Softmax: one output layer, as Dense(K, activation="softmax")
        layers[-1] = Layer(**{**dense.__dict__, "args": {**dense.args, "activation": "softmax"}})
    final = layers[-1] if layers else None
    if final and final.kind == HEAD and final.args["units"] == num_classes and final.args["activation"] in ("softmax", "linear"):
        layers[-1] = Layer(**{**final.__dict__, "head": True})
        return layers
    if final and (_is_softmax(final) or final.kind == HEAD and final.args["activation"] == "softmax"):
        what = (f"a softmax of {final.output_shape[0]} classes, but the data have {num_classes}: give its dense "
                f"{num_classes} units" if final.kind == HEAD else
                "a softmax that no dense of the classes takes: end it with a dense of the classes")
        detail = f"the list ends in {what}, or leave it out and the output layer is appended"
        if final.position is None:
            raise LayerError(f"model.layers {final.describe()}: {detail}")
        raise Where(final.position, final.kind).error(detail)
    if len(last.shape) != 1:
        raise LayerError(f"the output layer ({HEAD}, {num_classes} units) cannot follow {layers[-1].describe()}, whose "
                         f"output is {fmt(last.shape)}: end the list with a flatten item")
    args = _fill(HEAD, {"units": num_classes, "activation": "softmax"}, Where(None, HEAD))
    head = Layer(HEAD, args, _name(HEAD, None, names), None, last.shape, (num_classes,), head=True,
                 inputs=(last.name,))
    return [*layers, head]


def _is_softmax(layer: Layer) -> bool:
    """A layer of its own computing a softmax (an Activation, or Keras's Softmax read as one)."""
    return layer.kind != HEAD and not layer.spec.variables and layer.args.get("activation") == "softmax"


def kept_shape(image_shape) -> tuple[int, ...]:
    """``image_shape`` as models and metrics keep it, checked: ``(H, W)`` for grey images, ``(H, W, C)`` else."""
    height, width, channels = image_size(image_shape)
    return (height, width) if channels == 1 else (height, width, channels)


def image_size(image_shape) -> tuple[int, int, int]:
    """``(height, width, channels)`` of ``[H, W]`` (grey: one channel) or ``[H, W, C]`` (C = 1 or 3), checked."""
    try:
        sizes = [int(v) for v in image_shape]
    except (TypeError, ValueError):
        sizes = []
    if len(sizes) not in (2, 3):
        raise LayerError(f"image_shape must be [height, width] or [height, width, channels], got {image_shape!r}")
    height, width, channels = (*sizes, 1)[:3]
    if height < 1 or width < 1:
        raise LayerError(f"image_shape must be positive sizes, got {sizes}")
    if channels not in (1, 3):
        alpha = ": drop the alpha channel first" if channels == 4 else ""
        raise LayerError(f"image_shape {sizes} has {channels} channels; lit-mnist's images have 1 (grey) or 3 "
                         f"(colour){alpha}")
    if height * width * channels > MAX_SIZE:
        raise LayerError(f"image_shape {sizes} holds {height * width * channels:,} values, over 2**24")
    return height, width, channels


def _kind_of(name):
    if not isinstance(name, str):
        return name
    name = name.strip()
    return _INPUT_SPELLINGS.get(name) or ALIASES.get(name, name)


def _parse_item(position: int, item) -> tuple[str, dict, tuple | None, tuple[str, ...] | None]:
    """An item as (kind, every argument with its default, the input shape it declares, the names of its inputs
    where it names them), or a LayerError naming it. A mapping's first key is the kind; further keys are
    arguments, as in Keras's call: ``{dense: 256, activation: relu}`` is Dense(256, ...); a list is the
    positional arguments of a layer whose first is a number (``{conv2d: [32, 3]}`` is Conv2D(32, 3))."""
    if isinstance(item, str):
        kind, given, more = _kind_of(item), {}, {}
    elif isinstance(item, Mapping) and item:
        (kind, given), *more = item.items()
        kind, more = _kind_of(kind), dict(more)
        given = _positional(position, kind, given)
    else:
        raise Where(position).error(f"expected one layer, as {{kind: {{argument: value}}}}, "
                         f"{{kind: first argument, argument: value}} or a bare kind, got {item!r}")
    if kind not in KINDS and kind not in EQUIVALENTS and kind != _INPUT_KIND:
        slip = did_you_mean(kind, [*KINDS, *ALIASES, *EQUIVALENTS])
        raise Where(position).error(f"unknown layer {kind!r} ({slip}known: {', '.join(KINDS)}, "
                         f"and {', '.join(EQUIVALENTS)} as the items they compute)")
    if not isinstance(given, Mapping):
        raise Where(position, kind).error(f"arguments must be a mapping, got {given!r}")
    twice = next((name for name in more if name in given), None)
    if twice is not None:
        raise Where(position, kind).error(f"argument {twice!r} is given twice")
    given, where = {**given, **more}, Where(position, kind)
    if kind == _INPUT_KIND:
        return kind, {"name": given.get("name")}, _input_layer_shape(given, where), None
    inputs = _inputs(given.pop("inputs"), where) if "inputs" in given else None
    declared = _declared_shape(given, where)
    if kind in EQUIVALENTS:
        own = {k: given.pop(k) for k in list(given) if k not in ("name", *_COMMON_DEFAULTS_ONLY)}
        try:
            (kind, args), = equivalent(kind, own).items()
        except ValueError as e:
            raise where.error(f"{e}") from None
        given = {**args, **given}
    return kind, _fill(kind, given, where), declared, inputs


def _inputs(value, where: Where) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise where.error(f"inputs must be the name of an earlier item, or a list of them, got {value!r}")
    return tuple(names)


def equivalent(kind: str, given: Mapping) -> dict:
    """The item that computes what Keras's ReLU, Softmax or ELU layer (``kind``: its snake_case name) with the
    arguments ``given`` computes, as ``{kind: {argument: value}}``; ValueError where no item does."""
    return EQUIVALENTS[kind].item(dict(given))


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
    """The shape an ``input`` item (Keras's ``Input`` or ``InputLayer``) declares."""
    allowed = {"shape": None, "batch_shape": None, "batch_size": None, "name": None, "dtype": None, "sparse": False,
               "ragged": False, "optional": False}
    unknown = [k for k in given if k not in allowed]
    if unknown:
        raise where.error(f"unknown argument {unknown[0]!r} ({_INPUT_KIND} takes shape or batch_shape, "
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
    if isinstance(given, Mapping) or kind not in KINDS and kind not in EQUIVALENTS and kind != _INPUT_KIND:
        return given
    if kind == _INPUT_KIND:
        return {"shape": given}
    spec = KINDS.get(kind)
    if spec is None or not spec.positional or not isinstance(given, (list, tuple)):
        return {_first(kind): given}  # Keras's first positional argument: dropout: 0.25
    if len(given) > len(spec.positional):
        raise Where(position, kind).error(f"{len(given)} positional arguments; Keras's {spec.keras_class} "
                         f"takes at most {len(spec.positional)} ({', '.join(spec.positional)})")
    return dict(zip(spec.positional, given))


def _first(kind: str) -> str:
    return KINDS[kind].first if kind in KINDS else EQUIVALENTS[kind].first


def _fill(kind: str, given: dict, where: Where) -> dict:
    spec = KINDS[kind]
    unknown = [k for k in given if k not in (*spec.required, *spec.optional, *spec.defaults_only, "name",
                                             *_COMMON_DEFAULTS_ONLY)]
    if unknown:
        takes = ", ".join([*spec.required, *spec.optional]) or "no arguments"
        known = [*spec.required, *spec.optional, *spec.defaults_only]
        raise where.error(f"unknown argument {unknown[0]!r} ({did_you_mean(unknown[0], known)}{kind} takes "
                         f"{takes})")
    missing = [k for k in spec.required if k not in given]
    if missing:
        raise where.error(f"missing argument {missing[0]!r}")
    for name, defaults in {**spec.defaults_only, **_COMMON_DEFAULTS_ONLY}.items():
        if name in given and plain(given.pop(name)) not in [plain(d) for d in defaults]:
            raise where.error(f"{name} is not supported (only Keras's default, {defaults[0]!r})")
    # in Keras's order: what it needs, then what it takes (given or its default)
    args = {**{k: given[k] for k in spec.required}, **{k: given.get(k, v) for k, v in spec.optional.items()}}
    try:
        args = spec.check(args)
    except (TypeError, ValueError) as e:
        raise where.error(f"{e}") from None
    return {**args, **({"name": given["name"]} if "name" in given else {})}


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


# attributes of the torch container the layers become children of, and the model input's name
RESERVED_NAMES = {"forward", "training", "layers", "train", "eval", "to", "type", "float", "double", "half", "cuda", "cpu",
                  "parameters", "buffers", "children", "modules", "apply", "state_dict", "extra_repr", "append", "extend",
                  "insert", "pop", "dump_patches", "call_super_init", "T_destination", "plan", INPUT}


def as_items(layers: Iterable[Layer], implied: bool = False) -> list[dict]:
    """The layers as list items again (``{kind: {argument: value}}``, pairs as lists, defaults kept, ``inputs``
    where an item does not take the one before it): what a config file holds. ``implied``: keep the layers the
    list implies (the reshape, the appended head)."""
    def plain_(value):
        return [plain_(v) for v in value] if isinstance(value, tuple) else value

    layers = list(layers)
    by_name = {layer.name: layer for layer in layers}

    def source(name: str) -> str:  # an implied layer stands for what it takes, where implied ones are left out
        layer = by_name.get(name)
        return source(layer.inputs[0]) if layer is not None and layer.position is None and not implied else name

    items, previous = [], INPUT
    for layer in layers:
        if not implied and layer.position is None:
            continue
        inputs = [source(name) for name in layer.inputs]
        item = {**({"name": layer.name} if layer.named else {}), **{k: plain_(v) for k, v in layer.args.items()}}
        if inputs != [previous]:
            item["inputs"] = inputs[0] if len(inputs) == 1 else inputs
        items.append({layer.kind: item})
        previous = layer.name
    return items
