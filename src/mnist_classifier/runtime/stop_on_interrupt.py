"""The callback that makes a training run stop cleanly on SIGINT/SIGTERM (interrupts.py holds the signal
handlers and the guard it reports to)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from mnist_classifier.checkpoint.run_state import training_progress
from mnist_classifier.models.run_history import epochs_of
from mnist_classifier.runtime.interrupts import RunInterrupted, active_guard


class StopOnInterrupt(L.Callback):
    """Always part of the trainer (runtime/trainer.py): after each training step, if a signal came, save
    `last.ckpt` (mid-epoch included) and end the run. All processes of a multi-process run stop together.

    At the last step of an epoch the stop waits until the epoch is over (validation, epoch-end hooks):
    Lightning cannot resume a checkpoint taken between an epoch's last step and its end."""

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.checkpoint_path = Path(checkpoint_dir) / "last.ckpt"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        guard = active_guard()
        if guard is not None:
            guard.take_signals()  # instead of Lightning's, which would stop only at the end of the epoch
            guard.training = guard.training_started = True

    def _pending_signal(self, trainer: L.Trainer) -> int:
        guard = active_guard()
        signum = guard.signum if guard is not None and guard.signum is not None else 0
        if trainer.world_size > 1:  # any process's signal stops every process at the same step
            signum = int(trainer.strategy.reduce(torch.tensor(signum), reduce_op="max"))
        return signum

    def _stop(self, trainer: L.Trainer, signum: int) -> None:
        trainer.save_checkpoint(self.checkpoint_path, weights_only=False)
        guard = active_guard()
        if guard is not None:
            guard.training = False
            guard.checkpoint = self.checkpoint_path
            guard.epochs = epochs_of(trainer)
        raise RunInterrupted(signum)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        signum = self._pending_signal(trainer)
        if signum and batch_idx + 1 < trainer.num_training_batches:
            self._stop(trainer, signum)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        guard = active_guard()
        if guard is not None:
            guard.last_completed_epoch = trainer.current_epoch
            guard.epochs = epochs_of(trainer)
            if self.checkpoint_path.is_file():  # ModelCheckpoint's last.ckpt of the previous epoch
                guard.checkpoint = self.checkpoint_path
        if self._pending_signal(trainer):
            trainer.should_stop = True  # fit ends after this epoch's hooks; on_train_end saves and stops

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        guard = active_guard()
        if guard is None:
            return
        guard.training = False
        guard.training_finished = training_progress(trainer)["finished"]
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        guard.best_checkpoint = Path(best) if best else None
        signum = self._pending_signal(trainer)
        if signum:
            self._stop(trainer, signum)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        guard = active_guard()
        if guard is not None:
            guard.training = False
