"""scripts/import_keras.py: Keras models saved by Keras (3 and 2, .keras and .h5) become checkpoints that predict
as Keras does; a file that is no such model, or carries code, is refused in one line and nothing is written."""

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import REPO, csv_text, require_the_parity_extra, run_env, shared_file

require_the_parity_extra()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras

from lit_mnist.apps import export, import_keras, predict
from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import call
from lit_mnist.data.reader import parse_digits
from lit_mnist.model.kinds.dense import DenseKind

pytestmark = pytest.mark.parity
L = keras.layers
dense_to_torch = DenseKind.to_torch  # before any test replaces it


@pytest.fixture(scope="module")
def mnist():
    """MNIST: 3,000 training rows to fit the Keras models briefly, 2,000 test rows they never saw."""
    train, test = parse_digits(shared_file("mnist_train.csv.gz")), parse_digits(shared_file("mnist_test.csv.gz"))
    return (train.pixels[:3000].astype(np.float32), train.labels[:3000]), (test.pixels[:2000], test.labels[:2000])


@pytest.fixture(scope="module")
def unseen(mnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("unseen") / "unseen.csv"
    path.write_text(csv_text(*mnist[1]))
    return path


def _trained(model, mnist, scale=1.0, epochs=1):
    keras.utils.set_random_seed(0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    (x, y), _ = mnist
    model.fit(x.reshape(len(x), *model.input_shape[1:]) * scale, y, epochs=epochs, batch_size=100, verbose=0)
    return model


def _import(tmp_path, model_path, *options, check=None) -> tuple[int, str]:
    out = tmp_path / "imported.ckpt"
    args = [str(model_path), "--out", str(out), *options, *(["--check", str(check)] if check else [])]
    return call(import_keras.main, args), out


def _keras_labels(model, rows, scale=1.0):
    return model.predict(rows.astype(np.float32).reshape(len(rows), *model.input_shape[1:]) * scale, verbose=0).argmax(1)


def test_a_conv_model_of_the_usual_layers_imports_and_predicts_as_keras(mnist, unseen, tmp_path, capsys):
    """Rescaling, Reshape, Conv2D with "same" padding, BatchNormalization, pooling, Dropout, a tanh Dense: .keras."""
    model = _trained(keras.Sequential([
        keras.Input((784,)), L.Rescaling(1 / 255), L.Reshape((28, 28, 1)),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu"), L.BatchNormalization(),
        L.AveragePooling2D(2, padding="same"), L.MaxPooling2D(1), L.Dropout(0.25), L.Flatten(),
        L.Dense(32, activation="tanh"), L.Dense(10, activation="softmax")]), mnist)
    path = tmp_path / "conv.keras"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "verified against Keras on 2000 rows" in printed and "batch_normalization      max |diff|" in printed
    predicted = tmp_path / "predicted.csv"
    assert call(predict.main, ["--checkpoint", str(out), "--input", str(unseen), "--output", str(predicted)]) == 0
    labels = np.loadtxt(predicted, delimiter=",", skiprows=1, dtype=int)[:, 1]
    assert (labels == _keras_labels(model, mnist[1][0])).mean() >= 0.999
    loaded = load_model(out)
    assert loaded.hparams.source["keras_file"] == "conv.keras" and loaded.hparams.source["output"] == "softmax"
    assert len(loaded.hparams.source["sha256"]) == 64 and out.with_suffix(".yaml").is_file()


def test_the_original_notebooks_model_from_an_h5_reproduces_its_accuracy(mnist, unseen, tmp_path, capsys):
    model = _trained(keras.Sequential([keras.Input((784,)), L.Dense(128, activation="relu"),
                                       L.Dense(64, activation="relu"), L.Dense(128, activation="relu"),
                                       L.Dense(10, activation="softmax")]), mnist, epochs=2)
    path = tmp_path / "original.h5"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    assert code == 0, capsys.readouterr().out
    (_, (x, y)) = mnist
    keras_accuracy = float((_keras_labels(model, x) == y).mean())
    capsys.readouterr()
    assert call(predict.main, ["--checkpoint", str(out), "--input", str(unseen), "--output", str(tmp_path / "p.csv")]) == 0
    assert f"accuracy {keras_accuracy:.4f} against the labels" in capsys.readouterr().out


def test_a_keras_2_h5_with_normalization_a_leaky_relu_and_a_softmax_layer_imports(mnist, unseen, tmp_path, capsys):
    tf_keras = pytest.importorskip("tf_keras")
    (x, _), _ = mnist
    norm = tf_keras.layers.Normalization()
    norm.adapt(x[:500])
    model = tf_keras.Sequential([tf_keras.Input((784,)), norm, tf_keras.layers.Dense(32, activation="elu"),
                                 tf_keras.layers.LeakyReLU(alpha=0.2), tf_keras.layers.Dense(10),
                                 tf_keras.layers.Softmax()])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, mnist[0][1], epochs=1, batch_size=100, verbose=0)
    path = tmp_path / "keras2.h5"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    assert code == 0, capsys.readouterr().out
    source = load_model(out).hparams.source
    assert source["layout"] == "h5 (Keras 2)" and source["output"] == "softmax"  # the Softmax layer, folded
    leaky = [item["leaky_re_lu"] for item in load_model(out).hparams.layers if "leaky_re_lu" in item]
    assert len(leaky) == 1 and leaky[0]["negative_slope"] == pytest.approx(0.2)  # Keras 2 called it alpha


def test_keras_2s_hard_sigmoid_is_refused_for_it_is_another_function_than_keras_3s(tmp_path, capsys):
    tf_keras = pytest.importorskip("tf_keras")
    model = tf_keras.Sequential([tf_keras.Input((784,)), tf_keras.layers.Dense(8, activation="hard_sigmoid"),
                                 tf_keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "keras2.h5")
    assert "(Dense): Keras 2's hard_sigmoid (clip(0.2 x + 0.5, 0, 1))" in _refused(tmp_path, capsys, tmp_path / "keras2.h5")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_layer_normalization_prelu_elu_and_hard_activations_import_and_predict_as_keras(mnist, unseen, tmp_path, capsys,
                                                                                  suffix):
    """LayerNormalization of channels and of features (one without its beta), PReLU (per value, and shared over
    an image's height and width), an ELU layer, hard_sigmoid and hard_silu: Keras itself checks every layer."""
    model = _trained(keras.Sequential([
        keras.Input((28, 28, 1)), L.Rescaling(1 / 255), L.Conv2D(6, 3, strides=2, activation="hard_silu"),
        L.LayerNormalization(epsilon=1e-4), L.PReLU(alpha_initializer="random_uniform"), L.Conv2D(4, 3),
        L.PReLU(shared_axes=[1, 2]), L.Flatten(), L.Dense(32), L.ELU(), L.LayerNormalization(center=False),
        L.Dense(16, activation="hard_sigmoid"), L.PReLU(), L.Dense(10), L.Softmax()]), mnist)
    model.save(tmp_path / f"ln{suffix}")
    code, out = _import(tmp_path, tmp_path / f"ln{suffix}", check=unseen)
    printed = capsys.readouterr().out
    assert code == 0 and "verified against Keras on 2000 rows" in printed, printed
    kinds = [next(iter(item)) for item in load_model(out).hparams.layers]
    assert kinds.count("layer_normalization") == 2 and kinds.count("p_re_lu") == 3 and "elu" not in kinds, kinds


@pytest.mark.parametrize("keras_2", [False, True], ids=["keras", "keras 2 h5"])
def test_depthwise_and_separable_convolutions_import_and_predict_as_keras(mnist, unseen, tmp_path, capsys, keras_2):
    layers = pytest.importorskip("tf_keras").layers if keras_2 else L
    make = pytest.importorskip("tf_keras").Sequential if keras_2 else keras.Sequential
    model = make([keras.Input((28, 28, 1)) if not keras_2 else pytest.importorskip("tf_keras").Input((28, 28, 1)),
                  layers.Rescaling(1 / 255), layers.Conv2D(4, 3, activation="relu"),
                  layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same", activation="relu"),
                  layers.SeparableConv2D(8, 3, depth_multiplier=2, activation="relu"), layers.Flatten(),
                  layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    (x, y), _ = mnist
    model.fit(x.reshape(-1, 28, 28, 1), y, epochs=1, batch_size=100, verbose=0)
    path = tmp_path / ("sep.h5" if keras_2 else "sep.keras")
    model.save(path)
    # Keras 3 reads no Keras 2 DepthwiseConv2D (its config has `groups`), so --check cannot: the model itself does
    code, out = _import(tmp_path, path, check=None if keras_2 else unseen)
    assert code == 0, capsys.readouterr()
    rows = mnist[1][0][:500].astype(np.float32)
    ours = import_keras.model_probabilities(load_model(out), rows)
    assert np.abs(ours - model.predict(rows.reshape(-1, 28, 28, 1), verbose=0)).max() < 1e-4
    kinds = [next(iter(item)) for item in load_model(out).hparams.layers]
    assert {"depthwise_conv2d", "separable_conv2d"} <= set(kinds), kinds


def test_global_pooling_and_the_relu_family_import_and_predict_as_keras(mnist, unseen, tmp_path, capsys):
    """GlobalAveragePooling2D and GlobalMaxPooling2D (keepdims), LeakyReLU, a ReLU with a negative slope, and the
    leaky_relu, relu6 and mish activations: Keras itself checks every layer."""
    model = _trained(keras.Sequential([
        keras.Input((28, 28, 1)), L.Rescaling(1 / 255), L.Conv2D(8, 3, activation="leaky_relu"), L.Activation("relu6"),
        L.Conv2D(8, 3, strides=2), L.LeakyReLU(negative_slope=0.1), L.ReLU(negative_slope=0.05),
        L.GlobalMaxPooling2D(keepdims=True), L.Reshape((2, 4, 1)), L.GlobalAveragePooling2D(), L.Dense(16, activation="mish"),
        L.Dense(10, activation="softmax")]), mnist)
    path = tmp_path / "relus.keras"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "verified against Keras on 2000 rows" in printed
    items = [next(iter(item)) for item in load_model(out).hparams.layers]
    assert items[3:8] == ["activation", "conv2d", "leaky_re_lu", "leaky_re_lu", "global_max_pooling2d"], items
    assert load_model(out).hparams.layers[3]["activation"]["activation"] == "relu6"


def test_zero_padding_cropping_and_spatial_dropout_import_and_predict_as_keras(mnist, unseen, tmp_path, capsys):
    model = _trained(keras.Sequential([
        keras.Input((28, 28, 1)), L.ZeroPadding2D(((1, 0), (2, 1))), L.Conv2D(6, 3, activation="relu"),
        L.SpatialDropout2D(0.3), L.Cropping2D(((2, 1), (0, 3))), L.MaxPooling2D(), L.Flatten(),
        L.Dense(10, activation="softmax")]), mnist)
    path = tmp_path / "margins.h5"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    printed = capsys.readouterr().out
    assert code == 0 and "verified against Keras on 2000 rows" in printed, printed
    items = load_model(out).hparams.layers
    assert items[1]["zero_padding2d"]["padding"] == [[1, 0], [2, 1]] and items[4]["cropping2d"]["cropping"] == [[2, 1], [0, 3]]
    assert items[3]["spatial_dropout2d"]["rate"] == pytest.approx(0.3)


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_training_only_layers_are_left_out_and_gaussian_noise_kept(mnist, unseen, tmp_path, capsys, suffix):
    """Augmentation in a Sequential of its own (as Keras's tutorials write it) and as layers, AlphaDropout and
    ActivityRegularization pass their input through at inference; GaussianNoise and GaussianDropout are items."""
    augmentation = keras.Sequential([L.RandomRotation(0.1), L.RandomZoom(0.1)], name="augmentation")
    model = _trained(keras.Sequential([
        keras.Input((28, 28, 1)), augmentation, L.RandomTranslation(0.1, 0.1), L.Rescaling(1 / 255),
        L.Conv2D(6, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(), L.GaussianNoise(0.1),
        L.Dense(32, activation="selu"), L.AlphaDropout(0.1), L.ActivityRegularization(l2=1e-4),
        L.GaussianDropout(0.2), L.Dense(10, activation="softmax")]), mnist)
    path = tmp_path / f"augmented.{suffix}"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    printed = capsys.readouterr().out
    assert code == 0 and "verified against Keras on 2000 rows" in printed, printed
    for left_out in ("'augmentation' (Sequential)", "(RandomTranslation)", "(AlphaDropout)", "(ActivityRegularization)"):
        assert f"{left_out}: left out (it acts in training only; identity at inference)" in printed
    kinds = [next(iter(item)) for item in load_model(out).hparams.layers]
    assert kinds == ["reshape", "rescaling", "conv2d", "max_pooling2d", "flatten", "gaussian_noise", "dense",
                     "gaussian_dropout", "dense"]


def test_a_layer_that_computes_at_inference_is_refused_even_inside_a_model(tmp_path, capsys):
    inner = keras.Sequential([L.RandomFlip(), L.RandomCrop(24, 24)], name="block")  # RandomCrop crops at inference too
    path = tmp_path / "nested.keras"
    keras.Sequential([keras.Input((28, 28, 1)), inner, L.Flatten(), L.Dense(10, activation="softmax")]).save(path)
    assert _import(tmp_path, path)[0] == 2
    assert capsys.readouterr().err == (f"error: {path}: layer 1 'block' (Sequential) > layer 2 'random_crop' "
                                       "(RandomCrop): is not a layer lit-mnist has\n")


def _binary(model, mnist):
    """``model`` trained briefly to tell digits 0-4 (label 1) from 5-9 (label 0), as Keras's binary classifiers are."""
    keras.utils.set_random_seed(0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    (x, y), _ = mnist
    model.fit(x / 255, (y < 5).astype(np.float32), epochs=2, batch_size=100, verbose=0)
    return model


@pytest.mark.parametrize("head, suffix", [([L.Dense(1, activation="sigmoid")], "keras"),
                                          ([L.Dense(1), L.Activation("sigmoid")], "h5")], ids=["dense", "activation"])
def test_a_binary_classifiers_sigmoid_unit_becomes_two_classes_of_the_same_probabilities(mnist, unseen, tmp_path,
                                                                                         capsys, head, suffix):
    model = _binary(keras.Sequential([keras.Input((784,)), L.Dense(16, activation="relu"), *head]), mnist)
    path = tmp_path / f"binary.{suffix}"
    model.save(path)
    code, out = _import(tmp_path, path, "--input-scale", str(1 / 255), check=unseen)
    printed = capsys.readouterr().out
    assert code == 0 and "2 classes, ending in sigmoid" in printed and "verified against Keras" in printed, printed
    imported = load_model(out)
    rows = mnist[1][0][:500]
    with torch.no_grad():
        probabilities = imported(torch.from_numpy(rows.astype(np.float32))).numpy()
    keras_p = model.predict(rows.astype(np.float32) / 255, verbose=0)[:, 0]
    np.testing.assert_allclose(probabilities[:, 1], keras_p, atol=1e-5)  # class 1 is the sigmoid's "yes"
    assert imported.hparams.source["output"] == "sigmoid"
    # it learned (chance: 0.5), so the probabilities compared mean something
    assert ((keras_p > 0.5) == (mnist[1][1][:500] < 5)).mean() > 0.7


def test_companion_a_sigmoid_unit_put_on_the_other_class_fails_the_check(mnist, unseen, tmp_path, capsys, monkeypatch):
    from lit_mnist.keras_import import convert

    model = _binary(keras.Sequential([keras.Input((784,)), L.Dense(16, activation="relu"),
                                      L.Dense(1, activation="sigmoid")]), mnist)
    path = tmp_path / "binary.keras"
    model.save(path)
    monkeypatch.setattr(convert, "_two_classes", lambda head: {name: np.concatenate([value, np.zeros_like(value)], axis=-1)
                                                               for name, value in head.items()})
    code, out = _import(tmp_path, path, "--input-scale", str(1 / 255), check=unseen)
    assert code == 1 and not out.exists() and "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("head, expected", [
    ([L.Dense(3, activation="sigmoid")], "the model's output has activation 'sigmoid'"),  # three labels at once
    ([L.Dense(10, activation="tanh")], "the model's output has activation 'tanh'"),
    ([L.Dense(1, activation="tanh"), L.Activation("sigmoid")], "activation 'tanh' before a sigmoid layer"),
], ids=["multi-label", "tanh", "tanh-then-sigmoid"])
def test_an_output_that_is_no_class_probabilities_is_refused(tmp_path, capsys, head, expected):
    path = tmp_path / "odd.keras"
    keras.Sequential([keras.Input((784,)), L.Dense(8), *head]).save(path)
    assert expected in _refused(tmp_path, capsys, path)


def test_a_functional_chain_ending_in_logits_says_so(mnist, unseen, tmp_path, capsys):
    inputs = keras.Input((28, 28, 1))
    hidden = L.Conv2D(4, 5, activation="relu")(inputs)
    outputs = L.Dense(10)(L.Flatten()(L.MaxPooling2D()(hidden)))
    model = _trained(keras.Model(inputs, outputs), mnist)
    path = tmp_path / "functional.keras"
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    assert code == 0, capsys.readouterr().out
    assert load_model(out).hparams.source["output"] == "logits"


def test_preprocessing_outside_the_model_is_given_to_the_importer(mnist, unseen, tmp_path, capsys):
    """A model trained on x / 255 without a layer that says so: --input-scale puts it in the checkpoint."""
    model = _trained(keras.Sequential([keras.Input((784,)), L.Dense(64, activation="relu"),
                                       L.Dense(10, activation="softmax")]), mnist, scale=1 / 255)
    path = tmp_path / "scaled.keras"
    model.save(path)
    code, out = _import(tmp_path, path, "--input-scale", str(1 / 255), check=unseen)
    assert code == 0, capsys.readouterr().out
    predicted = tmp_path / "p.csv"
    assert call(predict.main, ["--checkpoint", str(out), "--input", str(unseen), "--output", str(predicted)]) == 0
    labels = np.loadtxt(predicted, delimiter=",", skiprows=1, dtype=int)[:, 1]
    assert (labels == _keras_labels(model, mnist[1][0], 1 / 255)).mean() >= 0.999  # fed grey levels 0-255


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """8x8 images through a two-filter conv (whose flatten order matters), a 64x64 dense kernel (which loads
    without complaint untransposed) and a BatchNormalization whose moving variance is near 0, where its epsilon
    decides (1e-3, Keras's, against torch's 1e-5), its gamma small enough that nothing saturates."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (400, 64)).astype(np.float32), rng.integers(0, 10, 400)
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Rescaling(1 / 255), L.Conv2D(2, 3, padding="same"),
                              L.Flatten(), L.Dense(64, activation="relu"), L.BatchNormalization(),
                              L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x.reshape(-1, 8, 8, 1), y, epochs=1, verbose=0)
    bn = next(layer for layer in model.layers if isinstance(layer, L.BatchNormalization))
    bn.moving_variance.assign(np.full(64, 1e-6, np.float32))
    bn.gamma.assign(np.full(64, 0.01, np.float32))
    folder = tmp_path_factory.mktemp("square")
    model.save(folder / "square.keras")
    (folder / "rows.csv").write_text(csv_text(x.astype(np.uint8)[:200], None))
    return folder


def test_the_square_model_imports_as_built(square, tmp_path, capsys, monkeypatch, isolated_data_dir):
    """And writes nothing but the checkpoint and its config: no parse cache, nothing in the working folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out = _import(tmp_path, square / "square.keras", check=square / "rows.csv")
    assert code == 0, capsys.readouterr().out
    assert not isolated_data_dir.exists() and list(work.iterdir()) == []
    assert {p.name for p in out.parent.iterdir()} >= {out.name, out.with_suffix(".yaml").name}


def _untransposed(self, variable, array):
    """Square dense kernels left as Keras lays them out: they load without complaint."""
    if array.ndim == 2 and array.shape[0] == array.shape[1]:
        return torch.from_numpy(np.ascontiguousarray(array))
    return dense_to_torch(self, variable, array)


@pytest.mark.parametrize("broken", ["no kernel transpose", "channels-first flatten", "torch's epsilon"])
def test_companion_a_wrong_mapping_fails_the_check_and_writes_nothing(square, tmp_path, capsys, monkeypatch, broken):
    if broken == "no kernel transpose":
        monkeypatch.setattr(DenseKind, "to_torch", _untransposed)  # the dense kind's layout, which the importer reads
        assert DenseKind.to_torch is not dense_to_torch
    else:
        real = import_keras.build

        def build(imported, source, path):
            model = real(imported, source, path)
            kind = "flatten" if broken == "channels-first flatten" else "batch_normalization"
            module = next(m for layer, m in zip(model.net.layers, model.net) if layer.kind == kind)
            if kind == "flatten":
                module.forward = lambda x: x.flatten(1)  # (c, h, w) order
            else:
                module.epsilon = 1e-5
            return model

        monkeypatch.setattr(import_keras, "build", build)
    code, out = _import(tmp_path, square / "square.keras", check=square / "rows.csv")
    assert code == 1 and "import FAILED its check" in capsys.readouterr().out
    assert not out.exists() and not out.with_suffix(".yaml").exists()


def test_a_lambda_layer_is_refused_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    where = str(marker)
    model = keras.Sequential([keras.Input((784,)), L.Lambda(lambda x: x * 0 + float(open(where, "w").write("x"))),  # noqa: SIM115
                              L.Dense(10, activation="softmax")])
    marker.unlink()  # building the model called the lambda once, here, in the test
    path = tmp_path / "lambda.keras"
    model.save(path)
    assert not marker.exists()
    result = subprocess.run([sys.executable, "scripts/import_keras.py", str(path), "--out", str(tmp_path / "m.ckpt")],
                            cwd=REPO, capture_output=True, text=True, check=False, env=run_env())
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(rf"error: {path}: layer 1 '\w+' \(Lambda\): carries Python code, which is never run\n",
                        result.stderr)
    assert not marker.exists() and not (tmp_path / "m.ckpt").exists()


def _refused(tmp_path, capsys, path, *options) -> str:
    code, out = _import(tmp_path, path, *options)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {path}: ") and err.count("\n") == 1, err
    assert not out.exists() and not out.with_suffix(".yaml").exists()
    return err


def test_files_that_are_no_keras_model_are_one_line_each(tmp_path, capsys, square):
    csv = tmp_path / "data.keras"
    csv.write_text("label,pixel0\n1,2\n")
    assert "not a Keras model file" in _refused(tmp_path, capsys, csv)
    cut = tmp_path / "cut.keras"
    cut.write_bytes((square / "square.keras").read_bytes()[:2000])
    assert "damaged zip file" in _refused(tmp_path, capsys, cut)
    h5 = tmp_path / "cut.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert "damaged HDF5 data" in _refused(tmp_path, capsys, h5)
    saved_model = tmp_path / "exported"  # what model.export() writes: a folder
    saved_model.mkdir()
    (saved_model / "saved_model.pb").write_bytes(b"\x08\x01")
    assert "a TensorFlow SavedModel, not a Keras model file: save the model as .keras" in _refused(
        tmp_path, capsys, saved_model)


def test_weights_that_do_not_fit_the_config_name_the_layer(tmp_path, capsys, square):
    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(square / "square.keras") as source, zipfile.ZipFile(edited, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][4]["config"]["units"] = 32  # the first Dense: 64 in the weights
                data = json.dumps(config).encode()
            target.writestr(info, data)
    err = _refused(tmp_path, capsys, edited)
    assert re.search(r"layer 4 '\w+' \(Dense\): its weights do not fit the layer \(\w+/kernel is \(64, 128\)", err)


@pytest.mark.parametrize("layer, expected", [
    (L.Conv2D(4, 3, dilation_rate=2), "dilation_rate is not supported"),
    (L.ReLU(max_value=4.0), "(ReLU): max_value 4.0 is not supported"),
    (L.ReLU(threshold=0.5), "(ReLU): threshold is not supported"),
    (L.ELU(alpha=0.5), "(ELU): alpha is not supported"),
    (L.Softmax(axis=1), "(Softmax): axis 1 is not supported"),
    (L.Conv2D(4, 3, groups=1, data_format="channels_first"), "data_format is not supported"),
])
def test_what_the_net_cannot_compute_is_refused_naming_the_layer(tmp_path, capsys, layer, expected):
    first = [L.Reshape((1, 28, 28))] if "channels_first" in str(layer.get_config()) else [L.Reshape((28, 28, 1))]
    model = keras.Sequential([keras.Input((784,)), *first, layer, L.Flatten(), L.Dense(10, activation="softmax")])
    path = tmp_path / "odd.keras"
    model.save(path)
    assert expected in _refused(tmp_path, capsys, path)


def _graph_model(k):
    """A residual block, a concatenated side branch and a Sequential head inside the model, in Keras ``k``'s API."""
    layers = k.layers
    inputs = k.Input((28, 28, 1))
    stem = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    block = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(stem))
    block = layers.Activation("relu")(layers.Add()([stem, block]))
    side = layers.Conv2D(4, 1, name="side")(stem)
    joined = layers.MaxPooling2D()(layers.Concatenate()([block, side]))
    head = k.Sequential([layers.Flatten(), layers.Dense(32, activation="relu"), layers.Dense(10, activation="softmax")],
                        name="head")
    return k.Model(inputs, head(joined))


@pytest.mark.parametrize("form", ["keras", "h5", "keras 2 h5"])
def test_a_functional_model_with_branches_and_a_model_inside_imports_and_predicts_as_keras(mnist, unseen, tmp_path,
                                                                                          capsys, form):
    k = pytest.importorskip("tf_keras") if form == "keras 2 h5" else keras
    model = _trained(_graph_model(k), mnist)
    path = tmp_path / ("graph.keras" if form == "keras" else "graph.h5")
    model.save(path)
    code, out = _import(tmp_path, path, check=unseen)
    printed = capsys.readouterr().out
    assert code == 0 and "verified against Keras on 2000 rows" in printed, printed
    predicted = tmp_path / "predicted.csv"
    assert call(predict.main, ["--checkpoint", str(out), "--input", str(unseen), "--output", str(predicted)]) == 0
    labels = np.loadtxt(predicted, delimiter=",", skiprows=1, dtype=int)[:, 1]
    assert (labels == _keras_labels(model, mnist[1][0])).mean() >= 0.999
    items = yaml.safe_load(out.with_suffix(".yaml").read_text())["model"]["layers"]
    joins = [(kind, args["inputs"]) for item in items for kind, args in item.items() if "inputs" in args]
    assert [kind for kind, _ in joins] == ["add", "conv2d", "concatenate"]  # the graph, in the file's names
    assert joins[0][1][0] == "stem" and joins[1][1] == "stem" and joins[2][1][1] == "side"
    if form == "keras":
        onnx = tmp_path / "graph.onnx"
        assert call(export.main, ["--checkpoint", str(out), "--out", str(onnx), "--check", str(unseen)]) == 0


def test_a_model_of_two_inputs_is_refused_and_nothing_written(tmp_path, capsys):
    a, b = keras.Input((784,), name="a"), keras.Input((784,), name="b")
    outputs = L.Dense(10, activation="softmax")(L.Add()([L.Dense(8)(a), L.Dense(8)(b)]))
    path = tmp_path / "two.keras"
    keras.Model([a, b], outputs).save(path)
    assert _refused(tmp_path, capsys, path) == (f"error: {path}: the model takes 2 inputs (a, b): lit-mnist imports "
                                                "models of one input and one output\n")


def test_a_shared_layer_and_an_operation_saved_as_a_layer_are_refused_naming_them(tmp_path, capsys):
    inputs = keras.Input((784,))
    shared = L.Dense(784, name="shared")
    path = tmp_path / "shared.keras"
    keras.Model(inputs, L.Dense(10, activation="softmax")(shared(shared(inputs)))).save(path)
    assert "layer 1 'shared' (Dense): called 2 times (a shared layer)" in _refused(tmp_path, capsys, path)
    arithmetic = tmp_path / "arithmetic.keras"
    keras.Model(inputs, L.Dense(10, activation="softmax")(L.Dense(8)(inputs) + 3.0)).save(arithmetic)
    assert "an operation on tensors saved as a layer (module 'keras.src.ops" in _refused(tmp_path, capsys, arithmetic)


def test_without_tensorflow_the_import_says_it_is_not_verified_and_check_is_one_line(tmp_path, capsys, square,
                                                                                     monkeypatch):
    real = import_keras.importlib.util.find_spec
    monkeypatch.setattr(import_keras.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    code, out = _import(tmp_path, square / "square.keras")
    assert code == 0 and out.exists() and "not verified against Keras" in capsys.readouterr().out
    code, _ = _import(tmp_path, square / "square.keras", check=square / "rows.csv")
    assert code == 2 and capsys.readouterr().err.startswith("error: --check runs the model in Keras, which needs")


def test_fit_starts_from_an_imported_model_on_new_classes(tmp_path, capsys, square, write_csv, monkeypatch):
    from lit_mnist.apps import fit

    code, out = _import(tmp_path, square / "square.keras")
    assert code == 0
    monkeypatch.setattr(sys, "argv", ["fit.py"])
    csv = write_csv(n=200, pixels=64, classes=12)
    with pytest.warns(UserWarning, match="its head has 10 classes, this data 12: the head .* starts afresh"):
        assert call(fit.main, ["--config", str(out.with_suffix(".yaml")), "--model.init_from", str(out),
                               "--data.path", str(csv), "--trainer.max_epochs", "1", "--trainer.enable_progress_bar",
                               "false", "--trainer.default_root_dir", str(tmp_path / "runs")]) == 0
    metrics = json.loads(next((tmp_path / "runs").glob("lightning_logs/*/metrics.json")).read_text())
    start = metrics["hparams"]["source"]["init_from"]
    assert start["checkpoint"] == str(out) and start["head_reinitialised"] and metrics["num_classes"] == 12
    assert start["hyper_parameters"]["source"]["keras_file"] == "square.keras"


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_optimizer_the_model_was_compiled_with_goes_into_the_config(tmp_path, capsys, suffix):
    from lit_mnist.model.module import LitMNIST

    model = keras.Sequential([keras.Input((64,)), L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    model.save(tmp_path / f"sgd{suffix}")
    code, out = _import(tmp_path, tmp_path / f"sgd{suffix}")
    printed = "compiled with: sgd (learning_rate 0.05, momentum 0.9, nesterov True, label_smoothing 0.1); into the config"
    assert code == 0 and printed in capsys.readouterr().out
    options = yaml.safe_load(out.with_suffix(".yaml").read_text())["model"]
    assert {k: v for k, v in options.items() if k != "layers"} == {
        "optimizer": {"sgd": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}}, "label_smoothing": 0.1}
    built = LitMNIST(**options, num_classes=3, image_shape=(8, 8))  # fit.py's own options
    assert built.hparams.optimizer["sgd"]["momentum"] == 0.9


IDIOMS = [{"input": [12, 10, 1]}, "batch_normalization", {"conv2d": [4, 3], "padding": "same"}, "ReLU",
          "max_pooling2d", "flatten", {"dense": 16}, "ELU", {"dense": 5}, "Softmax"]


def _idioms_model(tmp_path):
    """The model IDIOMS copies, saved by Keras and imported: its layers as the importer reads them."""
    from lit_mnist.keras_import.convert import convert
    from lit_mnist.keras_import.read import read_keras_file

    model = keras.Sequential([keras.Input((12, 10, 1)), L.BatchNormalization(), L.Conv2D(4, 3, padding="same"),
                              L.ReLU(), L.MaxPooling2D(), L.Flatten(), L.Dense(16), L.ELU(), L.Dense(5), L.Softmax()])
    model.save(tmp_path / "idioms.keras")
    return model, convert(read_keras_file(tmp_path / "idioms.keras")).items


def _sizes(items):
    """Each layer's kind, arguments (a pooling's strides as Keras saves them: its pool size) and sizes."""
    from lit_mnist.model.layers import resolve

    return [(layer.kind, {**layer.args, **({"strides": layer.args["pool_size"]} if layer.args.get("strides") is None
                                           and "pool_size" in layer.args else {})},
             layer.input_shape, layer.output_shape, layer.head) for layer in resolve(items, 5, (12, 10))]


def test_a_layer_list_in_keras_idioms_is_the_model_keras_builds_of_them(tmp_path):
    """Input((H, W, 1)), positional arguments, ReLU/ELU/Softmax layers and Dense(K) then Softmax, written in the
    list as in Keras: the same layers, arguments and sizes as the model Keras saves imports to."""
    model, imported = _idioms_model(tmp_path)
    assert _sizes(IDIOMS) == _sizes(imported)
    assert [tuple(layer.output.shape[1:]) for layer in model.layers[:5]] == [
        sizes[3] for sizes in _sizes(IDIOMS)[1:6]]  # Keras's own sizes, the input's reshape aside


def test_companion_the_list_without_its_input_declaration_is_another_model(tmp_path):
    """Without Input((H, W, 1)) the BatchNormalization sees 120 features, not one channel: the check catches it."""
    _, imported = _idioms_model(tmp_path)
    assert _sizes(IDIOMS[1:]) != _sizes(imported)


def _storage_of_every_object(h5_file) -> set[tuple[str, ...]]:
    """How each dataset of an HDF5 file (path or file object) keeps its bytes, and each link's kind."""
    import h5py
    from h5py import h5d

    found = set()

    def visit(name, link):
        found.add(("link", type(link).__name__))
        if isinstance(link, h5py.HardLink):
            obj = h5[name]
            if isinstance(obj, h5py.Dataset):
                plist = obj.id.get_create_plist()
                layout = {h5d.CONTIGUOUS: "contiguous", h5d.COMPACT: "compact", h5d.CHUNKED: "chunked"}.get(
                    plist.get_layout(), "other")
                found.add(("dataset", layout, f"filters {plist.get_nfilters()}", f"external {plist.get_external_count()}",
                           f"virtual {obj.is_virtual}"))

    with h5py.File(h5_file, "r") as h5:
        h5.visititems_links(visit)
    return found


def test_keras_writes_no_hdf5_object_that_the_importer_refuses(tmp_path):
    """The reader refuses external storage, virtual datasets, chunks, filters and soft or external links because
    Keras 3 (.keras and .h5) and tf-keras never write them: checked on their saves of a conv net."""
    import io

    tf_keras = pytest.importorskip("tf_keras")
    keras3 = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3), L.BatchNormalization(), L.Flatten(),
                               L.Dense(3, activation="softmax")])
    keras3.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    keras2 = tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tf_keras.layers.Conv2D(4, 3),
                                  tf_keras.layers.BatchNormalization(), tf_keras.layers.Flatten(),
                                  tf_keras.layers.Dense(3, activation="softmax")])
    keras2.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    keras3.save(tmp_path / "m.keras")
    keras3.save(tmp_path / "m3.h5")
    keras2.save(tmp_path / "m2.h5")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    for source in (weights, tmp_path / "m3.h5", tmp_path / "m2.h5"):
        found = _storage_of_every_object(source)
        datasets = {entry for entry in found if entry[0] == "dataset"}
        assert len(datasets) >= 1 and {entry[1] for entry in datasets} <= {"contiguous", "compact"}, found
        assert all(entry[2:] == ("filters 0", "external 0", "virtual False") for entry in datasets), found
        assert {entry for entry in found if entry[0] == "link"} == {("link", "HardLink")}, found


def test_check_hands_keras_only_what_the_importer_accepted(square, tmp_path, capsys):
    """An initializer of a class Keras does not know (the importer ignores initializers) is not given to Keras:
    --check runs Keras on the config without it. The companion: Keras refuses the file as it is."""
    original = square / "square.keras"
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(tampered, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
                dense["config"]["kernel_initializer"] = {"module": "builtins", "class_name": "eval",
                                                         "config": {}, "registered_name": "eval"}
                data = json.dumps(config).encode()
            out.writestr(info.filename, data)
    code, _ = _import(tmp_path, tampered, check=square / "rows.csv")
    assert code == 0, capsys.readouterr().out
    with pytest.raises(Exception):  # noqa: B017 (Keras's own refusal, whatever its type)
        keras.saving.load_model(tampered, compile=False, safe_mode=True)


def _hdf5_objects(h5_file) -> dict[str, tuple]:
    """Each group and dataset of an HDF5 file by path: a dataset's dtype and shape, the attributes' names."""
    import h5py

    found = {}
    with h5py.File(h5_file, "r") as h5:
        h5.visititems(lambda name, obj: found.__setitem__(
            name, ((str(obj.dtype), obj.shape) if isinstance(obj, h5py.Dataset) else (), set(obj.attrs))))
    return found


def _within(ours: dict, theirs: dict) -> bool:
    """Every object of ours in theirs, of the same dtype and shape, its attributes among theirs."""
    return all(path in theirs and theirs[path][0] == kind and attrs <= theirs[path][1]
               for path, (kind, attrs) in ours.items())


def test_the_hostile_suite_mutates_files_in_keras_s_own_layouts(tmp_path):
    """tests/keras_import/test_read.py builds its honest files by hand (it runs without TensorFlow) and mutates
    them: Keras 3 (.keras) and tf-keras (.h5) save the same model with the same groups, datasets and attributes
    (Keras adds metadata the importer does not read), and both import to the same checkpoint weights."""
    import io

    from tests.keras_import import test_read as hand

    tf_keras = pytest.importorskip("tf_keras")
    saves = {}
    for k, suffix in ((keras, "keras"), (tf_keras, "h5")):
        model = k.Sequential([k.Input((4,), name="input_layer"), k.layers.Dense(3, activation="softmax", name="dense")])
        model.set_weights([hand.KERNEL, hand.BIAS])
        saves[suffix] = tmp_path / f"keras.{suffix}"
        model.save(saves[suffix])
    built = {"keras": hand._keras(tmp_path / "hand.keras"), "h5": hand._h5(tmp_path / "hand.h5")}
    with zipfile.ZipFile(saves["keras"]) as theirs, zipfile.ZipFile(built["keras"]) as ours:
        assert set(ours.namelist()) <= set(theirs.namelist())
        assert _within(*(_hdf5_objects(io.BytesIO(z.read("model.weights.h5"))) for z in (ours, theirs)))
        layers = [(layer["class_name"], layer["config"]["name"]) for layer in
                  json.loads(theirs.read("config.json"))["config"]["layers"]]
        assert layers == [(layer["class_name"], layer["config"]["name"]) for layer in hand._config()["config"]["layers"]]
    weights_h5 = {path: entry for path, entry in _hdf5_objects(built["h5"]).items() if path.startswith("model_weights")}
    assert _within(weights_h5, _hdf5_objects(saves["h5"])) and len(weights_h5) == 5  # 3 groups, 2 datasets
    for layout in ("keras", "h5"):
        ours, theirs = tmp_path / f"ours-{layout}.ckpt", tmp_path / f"theirs-{layout}.ckpt"
        assert call(import_keras.main, [str(built[layout]), "--out", str(ours)]) == 0
        assert call(import_keras.main, [str(saves[layout]), "--out", str(theirs)]) == 0
        ours, theirs = (load_model(p).net.state_dict() for p in (ours, theirs))
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs) and ours.keys() == theirs.keys()


@pytest.mark.parametrize("form", ["keras", "h5", "keras 2 h5"])
def test_a_colour_model_imports_and_predicts_as_keras(tmp_path, capsys, monkeypatch, form):
    """Conv2D over 3 channels after a Normalization adapted per channel and a Rescaling, BatchNormalization: trained
    on colour images whose classes differ in hue alone, then checked on 2,000 unseen ones."""
    from tests.conftest import hue_images

    k = pytest.importorskip("tf_keras") if form == "keras 2 h5" else keras
    (x, y), (unseen, truth) = ((a.reshape(len(a), 16, 16, 3).astype(np.float32), b) for a, b in (
        hue_images(3000, classes=8, side=16, seed=0), hue_images(2000, classes=8, side=16, seed=1)))
    norm = k.layers.Normalization(axis=-1)
    norm.adapt(x[:500])
    model = k.Sequential([k.Input((16, 16, 3)), norm, k.layers.Rescaling(2.0), k.layers.Conv2D(6, 3, activation="relu"),
                          k.layers.BatchNormalization(), k.layers.MaxPooling2D(), k.layers.Flatten(),
                          k.layers.Dense(8, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=100, verbose=0)
    path = tmp_path / ("colour.keras" if form == "keras" else "colour.h5")
    model.save(path)
    rows = tmp_path / "unseen.csv"
    rows.write_text(csv_text(unseen.reshape(len(unseen), -1).astype(int), truth))
    code, out = _import(tmp_path, path, check=rows)
    printed = capsys.readouterr().out
    assert code == 0 and "verified against Keras on 2000 rows" in printed and "16x16x3 images" in printed, printed
    assert load_model(out).image_shape == (16, 16, 3)
    predicted = tmp_path / "predicted.csv"
    assert call(predict.main, ["--checkpoint", str(out), "--input", str(rows), "--output", str(predicted)]) == 0
    labels = np.loadtxt(predicted, delimiter=",", skiprows=1, dtype=int)[:, 1]
    keras_labels = model.predict(unseen, verbose=0).argmax(1)
    assert (labels == keras_labels).mean() >= 0.999 and (keras_labels == truth).mean() > 0.5  # it learnt the hues
    if form == "keras":  # checked on a folder of the images as well: decoded, and nothing kept of them
        from PIL import Image

        for k, (image, label) in enumerate(zip(unseen[:200].astype(np.uint8), truth[:200])):
            (tmp_path / "folder" / f"hue_{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp_path / "folder" / f"hue_{label}" / f"{k}.png")
        cache = tmp_path / "cache"
        monkeypatch.setenv("LIT_MNIST_CACHE_DIR", str(cache))
        code, _ = _import(tmp_path, path, check=tmp_path / "folder")
        assert code == 0 and "verified against Keras on 200 rows" in capsys.readouterr().out
        assert not cache.exists()  # an import writes its checkpoint and config alone
