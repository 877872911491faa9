"""The original notebook's figures, drawn on plain Figures (no pyplot state, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from lit_mnist import atomic


def confusion_figure(matrix: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """Seaborn heatmap with annotated counts: x predicted, y truth (as the original)."""
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.add_subplot()
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", ax=ax, cbar=True, square=True)
    ax.set(xlabel="Predicted label", ylabel="True label", title=title)
    return fig


def digits_figure(images: np.ndarray, captions: list[str], columns: int = 8, title: str | None = None) -> Figure:
    """A grid of 28x28 digits, each captioned."""
    rows = max(1, math.ceil(len(images) / columns))
    fig = Figure(figsize=(columns * 1.2, rows * 1.35 + (0.4 if title else 0)), layout="constrained")
    for i, (image, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(np.asarray(image).reshape(28, 28), cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def save_png(fig: Figure, path: str | Path) -> None:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
