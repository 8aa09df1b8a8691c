"""Writing figures and the HPARAMS session to the run's TensorBoard logger, if it has one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger

HPARAMS_PREFIX = "hparams/"


def tensorboard_logger(trainer: L.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


def add_image(trainer: L.Trainer, tag: str, pixels: np.ndarray, step: int | None = None) -> None:
    """RGB pixels (H, W, 3) from `figures.render` into the Images tab."""
    logger = tensorboard_logger(trainer)
    if logger is not None:
        step = trainer.global_step if step is None else step
        logger.experiment.add_image(tag, pixels, global_step=step, dataformats="HWC")


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}/"))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = "None" if value is None else value
        else:
            flat[name] = str(value)
    return flat


def log_hparams_session(trainer: L.Trainer, metrics: Mapping[str, float]) -> None:
    """The HPARAMS tab: the run's model/optimizer/data/trainer settings with its final metrics.

    The metrics are written under `hparams/...` tags so their single point does not land in the
    real `test/acc` etc. charts.
    """
    logger = tensorboard_logger(trainer)
    if logger is None:
        return
    module, datamodule = trainer.lightning_module, trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning
    params: dict[str, Any] = {
        "model": dict(module.hparams),
        "data": dict(datamodule.hparams) if datamodule is not None else {},
        "trainer": {
            "max_epochs": trainer.max_epochs,
            "precision": trainer.precision,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
        },
    }
    flat = {k: v for k, v in _flatten(params).items() if not k.startswith("data/data_dir")}
    logger.log_hyperparams(flat, metrics={f"{HPARAMS_PREFIX}{k}": float(v) for k, v in metrics.items()})
