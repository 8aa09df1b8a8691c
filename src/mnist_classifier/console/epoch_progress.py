"""One progress bar (the training epoch's, which disappears when the epoch ends; on a terminal only) and one
line per epoch: its training loss, validation loss and accuracy, and time. No sanity-check, validation or
test bars."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from mnist_classifier.console.story import STORY
from mnist_classifier.models.run_history import Epoch, epochs_of


def epoch_line(epoch: Epoch, seconds: float) -> str:
    def number(value: float | None, percent: bool = False) -> str:
        return "-" if value is None else (f"{100 * value:.2f}%" if percent else f"{value:.4f}")

    return (
        f"epoch {epoch.epoch}  train/loss {number(epoch.train_loss)}  val/loss {number(epoch.val_loss)}  "
        f"val/acc {number(epoch.val_acc, percent=True)}  ({seconds:.1f} s)"
    )


def on_terminal() -> bool:
    """Bars only where they redraw in place: in a file or a CI log each redraw is another fragment of
    carriage returns (and an error met mid-epoch ran into one); the epoch lines tell the progress there."""
    return sys.stdout.isatty()  # where Lightning's bars are drawn


class EpochProgressBar(TQDMProgressBar):
    def __init__(self, refresh_rate: int = 50) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=False)
        self._epoch_started = time.perf_counter()
        self._epoch_seconds = 0.0
        self._printed: set[int] = set()
        self._fitting = False

    def _hidden(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_sanity_tqdm(self) -> Tqdm:
        return self._hidden()

    def init_validation_tqdm(self) -> Tqdm:
        return self._hidden()

    def init_train_tqdm(self) -> Tqdm:
        return super().init_train_tqdm() if on_terminal() else self._hidden()

    def init_test_tqdm(self) -> Tqdm:
        # after training the test is a second or two: no bar; alone (eval.py) it is the run's only bar
        return self._hidden() if self._fitting or not on_terminal() else super().init_test_tqdm()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fitting = True

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._print_epoch_line(trainer, args[0])  # the previous epoch's, if it had no validation
        super().on_train_epoch_start(trainer, *args)
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_batch_end(trainer, *args)
        self._epoch_seconds = time.perf_counter() - self._epoch_started

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not trainer.sanity_checking:
            self._epoch_seconds = time.perf_counter() - self._epoch_started
            self._print_epoch_line(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._print_epoch_line(trainer, pl_module)

    def _print_epoch_line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Once per epoch, as soon as its history row is complete (after validation, or at the latest
        when the next epoch starts)."""
        epochs = epochs_of(trainer)
        if trainer.is_global_zero and epochs and epochs[-1].epoch not in self._printed:
            self._printed.add(epochs[-1].epoch)
            line = epoch_line(epochs[-1], self._epoch_seconds)
            Tqdm.write(line)  # between progress bar redraws
            STORY.info(line)
