"""Ctrl-C (SIGINT) and SIGTERM (a scheduler, a preemption): training stops at the next step boundary,
saves a resumable checkpoint, and the run ends with a record of where it stood (see runner.py).

The first signal during training only raises a flag that StopOnInterrupt (stop_on_interrupt.py) reads after
each training step; outside training (loading data, testing, predicting) it ends the run at once. A second
signal exits immediately. No Lightning here: every command runs under this guard, predict.py too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnist_classifier.models.run_history import Epoch

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


@contextlib.contextmanager
def interrupt_handlers(handler: Callable[[int, FrameType | None], Any] | signal.Handlers) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` (signal.SIG_IGN: ignored) inside, to the previous handlers after.
    Only the main thread may set handlers: elsewhere this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)
