"""The parity tests' small generated images: the layers' semantics on them, not MNIST."""

import numpy as np
import pytest

ROWS = 1500  # 1,200 train (960 after validation: two batches of 500), 300 test


@pytest.fixture(scope="module")
def images():
    """Learnable 12x12 images of 4 classes: each class brightens its own quarter, over noise (raw 0-255)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, ROWS)
    x = rng.integers(0, 90, (ROWS, 12, 12))
    for k in range(4):
        x[y == k, (k // 2) * 6:(k // 2) * 6 + 6, (k % 2) * 6:(k % 2) * 6 + 6] += 160
    return x.reshape(ROWS, -1).astype(np.uint8), y.astype(np.int64)
