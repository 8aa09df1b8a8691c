"""The Lightning Trainer of a run, built from the `trainer`, `callbacks`, `reports` and `logger` groups."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.tasks.interrupts import StopOnInterrupt
from mnist_classifier.utils.instantiate import instantiate_group


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """Trainer with the `callbacks`, `reports` and `logger` groups of the config, plus StopOnInterrupt,
    which every run has (Ctrl-C and SIGTERM save a resumable checkpoint, whatever the callbacks)."""
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks") + instantiate_group(cfg.get("reports"), "reports")
    callbacks.append(StopOnInterrupt(Path(cfg.paths.output_dir) / "checkpoints"))
    loggers = instantiate_group(cfg.get("logger"), "logger")
    if tags := list(cfg.get("tags") or []):
        for logger in loggers:  # MLflow and W&B also take them as run tags (configs/logger/)
            logger.log_hyperparams({"tags": ", ".join(map(str, tags))})
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
