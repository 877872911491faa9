"""Level 2, training-step parity, teacher-forced.

Free-running training diverges between frameworks within 5-20 steps whatever is done (TF's CPU
float32 kernels are not bit-reproducible, and Adam's near-sign updates amplify tiny differences),
so each torch step starts from Keras's state before that step (weights, BatchNormalization's moving
statistics, the optimizer's slots and its step count), takes one step on the same batch, and is compared with
Keras's state after it: the weights, and the moving statistics on their own. The learning rate is not moved
across: each side computes its own from its schedule at that step count, and the two rates are compared at
every step (a torch schedule stepped otherwise than Keras's fails here even where a step would hide it).
Class weights (``class_weight``) weigh both sides' loss: Keras's ``train_on_batch(class_weight=...)``.

Both sides compute these steps in float64. In float32 each framework's own rounding is about the size of
the limits: TensorFlow's mean of a conv map's 100,000 values (BatchNormalization's batch variance) is off
by ~1e-4 relative, so the comparison would measure the noise, not the semantics. Dropout masks cannot be
shared across frameworks: this level runs dropout as identity in both. TensorFlow casts an optimizer's
Python-float constants (betas, momentum) through float32 before the float64 step: Adam's step at beta_2 0.999
differs from the formula by ~7e-6 relative, well inside the limits once divided by the weights' norm; the tests
that isolate one optimizer take constants exact in float32 (0.875, 1 - 2**-10).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lit_mnist.data.batches import TensorBatches
from lit_mnist.data.datamodule import keras_validation_split
from lit_mnist.model.module import LitMNIST, class_weights
from lit_mnist.model.optimizers import Fit
from parity import keras_reference, transfer
from parity.twins import ORIGINAL, Twins

MAX_L2_REL = 1e-5
MAX_LOSS_REL = 1e-5
MAX_MOVING_REL = 1e-7  # both sides in float64 (see above): measured ~1e-10
MAX_RATE_REL = 1e-6  # Keras evaluates its schedules in float32: ~6e-8 relative


def _rates(optimizer: torch.optim.Optimizer) -> list[float]:
    """The rate of each step ``optimizer`` takes from now on, read after the pre-step hooks have set it (the
    flow's schedule and the family's settings) and before the update reads it."""
    rates: list[float] = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: rates.append(float(opt.param_groups[0]["lr"])))
    return rates


def _relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a - b)


def _class_weights(module: LitMNIST, labels: torch.Tensor) -> None:
    """``module``'s own ``class_weight`` option weighing its training loss as fit() has it weigh it
    (``LitMNIST.setup``, which needs a Trainer; the counts of ``labels``, the training rows'), in float64."""
    option = module.hparams.get("class_weight")
    if option is not None:
        counts = torch.bincount(labels, minlength=module.num_classes).tolist()
        weights = class_weights(option, module.num_classes, module.class_names, counts)
        module._class_weights = torch.tensor(weights, dtype=torch.float64)


def _torch_step(module: LitMNIST, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    loss = module.compute_loss((x.double(), y))[0]  # training_step's loss, without a Trainer to log to
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def keras_training_rows(train_part: tuple[np.ndarray, np.ndarray], val_split: float):
    """The rows Keras trains on under ``validation_split``: the first ``floor(n * (1 - split))``."""
    cut = keras_validation_split(len(train_part[0]), val_split)
    return train_part[0][:cut].astype(np.float64), train_part[1][:cut]


def step_parity(
    train_part: tuple[np.ndarray, np.ndarray],
    train_split: tuple[torch.Tensor, torch.Tensor],
    twins: Twins = ORIGINAL,
    steps: int = 20,
    seed: int = 0,
    make_module: Callable[[Twins], LitMNIST] | None = None,
    val_split: float = 0.2,
) -> dict:
    """``train_part``: the training rows before any validation cut (Keras cuts them itself, ``val_split``);
    ``train_split``: the rows LitMNIST trains on (the datamodule's train split); ``make_module``: another
    Lightning side than ``twins.lightning()`` (the tests' deliberate breakages), given the twins it is for."""
    dropout = twins.has_dropout
    twins = twins.without_dropout()
    make_module = make_module or (lambda t: t.lightning())
    xk, yk = keras_training_rows(train_part, val_split)
    keras_model = twins.keras(seed, steps_per_epoch=twins.steps_per_epoch(len(xk)), dtype="float64")
    size = twins.batch_size
    forced, free = make_module(twins).double(), make_module(twins).double()
    for module in (forced, free):
        _class_weights(module, train_split[1])
    class_weight = twins.class_weight(train_split[1].numpy())  # Keras's, of the same rows
    transfer.load_weights(free.net, keras_reference.layer_weights(keras_model))
    steps_per_epoch = twins.steps_per_epoch(len(xk))
    # each side computes its own rate from its schedule (the fit's counts, as Keras's twin has them)
    fit = Fit(steps_per_epoch, steps_per_epoch * twins.epochs)
    free_optimizer = free.make_optimizer(fit=fit)
    curve = []
    for t, (xb, yb) in zip(range(steps), TensorBatches(*train_split, size)):
        before, slots = keras_reference.layer_weights(keras_model), keras_reference.optimizer_slots(keras_model)
        scalars = keras_reference.optimizer_scalars(keras_model)
        step, keras_rate = keras_reference.iterations(keras_model), keras_reference.learning_rate(keras_model)
        batch = slice(t * size, (t + 1) * size)
        keras_loss = float(keras_model.train_on_batch(xk[batch], keras_reference.targets(twins, yk[batch]),
                                                      class_weight=class_weight, return_dict=True)["loss"])
        after = keras_reference.layer_weights(keras_model)

        transfer.load_weights(forced.net, before)
        optimizer = forced.make_optimizer(fit=fit)
        transfer.load_optimizer_state(optimizer, forced.net, slots, step, scalars)
        rates = _rates(optimizer)
        torch_loss = _torch_step(forced, optimizer, xb, yb)
        free_loss = _torch_step(free, free_optimizer, xb, yb)
        moving = transfer.keras_vector(forced.net, after, moving=True)
        curve.append({
            "step": t + 1,
            "keras_loss": keras_loss,
            "torch_loss": torch_loss,
            "l2_rel_diff": transfer.relative_l2(transfer.torch_vector(forced.net), transfer.keras_vector(forced.net, after)),
            "moving_rel_diff": (transfer.relative_l2(transfer.torch_vector(forced.net, moving=True), moving)
                                if moving.size else 0.0),
            "loss_rel_diff": abs(torch_loss - keras_loss) / abs(keras_loss),
            "keras_learning_rate": keras_rate,
            "torch_learning_rate": rates[0],
            "learning_rate_rel_diff": _relative(rates[0], keras_rate),
            "free_running_l2_rel_diff": transfer.relative_l2(transfer.torch_vector(free.net),
                                                             transfer.keras_vector(free.net, after)),
            "free_running_loss": free_loss,
        })
    l2, loss, moving, rate = (max(c[key] for c in curve) for key in
                              ("l2_rel_diff", "loss_rel_diff", "moving_rel_diff", "learning_rate_rel_diff"))
    return {
        "n": len(curve),
        "l2_rel_diff": l2,
        "loss_rel_diff": loss,
        "moving_rel_diff": moving,
        "learning_rate_rel_diff": rate,
        "class_weight": class_weight,
        "has_moving_statistics": bool(transfer.torch_vector(forced.net, moving=True).size),
        "dropout_as_identity": dropout,
        "curve": curve,
        "passed": (len(curve) == steps and l2 <= MAX_L2_REL and loss <= MAX_LOSS_REL and moving <= MAX_MOVING_REL
                   and rate <= MAX_RATE_REL),
        "limits": {"l2_rel_diff": MAX_L2_REL, "loss_rel_diff": MAX_LOSS_REL, "moving_rel_diff": MAX_MOVING_REL,
                   "learning_rate_rel_diff": MAX_RATE_REL},
    }
