"""What every layer kind is made of: :class:`Kind` (one Keras layer class), :class:`Layer` (one resolved layer of
a list) and the registry that the layer-list parser, the net builder, the importer, the weight mover and the
parity twin all read.

A kind is a subclass of :class:`Kind` in one file of this package, registered with :func:`register`. It holds
Keras's class name and aliases, its arguments with Keras's defaults and their checks, its output-shape rule, the
torch module it builds, Keras's variables and how they lie in that module, and its initialisers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from lit_mnist.model.kinds import objects
from lit_mnist.model.kinds.arguments import COMMON

CHANNELS_LAST = ("channels_last", None)  # the data_format values that mean Keras's default


@dataclass(frozen=True)
class Layer:
    """One resolved layer: ``args`` holds every argument (Keras's defaults filled in, pairs as tuples);
    ``position`` is the item's number in the list (1-based), None for a layer the list implies (the reshape
    before the first conv, the appended head); shapes are Keras's: ``(features,)`` or ``(height, width,
    channels)``, without the batch axis. ``inputs``: the names of the layers whose outputs it takes, in order
    (empty: the model's input); ``input_shapes`` their shapes (``input_shape`` the first's)."""

    kind: str
    args: dict
    name: str
    position: int | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    head: bool = False
    named: bool = False  # the item gave its name (else Keras's automatic one)
    inputs: tuple[str, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.input_shapes:
            object.__setattr__(self, "input_shapes", (self.input_shape,))

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def keras_class(self) -> str:
        return KINDS[self.kind].keras_class

    def describe(self) -> str:
        return f"item {self.position} ({self.kind})" if self.position else f"the implied {self.kind} ({self.name})"


class Kind:
    """One Keras layer class. Subclasses set the class attributes and override what differs from the defaults:

    * ``name`` (Keras's snake_case name, its default layer name) and ``keras_class``; ``aliases``: other
      spellings a list may use (Keras's aliases, ``MaxPool2D``);
    * ``first``: Keras's first positional argument; ``positional``: Keras's order of the arguments, where a list
      may give them positionally (``conv2d: [32, 3]``);
    * ``required``, ``optional`` (with Keras's defaults) and ``defaults_only`` (honoured only at Keras's default:
      each maps to the values that mean it); :meth:`check` checks and normalises the values;
    * ``image_only`` (needs an HxWxC input), ``keeps_shape`` (its output has its input's shape: a flat row stays
      the input row), ``per_value`` (each value on its own, whatever the layout), ``merge`` (takes several inputs),
      ``randomness`` (the argument that turns its random masks or noise off at 0);
    * :meth:`output_shape`, :meth:`module` (the torch module), ``variables`` (Keras's variable names, in Keras's
      order, each to the module's attribute), ``initializers`` (a variable's initialiser argument),
      ``torch_init`` (the variables that PyTorch's defaults draw with ``init: torch``; None: there is none),
      ``penalized`` (a variable -> the prefix of its ``*_regularizer`` and ``*_constraint`` arguments);
    * :meth:`to_torch` / :meth:`to_keras`: a variable's layout in each framework; :meth:`keras_view` /
      :meth:`torch_view`, the same as views of a tensor (regularizers and constraints act in Keras's layout);
    * :meth:`keras_args` (the arguments of the Keras twin's layer) and :meth:`from_keras` (a Keras config's
      arguments in the list's spelling), for the parity twin and the importer.
    """

    name: ClassVar[str]
    keras_class: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    first: ClassVar[str | None] = None
    positional: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[Mapping[str, Any]] = {}
    defaults_only: ClassVar[Mapping[str, tuple]] = {}
    image_only: ClassVar[bool] = False
    keeps_shape: ClassVar[bool] = False
    per_value: ClassVar[bool] = False
    merge: ClassVar[bool] = False
    arity: ClassVar[tuple[int, int | None]] = (1, 1)  # the fewest and most inputs it takes (None: no most)
    randomness: ClassVar[str | None] = None
    variables: ClassVar[Mapping[str, str]] = {}
    moving: ClassVar[tuple[str, ...]] = ()  # variables that are statistics, not trained
    initializers: ClassVar[Mapping[str, str]] = {}
    torch_init: ClassVar[tuple[str, ...] | None] = ()
    # a variable -> the prefix of its regularizer and constraint arguments (``kernel``: kernel_regularizer, ...)
    penalized: ClassVar[Mapping[str, str]] = {}

    checks: ClassVar[Mapping[str, Callable]] = {}  # an argument's own check, where not the common one

    def check(self, args: dict) -> dict:
        """``args`` (every argument, defaults filled in) checked and in one form, or ValueError saying why: each by
        the kind's ``checks``, else by the common check of its name (``kinds.arguments.COMMON``)."""
        for name, value in args.items():
            check = self.checks.get(name) or COMMON.get(name) or (objects.check_object if objects.family(name) else None)
            if check is not None:
                args[name] = check(name, value)
        return args

    def acts_per_value(self, args: dict) -> bool:
        """Whether it takes each value on its own, whatever the layout (and so a declared HxW grid as a row)."""
        return self.per_value

    def output_shape(self, args: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The Keras shape this layer makes of an input of ``shape``, or ValueError saying why it does not fit."""
        return shape

    def merged_shape(self, args: dict, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        """A merge's output shape of its inputs' ``shapes``, or ValueError."""
        raise NotImplementedError

    def module(self, layer: Layer) -> nn.Module:
        raise NotImplementedError

    def present(self, args: dict) -> tuple[str, ...]:
        """The Keras variables a layer of these arguments has, in Keras's order."""
        absent = {"bias": args.get("use_bias") is False, "gamma": args.get("scale") is False,
                  "beta": args.get("center") is False}
        return tuple(name for name in self.variables if not absent.get(name, False))

    def initialize(self, module: nn.Module, layer: Layer) -> None:
        """Each variable drawn as its Keras initialiser draws it."""
        from lit_mnist.model.initializers import initialize_

        for variable, argument in self.initializers.items():
            tensor = getattr(module, self.variables[variable], None)
            if tensor is not None:
                initialize_(tensor, layer.args[argument])

    def to_torch(self, variable: str, array: np.ndarray) -> torch.Tensor:
        """A Keras variable in torch's layout: a dense kernel transposed, a conv kernel (h, w, in, out) -> (out, in,
        h, w); others as they are."""
        if array.ndim == 2:
            array = array.T
        elif array.ndim == 4:
            array = array.transpose(3, 2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array))

    def to_keras(self, variable: str, tensor: torch.Tensor) -> np.ndarray:
        """The inverse of :meth:`to_torch`."""
        array = tensor.detach().cpu().numpy()
        if array.ndim == 2:
            return np.ascontiguousarray(array.T)
        if array.ndim == 4:
            return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
        return array.copy()

    def keras_view(self, variable: str, tensor: torch.Tensor) -> torch.Tensor:
        """A variable in Keras's layout, as a view of the torch tensor (gradients flow through it): what
        regularizers and constraints take, whose axes are Keras's. As :meth:`to_keras` lays it out."""
        if tensor.dim() == 2:
            return tensor.T
        return tensor.permute(2, 3, 1, 0) if tensor.dim() == 4 else tensor

    def torch_view(self, variable: str, tensor: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`keras_view`."""
        if tensor.dim() == 2:
            return tensor.T
        return tensor.permute(3, 2, 0, 1) if tensor.dim() == 4 else tensor

    def keras_args(self, layer: Layer) -> dict:
        """The arguments of this layer's Keras twin (a regularizer or constraint in Keras's saved form)."""
        return {name: objects.to_keras(value) if objects.family(name) else value for name, value in layer.args.items()}

    def from_keras(self, config: dict) -> dict:
        """A Keras config's arguments in the list's spelling (a renamed argument of Keras 2, a one-axis list)."""
        return config


@dataclass(frozen=True)
class Equivalent:
    """A Keras layer class that computes what an item of another kind computes, and is read as that item
    (``ReLU`` as an ``activation: relu``): its name, first argument and defaults, and :meth:`item`."""

    name: str
    keras_class: str
    first: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def item(self, args: dict) -> dict:
        """The item (``{kind: {argument: value}}``) computing what this layer with ``args`` computes; ValueError
        where none does."""
        raise NotImplementedError


KINDS: dict[str, Kind] = {}  # snake_case name -> the kind
EQUIVALENTS: dict[str, Equivalent] = {}
ALIASES: dict[str, str] = {}  # Keras's class name or an alias -> the snake_case name
KERAS_CLASSES: dict[str, str] = {}  # Dense -> dense, ...


def register(cls: type[Kind]) -> type[Kind]:
    """Make a kind known to every reader of kinds (a class decorator)."""
    kind = cls()
    KINDS[kind.name] = kind
    KERAS_CLASSES[kind.keras_class] = kind.name
    ALIASES.update({kind.keras_class: kind.name, **dict.fromkeys(kind.aliases, kind.name)})
    return cls


def register_equivalent(equivalent: Equivalent) -> Equivalent:
    EQUIVALENTS[equivalent.name] = equivalent
    ALIASES.update({equivalent.keras_class: equivalent.name, **dict.fromkeys(equivalent.aliases, equivalent.name)})
    return equivalent
