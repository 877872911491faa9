"""Where a dependency offers no public way to learn something, the workaround lives here, each with a test
(tests/test_compat.py) that fails when the dependency changes underneath it."""

from __future__ import annotations

import re
import sys
import types

# jsonargparse tells why it refused a value only in its message's text: a str-typed option that YAML read as a
# boolean (no, yes, on, off) is "Expected a <class 'str'>. Got value: False"
_STR_GOT_A_BOOLEAN = re.compile(r"Expected a <class 'str'>\. Got value: (True|False)\b")


def yaml_read_a_name_as_boolean(message: str) -> bool:
    """Whether jsonargparse's refusal ``message`` is of a name that YAML read as a boolean."""
    return bool(_STR_GOT_A_BOOLEAN.search(message))


def tensorboard_without_tensorflow() -> None:
    """Have TensorBoard's event writer (torch.utils.tensorboard, Lightning's logger) use its own stand-in for
    TensorFlow's file API rather than import TensorFlow where it is installed, which takes seconds and prints
    TensorFlow's start-up notes. tensorboard.compat uses the stand-in whenever a module
    ``tensorboard.compat.notf`` can be imported (the switch its own no-TensorFlow build sets); an empty one is
    registered here. Without effect once TensorBoard has chosen, and on nothing else in TensorBoard or TensorFlow."""
    sys.modules.setdefault(_NO_TENSORFLOW, types.ModuleType(_NO_TENSORFLOW))


_NO_TENSORFLOW = "tensorboard.compat.notf"
