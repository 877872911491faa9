"""The report's figures: drawn on their own Agg canvas from the start, readable for any class count."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lit_mnist.apps import plots


def _named(labels) -> list[str]:
    return [label.get_text() for label in labels if label.get_text()]


def test_every_figure_has_its_agg_canvas_before_anything_is_drawn_on_it():
    """Seaborn measures tick labels with the figure's renderer: without a canvas of its own, each measurement draws
    the whole figure again (a heatmap of 100 classes took 22 s and 5.7 GB so, 0.3 s and 0.3 GB on its canvas)."""
    assert isinstance(plots.figure().canvas, FigureCanvasAgg)
    assert isinstance(plots.confusion_figure(np.eye(3, dtype=int)).canvas, FigureCanvasAgg)
    assert isinstance(plots.digits_figure(np.zeros((2, 4)), ["a", "b"], (2, 2)).canvas, FigureCanvasAgg)


@pytest.mark.parametrize("k, step", [(10, 1), (60, 1), (61, 2), (1000, 17)])
def test_the_heatmap_names_every_class_up_to_60_and_every_step_th_beyond(k, step):
    fig = plots.confusion_figure(np.eye(k, dtype=int), names=[f"c{i}" for i in range(k)], absent=[0])
    ax = fig.axes[0]
    assert _named(ax.get_xticklabels()) == [f"c{i}" for i in range(0, k, step)]
    assert _named(ax.get_yticklabels()) == [f"c{i}" + (" (no rows)" if i == 0 else "") for i in range(0, k, step)]
    assert plots.render(fig).shape[2] == 3


@pytest.mark.parametrize("shape", [(1, 784), (256, 1), (2, 128)])
def test_a_grid_of_images_far_from_square_stays_a_picture_of_sane_size(shape):
    """1x784 images once made a PNG 235,520 pixels wide: the grid is shrunk to 24 inches at most a side."""
    images = np.random.default_rng(0).integers(0, 256, (24, shape[0] * shape[1]))
    pixels = plots.render(plots.digits_figure(images, [str(i) for i in range(24)], shape, title="odd"))
    assert max(pixels.shape[:2]) <= 100 * plots.MAX_INCHES


def test_a_grid_of_square_digits_keeps_its_size():
    fig = plots.digits_figure(np.zeros((24, 784)), [""] * 24, (28, 28), title="digits")
    assert tuple(fig.get_size_inches()) == pytest.approx((8 * 1.15, 3 * 1.45 + 0.5))
