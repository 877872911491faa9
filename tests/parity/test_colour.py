"""Colour images against the Keras twin, which takes H x W x 3: a conv list passes levels 1 and 2 on generated
colour images, standardised per channel, and every level through ``parity.py`` on a colour CSV; a row read in the
wrong channel order fails a level.

| broken on purpose                                            | caught by |
| ------------------------------------------------------------ | --------- |
| a row's values read channel by channel (torch's planes)      | level 1 (forward) |
"""

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from tests.conftest import csv_text, hue_images, require_the_parity_extra

require_the_parity_extra()

from parity import forward, steps
from parity.cli import main as parity_main
from parity.twins import Twins

pytestmark = pytest.mark.parity

SIDE, ROWS = 12, 1500
CONV = [{"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        "batch_normalization", {"max_pooling2d": {"pool_size": 2}}, {"conv2d": [4, 3]}, "flatten",
        {"dense": {"units": 16, "activation": "tanh"}}]


@pytest.fixture(scope="module")
def colour():
    return hue_images(ROWS, classes=4, side=SIDE)


def _twins(colour, normalize: bool):
    """The twins of CONV; standardised, with the training rows' statistics per channel."""
    x = colour[0][:1200].reshape(-1, 3)
    stats = (x.mean(0).tolist(), x.std(0, ddof=1).tolist()) if normalize else None
    return Twins({"layers": CONV, "num_classes": 4, "image_shape": [SIDE, SIDE, 3]}, stats)


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "standardised per channel"])
def test_a_conv_list_on_colour_images_matches_its_keras_twin(colour, normalize):
    x, y = colour
    twins = _twins(colour, normalize)
    result = forward.forward_parity(twins.keras(seed=3), x[1200:], twins.lightning())
    assert result["passed"], result
    part = (x[:1200], y[:1200])
    result = steps.step_parity(part, tuple(torch.from_numpy(a[:960]) for a in part), twins, steps=2)
    assert result["passed"], result


def test_companion_a_row_read_channel_by_channel_is_caught(colour):
    """The values of a row taken as three planes (all reds, then greens, then blues: torch's layout) where Keras
    has each pixel's channels in turn: the sizes agree, the images do not."""
    x, _ = colour
    twins = _twins(colour, False)
    module = twins.lightning()
    reshape = module.net[0]  # the row as the image the first conv needs (the list implies it)
    assert type(reshape).__name__ == "Reshape"
    reshape.forward = lambda rows: rows.reshape(len(rows), 3, SIDE, SIDE)
    result = forward.forward_parity(twins.keras(seed=3), x[1200:], module)
    assert not result["passed"] and result["max_abs_diff"] > 1e-2


def test_a_colour_csv_passes_every_level_through_parity_py(tmp_path, monkeypatch):
    x, y = hue_images(2000, classes=6, side=SIDE, seed=1)
    path = tmp_path / "colour.csv"
    path.write_text(csv_text(x, y))
    out = tmp_path / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = parity_main(["--out", str(out), "--data.path", str(path), "--model.layers", json.dumps(CONV),
                            "--data.normalize", "true", "--data.batch_size", "32", "--trainer.max_epochs", "3", "--seeds", "3", "--margin",
                            "0.02", "--steps", "3"])
    r = json.loads((out / "parity.json").read_text())
    assert code == 0 and r["passed"], printed.getvalue()[-2000:]
    assert r["image_shape"] == [SIDE, SIDE, 3] and r["levels"] == ["forward", "steps", "statistics"]
    assert np.mean(r["keras"]["test_accuracy"]) > 0.9  # the hues are learnt: the comparison means something
