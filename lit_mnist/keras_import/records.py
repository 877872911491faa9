"""A Keras model's config (config.json, or an .h5 file's ``model_config``) as typed records, checked before
anything is converted: the model and each layer's class, name and config of the types Keras writes, a Functional
model's wiring (``inbound_nodes``, ``input_layers``, ``output_layers`` in Keras 3's form and Keras 2's) read as
the names of the layers each call takes, models inside the model parsed as models. Anything else is one line
naming the layer and the key. A layer's own arguments are its kind's to check (``lit_mnist/model/kinds/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lit_mnist.errors import DataError

MODEL_CLASSES = {"Sequential", "Functional", "Model"}  # a layer that is a model of its own layers
MAX_NESTING = 8  # models inside models: deeper is no digit classifier's
MAX_WIRING_DEPTH = 16  # lists and mappings within one call's description (Keras writes 5 or 6)


@dataclass(frozen=True)
class LayerRecord:
    """A layer as the config describes it: ``where`` names it in messages (within the models it is in); ``calls``:
    for each time a Functional model calls it, the names of the layers whose outputs it takes; ``model``: the
    model it is, for a model inside the model."""

    class_name: str
    name: str
    config: dict
    where: str
    module: str | None = None
    calls: tuple[tuple[str, ...], ...] = ()
    model: ModelRecord | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A Sequential or Functional model: its layers in the file's order; a Functional model's input and output
    layers by name (a Sequential's are its first and last)."""

    class_name: str
    name: str
    layers: tuple[LayerRecord, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    config: dict
    build_config: dict


def parse_model(config: dict, path: Path) -> ModelRecord:
    """The model ``config`` (``{"class_name": ..., "config": {...}}``) describes, as records."""
    return _Parser(path).model(config, "", 0)


def layers_by_path(model: ModelRecord, prefix: str = "") -> Iterator[tuple[str, LayerRecord]]:
    """Every layer with its path: its name, or ``<model>/<layer>`` for a layer of a model inside the model."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if layer.model is not None:
            yield from layers_by_path(layer.model, f"{prefix}{layer.name}/")


_TEXT, _MAPPING, _LIST = (str, "text"), (dict, "a mapping"), (list, "a list")


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> DataError:
        return DataError(f"{self.path}: {where}: {message}")

    def typed(self, value, expected: tuple[type, str], where: str, key: str):
        """``value``, where it is of the ``expected`` type and not empty; else the one-line error naming ``key``."""
        if not isinstance(value, expected[0]) or not value:
            raise self.fail(where, f"'{key}' must be {'non-empty ' if value == expected[0]() else ''}{expected[1]}, "
                                   f"got {_short(value)}")
        return value

    def model(self, described: dict, where: str, depth: int) -> ModelRecord:
        here = where.removesuffix(" > ") or "the model"
        cls = described.get("class_name")
        if not isinstance(cls, str) or cls not in MODEL_CLASSES:
            raise self.fail(here, f"a model of class {_short(cls)}: lit-mnist imports Sequential and Functional "
                                  "models")
        config = self.typed(described.get("config"), _MAPPING, here, "config")
        layers = self.typed(config.get("layers"), _LIST, here, "layers")
        name = config.get("name", described.get("name", "model"))
        self.typed(name, _TEXT, here, "name")
        build = described.get("build_config")
        build = build if isinstance(build, dict) else {}
        records, index = [], 0
        for layer in layers:
            index += not (isinstance(layer, dict) and layer.get("class_name") == "InputLayer")  # as model.layers counts
            records.append(self.layer(layer, index, where, depth, functional=cls != "Sequential"))
        names = [record.name for record in records]
        if cls == "Sequential":
            return ModelRecord(cls, name, tuple(records), (), (), config, build)
        inputs, outputs = (self.wiring(config.get(key), f"{here}'s {key}") for key in ("input_layers", "output_layers"))
        for key, refs in (("input_layers", inputs), ("output_layers", outputs)):
            missing = next((ref for ref in refs if ref not in names), None)
            if missing is not None:
                raise self.fail(here, f"'{key}' names {missing!r}, which is no layer of it")
        return ModelRecord(cls, name, tuple(records), inputs, outputs, config, build)

    def layer(self, described, index: int, where: str, depth: int, functional: bool) -> LayerRecord:
        if not isinstance(described, dict):
            raise self.fail(f"{where}layer {index}", f"must be a mapping, got {_short(described)}")
        cls = self.typed(described.get("class_name"), _TEXT, f"{where}layer {index}", "class_name")
        config = self.typed(described.get("config"), _MAPPING, f"{where}layer {index} ({cls})", "config")
        name = self.typed(config.get("name", described.get("name")), _TEXT, f"{where}layer {index} ({cls})", "name")
        here = f"{where}layer {index} '{name}' ({cls})" if cls != "InputLayer" else f"{where}input '{name}' (InputLayer)"
        module = described.get("module")
        if module is not None:
            self.typed(module, _TEXT, here, "module")
        calls = ()
        if functional:
            nodes = described.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise self.fail(here, f"'inbound_nodes' must be a list, got {_short(nodes)}")
            calls = tuple(self.wiring(node, f"{here}'s inbound_nodes") for node in nodes)
        model = None
        if cls in MODEL_CLASSES:
            if depth + 1 >= MAX_NESTING:
                raise self.fail(here, f"models nested more than {MAX_NESTING} deep (a digit classifier's are not)")
            model = self.model(described, f"{here} > ", depth + 1)
        return LayerRecord(cls, name, config, here, module, calls, model)

    def wiring(self, value, what: str) -> tuple[str, ...]:
        """The names of the layers whose outputs ``value`` refers to: Keras 3's tensors
        (``{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}``) and Keras 2's
        ``[layer, node, tensor, kwargs]``, anywhere within it."""
        found: list[str] = []

        def walk(value, depth: int) -> None:
            if depth > MAX_WIRING_DEPTH:
                raise DataError(f"{self.path}: {what} nest deeper than Keras writes them")
            if isinstance(value, dict):
                if value.get("class_name") == "__keras_tensor__":
                    config = value.get("config")
                    history = config.get("keras_history") if isinstance(config, dict) else None
                    if not _reference(history):
                        raise DataError(f"{self.path}: {what} hold a tensor whose keras_history is {_short(history)}, "
                                        "not [layer, node, tensor]")
                    found.append(history[0])
                    return
                for item in value.values():
                    walk(item, depth + 1)
            elif isinstance(value, list):
                if _reference(value):
                    found.append(value[0])
                    return
                for item in value:
                    walk(item, depth + 1)

        walk(value, 0)
        return tuple(found)


def _reference(value) -> bool:
    """``[layer, node, tensor, ...]``: a layer's name and two counts."""
    return (isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and value[0] != ""
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:3]))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
