"""Small random affine distortions of a batch of digits, on whatever device the batch is on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    x: torch.Tensor, image_shape: tuple[int, ...], degrees: float = 10.0, shift: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1), generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate (+-degrees), shift (+-shift of the size) and scale each image (rows of ``image_shape``, ``(H, W)`` or
    ``(H, W, C)`` channels-last) independently, its channels together.

    One affine_grid + grid_sample for the whole batch: no per-image Python, no host round trip.
    """
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.empty(n, device=x.device).uniform_(low, high, generator=generator)

    angle = uniform(-degrees, degrees) * (math.pi / 180)
    zoom = uniform(*scale)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    tx, ty = uniform(-2 * shift, 2 * shift), uniform(-2 * shift, 2 * shift)  # grid units span 2 per width
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    height, width, *channels = image_shape
    images = x.float().reshape(n, height, width, *channels or [1]).permute(0, 3, 1, 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
    # bilinear weights can overshoot 255 by a rounding error
    return out.clamp_(0, 255).permute(0, 2, 3, 1).reshape(n, -1)
