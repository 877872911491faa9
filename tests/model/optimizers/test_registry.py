"""The optimizer item's grammar (the layer list's), its one-line refusals, the item written out whole, and the
former flat options read as what they meant."""

import pytest

from lit_mnist.model import optimizers
from lit_mnist.model.module import LitMNIST
from lit_mnist.model.optimizers import legacy


def test_a_name_a_class_name_and_a_mapping_are_one_item_with_keras_s_defaults():
    assert optimizers.as_item("adamw") == optimizers.as_item("AdamW") == optimizers.as_item({"adamw": {}})
    (args,) = optimizers.as_item("adamw").values()
    assert args["weight_decay"] == 0.004 and args["learning_rate"] == 0.001 and args["epsilon"] == 1e-7
    assert optimizers.as_item("SGD")["sgd"]["learning_rate"] == 0.01
    assert optimizers.as_item("RMSprop")["rmsprop"]["centered"] is False
    assert optimizers.as_item("torch_adam") == {"torch_adam": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8,
                                                               "weight_decay": 0.0, "amsgrad": False}}


def test_the_module_keeps_the_item_whole_and_lr_is_its_rate():
    module = LitMNIST(optimizer={"nadam": {"clipvalue": 0.5}}, lr=0.02)
    assert module.hparams.optimizer == optimizers.as_item({"nadam": {"clipvalue": 0.5, "learning_rate": 0.02}})
    assert module.hparams.lr is None  # in the item: one place
    assert LitMNIST(**module.hparams).hparams.optimizer == module.hparams.optimizer  # reloads as it was
    assert LitMNIST(optimizer="torch_adam", lr=0.02).hparams.optimizer["torch_adam"]["lr"] == 0.02


@pytest.mark.parametrize("item, expected", [
    ("adamm", ("optimizer: unknown 'adamm' (did you mean 'adam'? known: adam, adamw, sgd, rmsprop, nadam, adamax, "
              "adagrad, adadelta, lion, torch_adam)")),
    ({"sgd": {"lr": 0.1}}, "optimizer sgd: unknown argument 'lr' (known: learning_rate, momentum, nesterov"),
    ({"adam": {"clipnorm": 1.0, "global_clipnorm": 1.0}},
     ("optimizer adam: only one of clipnorm, clipvalue and global_clipnorm can be set (as Keras says); got clipnorm, "
     "global_clipnorm")),
    ({"adam": {"use_ema": True}}, "optimizer adam: use_ema is not offered"),
    ({"adam": {"gradient_accumulation_steps": 4}}, "optimizer adam: gradient_accumulation_steps is not offered"),
    ({"adam": {"loss_scale_factor": 128.0}}, "optimizer adam: loss_scale_factor is not offered"),
    ({"adam": {"weight_decay": -1}}, "optimizer adam: weight_decay must be a number in [0, inf], got -1"),
    ({"adam": {"amsgrad": "yes"}}, "optimizer adam: amsgrad must be true or false, got 'yes'"),
    ({"torch_adam": {"betas": [0.9]}}, "optimizer torch_adam: betas must be two values in [0, 1), got [0.9]"),
    ({"adam": 3}, "optimizer adam: arguments must be a mapping, got 3"),
    ({"adam": {}, "sgd": {}}, "optimizer: expected a name or {name: {argument: value}}"),
])
def test_a_bad_item_is_one_line_naming_it(item, expected):
    with pytest.raises(ValueError) as e:
        LitMNIST(optimizer=item)
    assert str(e.value).startswith(expected) and "\n" not in str(e.value)


def test_lr_with_a_schedule_is_refused():
    with pytest.raises(ValueError, match="--model.lr is a constant rate, and the optimizer has a schedule"):
        LitMNIST(optimizer={"adam": {"learning_rate": {"cosine_decay": {"initial_learning_rate": 0.1,
                                                                         "decay_steps": 5}}}}, lr=0.1)


@pytest.mark.parametrize("flat", ["epsilon", "betas", "momentum", "nesterov", "rho", "lr_decay", "one_cycle"])
def test_a_former_option_alone_names_its_new_spelling(flat):
    value = {"betas": (0.9, 0.99), "nesterov": True, "one_cycle": True}.get(flat, 0.5)
    with pytest.raises(ValueError, match=rf"^--model\.{flat} is now an argument of the optimizer: --model\.optimizer '"):
        LitMNIST(**{flat: value})


OLD = {"epsilon": 1e-7, "betas": [0.9, 0.999], "momentum": 0.0, "nesterov": False, "rho": 0.9, "lr_decay": 1.0,
       "one_cycle": False}


@pytest.mark.parametrize("optimizer, flat, expected", [
    ("keras_adam", {}, {"adam": {"learning_rate": 0.002}}),
    ("adam", {"epsilon": 1e-8, "betas": [0.7, 0.9], "one_cycle": True},
     {"torch_adam": {"lr": {"one_cycle": {"max_lr": 0.002}}, "betas": [0.7, 0.9], "eps": 1e-8}}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "lr_decay": 0.8},
     {"sgd": {"learning_rate": {"exponential_decay": {"initial_learning_rate": 0.002, "decay_steps": "epoch",
                                                      "decay_rate": 0.8, "staircase": True}},
              "momentum": 0.9, "nesterov": True}}),
    ("rmsprop", {"rho": 0.8, "momentum": 0.5}, {"rmsprop": {"learning_rate": 0.002, "rho": 0.8, "momentum": 0.5}}),
])
def test_an_earlier_lit_mnist_s_options_read_as_what_they_meant(caplog, optimizer, flat, expected):
    """``adam`` was torch's Adam then, ``keras_adam`` Keras's; a log line says how the options were read."""
    with caplog.at_level("INFO", logger="lit_mnist"):
        module = LitMNIST(optimizer=optimizer, lr=0.002, **{**OLD, **flat})
    assert module.hparams.optimizer == optimizers.as_item(expected)
    assert not set(legacy.FLAT) & set(module.hparams)  # the former options are not kept
    (line,) = [r.getMessage() for r in caplog.records if "earlier lit-mnist" in r.getMessage()]
    assert f"optimizer {optimizer} with flat options" in line and next(iter(expected)) in line
