"""The optimizer's state a Keras 3 file saved (its step count and each variable's slots), mapped onto the imported
net's parameters: what Keras's ``load_model`` restores, so that ``fit.py --model.init_from`` goes on from it.

Keras 3 saves ``optimizer.variables`` in order (``keras/src/optimizers/base_optimizer.py``): ``iteration``; a
``learning_rate`` variable where the rate is a constant (a schedule has none); then the slots each optimizer's
``build`` adds with ``add_optimizer_variables``, a call at a time, each call's names taken in turn for every
trainable variable (``[kernel_momentum, kernel_velocity, bias_momentum, ...]``); Nadam's ``u_product`` last. The
trainable variables are the model's in its layers' order, which is the net's parameters' order here; a slot is
moved into torch's layout as its variable is (a dense kernel transposed, ...). A file whose slots do not fit
that plan (another optimizer, a layer the net holds otherwise) carries no state, and a note says why.

The state is written into the checkpoint under :data:`KEY` as plain data (``torch.load(weights_only=True)``)::

    {"optimizer": "adamw", "iterations": 4, "slots": {"net.dense.weight": {"momentum": tensor, ...}, ...},
     "scalars": {"u_product": 0.7}}
"""

from __future__ import annotations

import numpy as np
import torch

from lit_mnist.model import keras_layout, optimizers

KEY = "keras_optimizer_state"


def slot_plan(name: str, args: dict) -> tuple[list[tuple[str, ...]], list[str]]:
    """The slots Keras's ``build`` adds for the optimizer ``name`` with ``args`` (its arguments, Keras's names):
    each ``add_optimizer_variables`` call's names, in order; and the scalars saved after them."""
    if name in ("adam", "adamw"):
        return [("momentum", "velocity")] + ([("velocity_hat",)] if args.get("amsgrad") else []), []
    if name == "sgd":
        return ([("momentum",)] if args.get("momentum") else []), []
    if name == "rmsprop":
        return ([("velocity",)] + ([("momentum",)] if (args.get("momentum") or 0) > 0 else [])
                + ([("average_gradient",)] if args.get("centered") else [])), []
    if name == "nadam":
        return [("momentum", "velocity")], ["u_product"]
    if name == "adamax":
        return [("momentum", "norm")], []
    if name == "adagrad":
        return [("accumulator",)], []
    if name == "adadelta":
        return [("accumulated_grad", "accumulated_delta_var")], []
    if name == "lion":
        return [("momentum",)], []
    raise KeyError(name)


def optimizer_state(variables: list[np.ndarray] | None, optimizer: dict, model) -> tuple[dict | None, str | None]:
    """The state of ``variables`` (Keras's ``optimizer.variables`` as saved) for the imported ``model``'s
    parameters, compiled as the ``optimizer`` item ``{name: args}``; or None and a note saying why not."""
    if not variables or not optimizer:
        return None, None
    name, args = optimizers.parse_optimizer(optimizer)  # Keras's defaults filled in: they decide the slots
    iterations, rest = variables[0], list(variables[1:])
    if rest and rest[0].shape == () and rest[0].dtype.kind == "f" and not isinstance(args.get("learning_rate"), dict):
        rest = rest[1:]  # a constant rate's variable: the config carries the rate
    blocks, scalars = slot_plan(name, args)
    trainable = [(layer, variable, tensor) for layer, variable, tensor in keras_layout.variables(model.net)
                 if isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad]
    expected = sum(len(block) for block in blocks) * len(trainable) + len(scalars)
    if len(rest) != expected:
        return None, (f"{len(rest)} slot variables saved, {expected} expected for {name} over the net's "
                      f"{len(trainable)} trainable variables: not carried")
    names = {id(p): n for n, p in model.named_parameters()}
    slots: dict[str, dict[str, torch.Tensor]] = {}
    for block in blocks:
        for layer, variable, tensor in trainable:
            for slot in block:
                array = np.asarray(rest.pop(0), dtype=np.float32)
                value = layer.spec.to_torch(variable, array)
                if tuple(value.shape) != tuple(tensor.shape) or not np.isfinite(array).all():
                    return None, (f"the slot {slot} of {layer.name}/{variable} is {tuple(array.shape)}, not "
                                  "finite or of another shape than the variable: not carried")
                slots.setdefault(names[id(tensor)], {})[slot] = value.detach().clone().contiguous()
    saved = {scalar: float(rest.pop(0)) for scalar in scalars}
    return {"optimizer": name, "iterations": int(iterations), "slots": slots, "scalars": saved}, None
