"""The recipes' LightningModule less its own per-step work (benchmarks/run.py's epoch rows): a training
step that returns the loss and nothing else, no metric updates, no logging. What the Trainer then costs
over a plain loop is Lightning's own loop and hooks."""

from __future__ import annotations

import torch

from mnist_classifier.models import MNISTClassifier


class BareClassifier(MNISTClassifier):
    """The same network, loss, optimizer, schedule, precision and layout; the epoch-end bookkeeping that
    reads the skipped metrics is skipped too."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch)[0]

    def on_train_epoch_end(self) -> None:
        pass

    def on_train_end(self) -> None:
        pass
