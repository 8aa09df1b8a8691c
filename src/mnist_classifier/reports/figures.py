"""The figures, as matplotlib Figures (object API: no pyplot state, works headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from mnist_classifier.data.in_memory import denormalize
from mnist_classifier.utils.atomic import write_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure  # lazy: keeps train.py's start-up short

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def training_curves(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Train/val loss and val accuracy per epoch."""
    fig = _figure(10, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    for key, style in (("train/loss", "o-"), ("val/loss", "s-")):
        points = [(e, row[key]) for e, row in zip(epochs, history, strict=True) if row.get(key) is not None]
        if points:
            loss_ax.plot(*zip(*points, strict=True), style, label=key)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log")
    loss_ax.legend()
    points = [
        (e, 100 * row["val/acc"]) for e, row in zip(epochs, history, strict=True) if row.get("val/acc") is not None
    ]
    if points:
        acc_ax.plot(*zip(*points, strict=True), "s-", color="tab:green", label="val/acc")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def confusion_matrix(counts: torch.Tensor) -> Figure:
    """Counts annotated; colour = share of the true class (row-normalised). matplotlib's own heatmap:
    seaborn's would add 0.3-0.5 s of imports (pandas) to every training run's reports."""
    counts = counts.cpu()
    share = (counts / counts.sum(1, keepdim=True).clamp(min=1)).numpy()
    fig = _figure(8, 7)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of true class")
    for (row, column), count in np.ndenumerate(counts.numpy()):
        color = "white" if share[row, column] > 0.5 else "black"  # readable on the dark cells too
        ax.text(column, row, f"{count:d}", ha="center", va="center", fontsize=8, color=color)
    classes = range(len(share))
    title = f"Test confusion matrix ({int(counts.sum())} images)"
    ax.set(xticks=classes, yticks=classes, xlabel="predicted", ylabel="true", title=title)
    return fig


def per_class_accuracy(accuracy: torch.Tensor) -> Figure:
    values = 100 * accuracy.cpu()
    fig = _figure(8, 3.5)
    ax = fig.subplots()
    digits = range(len(values))
    ax.bar(digits, values.numpy(), color="tab:blue")
    low = max(0.0, float(values.min()) - 2)
    ax.set(xticks=digits, xlabel="digit", ylabel="accuracy (%)", ylim=(low, 100), title="Per-class test accuracy")
    for i, v in enumerate(values.tolist()):
        ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    return fig


def digit_grid(
    images: torch.Tensor,
    captions: Sequence[str],
    wrong: Sequence[bool],
    title: str | None = None,
    columns: int = 8,
    scale: int = 2,
) -> np.ndarray:
    """Normalised (N, 1, 28, 28) digits with a caption each (one or more lines; wrong predictions in red),
    as RGB pixels. Drawn with PIL in milliseconds, where a matplotlib subplot per digit takes 1-2 s."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    pixels = (255 * (1 - denormalize(images.float().cpu())[:, 0])).to(torch.uint8).numpy()
    size = 28 * scale
    caption_h = 2 + 13 * max((caption.count("\n") + 1 for caption in captions), default=1)
    cell_w, cell_h = max(size, 78) + 12, size + caption_h + 6
    top = 24 if title else 0
    rows = max(1, -(-len(pixels) // columns))
    canvas = Image.new("RGB", (columns * cell_w, top + rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((canvas.width // 2, 4), title, fill="black", font=ImageFont.load_default(size=14), anchor="ma")
    for i, (digit, caption, is_wrong) in enumerate(zip(pixels, captions, wrong, strict=True)):
        x, y = (i % columns) * cell_w + 6, top + (i // columns) * cell_h + 2
        draw.multiline_text((x, y), caption, fill="red" if is_wrong else "black", font=font, spacing=2)
        canvas.paste(Image.fromarray(digit).resize((size, size), Image.Resampling.NEAREST), (x, y + caption_h))
    return np.asarray(canvas)


def render(fig: Figure) -> np.ndarray:
    """Draw once to RGB pixels (H, W, 3): the same pixels go to the PNG file and to TensorBoard."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(pixels: np.ndarray, path: Path) -> None:
    write_with(path, lambda file: Image.fromarray(pixels).save(file, format="PNG"))
