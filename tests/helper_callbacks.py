"""Callbacks the tests add to a real train.py run (`+callbacks.NAME._target_=helper_callbacks.X`):
a signal at an exact training step, a marker file that tells a test the run is mid-epoch, and a
meeting point for runs that a test needs side by side."""

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


class WaitForPeers(L.Callback):
    """Holds the first training of each process named by $PEER_NAME until `peers` of them have reached it
    (a file each in `folder`): workers that must share the work, whatever the machine's speed, where a
    fast one could otherwise finish the whole study before the other had started."""

    def __init__(self, folder: str, peers: int = 2, timeout: float = 120) -> None:
        self.folder, self.peers, self.timeout = Path(folder), peers, timeout

    def on_fit_start(self, *args: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / os.environ["PEER_NAME"]).touch()
        deadline = time.monotonic() + self.timeout
        while len(list(self.folder.iterdir())) < self.peers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"WaitForPeers: {self.peers} runs did not start within {self.timeout:.0f} s")
            time.sleep(0.05)


class SignalInTest(L.Callback):
    """Sends `signal` to this very process during the test after fit: training has finished."""

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        self.signum = signal.Signals[signal_name]

    def on_test_batch_end(self, *args: Any) -> None:
        os.kill(os.getpid(), self.signum)
