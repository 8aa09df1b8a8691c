"""plots/curves.png at the end of training: train/val loss and val accuracy per epoch."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from mnist_classifier.models.run_history import epochs_of
from mnist_classifier.reports import figures
from mnist_classifier.reports.failures import report_step

log = logging.getLogger(__name__)


class TrainingCurves(L.Callback):
    def __init__(self, output_dir: str) -> None:
        self.path = Path(output_dir) / "plots" / "curves.png"
        self.report_errors: list[str] = []

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = epochs_of(trainer)
        if not epochs or trainer.sanity_checking:
            return
        with report_step("curves", self.report_errors):
            figures.save_png(figures.render(figures.training_curves([epoch.as_row() for epoch in epochs])), self.path)
            log.debug("Training curves: %s", self.path)
