"""Layer lists that branch and join, against their Keras twin built with the Functional API: levels 1 and 2 on
small generated images (a residual block with a concatenated side branch, every elementwise merge, Keras's
broadcasting), level 3 on a small graph through ``parity.py`` on real MNIST, and a wrong merge caught.

| broken on purpose                                              | caught by |
| -------------------------------------------------------------- | --------- |
| concatenated maps joined in torch's (c, h, w) order            | level 1 (forward) |
| the residual added before the BatchNormalization, not after it | level 2 (teacher-forced steps) |
| optimizer slots named for another model's variables            | refused when read |
"""

import contextlib
import io
import json
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import require_the_parity_extra, residual_list

require_the_parity_extra()

from parity import forward, keras_reference, steps
from parity.cli import main as parity_main
from parity.twins import Twins

pytestmark = pytest.mark.parity

SHAPE = (12, 12)  # the generated images' (the ``images`` fixture, conftest.py)

RESIDUAL = residual_list(SHAPE[0], filters=4, side=2)  # the docs' example on 12x12 images, fewer filters
# the same layers, the same names, with the residual added before the BatchNormalization: the mistake torch
# code makes when it writes ``bn(conv(x) + x)`` for Keras's ``x + bn(conv(x))``
RESIDUAL_BEFORE_BN = [*RESIDUAL[:3], {"add": {"inputs": ["stem", "conv2d"]}}, "batch_normalization", *RESIDUAL[5:]]
# every elementwise merge, on two dense branches of the model's input (which the twin takes after its pixel
# normalisation: a branch given the raw pixels would fail level 1); average joins three
MERGES = [
    {"dense": {"units": 8, "name": "a"}},
    {"dense": {"units": 8, "inputs": "input", "name": "b"}},
    {"subtract": {"inputs": ["a", "b"]}},
    {"maximum": {"inputs": ["subtract", "b"]}},
    {"minimum": {"inputs": ["a", "maximum"]}},
    {"average": {"inputs": ["minimum", "a", "b"]}},
    {"multiply": {"inputs": ["average", "subtract"]}},
    {"concatenate": {"inputs": ["multiply", "a"]}},
    {"dense": {"units": 12, "activation": "tanh"}},
]
# Keras's broadcasting: maps times their channels' weights, (h, w, c) * (1, 1, c), and times a row of c, which
# gains its missing axes after the batch axis
SQUEEZE = [
    {"conv2d": {"filters": 3, "kernel_size": 3, "name": "maps"}},
    {"global_average_pooling2d": {"keepdims": True}},
    {"conv2d": {"filters": 3, "kernel_size": 1, "activation": "sigmoid", "name": "weights"}},
    {"multiply": {"inputs": ["maps", "weights"]}},
    {"global_max_pooling2d": {"inputs": "maps"}},
    {"multiply": {"inputs": ["multiply", "global_max_pooling2d"]}},
    "flatten",
]


def _twins(layers):
    return Twins({"layers": layers, "num_classes": 4, "image_shape": list(SHAPE)}, (80.0, 60.0))


def _forward(twins, images, module=None):
    return forward.forward_parity(twins.keras(seed=3), images[0][1200:], module or twins.lightning())


def _steps(twins, images, make_module=None, n=2):
    x, y = images
    part = (x[:1200], y[:1200])
    train = tuple(torch.from_numpy(a[:960]) for a in part)
    return steps.step_parity(part, train, twins, steps=n, make_module=make_module)


def test_a_chain_s_twin_stays_sequential_and_a_graph_s_is_functional_with_the_list_s_names():
    import keras

    chain = _twins([{"dense": 8}]).keras(seed=0)
    assert isinstance(chain, keras.Sequential)
    twins = _twins(RESIDUAL)
    graph = twins.keras(seed=0)
    assert not isinstance(graph, keras.Sequential)
    assert [layer.name for layer in graph.layers] == ["input", keras_reference.PIXEL_NORMALIZATION,
                                                      *(layer.name for layer in twins.layers)]
    config = graph.get_config()  # the Functional model's wiring, as Keras saves it
    add, = (layer for layer in config["layers"] if layer["name"] == "add")
    assert [t["config"]["keras_history"][0] for t in add["inbound_nodes"][0]["args"][0]] == ["stem", "batch_normalization"]
    assert config["input_layers"][0] == "input" and config["output_layers"][0] == "dense"  # the head's output


@pytest.mark.parametrize("layers", [RESIDUAL, MERGES, SQUEEZE],
                         ids=["residual block and concatenated side branch", "every elementwise merge",
                              "broadcasting merges"])
def test_a_graph_matches_its_functional_twin_in_inference_and_training(images, layers):
    twins = _twins(layers)
    result = _forward(twins, images)
    assert result["passed"], result
    result = _steps(twins, images)
    assert result["passed"], result
    assert result["has_moving_statistics"] == (layers is RESIDUAL)


def test_optimizer_slots_pair_with_every_variable_of_a_functional_twin():
    """A Functional model's variables are ``stem/kernel``, not a Sequential's ``sequential/stem/kernel``: the slots
    are found by the variables' own paths."""
    graph = _twins(RESIDUAL).keras(seed=0)
    slots = keras_reference.optimizer_slots(graph)
    paired = {(layer, name) for layer, variables in slots.items() for name, found in variables.items()
              if set(found) == {"momentum", "velocity"}}
    assert paired == {(layer.name, v.name) for layer in graph.layers for v in layer.trainable_weights}
    assert len(paired) == 10  # stem, conv2d, side, dense: kernel and bias; batch_normalization: gamma and beta


def test_companion_slots_named_for_another_model_s_variables_are_refused():
    """A Sequential's slots (``sequential_dense_kernel_momentum``) read against a Functional model's variables
    (``dense/kernel``) pair with none: an error, not a torch step from empty moments."""
    graph, chain = _twins(MERGES).keras(seed=0), _twins([{"dense": 8}]).keras(seed=0)
    with pytest.raises(RuntimeError, match="pair with no variable of the model's layers"):
        keras_reference.optimizer_slots(SimpleNamespace(layers=graph.layers, optimizer=chain.optimizer))


def test_companion_channels_concatenated_in_torch_s_order_are_caught(images):
    """Each map's features joined in torch's (c, h, w) order, one map after the other, and read back as the
    channels-last map the layers after expect: the sizes agree (the dense kernel loads), the features do not."""
    twins = _twins(RESIDUAL)
    module = twins.lightning()

    def torch_order(*maps):
        n, _, h, w = maps[0].shape
        return torch.cat([m.flatten(1) for m in maps], 1).view(n, h, w, -1).permute(0, 3, 1, 2)

    module.net.concatenate.forward = torch_order
    result = _forward(twins, images, module)
    assert not result["passed"] and result["max_abs_diff"] > 1e-2


def test_companion_a_residual_added_before_the_batch_normalization_is_caught(images):
    """The Lightning twin adds the stem to the conv's output and normalises the sum; Keras's twin normalises the
    conv's output and adds the stem. The layers and names are the same, so Keras's weights and moving statistics
    load into it; in training BatchNormalization takes the batch's statistics, of the sum here, of the conv there."""
    twins = _twins(RESIDUAL)
    result = _steps(twins, images, make_module=lambda t: t.lightning(layers=RESIDUAL_BEFORE_BN))
    assert not result["passed"] and result["loss_rel_diff"] > 100 * steps.MAX_LOSS_REL


# level 3's graph: a dense residual block beside a skip branch from the (standardised) input, concatenated;
# a few seconds an epoch, where a convolutional graph's seeds take minutes (docs/parity.md)
SMALL_GRAPH = ("[{dense: {units: 64, activation: relu, name: hidden}}, {dense: {units: 64, name: block}}, "
               "{add: {inputs: [hidden, block]}}, {activation: relu}, {dense: {units: 16, inputs: input, name: skip}}, "
               "{concatenate: {inputs: [activation, skip]}}]")
# CI's budget for it: 3 seeds of 2 epochs (the dense check's margin, +-1 point), 3 teacher-forced steps
GRAPH_BUDGET = ["--data.normalize", "true", "--trainer.max_epochs", "2", "--seeds", "3", "--margin", "0.01",
                "--steps", "3"]


def test_a_small_graph_passes_every_level_through_parity_py(tmp_path, shared_mnist, monkeypatch):
    monkeypatch.setenv("LIT_MNIST_MIRROR", shared_mnist.as_uri())
    out = tmp_path / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = parity_main(["--out", str(out), "--model.layers", SMALL_GRAPH, *GRAPH_BUDGET])
    r = json.loads((out / "parity.json").read_text())
    assert code == 0 and r["passed"], printed.getvalue()[-2000:]
    assert printed.getvalue().strip().splitlines()[-1].startswith("parity PASSED")
    assert r["levels"] == ["forward", "steps", "statistics"] and r["normalize"] and r["data_source"] == "mnist"
    assert r["net"] == ("dense -> dense -> add(hidden, block) -> activation -> dense(input) -> "
                        "concatenate(activation, skip) -> dense")
    assert r["forward"]["n"] == 10000 and r["steps"]["n"] == 3
    assert len(r["keras"]["test_accuracy"]) == len(r["lightning"]["test_accuracy"]) == 3
    assert r["statistics"]["accuracy"]["equivalence"]["passed"] and r["confusion"]["passed"]
