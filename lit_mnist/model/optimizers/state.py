"""An optimizer set to a Keras optimizer's state: its step count, each variable's slots by Keras's names, and
its optimizer-wide values (Nadam's ``u_product``). The importer's carried state and the parity suite's teacher
forcing both go through here."""

from __future__ import annotations

import torch

from lit_mnist.model.optimizers.adam import TORCH_ADAM_SLOTS, KerasAdam
from lit_mnist.model.optimizers.flow import set_schedule


def load_state(optimizer: torch.optim.Optimizer, slots: dict[torch.Tensor, dict[str, torch.Tensor]],
               iterations: int, scalars: dict | None = None) -> None:
    """Give ``optimizer`` Keras's state: ``slots`` maps each parameter to its slots (Keras's names, torch's layout),
    ``iterations`` is Keras's count (each group's, so a schedule's rate is its own at that count)."""
    adam = isinstance(optimizer, torch.optim.Adam)  # torch's kernel keeps the moments under torch's names
    first = optimizer.param_groups[0]
    for p, values in slots.items():
        # in the parameter's memory layout (channels-last conv weights): torch's fused Adam walks the parameter
        # and its moments as flat memory, so a moment laid out otherwise would update the wrong weights
        state = {TORCH_ADAM_SLOTS.get(slot, slot) if adam else slot: torch.empty_like(p).copy_(value)
                 for slot, value in values.items()}
        if adam:  # torch's count per parameter (its bias correction), where its kernel keeps it
            on_device = first.get("fused") or first.get("capturable")
            state["step"] = torch.tensor(float(iterations), dtype=torch.float32,
                                         device=p.device if on_device else "cpu")
            if first["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        optimizer.state[p] = state
    for group in optimizer.param_groups:
        group["iterations"] = int(iterations)
        group.update({key: float(value) for key, value in (scalars or {}).items()})
    if hasattr(optimizer, "keras_flow"):
        set_schedule(optimizer, optimizer.keras_flow.schedule)
    if isinstance(optimizer, KerasAdam):
        optimizer.prepare_step()  # the next step's epsilon, at the count
