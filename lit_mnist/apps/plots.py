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

MAX_ANNOTATED = 20  # classes up to which each cell of the heatmap shows its count
MAX_TICK_LABELS = 60  # class names on each axis of the heatmap, at most
MAX_INCHES = 24  # the longer side of a grid of images, at most (2,400 pixels)


def confusion_figure(matrix: np.ndarray, names: list[str] | None = None, title: str = "Confusion matrix",
                     absent: list[int] = ()) -> Figure:
    """Seaborn heatmap, x predicted, y truth (as the original), each class named (``names``, else its label);
    counts written in the cells up to 20 classes, every class named up to 60. ``absent``: classes with no test rows,
    marked on the y axis."""
    k = len(matrix)
    names = [str(n) for n in (names or range(k))]
    rows = [f"{n} (no rows)" if i in absent else n for i, n in enumerate(names)]
    step = math.ceil(k / MAX_TICK_LABELS)  # beyond that, every step-th class is named: the others' names would overlap
    names, rows = ([n if i % step == 0 else "" for i, n in enumerate(labels)] for labels in (names, rows))
    side = min(8 + max(0, k - 10) * 0.3, 30)
    fig = figure(figsize=(side, side * 0.8))
    ax = fig.add_subplot()
    sns.heatmap(matrix, annot=k <= MAX_ANNOTATED, fmt="d", cmap="Blues", ax=ax, cbar=True, square=True,
                xticklabels=names, yticklabels=rows)
    ax.set(xlabel="Predicted", ylabel="True", title=title)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.1, top=0.94)
    return fig


def digits_figure(images: np.ndarray, captions: list[str], image_shape: tuple[int, ...], columns: int = 8,
                  title: str | None = None) -> Figure:
    """A grid of images (rows of ``image_shape``: grey levels, or each pixel's R, G, B in turn), each captioned;
    drawn as one mosaic image (one axes, fast to render)."""
    height, width, *channels = image_shape
    gap_x, gap_y = max(2, round(width * 0.2)), max(6, round(height * 0.65))  # room for the captions
    images = np.asarray(images, dtype=float).reshape(-1, height, width, *channels)
    rows = max(1, math.ceil(len(images) / columns))
    # white between the images: NaN masks a grey mosaic; a colour one is drawn as RGB(A) of 0-1, its gaps transparent
    mosaic = np.full((rows * (height + gap_y), columns * (width + gap_x), *([4] if channels else [])), np.nan)
    aspect = width / height
    size = (columns * 1.15 * max(1.0, aspect), rows * 1.45 / min(1.0, aspect) + (0.5 if title else 0.1))
    # images far from square (1x784, say) would make a figure hundreds of inches long: each side is bounded, and the
    # mosaic keeps its proportions inside
    fig = figure(figsize=tuple(min(side, MAX_INCHES) for side in size))
    ax = fig.add_axes((0, 0, 1, 0.92 if title else 1))
    for i, (image, caption) in enumerate(zip(images, captions)):
        top, left = (i // columns) * (height + gap_y) + gap_y, (i % columns) * (width + gap_x) + gap_x // 2
        mosaic[top : top + height, left : left + width] = (np.concatenate([image / 255, np.ones((height, width, 1))], 2)
                                                           if channels else image)
        ax.text(left + width / 2, top - height * 0.05, caption, ha="center", va="bottom", fontsize=7, linespacing=1.0)
    if channels:
        ax.imshow(np.nan_to_num(mosaic, nan=0.0), interpolation="nearest")
    else:
        ax.imshow(np.ma.masked_invalid(mosaic), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_facecolor("white")
    ax.axis("off")
    if title:
        fig.suptitle(title, y=0.985)
    return fig


def figure(**options) -> Figure:
    """A Figure on an Agg canvas from the start: seaborn measures tick labels with the figure's renderer, and without
    a canvas of its own each measurement costs a draw of the whole figure (docs/performance.md)."""
    fig = Figure(**options)
    FigureCanvasAgg(fig)
    return fig


def render(fig: Figure) -> np.ndarray:
    """The pixels (H, W, 3 uint8) of a figure made by :func:`figure`, drawn once."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_png(pixels_or_fig: np.ndarray | Figure, path: str | Path) -> np.ndarray:
    pixels = render(pixels_or_fig) if isinstance(pixels_or_fig, Figure) else pixels_or_fig
    with atomic.atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return pixels
