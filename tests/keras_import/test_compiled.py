"""compile()'s optimizer and loss in a Keras file as fit.py's options: what carries over, and a note for what does
not."""

import pytest

from lit_mnist.keras_import.compiled import compile_options


def _adam(**config):
    return {"class_name": "Adam", "config": {"name": "adam", "learning_rate": 0.0010000000474974513, "beta_1": 0.9,
                                              "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False, "weight_decay": None,
                                              "clipnorm": None, "use_ema": False, **config}}


def test_a_model_never_compiled_carries_nothing():
    assert compile_options(None) == ({}, [])


def test_adam_sgd_and_rmsprop_carry_their_settings_as_keras_wrote_them_in_float32():
    assert compile_options(_adam(learning_rate=0.0020000000949949026, beta_2=0.99)) == (
        {"optimizer": "keras_adam", "lr": 0.002, "betas": [0.9, 0.99], "epsilon": 1e-07}, [])
    sgd = {"class_name": "SGD", "config": {"learning_rate": 0.05000000074505806, "momentum": 0.9, "nesterov": True}}
    assert compile_options(sgd) == ({"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}, [])
    rms = {"class_name": "RMSprop", "config": {"learning_rate": 0.001, "rho": 0.8, "momentum": 0.0, "epsilon": 1e-07,
                                               "centered": False}}
    assert compile_options(rms) == ({"optimizer": "rmsprop", "lr": 0.001, "rho": 0.8, "momentum": 0.0,
                                     "epsilon": 1e-07}, [])


def test_keras_2s_spellings_are_read():
    old = {"class_name": "Custom>Adam", "config": {"lr": 0.01, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999}}
    assert compile_options(old) == ({"optimizer": "keras_adam", "lr": 0.01, "betas": [0.9, 0.999]}, [])


@pytest.mark.parametrize("optimizer, note", [
    (_adam(learning_rate={"class_name": "ExponentialDecay", "config": {}}), "learning-rate schedule (ExponentialDecay)"),
    (_adam(amsgrad=True), "amsgrad=True: not carried"),
    (_adam(clipnorm=1.0), "clipnorm=1.0: not carried"),
    (_adam(weight_decay=0.004), "weight_decay=0.004: not carried"),
    ({"class_name": "SGD", "config": {"decay": 1e-4}}, "decay=0.0001: not carried"),
    ({"class_name": "RMSprop", "config": {"centered": True}}, "centered=True: not carried"),
    ({"class_name": "AdamW", "config": {}}, "its optimizer, AdamW, is not one lit-mnist has"),
])
def test_what_lit_mnist_has_not_is_a_note_not_a_silent_drop(optimizer, note):
    _, notes = compile_options(optimizer)
    assert any(note in line for line in notes), notes


@pytest.mark.parametrize("optimizer", [[1, 2], {"class_name": 3, "config": {}}, {"class_name": "Adam"},
                                       {"class_name": "Adam", "config": {"learning_rate": "fast"}},
                                       {"class_name": "SGD", "config": {"nesterov": "yes", "momentum": float("nan")}}])
def test_an_optimizer_not_as_keras_writes_one_is_a_note_never_an_error(optimizer):
    options, notes = compile_options(optimizer)
    assert notes and all(isinstance(v, (str, float, bool, list)) for v in options.values())


@pytest.mark.parametrize("loss, expected", [
    ("sparse_categorical_crossentropy", ({}, [])),
    ({"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.10000000149011612}},
     ({"label_smoothing": 0.1}, [])),
    ("binary_crossentropy", ({}, [])),  # a sigmoid unit's: the two-class head's cross-entropy
    ("mse", ({}, ["its loss, 'mse', is not a cross-entropy: fit.py trains with Keras's cross-entropy"])),
    ({"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 2}}, ({}, ["label_smoothing 2: not carried"])),
    ([1], ({}, ["its loss, [1], is not a cross-entropy: fit.py trains with Keras's cross-entropy"])),
])
def test_a_cross_entropys_label_smoothing_carries_and_another_loss_is_a_note(loss, expected):
    assert compile_options(None, loss) == expected
