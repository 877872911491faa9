"""The optimizer options of an earlier lit-mnist (``--model.optimizer keras_adam|adam|sgd|rmsprop`` with the flat
``epsilon``, ``betas``, ``momentum``, ``nesterov``, ``rho``, ``lr_decay``, ``one_cycle``), read as the item they
meant, where a config or checkpoint written then holds them all (as LightningCLI wrote them out); a flat option
given on its own now is refused, naming its new spelling.

Then, ``adam`` was torch's Adam (now ``torch_adam``) and ``keras_adam`` Keras's (now ``adam``).
"""

from __future__ import annotations

FLAT = ("epsilon", "betas", "momentum", "nesterov", "rho", "lr_decay", "one_cycle")
_NEW = {  # a flat option's new spelling, for the refusal
    "epsilon": "--model.optimizer '{adam: {epsilon: 1.0e-8}}'",
    "betas": "--model.optimizer '{adam: {beta_1: 0.9, beta_2: 0.99}}'",
    "momentum": "--model.optimizer '{sgd: {momentum: 0.9}}'",
    "nesterov": "--model.optimizer '{sgd: {momentum: 0.9, nesterov: true}}'",
    "rho": "--model.optimizer '{rmsprop: {rho: 0.8}}'",
    "lr_decay": "--model.optimizer '{adam: {learning_rate: {exponential_decay: {initial_learning_rate: 0.001, "
                "decay_steps: epoch, decay_rate: 0.8, staircase: true}}}}'",
    "one_cycle": "--model.optimizer '{adam: {learning_rate: {one_cycle: {max_lr: 0.01}}}}'",
}


def is_legacy(flat: dict) -> bool:
    """Whether the flat options are an earlier lit-mnist's whole set (every one given)."""
    return all(flat.get(key) is not None for key in FLAT)


def refuse_flat(flat: dict) -> None:
    """A flat option given alone (a new config, the command line): one line naming its new spelling."""
    given = next((key for key in FLAT if flat.get(key) is not None), None)
    if given is not None:
        raise ValueError(f"--model.{given} is now an argument of the optimizer: {_NEW[given]} "
                         "(see --model.optimizer in --help)")


def item_of(optimizer: str, lr: float | None, flat: dict) -> dict:
    """The item an earlier lit-mnist's options meant."""
    epsilon, betas, momentum = flat["epsilon"], list(flat["betas"]), flat["momentum"]
    default = 0.01 if optimizer == "sgd" else 1e-3
    rate = default if lr is None else lr
    if flat["one_cycle"]:
        rate = {"one_cycle": {"max_lr": rate}}
    elif flat["lr_decay"] != 1.0:  # torch's ExponentialLR after each epoch
        rate = {"exponential_decay": {"initial_learning_rate": rate, "decay_steps": "epoch",
                                      "decay_rate": flat["lr_decay"], "staircase": True}}
    if optimizer == "adam":
        return {"torch_adam": {"lr": rate, "betas": betas, "eps": epsilon}}
    if optimizer == "sgd":
        return {"sgd": {"learning_rate": rate, "momentum": momentum, "nesterov": flat["nesterov"]}}
    if optimizer == "rmsprop":
        return {"rmsprop": {"learning_rate": rate, "rho": flat["rho"], "momentum": momentum, "epsilon": epsilon}}
    if optimizer == "keras_adam":
        return {"adam": {"learning_rate": rate, "beta_1": betas[0], "beta_2": betas[1], "epsilon": epsilon}}
    raise ValueError(f"optimizer {optimizer!r}: not an optimizer of the earlier options (keras_adam, adam, sgd, rmsprop)")
