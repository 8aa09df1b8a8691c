"""The Lightning Trainer of a run, built from the `trainer`, `callbacks`, `reports` and `logger` groups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mnist_classifier.console.story import tell
from mnist_classifier.models import MNISTClassifier
from mnist_classifier.models.run_history import RunHistory
from mnist_classifier.runtime.stop_on_interrupt import StopOnInterrupt
from mnist_classifier.utils.fast_path import describe_fast_path, fast_path_record
from mnist_classifier.utils.instantiate import instantiate_group

if TYPE_CHECKING:
    from mnist_classifier.models.ensemble_classifier import EnsembleClassifier


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """Trainer with the `callbacks`, `reports` and `logger` groups of the config, plus what every run has:
    StopOnInterrupt (Ctrl-C and SIGTERM save a resumable checkpoint, whatever the callbacks) and, last,
    RunHistory (the epochs' rows; it restores the random generators after the other callbacks start)."""
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks") + instantiate_group(cfg.get("reports"), "reports")
    callbacks += [StopOnInterrupt(Path(cfg.paths.output_dir) / "checkpoints"), RunHistory()]
    loggers = instantiate_group(cfg.get("logger"), "logger")
    if tags := list(cfg.get("tags") or []):
        for logger in loggers:  # MLflow and W&B also take them as run tags (configs/logger/)
            logger.log_hyperparams({"tags": ", ".join(map(str, tags))})
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def announce_fast_path(trainer: L.Trainer, model: MNISTClassifier | EnsembleClassifier) -> dict[str, Any]:
    """Print what was chosen for this machine (precision, layout, threads, compile) in the run header; the
    record goes into metrics.json."""
    record = fast_path_record(trainer.strategy.root_device, trainer.precision, model.channels_last, model.compiled)
    rank_zero_only(tell)(describe_fast_path(record))
    return record
