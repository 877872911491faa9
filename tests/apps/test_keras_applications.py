"""keras.applications' families, built by Keras with ``weights=None`` at a small grey input (32x32x1), import and
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
    """1,000 random 32x32 grey images of 8x8 blocks, as a CSV of levels 0-255 and as the models take them (0-1)."""
    coarse = np.random.default_rng(0).integers(0, 256, (ROWS, 4, 4))
    levels = np.kron(coarse, np.ones((8, 8), dtype=np.int64)).reshape(ROWS, 32 * 32)
    path = tmp_path_factory.mktemp("images") / "images.csv"
    path.write_text(csv_text(levels, np.zeros(ROWS, dtype=int)))
    return path, (levels / 255.0).astype(np.float32).reshape(ROWS, 32, 32, 1)


def _built(family: str, x: np.ndarray) -> keras.Model:
    """The family's model, its untrained weights made to tell the images apart: each BatchNormalization's moving
    statistics set to the images' (untrained, they would pass a vanishing signal), and the head a random projection
    of the centred features (else every image would get one class). Keras's own weights, whatever they are, are
    what the import must reproduce; they are kept well-conditioned (no channel scaled up more than ~3 times, logits
    of a spread of about 2), as a trained net's are, so that float32's rounding, in Keras as in torch, stays within
    the check's limits."""
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, family)(weights=None, classes=10, input_shape=(32, 32, 1))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # one step in training mode sets the moving statistics to the batch's
    model(x[:500], training=True)
    for layer, momentum in zip(norms, momenta):
        gamma, beta, mean, variance = layer.get_weights()  # a channel of next to no spread is not blown up
        layer.set_weights([gamma, beta, mean, np.maximum(variance, 0.1)])
        layer.momentum = momentum
    features = keras.Model(model.inputs, model.layers[-2].output).predict(x, batch_size=250, verbose=0)
    mean, spread = features.mean(0), features.std()
    projection = np.random.default_rng(1).standard_normal((features.shape[1], 10)) * 2 / np.sqrt(features.shape[1])
    model.layers[-1].set_weights([projection / spread, -(mean / spread) @ projection])
    return model


@pytest.mark.parametrize("family", ["VGG16", "ResNet50", "MobileNetV2", "DenseNet121", "EfficientNetB0"])
def test_a_keras_application_imports_and_predicts_as_keras(family, images, tmp_path, capsys):
    path, x = images
    model = _built(family, x)
    saved, out = tmp_path / f"{family}.keras", tmp_path / f"{family}.ckpt"
    model.save(saved)
    code = call(import_keras.main, [str(saved), "--out", str(out), "--check", str(path), "--input-scale", str(1 / 255)])
    assert code == 0 and f"verified against Keras on {ROWS} rows" in capsys.readouterr().out
    theirs = model.predict(x, batch_size=250, verbose=0)
    ours = import_keras.model_probabilities(load_model(out), x.reshape(ROWS, -1) * 255)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.999
    assert np.bincount(theirs.argmax(1), minlength=10).min() > 0  # every class predicted: the agreement means something


@pytest.mark.parametrize(("family", "shape", "missing"), [
    ("MobileNetV3Small", (32, 32, 1), "'add' (Add): an operation on tensors saved as a layer"),
    ("ConvNeXtTiny", (32, 32, 1), "(LayerScale): is not a layer lit-mnist has"),
    ("InceptionResNetV2", (75, 75, 1), "(CustomScaleLayer): is not a layer lit-mnist has"),
])
def test_a_keras_application_of_a_layer_lit_mnist_has_not_is_refused_naming_it(family, shape, missing, tmp_path,
                                                                                 capsys):
    saved, out = tmp_path / f"{family}.keras", tmp_path / f"{family}.ckpt"
    getattr(keras.applications, family)(weights=None, classes=10, input_shape=shape).save(saved)
    assert call(import_keras.main, [str(saved), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {saved}: layer ") and missing in err and err.count("\n") == 1, err
    assert not out.exists() and not out.with_suffix(".yaml").exists()
