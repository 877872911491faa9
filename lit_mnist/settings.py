"""Where data lives: one folder, set by LIT_MNIST_DATA_DIR (default ./data)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("LIT_MNIST_DATA_DIR", "data"))


def cache_dir() -> Path:
    """Parsed CSVs are cached here as .npz, keyed by the source file's content."""
    return Path(os.environ.get("LIT_MNIST_CACHE_DIR", data_dir() / "cache"))
