"""Level 1, forward parity: Keras's weights copied into the Lightning twin give the same probabilities."""

from __future__ import annotations

import numpy as np
import torch

from lit_mnist.model.module import LitMNIST
from parity import keras_reference, transfer

MAX_ABS_DIFF = 1e-4
MIN_AGREEMENT = 0.999


def forward_parity(keras_model, x: np.ndarray, module: LitMNIST) -> dict:
    """Softmax outputs of both on ``x`` (raw pixels), in inference mode (dropout off, BatchNormalization on its
    moving statistics): max |diff| and how often the argmax agrees."""
    transfer.load_weights(module.net, keras_reference.layer_weights(keras_model))
    module.eval()
    with torch.no_grad():
        ours = module(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    theirs = keras_reference.predict(keras_model, x)
    max_abs = float(np.abs(ours - theirs).max())
    agreement = float((ours.argmax(1) == theirs.argmax(1)).mean())
    return {
        "max_abs_diff": max_abs,
        "argmax_agreement": agreement,
        "n": len(x),
        "passed": max_abs <= MAX_ABS_DIFF and agreement >= MIN_AGREEMENT,
        "limits": {"max_abs_diff": MAX_ABS_DIFF, "argmax_agreement": MIN_AGREEMENT},
    }
