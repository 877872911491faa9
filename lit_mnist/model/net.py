"""The net a layer list describes, as a plain nn.Module whose layers compute what Keras's do.

:func:`build_net` makes it from the list, the class count and the image shape (``lit_mnist.model.layers``).
Each layer is one child module named as Keras names it (``dense``, ``conv2d_1``, ...), so the model summary
reads like Keras's; each kind's module is its definition's (``lit_mnist/model/kinds/``). A list that branches
runs its layers in the list's order, each on the outputs its ``inputs`` name. Keras's semantics where torch's
differ (``../docs/layers.md`` lists them):

* "same" padding as TensorFlow pads, the extra row or column at the bottom or right, for any stride;
* "same" average pooling divides by the cells inside the image only;
* images are channels-last: ``Flatten`` numbers an (h, w, c) map's features ``(i * w + j) * c + k``, and
  per-channel arguments act on the last axis;
* BatchNormalization's moving statistics move by ``1 - momentum`` (0.99 by default) towards the batch's
  mean and *biased* variance, with Keras's epsilon 1e-3;
* LayerNormalization normalises the last axis (an image's channels, pixel by pixel), with epsilon 1e-3;
* Normalization divides by ``max(sqrt(variance), 1e-7)``;
* Dense and Conv2D kernels start as Keras's initialisers draw them (Glorot-uniform by default), biases at 0.

Images are held as NCHW tensors in channels-last memory, so that a Keras-order flatten is a free view and
oneDNN (and cuDNN) run their NHWC convolution kernels without reordering.
"""


from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
from torch import nn

from lit_mnist.model import constraints, regularizers
from lit_mnist.model.kinds import KINDS, Layer
from lit_mnist.model.layers import INPUT, LayerError, resolve

__all__ = ["MAX_PARAMETERS", "KerasNet", "build_net", "graph_plan", "keras_init_"]


def is_chain(layers: Iterable[Layer]) -> bool:
    """Whether each layer takes the one before it alone (the first, the model's input)."""
    previous = INPUT
    for layer in layers:
        if layer.inputs != (previous,):
            return False
        previous = layer.name
    return True


class KerasNet(nn.Sequential):
    """The layers of a resolved list, in order; rows of H*W*C values in (each pixel's channels in turn, as Keras
    flattens an image), logits out. ``layers`` keeps the resolved list (kinds, arguments, shapes, inputs) for
    whoever moves weights to or from Keras. A chain runs as a Sequential; a graph keeps each output until its last
    reader has taken it.

    Regularizers and constraints (the items' ``*_regularizer`` and ``*_constraint`` arguments) act as Keras's:
    :meth:`penalty` is what training adds to the loss, :meth:`constraints` what the optimizer applies after each
    step. A net with an activity regularizer runs its layers one by one (as a graph), recording the penalties of
    their outputs."""

    def __init__(self, layers: list[Layer]) -> None:
        super().__init__(OrderedDict((layer.name, KINDS[layer.kind].module(layer)) for layer in layers))
        self.layers = tuple(layers)
        # a layer's place -> its activity regularizer, on its output as Keras's layer outputs it
        self._activity_penalties = {index: _activity(layer) for index, layer in enumerate(layers)
                                    if layer.args.get("activity_regularizer") is not None}
        self._activity: list[tuple[torch.Tensor, int]] = []  # the last forward pass's (penalty, batch size)
        self._weight_penalties = list(_weight_objects(self, "regularizer"))
        self.regularized = bool(self._weight_penalties or self._activity_penalties)
        self.plan = None if is_chain(layers) and not self._activity_penalties else graph_plan(layers)
        self.to(memory_format=torch.channels_last)  # conv weights NHWC; other tensors are unaffected

    def __getitem__(self, index):
        if isinstance(index, slice):  # some of the layers: a plain Sequential of them (a resolved list is whole)
            return nn.Sequential(OrderedDict(list(self.named_children())[index]))
        return super().__getitem__(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # grey levels, as they come: uint8 rows are made floating point here
        x = x if x.is_floating_point() else x.to(torch.get_default_dtype())
        if self.plan is None:
            return super().forward(x)
        values, activity = [x], self._activity_penalties
        self._activity = []
        for index, (module, (sources, dropped)) in enumerate(zip(self, self.plan)):
            values.append(module(*(values[i] for i in sources)))
            if index in activity:
                self._activity.append((activity[index](values[-1]), values[-1].shape[0]))
            for i in dropped:
                values[i] = None  # its last reader has run: free it
        return values[-1]

    def penalty(self, batch_size: float | None = None) -> torch.Tensor:
        """The regularizers' penalty, as Keras adds it to the loss: each weight regularizer of its variable (in
        Keras's layout), plus each activity regularizer of its layer's output in the last forward pass divided by
        the batch size (Keras 3 divides by the output's rows, an empty batch adding 0). ``batch_size``: the divisor
        instead (one rank's share of a global batch, so that the ranks' averaged gradients are the global batch's)."""
        total = torch.zeros((), device=self._device())
        for spec, variable, module, attribute, function in self._weight_penalties:
            total = total + function(spec.keras_view(variable, getattr(module, attribute)))
        for value, rows in self._activity:
            divisor = rows if batch_size is None else batch_size
            total = total + (value / divisor if divisor else torch.zeros_like(value))
        return total

    def constraints(self) -> list[tuple[nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]]:
        """Each constrained parameter and its projection (torch's layout in and out, Keras's constraint computed in
        Keras's layout): an optimizer sets ``p.copy_(fn(p))`` after each step, as Keras applies constraints."""
        return [(getattr(module, attribute), _in_torch_layout(spec, variable, function))
                for spec, variable, module, attribute, function in _weight_objects(self, "constraint")]

    def _device(self) -> torch.device:
        return next((p.device for p in self.parameters()), torch.device("cpu"))

    def outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's output, by layer name (what the parity levels compare layer by layer)."""
        x = x.flatten(1)
        values = {INPUT: x if x.is_floating_point() else x.to(torch.get_default_dtype())}
        for layer, module in zip(self.layers, self):
            values[layer.name] = module(*(values[name] for name in layer.inputs))
        del values[INPUT]
        return values


def _activity(layer: Layer) -> Callable[[torch.Tensor], torch.Tensor]:
    """A layer's activity regularizer, of its output as Keras's layer outputs it: the head's after its softmax
    (the net's head returns the logits, whose softmax the loss takes); an image's channels-last, as Keras's."""
    function = regularizers.penalty(layer.args["activity_regularizer"])
    softmax = layer.head and layer.args.get("activation") == "softmax"

    def record(output: torch.Tensor) -> torch.Tensor:
        output = output.softmax(-1) if softmax else output
        return function(output.permute(0, 2, 3, 1) if output.dim() == 4 else output)
    return record


def _weight_objects(net: KerasNet, what: str):
    """(kind, Keras variable name, its module and attribute, the function) of each variable's regularizer
    (``what``: ``regularizer``) or constraint (``constraint``), in the net's order."""
    make = regularizers.penalty if what == "regularizer" else constraints.projection
    for layer, module in zip(net.layers, net):
        spec = layer.spec
        for variable, prefix in spec.penalized.items():
            item, attribute = layer.args.get(f"{prefix}_{what}"), spec.variables[variable]
            if item is not None and getattr(module, attribute, None) is not None:
                yield spec, variable, module, attribute, make(item)


def _in_torch_layout(spec, variable: str, function) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda tensor: spec.torch_view(variable, function(spec.keras_view(variable, tensor)))


def graph_plan(layers: list[Layer]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """For each layer, the places of its inputs among the values (0: the model's input, k: layer k's output,
    from 1) and the values it is the last reader of."""
    place = {INPUT: 0, **{layer.name: index for index, layer in enumerate(layers, start=1)}}
    last_reader = {}
    for index, layer in enumerate(layers, start=1):
        for name in layer.inputs:
            last_reader[place[name]] = index
    plan = []
    for index, layer in enumerate(layers, start=1):
        sources = tuple(place[name] for name in layer.inputs)
        plan.append((sources, tuple(sorted({i for i in sources if last_reader[i] == index}))))
    return plan


def build_net(layers: Iterable | None, num_classes: int, image_shape: tuple[int, ...], init: str = "keras") -> KerasNet:
    """The plain nn.Module of a layer list (None: the original's) for ``num_classes`` classes and images of
    ``image_shape``. ``init``: ``keras`` (each layer's initialisers, Keras's by default) or ``torch``
    (PyTorch's defaults for every layer; an item naming an initialiser is then refused)."""
    resolved = resolve(layers, num_classes, image_shape)
    _check_size(resolved)
    net = KerasNet(resolved)
    if init == "keras":
        keras_init_(net)
    elif init == "torch":
        _check_torch_init(resolved)
    else:
        raise LayerError(f"init must be 'keras' or 'torch', got {init!r}")
    return net


def _check_torch_init(resolved: list[Layer]) -> None:
    """PyTorch's defaults stand for Keras's default initialisers only, and only where PyTorch has one."""
    for layer in resolved:
        spec = KINDS[layer.kind]
        if spec.torch_init is None:
            raise LayerError(f"model.layers {layer.describe()}: init 'torch' (PyTorch's defaults) has no default "
                             "for a depthwise kernel: use init 'keras'")
        for name in spec.torch_init:
            default = spec.optional[name]
            if layer.args[name] != default:
                raise LayerError(f"model.layers {layer.describe()}: {name} {layer.args[name]!r} with init 'torch' "
                                 "(PyTorch's defaults for every layer): use init 'keras'")


MAX_PARAMETERS = 1 << 28  # 1 GiB of float32 weights: a net past it is refused before any of it is allocated


def _check_size(resolved: list[Layer]) -> None:
    """Count the net's parameters on the meta device (shapes alone, no memory), before it is built for real."""
    with torch.device("meta"):
        counts = [(layer, sum(p.numel() for p in KINDS[layer.kind].module(layer).parameters())) for layer in resolved]
    total = sum(count for _, count in counts)
    if total > MAX_PARAMETERS:
        layer, count = max(counts, key=lambda pair: pair[1])
        raise LayerError(f"model.layers {layer.describe()}: the net would hold {total:,} parameters ({count:,} of "
                         f"them this layer's), over the limit of {MAX_PARAMETERS:,}")


def keras_init_(net: KerasNet) -> KerasNet:
    """Each layer's variables drawn as its Keras initialisers draw them (its kind's ``initialize``)."""
    for layer, module in zip(net.layers, net):
        KINDS[layer.kind].initialize(module, layer)
    return net
