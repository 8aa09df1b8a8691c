"""Where a run stands, beside the model: one typed row per epoch (what metrics.json, the curves, the epoch
lines and an interrupted run's record show), and what a resumed run needs to go on exactly as the
uninterrupted one (the random generators, how far training got). Every trainer has one (runtime/trainer.py);
its rows and states are saved in every checkpoint and restored from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L

from mnist_classifier.checkpoint.run_state import capture_rng, restore_rng, training_progress
from mnist_classifier.errors import CheckpointError
from mnist_classifier.models.classifier import MNISTClassifier

Number = int | float | None
ROW_KEYS = ("epoch", "train/loss", "val/loss", "val/acc")  # a row's keys in metrics.json and in checkpoints


@dataclass(frozen=True)
class Epoch:
    """One epoch's losses and accuracy; None where that epoch had no such value (no validation ran)."""

    epoch: int
    train_loss: Number = None
    val_loss: Number = None
    val_acc: Number = None

    def as_row(self) -> dict[str, Number]:
        return dict(zip(ROW_KEYS, (self.epoch, self.train_loss, self.val_loss, self.val_acc), strict=True))


def checked_history(history: Any) -> list[Epoch]:
    """A checkpoint's per-epoch history: a list of rows of numbers (it goes into metrics.json and figures)."""
    number = (int, float, type(None))
    if not isinstance(history, list) or not all(
        isinstance(row, dict) and set(row) <= set(ROW_KEYS) and all(isinstance(v, number) for v in row.values())
        for row in history
    ):
        raise CheckpointError("The checkpoint's training history is not a list of per-epoch numbers; it was altered.")
    return [Epoch(*(row.get(key) for key in ROW_KEYS)) for row in history]


class RunHistory(L.Callback):
    """The rows are taken from the module's own metrics just before it computes and resets them; the
    generators are restored when training starts, after every other callback's on_train_start."""

    def __init__(self) -> None:
        self.epochs: list[Epoch] = []
        self._rng_to_restore: Mapping[str, Any] | None = None  # from a checkpoint, applied when training starts

    def rows(self) -> list[dict[str, Number]]:
        """The history as metrics.json holds it."""
        return [epoch.as_row() for epoch in self.epochs]

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        """The epochs of `checkpoint` (eval.py: the tested checkpoint's, which the test report reads)."""
        self.epochs = checked_history(checkpoint.get("history", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._rng_to_restore is not None:  # a resumed run: dropout and augmentation go on as they were
            restore_rng(self._rng_to_restore)
            self._rng_to_restore = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            module = _classifier(pl_module)
            self._record(trainer, module, float(module.val_loss.compute()), float(module.val_acc.compute()))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.epochs or self.epochs[-1].epoch != trainer.current_epoch:  # no validation ran
            self._record(trainer, _classifier(pl_module), val_loss=None, val_acc=None)

    def _record(self, trainer: L.Trainer, module: MNISTClassifier, val_loss: Number, val_acc: Number) -> None:
        """One row per epoch; recorded before ModelCheckpoint saves, so resume keeps it."""
        train_loss = float(module.train_loss.compute()) if module.train_loss.update_count else None
        row = Epoch(trainer.current_epoch, train_loss, val_loss, val_acc)
        self.epochs = [e for e in self.epochs if e.epoch != row.epoch] + [row]

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Besides weights, optimizer and schedule (Lightning's) and the module's accumulators: the history,
        the random generators, and how far the run got."""
        checkpoint["history"] = self.rows()
        checkpoint["rng_states"] = capture_rng()
        checkpoint["training_progress"] = training_progress(trainer)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.restore(checkpoint)
        self._rng_to_restore = checkpoint.get("rng_states")


def _classifier(pl_module: L.LightningModule) -> MNISTClassifier:
    if not isinstance(pl_module, MNISTClassifier):
        raise TypeError(f"RunHistory records an MNISTClassifier's epochs, not a {type(pl_module).__name__}'s.")
    return pl_module


def _find(trainer: L.Trainer) -> RunHistory | None:
    callbacks: list[L.Callback] = trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning at run time
    return next((cb for cb in callbacks if isinstance(cb, RunHistory)), None)


def run_history(trainer: L.Trainer) -> RunHistory:
    """The RunHistory of a trainer that runtime/trainer.py built."""
    history = _find(trainer)
    if history is None:
        raise LookupError("This trainer has no RunHistory callback; build it with runtime/trainer.py's build_trainer.")
    return history


def epochs_of(trainer: L.Trainer) -> list[Epoch]:
    """The epochs so far; none for a trainer built without a RunHistory (as tests build some)."""
    history = _find(trainer)
    return list(history.epochs) if history is not None else []
