"""Each layer kind has one home (lit_mnist/model/kinds/): a kind defined in one file is read by the layer list,
the importer and the parity twin alike, and no other source file keeps a table of kinds."""

import ast
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lit_mnist.keras_import.convert import convert
from lit_mnist.keras_import.read import KerasFile
from lit_mnist.keras_import.records import parse_model
from lit_mnist.model import keras_layout
from lit_mnist.model.kinds import ALIASES, KERAS_CLASSES, KINDS
from lit_mnist.model.kinds.arguments import ACTIVATIONS
from lit_mnist.model.layers import LayerError
from lit_mnist.model.net import build_net
from tests.conftest import REPO

TOY = [{"dense": 6}, "unit_normalization"]


@pytest.fixture
def toy_kind():
    """The toy kind of tests/model/toy_kind.py, registered by importing its file, and taken away after."""
    module = importlib.import_module("tests.model.toy_kind")
    yield module
    KINDS.pop("unit_normalization"), KERAS_CLASSES.pop("UnitNormalization"), ALIASES.pop("UnitNormalization")
    del sys.modules["tests.model.toy_kind"]


def test_a_kind_defined_in_one_file_builds_from_a_layer_list(toy_kind):
    net = build_net(TOY, 3, (2, 2)).eval()
    assert [layer.kind for layer in net.layers] == ["dense", "unit_normalization", "dense"]
    x = torch.rand(5, 4)
    torch.testing.assert_close(net.outputs(x)["unit_normalization"], F.normalize(net.dense(x), dim=1))
    with pytest.raises(LayerError, match=r"^model.layers item 2 \(unit_normalization\): unknown argument 'scale'"):
        build_net([{"dense": 6}, {"unit_normalization": {"scale": 2}}], 3, (2, 2))


def test_without_its_file_the_kind_is_unknown():
    with pytest.raises(LayerError, match="unknown layer 'unit_normalization'"):
        build_net(TOY, 3, (2, 2))


def _layer(cls: str, name: str, **config) -> dict:
    return {"module": "keras.layers", "class_name": cls, "config": {"name": name, **config}}


def test_a_kind_defined_in_one_file_imports_from_a_keras_config(toy_kind):
    rng = np.random.default_rng(0)
    weights = {"dense": [(None, rng.standard_normal((4, 6)).astype(np.float32)), (None, np.ones(6, np.float32))],
               "dense_1": [(None, rng.standard_normal((6, 3)).astype(np.float32)), (None, np.zeros(3, np.float32))]}
    config = {"class_name": "Sequential", "config": {"name": "toy", "layers": [
        _layer("InputLayer", "input_layer", batch_shape=[None, 4]), _layer("Dense", "dense", units=6),
        _layer("UnitNormalization", "unit_normalization", axis=-1),
        _layer("Dense", "dense_1", units=3, activation="softmax")]}}
    imported = convert(KerasFile(Path("toy.keras"), "keras", config, parse_model(config, Path("toy.keras")), weights,
                                 "0" * 64))
    assert [next(iter(item)) for item in imported.items] == ["dense", "unit_normalization", "dense"]
    net = build_net(imported.items, imported.num_classes, imported.image_shape).eval()
    keras_layout.load_weights(net, imported.weights)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    hidden = x @ weights["dense"][0][1] + 1
    logits = hidden / np.linalg.norm(hidden, axis=1, keepdims=True) @ weights["dense_1"][0][1]
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parity
def test_a_kind_defined_in_one_file_has_its_keras_twin(toy_kind):
    from tests.conftest import require_the_parity_extra

    require_the_parity_extra()
    from parity import forward
    from parity.twins import Twins

    twins = Twins({"layers": TOY, "num_classes": 3, "image_shape": (2, 2)})
    keras_model = twins.keras(seed=0)
    assert [type(layer).__name__ for layer in keras_model.layers] == ["Dense", "UnitNormalization", "Dense"]
    x = np.random.default_rng(0).uniform(0, 255, (50, 4)).astype(np.float32)
    result = forward.forward_parity(keras_model, x, twins.lightning())
    assert result["passed"], result


def _named(roots: list[Path], kinds: dict) -> dict[str, list[str]]:
    """For each kind, the source files outside the kinds package that name it: as a string or an identifier, by its
    snake_case name or Keras's class name. Words that are also an argument's or an activation's name (the
    ``activation`` argument, the ``softmax`` function) are known by the class name alone."""
    arguments = {arg for kind in KINDS.values() for arg in (*kind.required, *kind.optional)}
    ambiguous = arguments | set(ACTIVATIONS)
    words: dict[Path, set[str]] = {}
    for root in roots:
        for path in root.rglob("*.py"):
            if "kinds" in path.relative_to(root).parts:
                continue
            tree = ast.parse(path.read_text())
            words[path] = ({n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                           | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
    named = {}
    for name, kind in kinds.items():
        tokens = {name, kind.keras_class} - ambiguous | {kind.keras_class}
        named[name] = sorted(str(p) for p, found in words.items() if tokens & found)
    return named


def test_each_kind_is_named_in_at_most_one_source_file_besides_its_definition():
    from lit_mnist.model.kinds import EQUIVALENTS

    named = _named([REPO / "lit_mnist", REPO / "parity"], {**KINDS, **EQUIVALENTS})
    assert {name: files for name, files in named.items() if len(files) > 1} == {}


def test_companion_a_second_table_of_kinds_is_caught(tmp_path):
    package = tmp_path / "lit_mnist"
    package.mkdir()
    (package / "importer.py").write_text('CLASSES = {"Conv2D": "conv2d"}\n')
    (package / "net.py").write_text('def module(layer):\n    return "conv" if layer.kind == "conv2d" else None\n')
    assert _named([package], KINDS)["conv2d"] == [str(package / "importer.py"), str(package / "net.py")]
