"""A few validation digits with their predictions, once per epoch, in TensorBoard (Images tab).

Drawn with PIL (milliseconds), so it costs nothing noticeable even over many epochs."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from mnist_classifier.reports import figures
from mnist_classifier.reports.failures import report_step
from mnist_classifier.reports.tensorboard import add_image, tensorboard_logger


class ValidationSamples(L.Callback):
    """Only the first validation batch is looked at: one small image per epoch."""

    def __init__(self, num_images: int = 16) -> None:
        self.num_images = num_images
        self.report_errors: list[str] = []

    @rank_zero_only
    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or trainer.sanity_checking or tensorboard_logger(trainer) is None:
            return
        with report_step("val_samples", self.report_errors):
            self._draw(trainer, pl_module, batch)

    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any) -> None:
        images, labels = batch[0][: self.num_images], batch[1][: self.num_images]
        with torch.no_grad():
            probs = pl_module(images).float().softmax(1)
        confidence, preds = probs.max(1)
        wrong = (preds != labels).tolist()
        captions = [
            f"{p} {100 * c:.0f}%" + (f" (is {y})" if w else "")
            for p, c, y, w in zip(preds.tolist(), confidence.tolist(), labels.tolist(), wrong, strict=True)
        ]
        add_image(trainer, "val/predictions", figures.digit_grid(images, captions, wrong))
