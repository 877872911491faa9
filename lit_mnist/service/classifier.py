"""The model, called from the server's worker threads on batches of rows."""

from __future__ import annotations

import threading

import numpy as np
import torch

from lit_mnist.model.module import LitMNIST


class Classifier:
    """Rows of grey levels in, class probabilities out; one forward at a time."""

    def __init__(self, model: LitMNIST) -> None:
        self.model = model.eval()
        self.image_shape: tuple[int, int] = tuple(model.image_shape)
        self.class_names: list[str] = list(model.class_names)
        self._lock = threading.Lock()  # torch's intra-op threads are shared: one forward at a time is fastest

    @property
    def row_size(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """``rows``: (N, H*W) grey levels 0-255; the (N, K) float32 probabilities."""
        if len(rows) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        with self._lock, torch.inference_mode():
            return self.model(batch).numpy()
