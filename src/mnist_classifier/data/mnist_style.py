"""A picture of a handwritten digit turned into an MNIST digit, the way MNIST itself was made: the digit's
bounding box scaled to 20 pixels (longer side, aspect kept, anti-aliased), then placed in a 28x28 field
with its centre of mass at the centre. Photos and scans first need the ink found: dark ink on light paper
is inverted, the paper's tone and shading are subtracted, and faint noise is dropped.

`preprocess=mnist` (the default) does all of it; `preprocess=none` takes 28x28 white-on-black images as
they are. Everything here is small numpy/Pillow work on one image; the model sees whole batches. It runs
for every picture predict.py and serve.py are given, so it is written for speed: resizing is Pillow's,
but Pillow's rank filters (min, median on a float image: slow) and numpy's median and partition are
replaced by numpy code that gives the same values bit for bit (tests/test_mnist_style.py); and few calls,
since on a 28x28 drawing each call's overhead is most of its cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

FIELD, BOX = 28, 20  # MNIST: a 20x20 box in a 28x28 field
WORK_SIZE = 256  # larger pictures are first reduced to this (longer side): the ink survives, the time does not
MIN_CONTRAST = 0.08  # ink this close to the paper's gray is no ink
MIN_INK_PIXELS = 6
FIELD_ROWS, FIELD_COLS = np.indices((FIELD, FIELD))  # pixel coordinates for the centre of mass


class ImageRejected(Exception):
    """The input cannot be used; the message is its status in predictions.csv."""


class BlankImageError(ImageRejected):
    """No ink in the picture (an empty page, a flat color)."""


def _as_image(values: np.ndarray) -> Image.Image:
    height, width = values.shape
    return Image.frombuffer("F", (width, height), np.ascontiguousarray(values, np.float32), "raw", "F", 0, 1)


def _as_array(image: Image.Image) -> np.ndarray:
    """Read-only float32 pixels (the cheapest way out of Pillow)."""
    return np.frombuffer(image.tobytes(), np.float32).reshape(image.height, image.width)


def _resize(gray: np.ndarray, width: int, height: int, resample: Image.Resampling | None = None) -> np.ndarray:
    """Resize of a float image; anti-aliased (box) when it shrinks, bilinear when it grows."""
    if resample is None:
        resample = Image.Resampling.BOX if width < gray.shape[1] else Image.Resampling.BILINEAR
    return _as_array(_as_image(gray).resize((width, height), resample))


def _working_copy(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    scale = WORK_SIZE / max(height, width)
    if scale >= 1:
        return gray
    return _resize(gray, max(1, round(width * scale)), max(1, round(height * scale)))


def _mostly_light(image: np.ndarray) -> bool:
    """`np.median(image) > 0.5`, counted instead of sorted: the median is above 0.5 when more than half of
    the values are; only an even count split exactly in two needs the two middle values."""
    twice_above = 2 * np.count_nonzero(image > 0.5)
    if twice_above != image.size:
        return bool(twice_above > image.size)
    return bool(np.median(image) > 0.5)


def _edge_padded(values: np.ndarray) -> np.ndarray:
    """One pixel more on every side, copies of the edge: what Pillow's rank filters see (np.pad is slower)."""
    height, width = values.shape
    padded = np.empty((height + 2, width + 2), values.dtype)
    padded[1:-1, 1:-1] = values
    padded[0, 1:-1], padded[-1, 1:-1] = values[0], values[-1]
    padded[:, 0], padded[:, -1] = padded[:, 1], padded[:, -2]
    return padded


def _min3x3(values: np.ndarray) -> np.ndarray:
    """Pillow's MinFilter(3): the minimum of each pixel's 3x3 neighbourhood, taken along rows, then columns."""
    padded = _edge_padded(values)
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The median of three, element by element: max(min(a, b), min(max(a, b), c))."""
    smaller, larger = np.minimum(a, b), np.maximum(a, b)
    np.minimum(larger, c, out=larger)
    return np.maximum(smaller, larger, out=smaller)


def _median3x3(values: np.ndarray) -> np.ndarray:
    """Pillow's MedianFilter(3), the same values 10-30x faster on a float image. Each column of three is
    sorted (low, middle, high); the median of nine is the median of the highest low, the middle middle
    and the lowest high of three neighbouring columns. In place where it can be (`out=`): on a photo,
    fresh temporaries cost more than the arithmetic."""
    padded = _edge_padded(values)
    above, center, below = padded[:-2], padded[1:-1], padded[2:]
    low, high = np.minimum(above, center), np.maximum(above, center)
    middle = np.minimum(high, below)
    np.maximum(high, below, out=high)
    low, middle = np.minimum(low, middle), np.maximum(low, middle, out=middle)
    highest_low = np.maximum(low[:, :-2], low[:, 1:-1])
    np.maximum(highest_low, low[:, 2:], out=highest_low)
    lowest_high = np.minimum(high[:, :-2], high[:, 1:-1])
    np.minimum(lowest_high, high[:, 2:], out=lowest_high)
    return _median3(highest_low, _median3(middle[:, :-2], middle[:, 1:-1], middle[:, 2:]), lowest_high)


def _block_min(values: np.ndarray, block: int) -> np.ndarray:
    """The minimum of every `block` rows; the last block may be shorter."""
    whole = values.shape[0] // block * block
    minima = values[:whole].reshape(-1, block, values.shape[1]).min(axis=1)
    if whole == values.shape[0]:
        return minima
    return np.vstack([minima, values[whole:].min(axis=0)])


def _background(ink_bright: np.ndarray) -> np.ndarray:
    """The paper under the ink: the darkest values of a coarse grid of blocks (strokes are thinner than
    a block), smoothed, then stretched back to full size. Follows slow shading across the page."""
    height, width = ink_bright.shape
    block = max(2, max(height, width) // 8)
    grid = _min3x3(_block_min(_block_min(ink_bright, block).T, block).T)
    if not grid.any():  # clean paper (nearly every MNIST-style digit): stretching zeros gives zeros
        return np.zeros_like(ink_bright)
    return _resize(grid, width, height, Image.Resampling.BILINEAR)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]: the split that best separates ink from what is left."""
    bins = 64
    weights = np.bincount((values * bins).astype(np.uint8).ravel(), minlength=bins + 1).astype(np.float64)
    weights[bins - 1] += weights[bins]  # 1.0 is in the top bin
    weights = weights[:bins]
    centers = (np.arange(bins) + 0.5) / bins
    below = np.cumsum(weights)
    above = below[-1] - below
    moment = np.cumsum(weights * centers)
    mean_below = moment / np.maximum(below, 1)
    mean_above = (moment[-1] - moment) / np.maximum(above, 1)
    spread = below * above * (mean_below - mean_above) ** 2
    return float(np.argmax(spread) + 1) / bins


def _quantile_999(ink: np.ndarray) -> float:
    """The value 99.9% of the way up (`np.partition`'s, no interpolation) of ink >= 0. Clean paper is mostly
    exact zeros, on which np.partition is 20x slower, so only the ink above 0 is partitioned."""
    rank = int(0.999 * (ink.size - 1))
    above = ink[ink > 0]
    rank -= ink.size - above.size  # the zeros come first
    return float(np.partition(above, rank)[rank]) if rank >= 0 else 0.0


def find_ink(gray: np.ndarray) -> np.ndarray:
    """Ink as bright values on 0, whatever the polarity, paper tone, shading and noise of the picture."""
    image = _working_copy(np.asarray(gray, dtype=np.float32))  # Pillow's float mode is 32-bit
    if _mostly_light(image):  # the paper is most of the picture: light paper means dark ink
        image = 1.0 - image
    ink = np.clip(image - _background(image), 0.0, 1.0)
    strength = _quantile_999(ink)
    if strength < MIN_CONTRAST:
        raise BlankImageError("blank image: no ink found")
    ink /= strength
    np.clip(ink, 0.0, 1.0, out=ink)
    ink = _median3x3(ink)  # speckle noise off, strokes kept; then everything under the ink/paper split set to 0
    threshold = min(0.5, max(0.15, _otsu(ink)))
    ink = np.where(ink > threshold, ink, np.float32(0.0))
    if np.count_nonzero(ink) < MIN_INK_PIXELS:
        raise BlankImageError("blank image: no ink found")
    return ink


def _ink_span(profile: np.ndarray) -> tuple[int, int]:
    """Rows (or columns) of the digit: the bulk of the ink (all but 0.5% at each end), widened to the ink
    that touches it, so stroke ends stay in and a speck of dirt off to the side stays out."""
    cumulative = np.cumsum(profile) / profile.sum()
    first, last = (int(end) for end in np.searchsorted(cumulative, (0.005, 0.995)))
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
    digit = np.maximum(_resize(digit, max(1, round(width * scale)), max(1, round(height * scale))), 0.0)
    digit /= max(float(digit.max()), 1e-6)
    np.minimum(digit, 1.0, out=digit)
    height, width = digit.shape
    rows, cols = FIELD_ROWS[:height, :width], FIELD_COLS[:height, :width]
    mass = float(digit.sum())
    center_row, center_col = (rows * digit).sum() / mass, (cols * digit).sum() / mass
    top = min(max(round(FIELD / 2 - center_row - 0.5), 0), FIELD - height)
    left = min(max(round(FIELD / 2 - center_col - 0.5), 0), FIELD - width)
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
