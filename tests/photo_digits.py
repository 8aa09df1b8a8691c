"""Pictures of handwritten digits that are not MNIST-formatted, made from MNIST test digits: dark ink on
light paper of uneven tone, noise, blur, 3-9x larger than MNIST, off-centre on a bigger canvas, saved as
PNG or JPEG. Used by the predict tests and the benchmark (the same generator, the same pictures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def photo_like(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """`digit`: uint8 28x28, white on black (MNIST). Returns an RGB or grayscale picture."""
    scale = rng.uniform(3, 9)
    size = round(28 * scale)
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255
    height, width = round(size * rng.uniform(1.3, 2.2)), round(size * rng.uniform(1.3, 2.2))
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    strokes = np.zeros((height, width), np.float32)
    strokes[top : top + size, left : left + size] = ink
    # paper: a base tone with shading across the page in a random direction
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * cols / width + np.sin(angle) * rows / height).astype(np.float32)
    paper = rng.uniform(0.65, 0.95) + rng.uniform(0.05, 0.2) * (ramp - ramp.mean())
    picture = paper * (1 - strokes) + rng.uniform(0.03, 0.3) * strokes
    blurred = Image.fromarray(np.clip(picture * 255, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * scale / 3)
    )
    noisy = np.asarray(blurred, np.float32) + rng.normal(0, rng.uniform(2, 12), (height, width))
    gray = np.clip(noisy, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # a colour photo of tinted paper
        tint = rng.uniform(0.85, 1.0, 3)
        return Image.fromarray(np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8), "RGB")
    return Image.fromarray(gray, "L")


def write_photo_digits(
    images: np.ndarray, labels: np.ndarray, folder: Path, count: int, seed: int = 0
) -> list[tuple[Path, int]]:
    """`count` pictures from the first MNIST digits given, half PNG and half JPEG; (path, label) each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(count):
        picture = photo_like(images[index], rng)
        path = folder / f"{index:05d}_{labels[index]}.{'png' if index % 2 else 'jpg'}"
        picture.save(path, quality=int(rng.integers(70, 96))) if path.suffix == ".jpg" else picture.save(path)
        written.append((path, int(labels[index])))
    return written
