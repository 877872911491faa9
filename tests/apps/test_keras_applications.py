"""keras.applications' families, built by Keras with ``weights=None`` at a small colour input (32x32x3), import and
predict as Keras does; the families that need a layer lit-mnist has not are refused in one line naming it."""

import numpy as np
import pytest

from tests.conftest import require_the_parity_extra

require_the_parity_extra()

import keras

from lit_mnist.apps import import_keras
from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import call
from tests.conftest import csv_text

pytestmark = [pytest.mark.parity, pytest.mark.slow]
ROWS = 1000


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """1,000 random 32x32 colour images of 8x8 blocks, as a CSV of values 0-255 (each pixel's R, G, B in turn) and
    as the models take them (0-1)."""
    coarse = np.random.default_rng(0).integers(0, 256, (ROWS, 4, 4, 3))
    levels = np.kron(coarse, np.ones((8, 8, 1), dtype=np.int64)).reshape(ROWS, 32 * 32 * 3)
    path = tmp_path_factory.mktemp("images") / "images.csv"
    path.write_text(csv_text(levels, np.zeros(ROWS, dtype=int)))
    return path, (levels / 255.0).astype(np.float32).reshape(ROWS, 32, 32, 3)


def _telling_apart(model: keras.Model, x: np.ndarray) -> keras.Model:
    """``model``'s untrained weights made to tell the images apart: each BatchNormalization's moving statistics
    set to the images' (untrained, they pass a vanishing signal), and the head a random projection of the centred
    features, logits of a spread of about 1 (else every image gets one class)."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # one step in training mode sets the moving statistics to the batch's
    model(x[:500], training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    features = keras.Model(model.inputs, model.layers[-2].output).predict(x, batch_size=250, verbose=0)
    mean, spread = features.mean(0), features.std()
    projection = np.random.default_rng(1).standard_normal((features.shape[1], 10)) / np.sqrt(features.shape[1])
    model.layers[-1].set_weights([projection / spread, -(mean / spread) @ projection])
    return model


def _import(saved, out, *options) -> int:
    return call(import_keras.main, [str(saved), "--out", str(out), "--input-scale", str(1 / 255), *options])


@pytest.mark.parametrize("family", ["VGG16", "ResNet50", "MobileNetV2", "DenseNet121", "EfficientNetB0"])
def test_a_keras_application_imports_and_predicts_as_keras(family, images, tmp_path, capsys):
    """As Keras builds it, the import passes its check against Keras (probabilities within 1e-4, the same classes);
    but untrained, the model gives every image the same class, near-tied. With weights that tell the images apart
    (every class predicted), the classes agree on 999 in 1,000 or more; the probabilities stay within 5e-4 (float32's
    rounding through 23 to 430 layers, some channels scaled up by statistics of next to no spread: Keras and torch
    each differ from the float64 computation by as much; docs/keras.md has the figures)."""
    path, x = images
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, family)(weights=None, classes=10, input_shape=(32, 32, 3))
    saved, out = tmp_path / f"{family}.keras", tmp_path / f"{family}.ckpt"
    model.save(saved)
    assert _import(saved, out, "--check", str(path)) == 0
    assert f"verified against Keras on {ROWS} rows" in capsys.readouterr().out
    _telling_apart(model, x).save(saved)
    assert _import(saved, out) == 0
    theirs = model.predict(x, batch_size=250, verbose=0)
    ours = import_keras.model_probabilities(load_model(out), x.reshape(ROWS, -1) * 255)
    assert np.bincount(theirs.argmax(1), minlength=10).min() > 0  # every class predicted: the agreement means something
    agree, diff = (ours.argmax(1) == theirs.argmax(1)).mean(), np.abs(ours - theirs).max()
    print(f"{family}: classes agree on {agree:.2%}, probabilities max |diff| {diff:.1e}")  # docs/keras.md's figures
    assert agree >= 0.999 and diff <= 5e-4


@pytest.mark.parametrize(("family", "shape", "missing"), [
    ("MobileNetV3Small", (32, 32, 3), "'add' (Add): an operation on tensors saved as a layer"),
    ("ConvNeXtTiny", (32, 32, 3), "(LayerScale): is not a layer lit-mnist has"),
    ("InceptionResNetV2", (75, 75, 3), "(CustomScaleLayer): is not a layer lit-mnist has"),
])
def test_a_keras_application_of_a_layer_lit_mnist_has_not_is_refused_naming_it(family, shape, missing, tmp_path,
                                                                                 capsys):
    saved, out = tmp_path / f"{family}.keras", tmp_path / f"{family}.ckpt"
    getattr(keras.applications, family)(weights=None, classes=10, input_shape=shape).save(saved)
    assert call(import_keras.main, [str(saved), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {saved}: layer ") and missing in err and err.count("\n") == 1, err
    assert not out.exists() and not out.with_suffix(".yaml").exists()
