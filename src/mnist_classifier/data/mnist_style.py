"""A picture of a handwritten digit turned into an MNIST digit, the way MNIST itself was made: the digit's
bounding box scaled to 20 pixels (longer side, aspect kept, anti-aliased), then placed in a 28x28 field
with its centre of mass at the centre. Photos and scans first need the ink found: dark ink on light paper
is inverted, the paper's tone and shading are subtracted, and faint noise is dropped.

`preprocess=mnist` (the default) does all of it; `preprocess=none` takes 28x28 white-on-black images as
they are. Everything here is small numpy/Pillow work on one image; the model sees whole batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

FIELD, BOX = 28, 20  # MNIST: a 20x20 box in a 28x28 field
WORK_SIZE = 256  # larger pictures are first reduced to this (longer side): the ink survives, the time does not
MIN_CONTRAST = 0.08  # ink this close to the paper's gray is no ink
MIN_INK_PIXELS = 6


class ImageRejected(Exception):
    """The input cannot be used; the message is its status in predictions.csv."""


class BlankImageError(ImageRejected):
    """No ink in the picture (an empty page, a flat color)."""


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float image."""
    resample = Image.Resampling.BOX if width < gray.shape[1] else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(gray, mode="F").resize((width, height), resample), dtype=np.float32)


def _working_copy(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    scale = WORK_SIZE / max(height, width)
    if scale >= 1:
        return gray
    return _resize(gray, max(1, round(width * scale)), max(1, round(height * scale)))


def _background(ink_bright: np.ndarray) -> np.ndarray:
    """The paper under the ink: the darkest values of a coarse grid of blocks (strokes are thinner than
    a block), smoothed, then stretched back to full size. Follows slow shading across the page."""
    height, width = ink_bright.shape
    block = max(2, max(height, width) // 8)
    rows, cols = -(-height // block), -(-width // block)
    padded = np.pad(ink_bright, ((0, rows * block - height), (0, cols * block - width)), mode="edge")
    grid = padded.reshape(rows, block, cols, block).min(axis=(1, 3))
    grid_image = Image.fromarray(grid.astype(np.float32), mode="F").filter(ImageFilter.MinFilter(3))
    return np.asarray(grid_image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]: the split that best separates ink from what is left."""
    bins = 64
    weights = np.bincount(np.minimum((values * bins).astype(np.int64), bins - 1).ravel(), minlength=bins)
    weights = weights.astype(np.float64)
    centers = (np.arange(bins) + 0.5) / bins
    below = np.cumsum(weights)
    above = below[-1] - below
    moment = np.cumsum(weights * centers)
    mean_below = moment / np.maximum(below, 1)
    mean_above = (moment[-1] - moment) / np.maximum(above, 1)
    spread = below * above * (mean_below - mean_above) ** 2
    return float(np.argmax(spread) + 1) / bins


def find_ink(gray: np.ndarray) -> np.ndarray:
    """Ink as bright values on 0, whatever the polarity, paper tone, shading and noise of the picture."""
    image = _working_copy(np.asarray(gray, dtype=np.float32))  # Pillow's float mode is 32-bit
    if np.median(image) > 0.5:  # the paper is most of the picture: light paper means dark ink
        image = 1.0 - image
    ink = np.clip(image - _background(image), 0.0, 1.0)
    flat = ink.ravel()
    strength = float(np.partition(flat, int(0.999 * (flat.size - 1)))[int(0.999 * (flat.size - 1))])
    if strength < MIN_CONTRAST:
        raise BlankImageError("blank image: no ink found")
    ink = np.clip(ink / strength, 0.0, 1.0)
    # speckle noise off, strokes kept; then everything under the ink/paper split set to 0
    ink = np.asarray(Image.fromarray(ink, mode="F").filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    threshold = min(0.5, max(0.15, _otsu(ink)))
    ink = np.where(ink > threshold, ink, 0.0).astype(np.float32)
    if np.count_nonzero(ink) < MIN_INK_PIXELS:
        raise BlankImageError("blank image: no ink found")
    return ink


def _ink_span(profile: np.ndarray) -> tuple[int, int]:
    """Rows (or columns) of the digit: the bulk of the ink (all but 0.5% at each end), widened to the ink
    that touches it, so stroke ends stay in and a speck of dirt off to the side stays out."""
    cumulative = np.cumsum(profile) / profile.sum()
    first, last = int(np.searchsorted(cumulative, 0.005)), int(np.searchsorted(cumulative, 0.995))
    while first > 0 and profile[first - 1] > 0:
        first -= 1
    while last + 1 < len(profile) and profile[last + 1] > 0:
        last += 1
    return first, last + 1


def center_in_field(ink: np.ndarray) -> np.ndarray:
    """MNIST's own normalisation: the ink's box scaled to 20 px (longer side), placed in 28x28 with its
    centre of mass at the centre."""
    top, bottom = _ink_span(ink.sum(axis=1))
    left, right = _ink_span(ink.sum(axis=0))
    digit = ink[top:bottom, left:right]
    height, width = digit.shape
    scale = BOX / max(height, width)
    digit = np.clip(_resize(digit, max(1, round(width * scale)), max(1, round(height * scale))), 0.0, None)
    digit = np.clip(digit / max(float(digit.max()), 1e-6), 0.0, 1.0)
    height, width = digit.shape
    rows, cols = np.indices(digit.shape)
    mass = float(digit.sum())
    center_row, center_col = (rows * digit).sum() / mass, (cols * digit).sum() / mass
    top = int(np.clip(round(FIELD / 2 - center_row - 0.5), 0, FIELD - height))
    left = int(np.clip(round(FIELD / 2 - center_col - 0.5), 0, FIELD - width))
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def mnist_style(gray: np.ndarray) -> np.ndarray:
    """`preprocess=mnist`: any picture of one digit -> 28x28 float pixels in [0, 1], white on black."""
    return center_in_field(find_ink(gray))


def as_is(gray: np.ndarray) -> np.ndarray:
    """`preprocess=none`: the image is already an MNIST digit."""
    if gray.shape != (FIELD, FIELD):
        raise ImageRejected(
            f"image is {gray.shape[1]}x{gray.shape[0]}, not 28x28: preprocess=none takes MNIST-formatted "
            f"digits only; use preprocess=mnist for other pictures"
        )
    return gray.astype(np.float32)


PREPROCESSORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"mnist": mnist_style, "none": as_is}
