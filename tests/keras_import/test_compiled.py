"""compile()'s optimizer and loss in a Keras file as fit.py's options: what carries over, and a note for what does
not."""

import pytest

from lit_mnist.keras_import.compiled import compile_options
from lit_mnist.model.module import LitMNIST


def _adam(**config):
    return {"class_name": "Adam", "config": {"name": "adam", "learning_rate": 0.0010000000474974513, "beta_1": 0.9,
                                              "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False, "weight_decay": None,
                                              "clipnorm": None, "use_ema": False, **config}}


def test_a_model_never_compiled_carries_nothing():
    assert compile_options(None) == ({}, [])


def test_adam_sgd_and_rmsprop_carry_their_settings_as_keras_wrote_them_in_float32():
    assert compile_options(_adam(learning_rate=0.0020000000949949026, beta_2=0.99)) == (
        {"optimizer": {"adam": {"learning_rate": 0.002, "beta_2": 0.99}}}, [])
    sgd = {"class_name": "SGD", "config": {"learning_rate": 0.05000000074505806, "momentum": 0.9, "nesterov": True}}
    assert compile_options(sgd) == ({"optimizer": {"sgd": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}}}, [])
    rms = {"class_name": "RMSprop", "config": {"learning_rate": 0.001, "rho": 0.8, "momentum": 0.0, "epsilon": 1e-07,
                                               "centered": True}}
    assert compile_options(rms) == ({"optimizer": {"rmsprop": {"rho": 0.8, "centered": True}}}, [])


def test_keras_2s_spellings_are_read():
    old = {"class_name": "Custom>Adam", "config": {"lr": 0.01, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999}}
    assert compile_options(old) == ({"optimizer": {"adam": {"learning_rate": 0.01}}}, [])


def test_adamw_with_its_schedule_weight_decay_and_clipping_carries_whole():
    schedule = {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay", "registered_name": None,
                "config": {"initial_learning_rate": 0.0020000000949949026, "decay_steps": 100,
                           "decay_rate": 0.8999999761581421, "staircase": False, "name": "ExponentialDecay"}}
    adamw = {"class_name": "AdamW", "config": {"name": "adamw", "learning_rate": schedule, "weight_decay": 0.004,
                                                "clipnorm": 1.0, "use_ema": False, "is_legacy_optimizer": False}}
    options, notes = compile_options(adamw)
    assert notes == [] and options == {"optimizer": {"adamw": {"learning_rate": {"exponential_decay": {
        "initial_learning_rate": 0.002, "decay_steps": 100, "decay_rate": 0.9, "staircase": False}}, "clipnorm": 1.0}}}
    LitMNIST(**options)  # fit.py takes it as it is


@pytest.mark.parametrize("optimizer, note", [
    (_adam(learning_rate={"class_name": "Bogus", "config": {}}), "learning_rate="),
    (_adam(use_ema=True), "use_ema=True: not carried"),
    (_adam(clipnorm=1.0, clipvalue=0.5), "clipvalue=0.5: not carried"),
    ({"class_name": "SGD", "config": {"decay": 1e-4}}, "decay=0.0001: not carried"),
    ({"class_name": "Ftrl", "config": {}}, "its optimizer, Ftrl, is not one lit-mnist has"),
])
def test_what_lit_mnist_has_not_is_a_note_not_a_silent_drop(optimizer, note):
    _, notes = compile_options(optimizer)
    assert any(note in line for line in notes), notes


@pytest.mark.parametrize("optimizer", [[1, 2], {"class_name": 3, "config": {}}, {"class_name": "Adam"},
                                       {"class_name": "Adam", "config": {"learning_rate": "fast"}},
                                       {"class_name": "SGD", "config": {"nesterov": "yes", "momentum": float("nan")}}])
def test_an_optimizer_not_as_keras_writes_one_is_a_note_never_an_error(optimizer):
    options, notes = compile_options(optimizer)
    assert notes and all(isinstance(v, (str, float, bool, list, dict)) for v in options.values())
    LitMNIST(**options)  # what carried is a valid item


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
