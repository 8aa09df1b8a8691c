"""Random affine augmentation applied to a whole normalised batch at once (on its device)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mnist_classifier.data.in_memory import MNIST_MEAN, MNIST_STD
from mnist_classifier.errors import ArgumentError

_BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD  # a black pixel after normalisation


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class RandomAffineBatch(torch.nn.Module):
    """Per-image random rotation, scale and shift with one `grid_sample` for the batch."""

    def __init__(
        self, degrees: float = 10.0, translate: float = 0.1, scale: Sequence[float] = (0.9, 1.1)
    ) -> None:
        super().__init__()
        if not _is_number(degrees) or degrees < 0:
            raise ArgumentError("degrees", lambda key: f"{key('degrees')} must be a number >= 0, got {degrees!r}.")
        if not _is_number(translate) or not 0 <= translate < 1:
            raise ArgumentError("translate", lambda key: f"{key('translate')} must be in [0, 1), got {translate!r}.")
        pair = isinstance(scale, Sequence) and len(scale) == 2 and all(_is_number(bound) for bound in scale)
        if not pair or not 0 < scale[0] <= scale[1]:
            raise ArgumentError(
                "scale", lambda key: f"{key('scale')} must be [low, high] with 0 < low <= high, got {scale!r}."
            )
        self.degrees = float(degrees)
        self.translate = float(translate)
        self.scale = (float(scale[0]), float(scale[1]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        uniform = lambda low, high: torch.empty(n, device=images.device).uniform_(low, high)  # noqa: E731
        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180.0)
        zoom = uniform(*self.scale)
        shift_x, shift_y = (uniform(-self.translate, self.translate) * 2 for _ in range(2))
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
        ).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        shifted = F.grid_sample(images - _BACKGROUND, grid, align_corners=False, padding_mode="zeros")
        return shifted + _BACKGROUND
