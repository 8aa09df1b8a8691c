"""A callback that records wall-clock marks of a real train.py run (added by benchmarks/run.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L


class StageTimer(L.Callback):
    """Writes JSON: seconds from process launch (BENCH_T0) to each stage of the run, and each epoch's
    training time (first batch to last batch, validation excluded)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.launched = float(os.environ.get("BENCH_T0", time.time()))
        self.marks: dict[str, float] = {"built": self._now()}  # imports, config, data module, model, trainer
        self.epochs: list[float] = []
        self._epoch_start: float | None = None
        self._last_batch_end = 0.0

    def _now(self) -> float:
        return time.time() - self.launched

    def _mark(self, name: str) -> None:
        self.marks.setdefault(name, self._now())

    def on_fit_start(self, *args: Any) -> None:
        self._mark("fit_start")

    def on_train_epoch_start(self, *args: Any) -> None:
        self._epoch_start = None

    def on_train_batch_start(self, *args: Any) -> None:
        self._mark("first_step")
        if self._epoch_start is None:
            self._epoch_start = self._now()

    def on_train_batch_end(self, *args: Any) -> None:
        self._last_batch_end = self._now()

    def on_train_epoch_end(self, *args: Any) -> None:
        if self._epoch_start is not None:
            self.epochs.append(self._last_batch_end - self._epoch_start)

    def on_fit_end(self, *args: Any) -> None:
        self._mark("fit_end")
        self._write()

    def on_test_start(self, *args: Any) -> None:
        self._mark("test_start")

    def on_test_end(self, *args: Any) -> None:
        self._mark("test_end")  # before the report callbacks, which come after this one

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "test":
            self._mark("reports_done")
            self._write()

    def _write(self) -> None:
        startup = self.marks.get("first_step")
        self.out.write_text(json.dumps({"startup_s": startup, "epoch_s": self.epochs, "marks": self.marks}))
