"""The model, called from the server's worker threads on batches of rows."""

from __future__ import annotations

import math
import threading

import numpy as np
import torch

from lit_mnist.model.module import LitMNIST


class Classifier:
    """Rows of values 0-255 in (grey levels, or each pixel's R, G, B in turn), class probabilities out; one
    forward at a time."""

    def __init__(self, model: LitMNIST) -> None:
        self.model = model.eval()
        self.image_shape: tuple[int, ...] = tuple(model.image_shape)  # (H, W) grey, (H, W, 3) colour
        self.class_names: list[str] = list(model.class_names)
        self.preparation: str = model.preparation  # how a picture becomes a row
        self._lock = threading.Lock()  # torch's intra-op threads are shared: one forward at a time is fastest

    @property
    def row_size(self) -> int:
        return math.prod(self.image_shape)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """``rows``: (N, H*W*C) values 0-255; the (N, K) float32 probabilities."""
        if len(rows) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        with self._lock, torch.inference_mode():
            return self.model(batch).numpy()
