"""The optimizers, as Keras items (``registry.py``): Keras 3's optimizers and learning-rate schedules, computed
as Keras computes them and in Keras's step order (``flow.py``), one file per family."""

from lit_mnist.model.optimizers.adam import KerasAdam
from lit_mnist.model.optimizers.adam_variants import KerasAdamax, KerasNadam
from lit_mnist.model.optimizers.adaptive import KerasAdadelta, KerasAdagrad
from lit_mnist.model.optimizers.flow import Constraints, Flow, attach, set_schedule
from lit_mnist.model.optimizers.lion import KerasLion
from lit_mnist.model.optimizers.registry import (
    KNOWN,
    as_item,
    build,
    default_learning_rate,
    learning_rate,
    lr_schedule,
    parse_optimizer,
)
from lit_mnist.model.optimizers.rmsprop import KerasRMSprop
from lit_mnist.model.optimizers.schedules import SCHEDULES, Fit, Schedule, schedule
from lit_mnist.model.optimizers.sgd import KerasSGD
from lit_mnist.model.optimizers.state import load_state

__all__ = ["KNOWN", "SCHEDULES", "Constraints", "Fit", "Flow", "KerasAdadelta", "KerasAdagrad", "KerasAdam",
           "KerasAdamax", "KerasLion", "KerasNadam", "KerasRMSprop", "KerasSGD", "Schedule", "as_item", "attach",
           "build", "default_learning_rate", "learning_rate", "load_state", "lr_schedule", "parse_optimizer", "schedule",
           "set_schedule"]
