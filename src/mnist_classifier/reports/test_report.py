"""Everything about the test set, made once at the end of testing (train.py and eval.py alike).

Files in the run dir: plots/confusion_matrix.png, plots/misclassified.png, plots/per_class_accuracy.png,
classification_report.json/.md; in TensorBoard: the same figures (Images tab) and the HPARAMS
session with the final metrics. Each part can be switched off in YAML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.models.run_history import epochs_of
from mnist_classifier.reports import figures
from mnist_classifier.reports.classification_report import (
    classification_report,
    write_report,
)
from mnist_classifier.reports.failures import report_step
from mnist_classifier.reports.tensorboard import add_image, log_hparams_session

log = logging.getLogger(__name__)


def gather_tensor(pl_module: L.LightningModule, tensor: torch.Tensor) -> torch.Tensor:
    """all_gather of one tensor: (world_size, *shape)."""
    gathered = pl_module.all_gather(tensor)
    assert isinstance(gathered, torch.Tensor)
    return gathered


def gather_rows(pl_module: L.LightningModule, rows: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, rank after rank. Each image is tested once, so the shares may differ by a row
    (data/mnist_datamodule.py): each is padded to the longest for all_gather and cut back after."""
    lengths = gather_tensor(pl_module, torch.tensor(len(rows), device=rows.device)).tolist()
    padding = rows.new_zeros((max(lengths) - len(rows), *rows.shape[1:]))
    gathered = gather_tensor(pl_module, torch.cat([rows, padding]))
    return torch.cat([shard[:length] for shard, length in zip(gathered, lengths, strict=True)])


class TestReport(L.Callback):
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        output_dir: str,
        confusion_matrix: bool = True,
        misclassified: bool = True,
        per_class: bool = True,
        classification_report: bool = True,
        hparams: bool = True,
        max_misclassified: int = 32,
        hparams_columns: dict[str, Any] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.enabled = {
            "confusion_matrix": confusion_matrix,
            "misclassified": misclassified,
            "per_class": per_class,
            "classification_report": classification_report,
            "hparams": hparams,
        }
        self.max_misclassified = max_misclassified
        self.hparams_columns = hparams_columns
        self.report_errors: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self.preds: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.mistakes: dict[str, torch.Tensor] | None = None  # the most confident ones so far
        self._gathered: tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]] | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        probs = outputs["scores"].detach().float().softmax(1)  # same for logits and log-probs
        labels = outputs["labels"].detach()
        confidence, preds = probs.max(1)
        self.preds.append(preds)
        self.labels.append(labels)
        wrong = preds != labels
        if self.enabled["misclassified"] and wrong.any():
            found = {
                "confidence": confidence[wrong],
                "images": batch[0][wrong].detach(),
                "labels": labels[wrong],
                "preds": preds[wrong],
            }
            if self.mistakes is not None:
                found = {k: torch.cat([self.mistakes[k], v]) for k, v in found.items()}
            keep = found["confidence"].topk(min(self.max_misclassified, len(found["confidence"]))).indices
            self.mistakes = {k: v[keep] for k, v in found.items()}

    def _gather(self, pl_module: L.LightningModule) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """All ranks' predictions."""
        nothing = torch.zeros(0, dtype=torch.long, device=pl_module.device)
        preds, labels = (torch.cat(rows) if rows else nothing for rows in (self.preds, self.labels))
        mistakes = self.mistakes or {}
        if pl_module.trainer.world_size > 1:
            preds, labels = gather_rows(pl_module, preds), gather_rows(pl_module, labels)
            mistakes = self._gather_mistakes(pl_module, mistakes, like=preds)
        return preds.cpu(), labels.cpu(), {k: v.cpu() for k, v in mistakes.items()}

    def _gather_mistakes(
        self, pl_module: L.LightningModule, mistakes: dict[str, torch.Tensor], like: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        k = self.max_misclassified
        padded = {  # equal shapes on every rank; padding rows have confidence -1
            "confidence": torch.full((k,), -1.0, device=like.device),
            "images": torch.zeros((k, 1, 28, 28), device=like.device),
            "labels": torch.zeros(k, dtype=torch.long, device=like.device),
            "preds": torch.zeros(k, dtype=torch.long, device=like.device),
        }
        for key, value in mistakes.items():
            padded[key][: len(value)] = value.to(padded[key].dtype)
        gathered = {key: gather_tensor(pl_module, value).flatten(0, 1) for key, value in padded.items()}
        keep = gathered["confidence"].topk(k).indices
        keep = keep[gathered["confidence"][keep] >= 0]
        return {key: value[keep] for key, value in gathered.items()}

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # under DDP every rank takes part in the gathering, even one that tested nothing
        gathered = self._gather(pl_module) if self.preds or trainer.world_size > 1 else None
        self._gathered = gathered if gathered is not None and len(gathered[0]) else None

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After the module has logged test/loss and test/acc (they go into the HPARAMS session)."""
        if self._gathered is not None and trainer.is_global_zero:
            self._write(trainer, *self._gathered)
        self._reset()

    def _write(
        self, trainer: L.Trainer, preds: torch.Tensor, labels: torch.Tensor, mistakes: dict[str, torch.Tensor]
    ) -> None:
        plots = self.output_dir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        step = trainer.global_step
        counts = multiclass_confusion_matrix(preds, labels, NUM_CLASSES)
        report = classification_report(preds, labels, NUM_CLASSES)

        plots_to_make: list[tuple[str, Callable[[], np.ndarray]]] = []  # name, RGB pixels
        if self.enabled["confusion_matrix"]:
            plots_to_make.append(("confusion_matrix", lambda: figures.render(figures.confusion_matrix(counts))))
        if self.enabled["per_class"]:
            accuracy = torch.tensor([report[str(c)]["recall"] for c in range(NUM_CLASSES)])  # per-class accuracy
            plots_to_make.append(("per_class_accuracy", lambda: figures.render(figures.per_class_accuracy(accuracy))))
        if self.enabled["misclassified"] and mistakes and len(mistakes["labels"]):
            captions = [
                f"true {t}, read {p}\n{100 * c:.1f}% sure"
                for t, p, c in zip(
                    mistakes["labels"].tolist(),
                    mistakes["preds"].tolist(),
                    mistakes["confidence"].tolist(),
                    strict=True,
                )
            ]
            title, wrong = "Most confident mistakes on the test set", [True] * len(captions)
            grid = lambda: figures.digit_grid(mistakes["images"], captions, wrong, title)  # noqa: E731
            plots_to_make.append(("misclassified", grid))
        for name, make in plots_to_make:
            with report_step(name, self.report_errors):
                pixels = make()
                figures.save_png(pixels, plots / f"{name}.png")
                written.append(plots / f"{name}.png")
                add_image(trainer, f"test/{name}", pixels, step)
        if self.enabled["classification_report"]:
            with report_step("classification_report", self.report_errors):
                written.extend(write_report(report, self.output_dir))
        if self.enabled["hparams"]:
            with report_step("hparams", self.report_errors):
                metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
                # from the history: eval.py's module never validates, its best lives in the checkpoint's rows
                val_accs = [epoch.val_acc for epoch in epochs_of(trainer) if epoch.val_acc is not None]
                if val_accs:
                    metrics["val/acc_best"] = max(val_accs)
                log_hparams_session(trainer, metrics, self.hparams_columns)
        for path in written:
            log.debug("Report: %s", path)
