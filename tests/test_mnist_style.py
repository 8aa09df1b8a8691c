"""The MNIST-style preprocessing is written for speed (numpy in place of Pillow's rank filters, counting in
place of sorting); these tests pin that it gives what the plain library calls give, bit for bit: each fast
step against the call it replaces, and whole pictures against find_ink written with those calls."""

from __future__ import annotations

import numpy as np
import pytest
from drawn_digits import STROKES, render
from photo_digits import photo_like
from PIL import Image, ImageFilter

from mnist_classifier.data import mnist_style
from mnist_classifier.data.mnist_style import ImageRejected, center_in_field

SHAPES = [(1, 1), (1, 7), (6, 1), (2, 2), (3, 5), (28, 28), (37, 61)]


def pillow_filter(values: np.ndarray, rank_filter: ImageFilter.Filter) -> np.ndarray:
    return np.asarray(Image.fromarray(values, mode="F").filter(rank_filter), np.float32)


def test_rank_filters_equal_pillows() -> None:
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        for levels in (3, 256, None):  # ties (few gray levels) and none
            values = rng.random(shape).astype(np.float32)
            if levels:
                values = (np.round(values * (levels - 1)) / (levels - 1)).astype(np.float32)
            median = pillow_filter(values, ImageFilter.MedianFilter(3))
            assert np.array_equal(mnist_style._median3x3(values), median), (shape, levels)
            assert np.array_equal(mnist_style._min3x3(values), pillow_filter(values, ImageFilter.MinFilter(3)))


def test_counted_median_and_partitioned_quantile_equal_numpys() -> None:
    rng = np.random.default_rng(1)
    ties = np.array([[0.2, 0.5, 0.5000001, 0.9]], np.float32)  # an even count split in two at 0.5
    for values in [ties, 1 - ties, *(rng.random(shape).astype(np.float32) for shape in SHAPES)]:
        assert mnist_style._mostly_light(values) == (np.median(values) > 0.5)
    for shape in SHAPES:
        for zeros in (0.0, 0.9, 0.9995, 1.0):  # clean paper is mostly exact zeros
            ink = np.where(rng.random(shape) < zeros, 0.0, rng.random(shape)).astype(np.float32)
            rank = int(0.999 * (ink.size - 1))
            assert mnist_style._quantile_999(ink) == np.partition(ink.ravel(), rank)[rank]


def reference_find_ink(gray: np.ndarray) -> np.ndarray:
    """find_ink as first written: np.median, np.pad, np.partition and Pillow's rank filters."""
    image = mnist_style._working_copy(np.asarray(gray, dtype=np.float32))
    if np.median(image) > 0.5:
        image = 1.0 - image
    height, width = image.shape
    block = max(2, max(height, width) // 8)
    rows, cols = -(-height // block), -(-width // block)
    padded = np.pad(image, ((0, rows * block - height), (0, cols * block - width)), mode="edge")
    grid = pillow_filter(padded.reshape(rows, block, cols, block).min(axis=(1, 3)), ImageFilter.MinFilter(3))
    background = mnist_style._resize(grid, width, height, Image.Resampling.BILINEAR)
    ink = np.clip(image - background, 0.0, 1.0)
    rank = int(0.999 * (ink.size - 1))
    strength = float(np.partition(ink.ravel(), rank)[rank])
    if strength < mnist_style.MIN_CONTRAST:
        raise mnist_style.BlankImageError("blank image: no ink found")
    ink = pillow_filter(np.clip(ink / strength, 0.0, 1.0), ImageFilter.MedianFilter(3))
    threshold = min(0.5, max(0.15, mnist_style._otsu(ink)))
    ink = np.where(ink > threshold, ink, 0.0).astype(np.float32)
    if np.count_nonzero(ink) < mnist_style.MIN_INK_PIXELS:
        raise mnist_style.BlankImageError("blank image: no ink found")
    return ink


def pictures() -> list[np.ndarray]:
    """Hand-drawn digits at three sizes, photo-like pictures of them, scans larger than the working size,
    and small random pictures (some blank): float gray in [0, 1], as predict.py and serve.py decode them."""
    rng = np.random.default_rng(2)
    drawn = [render(digit, size=size) for digit in STROKES for size in (28, 90, 200)]
    small = [255 - np.asarray(render(digit, size=28)) for digit in STROKES]  # white on black, like MNIST
    photos = [photo_like(digit, rng).convert("L") for digit in small]
    scans = [render(digit, size=400).resize((400, 520)) for digit in (2, 8)]
    gray = [np.asarray(picture, np.float32) / 255 for picture in drawn + photos + scans]
    noise = [rng.random(rng.integers(1, 41, 2)) ** rng.uniform(1, 8) for _ in range(40)]
    flat = [np.full((50, 50), 0.9), np.full((3, 4), 0.2)]  # blank pages
    return gray + [np.asarray(values, np.float32) for values in noise + flat]


def test_whole_pictures_equal_the_plain_library_calls() -> None:
    outcomes = []
    for gray in pictures():
        try:
            expected = center_in_field(reference_find_ink(gray))
        except ImageRejected as err:
            with pytest.raises(type(err), match=str(err)):
                mnist_style.mnist_style(gray)
            outcomes.append("rejected")
            continue
        assert np.array_equal(mnist_style.mnist_style(gray), expected), gray.shape
        outcomes.append("ok")
    assert outcomes.count("ok") >= 50 and outcomes.count("rejected") >= 5  # both paths are compared
