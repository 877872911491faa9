"""The report's figures: readable for any class count and image shape (their cost: scripts/bench.py --only report)."""

import numpy as np
import pytest

from lit_mnist.apps import plots


def _named(labels) -> list[str]:
    return [label.get_text() for label in labels if label.get_text()]


@pytest.mark.parametrize("k, step", [(10, 1), (60, 1), (61, 2), (200, 4)])
def test_the_heatmap_names_every_class_up_to_60_and_every_step_th_beyond(k, step):
    fig = plots.confusion_figure(np.eye(k, dtype=int), names=[f"c{i}" for i in range(k)], absent=[0])
    ax = fig.axes[0]
    assert _named(ax.get_xticklabels()) == [f"c{i}" for i in range(0, k, step)]
    assert _named(ax.get_yticklabels()) == [f"c{i}" + (" (no rows)" if i == 0 else "") for i in range(0, k, step)]


def test_the_heatmap_renders_to_rgb_pixels():
    pixels = plots.render(plots.confusion_figure(np.eye(3, dtype=int), names=["a", "b", "c"]))
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.min() < pixels.max()


@pytest.mark.parametrize("shape", [(1, 784), (256, 1), (2, 128)])
def test_a_grid_of_images_far_from_square_stays_a_picture_of_sane_size(shape):
    """Unshrunk, 1x784 images would make a PNG 235,520 pixels wide: the grid keeps within 24 inches a side."""
    images = np.random.default_rng(0).integers(0, 256, (24, shape[0] * shape[1]))
    pixels = plots.render(plots.digits_figure(images, [str(i) for i in range(24)], shape, title="odd"))
    assert max(pixels.shape[:2]) <= 100 * plots.MAX_INCHES


def test_a_grid_of_square_digits_keeps_its_size():
    fig = plots.digits_figure(np.zeros((24, 784)), [""] * 24, (28, 28), title="digits")
    assert tuple(fig.get_size_inches()) == pytest.approx((8 * 1.15, 3 * 1.45 + 0.5))
