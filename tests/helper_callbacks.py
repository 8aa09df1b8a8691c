"""Callbacks the tests add to a real train.py run (`+callbacks.NAME._target_=helper_callbacks.X`):
a signal at an exact training step, and a marker file that tells a test the run is mid-epoch."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L


class SignalAtStep(L.Callback):
    """Sends `signal` to this very process after training step `step` (a real signal, through the real
    handlers, at a step known in advance). SIGKILL is sent before the step instead: nothing is saved."""

    def __init__(self, step: int, signal_name: str = "SIGTERM") -> None:
        self.step = step
        self.signum = signal.Signals[signal_name]

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self.signum == signal.SIGKILL and trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.signum != signal.SIGKILL and trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class MarkerAtStep(L.Callback):
    """Writes `path` at training step `step`, then slows each step down by `delay` seconds, so that a
    signal the test sends on seeing the file arrives in the middle of the epoch."""

    def __init__(self, step: int, path: str, delay: float = 0.05) -> None:
        self.step, self.path, self.delay = step, Path(path), delay

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.step:
            if not self.path.exists():
                self.path.write_text(str(trainer.global_step))
            time.sleep(self.delay)
