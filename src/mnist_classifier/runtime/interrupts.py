"""Ctrl-C (SIGINT) and SIGTERM (a scheduler, a preemption): training stops at the next step boundary,
saves a resumable checkpoint, and the run ends with a record of where it stood (see runner.py).

The first signal during training only raises a flag that StopOnInterrupt reads after each training step;
outside training (loading data, testing) it ends the run at once. A second signal exits immediately.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch

from mnist_classifier.checkpoint.run_state import training_progress
from mnist_classifier.models.run_history import Epoch, epochs_of

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """Ends a run on SIGINT/SIGTERM. A BaseException, like KeyboardInterrupt, so that no `except
    Exception` on the way (Lightning's, Hydra's) mistakes it for a failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


@dataclass
class InterruptGuard:
    """The signal handlers of one task, and where its training stood (updated by StopOnInterrupt)."""

    signum: int | None = None
    training: bool = False
    checkpoint: Path | None = None  # the last resumable checkpoint saved
    best_checkpoint: Path | None = None  # once training has finished: the one the test uses
    last_completed_epoch: int | None = None
    training_started: bool = False
    training_finished: bool = False
    epochs: list[Epoch] = field(default_factory=list)  # the run history when it stopped

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os.write(2, f"\nSecond {signal.Signals(signum).name}: exiting now, without saving.\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        if self.training:
            os.write(2, f"\n{signal.Signals(signum).name}: stopping after this training step ...\n".encode())
            return
        raise RunInterrupted(signum)

    def take_signals(self) -> None:
        """(Re)install the handlers; Lightning installs its own SIGTERM handler when fit starts."""
        if threading.current_thread() is threading.main_thread():
            for signum in INTERRUPT_SIGNALS:
                signal.signal(signum, self.handle)


_active: InterruptGuard | None = None


@contextlib.contextmanager
def interrupt_guard() -> Iterator[InterruptGuard]:
    """Handle SIGINT/SIGTERM for the duration of a task; the previous handlers come back afterwards."""
    global _active  # noqa: PLW0603 (one task runs at a time in a process)
    guard = InterruptGuard()
    previous = {signum: signal.getsignal(signum) for signum in INTERRUPT_SIGNALS}
    _active, outer = guard, _active
    guard.take_signals()
    try:
        yield guard
    finally:
        _active = outer
        if threading.current_thread() is threading.main_thread():
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def active_guard() -> InterruptGuard | None:
    return _active


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
