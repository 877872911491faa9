"""Level 2, training-step parity, teacher-forced.

Free-running training diverges between frameworks within 5-20 steps whatever is done (TF's CPU
float32 kernels are not bit-reproducible, and Adam's near-sign updates amplify tiny differences),
so each torch step starts from Keras's state before that step (weights, both moments, step count),
takes one step on the same batch, and is compared with Keras's state after it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lit_mnist.data.batches import TensorBatches
from lit_mnist.model.module import LitMNIST
from parity import keras_reference, transfer
from parity.twins import ORIGINAL, Twins

MAX_L2_REL = 1e-5
MAX_LOSS_REL = 1e-5


def _torch_step(module: LitMNIST, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    loss = module.compute_loss((x, y))[0]  # training_step's loss, without a Trainer to log to
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def step_parity(
    train_part: tuple[np.ndarray, np.ndarray],
    train_split: tuple[torch.Tensor, torch.Tensor],
    twins: Twins = ORIGINAL,
    steps: int = 20,
    seed: int = 0,
    make_module: Callable[[], LitMNIST] | None = None,
) -> dict:
    """``train_part``: the training rows before any validation cut (Keras cuts them itself);
    ``train_split``: the rows LitMNIST trains on (the datamodule's train split); ``make_module``:
    another Lightning side than ``twins.lightning()`` (the tests' deliberate breakages)."""
    make_module = make_module or twins.lightning
    keras_model = twins.keras(seed)
    xk, yk = keras_reference.training_rows(*train_part)
    xk = xk.astype(np.float32)
    size = keras_reference.BATCH_SIZE
    forced, free = make_module(), make_module()
    start = keras_reference.state(keras_model)
    transfer.load_weights(free.net, start["weights"])
    free_optimizer = free.configure_optimizers()
    curve = []
    batches = TensorBatches(*train_split, size)
    for t, (xb, yb) in zip(range(steps), batches):
        before = keras_reference.state(keras_model)
        keras_loss = float(keras_model.train_on_batch(xk[t * size:(t + 1) * size], yk[t * size:(t + 1) * size],
                                                      return_dict=True)["loss"])
        target = transfer.torch_weights(forced.net, keras_reference.weights(keras_model))

        transfer.load_weights(forced.net, before["weights"])
        optimizer = forced.configure_optimizers()
        transfer.load_adam_state(optimizer, forced.net, before)
        torch_loss = _torch_step(forced, optimizer, xb, yb)
        free_loss = _torch_step(free, free_optimizer, xb, yb)
        curve.append({
            "step": t + 1,
            "keras_loss": keras_loss,
            "torch_loss": torch_loss,
            "l2_rel_diff": transfer.relative_l2(transfer.flat(p.detach() for p in forced.parameters()), target),
            "loss_rel_diff": abs(torch_loss - keras_loss) / abs(keras_loss),
            "free_running_l2_rel_diff": transfer.relative_l2(transfer.flat(p.detach() for p in free.parameters()), target),
            "free_running_loss": free_loss,
        })
    l2 = max(c["l2_rel_diff"] for c in curve)
    loss = max(c["loss_rel_diff"] for c in curve)
    return {
        "n": len(curve),
        "l2_rel_diff": l2,
        "loss_rel_diff": loss,
        "curve": curve,
        "passed": len(curve) == steps and l2 <= MAX_L2_REL and loss <= MAX_LOSS_REL,
        "limits": {"l2_rel_diff": MAX_L2_REL, "loss_rel_diff": MAX_LOSS_REL},
    }
