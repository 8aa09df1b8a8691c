"""A callback that records wall-clock marks of a real train.py run (added by benchmarks/run.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L


class StageTimer(L.Callback):
    """Writes JSON: seconds from process launch (BENCH_T0) to the first step, and each epoch's
    training time (first batch to last batch, validation excluded)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.launched = float(os.environ.get("BENCH_T0", time.time()))
        self.first_step: float | None = None
        self.epochs: list[float] = []
        self._epoch_start: float | None = None
        self._last_batch_end = 0.0

    def on_train_epoch_start(self, *args) -> None:
        self._epoch_start = None

    def on_train_batch_start(self, *args) -> None:
        now = time.time()
        if self.first_step is None:
            self.first_step = now - self.launched
        if self._epoch_start is None:
            self._epoch_start = now

    def on_train_batch_end(self, *args) -> None:
        self._last_batch_end = time.time()

    def on_train_epoch_end(self, *args) -> None:
        self.epochs.append(self._last_batch_end - self._epoch_start)

    def on_fit_end(self, *args) -> None:
        self.out.write_text(json.dumps({"startup_s": self.first_step, "epoch_s": self.epochs}))
