"""A model's config read as typed records: every key of a Sequential, a Functional model (Keras 3's wiring) and a
model inside a Keras 2 Functional model (Keras 2's wiring), given each JSON value of another type or removed,
imports or is refused in one line naming the layer; never another exception."""

import copy
from pathlib import Path

import numpy as np
import pytest

from lit_mnist.errors import DataError
from lit_mnist.keras_import import records
from lit_mnist.keras_import.convert import convert
from lit_mnist.keras_import.read import KerasFile
from lit_mnist.keras_import.records import layers_by_path, parse_model

PATH = Path("model.keras")
VALUES = [None, True, 0, -1, 2**40, 1.5, float("nan"), "x", "", [], [1], ["a"], [[None]], {}, {"a": 1},
          {"class_name": "Dense"}, {"class_name": "__keras_tensor__", "config": {"keras_history": 3}}]
REMOVED = object()


def _dense(name, units, wiring=None, **extra):
    layer = {"class_name": "Dense", "config": {"name": name, "units": units, "use_bias": True, **extra}}
    return layer | ({"name": name, "inbound_nodes": wiring} if wiring is not None else {})


def _keras3(source):
    return [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32",
                                                                    "keras_history": [source, 0, 0]}}], "kwargs": {}}]


def sequential():
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "input_layer"}},
        _dense("dense", 3, activation="softmax")]}}


def functional():
    return {"class_name": "Functional", "config": {"name": "functional", "layers": [
        {"class_name": "InputLayer", "name": "input_layer", "config": {"batch_shape": [None, 4], "name": "input_layer"},
         "inbound_nodes": []},
        _dense("dense", 3, _keras3("input_layer"), activation="softmax")],
        "input_layers": [["input_layer", 0, 0]], "output_layers": [["dense", 0, 0]]}}


def nested_keras2():
    """A Keras 2 Functional model whose head is a Sequential called on the input."""
    head = {"class_name": "Sequential", "name": "head", "config": {"name": "head", "layers": [
        _dense("dense", 3, activation="softmax")]}, "inbound_nodes": [[["input_1", 0, 0, {}]]]}
    return {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "config": {"batch_input_shape": [None, 4], "name": "input_1"},
         "inbound_nodes": []}, head],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["head", 1, 0]]}}


def convolutional():
    """Layers of several kinds, each with the arguments Keras writes: their kinds check them."""
    layer = lambda cls, **config: {"class_name": cls, "config": {"name": cls.lower(), **config}}
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 6, 6, 1], "name": "input_layer"}},
        layer("Conv2D", filters=2, kernel_size=[3, 3], strides=[1, 1], padding="same", data_format="channels_last",
              dilation_rate=[1, 1], groups=1, activation="relu", use_bias=True),
        layer("BatchNormalization", axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True),
        layer("MaxPooling2D", pool_size=[2, 2], strides=[2, 2], padding="valid", data_format="channels_last"),
        layer("Dropout", rate=0.5, noise_shape=None, seed=None),
        layer("Flatten", data_format="channels_last"),
        _dense("dense", 3, activation="softmax")]}}


def _weights(config) -> dict:
    if config["config"]["layers"][1]["class_name"] == "Conv2D":
        ones = lambda *shape: np.ones(shape, np.float32)
        return {"conv2d": [(None, ones(3, 3, 1, 2)), (None, ones(2))],
                "batchnormalization": [(None, ones(2))] * 4, "dense": [(None, ones(18, 3)), (None, ones(3))]}
    model = parse_model(config, PATH)
    (path, _), = ((p, layer) for p, layer in layers_by_path(model) if layer.class_name == "Dense")
    return {path: [(None, np.ones((4, 3), np.float32)), (None, np.zeros(3, np.float32))]}


def _paths(value, path=()):
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*path, key))


def _mutated(base, path, value):
    config = copy.deepcopy(base)
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    if value is REMOVED:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return config


def _outcome(config, weights) -> str:
    """``imported``, ``refused`` (a one-line DataError) or what else happened."""
    try:
        convert(KerasFile(PATH, "keras", config, parse_model(config, PATH), weights, "0" * 64))
    except DataError as e:
        return "refused" if "\n" not in str(e) and str(e).startswith(f"{PATH}: ") else f"several lines: {e}"
    except Exception as e:  # noqa: BLE001 - what the test looks for
        return f"{type(e).__name__}: {e}"
    return "imported"


def _surprises(base) -> list:
    weights = _weights(base)
    found = []
    for path in list(_paths(base))[1:]:
        for value in [*VALUES, REMOVED]:
            outcome = _outcome(_mutated(base, path, value), weights)
            if outcome not in ("imported", "refused"):
                found.append((path, value if value is not REMOVED else "removed", outcome))
    return found


@pytest.mark.parametrize("base", [sequential, functional, nested_keras2, convolutional])
def test_every_key_of_another_type_or_missing_imports_or_is_one_line(base):
    assert _outcome(base(), _weights(base())) == "imported"
    assert _surprises(base()) == []


def test_companion_records_that_take_each_value_unchecked_are_caught(monkeypatch):
    monkeypatch.setattr(records._Parser, "typed", lambda self, value, *args: value)
    assert any(outcome.startswith(("TypeError", "AttributeError")) for *_, outcome in _surprises(sequential()))


def _deep(value, levels: int):
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda c: c["config"]["layers"][1].update(inbound_nodes=[[["input_layer", 0, 0]], [["input_layer", 0, 0]]]),
     "layer 1 'dense' (Dense): called 2 times (a shared layer)"),
    (lambda c: c["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"].update(keras_history="dense"),
     "layer 1 'dense' (Dense)'s inbound_nodes hold a tensor whose keras_history is 'dense'"),
    (lambda c: c["config"].update(input_layers=[["nowhere", 0, 0]]),
     "the model: 'input_layers' names 'nowhere', which is no layer of it"),
    (lambda c: c["config"]["layers"][1].update(inbound_nodes=[_deep(["input_layer", 0, 0], 40)]),
     "inbound_nodes nest deeper than Keras writes them"),
])
def test_wiring_not_as_keras_writes_it_is_refused_naming_the_layer(mutate, expected):
    config = functional()
    mutate(config)
    with pytest.raises(DataError) as refused:
        convert(KerasFile(PATH, "keras", config, parse_model(config, PATH), _weights(functional()), "0" * 64))
    assert expected in str(refused.value) and "\n" not in str(refused.value)
