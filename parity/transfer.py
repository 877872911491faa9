"""The parity levels' side of moving between Keras and KerasNet: flat vectors of a net's parameters (or moving
statistics) in either framework's values, and the optimizer's state. The layouts themselves are
``lit_mnist/model/keras_layout.py``'s.
"""

from __future__ import annotations

import numpy as np
import torch

from lit_mnist.model.keras_layout import find, keras_weights, load_weights, variables
from lit_mnist.model.net import KerasNet
from lit_mnist.model.optimizers import KerasAdam, set_schedule
from lit_mnist.model.optimizers.adam import TORCH_ADAM_SLOTS

__all__ = ["flat", "keras_vector", "keras_weights", "load_optimizer_state", "load_weights", "relative_l2",
           "torch_vector"]

# Keras's slot name -> the torch optimizer's, where the two differ: torch's own Adam kernel (KerasAdam and the
# stock one) keeps its moments under torch's names; every other optimizer here keeps Keras's
SLOT_NAMES = {
    torch.optim.Adam: TORCH_ADAM_SLOTS,
}


def torch_vector(net: KerasNet, moving: bool = False) -> np.ndarray:
    """The net's parameters (or, ``moving``, its moving statistics) as one float64 vector."""
    return flat(t for layer, name, t in variables(net) if (name in layer.spec.moving) == moving)


def keras_vector(net: KerasNet, weights: dict[str, dict[str, np.ndarray]], moving: bool = False) -> np.ndarray:
    """A Keras twin's parameters (or moving statistics) in the order and layout of :func:`torch_vector`."""
    return flat(layer.spec.to_torch(name, find(weights, layer.name, name)) for layer, name, _ in variables(net)
                if (name in layer.spec.moving) == moving)


def _renames(optimizer: torch.optim.Optimizer) -> dict[str, str]:
    return next((names for cls, names in SLOT_NAMES.items() if isinstance(optimizer, cls)), {})


def load_optimizer_state(optimizer: torch.optim.Optimizer, net: KerasNet, slots: dict, step: int,
                         scalars: dict | None = None) -> None:
    """Give a torch optimizer over ``net``'s parameters Keras's state: every slot of every variable
    (``keras_reference.optimizer_slots``, by Keras's slot names, renamed where the torch optimizer keeps another
    name), the step count (``iterations``: a schedule's rate is the optimizer's own at that count) and the
    optimizer-wide values (``keras_reference.optimizer_scalars``: Nadam's ``u_product``) in each param group."""
    parameters = {id(p) for p in net.parameters()}
    renames = _renames(optimizer)
    for layer, name, tensor in variables(net):
        if name in layer.spec.moving or id(tensor) not in parameters:
            continue
        # in the parameter's memory layout (channels-last conv weights): torch's fused Adam walks the
        # parameter and its moments as flat memory, so a moment laid out otherwise would update the wrong weights
        state = {renames.get(slot, slot): torch.empty_like(tensor).copy_(layer.spec.to_torch(name, value))
                 for slot, value in find(slots, layer.name, name).items()}
        if isinstance(optimizer, torch.optim.Adam):
            state["step"] = torch.tensor(float(step))
        optimizer.state[tensor] = state
    for group in optimizer.param_groups:  # Keras's iterations: the step count of the flow and of each family
        group["iterations"] = step
        group.update(scalars or {})
    if hasattr(optimizer, "keras_flow"):  # each group's rate: its own schedule's at Keras's count
        set_schedule(optimizer, optimizer.keras_flow.schedule)
    if isinstance(optimizer, KerasAdam):
        optimizer.prepare_step()


def flat(tensors) -> np.ndarray:
    """Tensors as one float64 vector."""
    parts = [np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64).ravel()
             for t in tensors]
    return np.concatenate(parts) if parts else np.zeros(0)


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / norm) if norm else float(np.linalg.norm(a - b))
