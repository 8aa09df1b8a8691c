"""Digits drawn by hand, as strokes of a pen (mouse or finger) in a unit square: rendered to pictures for
the predict tests, and replayed as real pointer events on the served page's canvas in the browser test."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]

# Each digit as a person draws it: one or two strokes, (x, y) from the top-left corner.
STROKES: dict[int, list[Stroke]] = {
    0: [[(0.50, 0.12), (0.32, 0.20), (0.24, 0.42), (0.26, 0.68), (0.40, 0.86), (0.58, 0.88), (0.72, 0.72),
         (0.76, 0.46), (0.68, 0.22), (0.50, 0.12)]],
    1: [[(0.38, 0.28), (0.55, 0.12), (0.55, 0.88)]],
    2: [[(0.26, 0.30), (0.36, 0.16), (0.55, 0.12), (0.72, 0.22), (0.72, 0.38), (0.55, 0.56), (0.26, 0.86),
         (0.78, 0.86)]],
    3: [[(0.26, 0.18), (0.50, 0.12), (0.72, 0.22), (0.70, 0.38), (0.48, 0.48), (0.72, 0.58), (0.74, 0.75),
         (0.55, 0.88), (0.26, 0.82)]],
    4: [[(0.58, 0.12), (0.22, 0.62), (0.80, 0.62)], [(0.62, 0.34), (0.62, 0.90)]],
    5: [[(0.72, 0.14), (0.34, 0.14), (0.30, 0.46), (0.50, 0.40), (0.70, 0.50), (0.72, 0.72), (0.55, 0.88),
         (0.28, 0.82)]],
    6: [[(0.66, 0.12), (0.44, 0.26), (0.30, 0.52), (0.30, 0.76), (0.48, 0.88), (0.68, 0.78), (0.68, 0.58),
         (0.50, 0.50), (0.32, 0.62)]],
    7: [[(0.22, 0.15), (0.78, 0.15), (0.45, 0.88)]],
    8: [[(0.50, 0.48), (0.30, 0.35), (0.32, 0.18), (0.50, 0.12), (0.68, 0.18), (0.68, 0.35), (0.50, 0.48),
         (0.28, 0.62), (0.30, 0.82), (0.50, 0.90), (0.70, 0.82), (0.72, 0.62), (0.50, 0.48)]],
    9: [[(0.70, 0.32), (0.56, 0.14), (0.36, 0.18), (0.30, 0.36), (0.44, 0.50), (0.66, 0.44), (0.70, 0.30),
         (0.68, 0.60), (0.60, 0.88)]],
}  # fmt: skip


def render(digit: int, size: int = 200, pen: float = 0.07) -> Image.Image:
    """Dark ink on light paper, as a photo or a scan of the drawing would show it."""
    image = Image.new("L", (size, size), 235)
    draw = ImageDraw.Draw(image)
    for stroke in STROKES[digit]:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill=30, width=round(pen * size), joint="curve")
        radius = pen * size / 2
        for x, y in (points[0], points[-1]):  # round pen ends
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=30)
    return image


def write_drawn_digits(folder: Path) -> list[tuple[Path, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for digit in STROKES:
        path = folder / f"drawn_{digit}.png"
        render(digit).save(path)
        written.append((path, digit))
    return written
