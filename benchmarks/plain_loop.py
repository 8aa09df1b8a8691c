"""A callback that times a plain PyTorch training loop inside a real train.py run, one epoch after each of
the Trainer's (added by benchmarks/run.py): both loops then share the process, threads, data and machine
state, epoch by epoch, so their ratio is not a comparison of two runs on a noisy machine."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from hydra.utils import instantiate

from mnist_classifier.models import MNISTClassifier


class InterleavedPlainLoop(L.Callback):
    """After each training epoch, one epoch of the same step written as a plain loop: a copy of the net,
    its own optimizer and one-cycle schedule, batches of the same size and data, the same augmentation,
    precision, channels_last and gradient clipping. Writes JSON: each plain epoch's seconds and its
    number of steps. What it leaves out is the Trainer's cost: Lightning's loop and hooks, and the
    module's per-step metric updates. For benchmark runs only: its loader takes the datamodule's resume
    position, so a resumed run would start its data over."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.epochs: list[float] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule: Any = trainer.datamodule  # type: ignore[attr-defined]  # set by trainer.fit(datamodule=...)
        self.loader = datamodule.train_dataloader()
        self.augment = datamodule.augment
        module = cast(MNISTClassifier, pl_module)
        self.net = copy.deepcopy(module.net).train()
        self.criterion = module.criterion
        self.channels_last = module.channels_last
        self.optimizer = instantiate(module.optimizer_config)(params=self.net.parameters())
        schedule = module.scheduler_config  # the recipes' whole-run one-cycle schedule, planned as the Trainer's
        planned = getattr(trainer.lr_scheduler_configs[0].scheduler, "total_steps", None) if schedule else None
        self.scheduler = instantiate(schedule)(optimizer=self.optimizer, total_steps=planned) if schedule else None
        self.clip = trainer.gradient_clip_val
        self.bf16 = trainer.precision == "bf16-mixed"

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.augment is not None:
            images = self.augment(images)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.criterion(self.net(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Timed like StageTimer times the Trainer's epoch: from the first batch's arrival to the last step's end.
        The global random state is put back, so the real run draws what it would have drawn without it."""
        rng_state = torch.get_rng_state()
        batches = iter(self.loader)
        first = next(batches)
        start = time.perf_counter()
        self._step(*first)
        for images, labels in batches:
            self._step(images, labels)
        self.epochs.append(time.perf_counter() - start)
        torch.set_rng_state(rng_state)
        self.out.write_text(json.dumps({"epoch_s": self.epochs, "steps": len(self.loader)}))
