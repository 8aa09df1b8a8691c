"""A few validation digits with their predictions, once per epoch, in TensorBoard (Images tab)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from mnist_classifier.reports import figures
from mnist_classifier.reports.tensorboard import add_image, tensorboard_logger


class ValidationSamples(L.Callback):
    """Only the first validation batch is looked at, so the cost is one small figure per epoch."""

    def __init__(self, num_images: int = 16) -> None:
        self.num_images = num_images

    @rank_zero_only
    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or trainer.sanity_checking or tensorboard_logger(trainer) is None:
            return
        images, labels = batch[0][: self.num_images], batch[1][: self.num_images]
        with torch.no_grad():
            probs = pl_module(images).float().softmax(1)
        confidence, preds = probs.max(1)
        titles = [f"{p} ({100 * c:.0f}%)" + ("" if p == y else f" ≠{y}") for p, c, y in
                  zip(preds.tolist(), confidence.tolist(), labels.tolist())]
        figure = figures.digit_grid(images, titles, f"epoch {trainer.current_epoch}")
        add_image(trainer, "val/predictions", figures.render(figure))
