"""The original notebook's figures, drawn on plain Figures (no pyplot state, no display needed).

Each figure is rendered once (Agg) and the same pixels go to the PNG file and to TensorBoard.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from lit_mnist import atomic

TILE, GAP_X, GAP_Y = 28, 6, 18  # digit size, and room between digits for their captions


def confusion_figure(matrix: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """Seaborn heatmap with annotated counts: x predicted, y truth (as the original)."""
    fig = Figure(figsize=(8, 6.5))
    ax = fig.add_subplot()
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", ax=ax, cbar=True, square=True)
    ax.set(xlabel="Predicted label", ylabel="True label", title=title)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.09, top=0.94)
    return fig


def digits_figure(images: np.ndarray, captions: list[str], columns: int = 8, title: str | None = None) -> Figure:
    """A grid of 28x28 digits, each captioned; drawn as one mosaic image (one axes, fast to render)."""
    images = np.asarray(images, dtype=float).reshape(-1, TILE, TILE)
    rows = max(1, math.ceil(len(images) / columns))
    mosaic = np.full((rows * (TILE + GAP_Y), columns * (TILE + GAP_X)), np.nan)
    fig = Figure(figsize=(columns * 1.15, rows * 1.45 + (0.5 if title else 0.1)))
    ax = fig.add_axes((0, 0, 1, 0.92 if title else 1))
    for i, (image, caption) in enumerate(zip(images, captions)):
        top, left = (i // columns) * (TILE + GAP_Y) + GAP_Y, (i % columns) * (TILE + GAP_X) + GAP_X // 2
        mosaic[top : top + TILE, left : left + TILE] = image
        ax.text(left + TILE / 2, top - 1.5, caption, ha="center", va="bottom", fontsize=7, linespacing=1.0)
    ax.imshow(np.ma.masked_invalid(mosaic), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_facecolor("white")
    ax.axis("off")
    if title:
        fig.suptitle(title, y=0.985)
    return fig


def render(fig: Figure) -> np.ndarray:
    """The figure's pixels (H, W, 3 uint8), drawn once."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(pixels_or_fig: np.ndarray | Figure, path: str | Path) -> np.ndarray:
    pixels = render(pixels_or_fig) if isinstance(pixels_or_fig, Figure) else pixels_or_fig
    with atomic.atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return pixels
