"""A layer kind defined in one file, as CONTRIBUTING.md shows: Keras's UnitNormalization (each row, or each
pixel's channels, divided by its L2 norm). Importing this module registers it (tests/model/test_kinds.py does,
and takes it away again)."""

import torch.nn.functional as F
from torch import nn

from lit_mnist.model.kinds import Kind, register
from lit_mnist.model.kinds.normalization import last_axis


class UnitNormalization(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=1, eps=1e-6)  # Keras: x / sqrt(max(sum(x^2), 1e-12)); dim 1 is Keras's last axis


@register
class UnitNormalizationKind(Kind):
    name, keras_class, first = "unit_normalization", "UnitNormalization", "axis"
    optional = {"axis": -1}
    keeps_shape = True

    def output_shape(self, args, shape):
        last_axis(args, shape)
        return shape

    def module(self, layer):
        return UnitNormalization()
