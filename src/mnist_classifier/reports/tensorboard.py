"""The run's TensorBoard: a logger without noise cards, and the figures and HPARAMS session written to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch import loggers
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoardLogger less the `epoch` scalar it adds to every write (a card nobody came
    for: the x axis is the step); it remembers which tags it wrote, so the HPARAMS session reads its
    metrics from those curves instead of writing single-point copies of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written_tags: set[str] = set()

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = {k: v for k, v in metrics.items() if k != "epoch"}
        self.written_tags.update(metrics)
        super().log_metrics(metrics, step)


def tensorboard_logger(trainer: L.Trainer) -> loggers.TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, loggers.TensorBoardLogger)), None)


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


def log_hparams_session(
    trainer: L.Trainer, metrics: Mapping[str, float], columns: Mapping[str, Any] | None = None
) -> None:
    """The HPARAMS tab: `columns` (a sweep job's swept values), or else all of the run's model/optimizer/
    data/trainer settings, with its final metrics.

    TensorBoard reads a session's metric values from the run's scalars of the same tag (`test/acc`, the
    last `val/acc_best`); a metric the run did not log as a curve (eval.py's best val accuracy, from the
    checkpoint) is written as a scalar here.
    """
    logger = tensorboard_logger(trainer)
    if logger is None:
        return
    written: set[str] = getattr(logger, "written_tags", set())
    if missing := {k: float(v) for k, v in metrics.items() if k not in written}:
        logger.log_metrics(missing, step=trainer.global_step)
    if columns is not None:
        _write_session(logger, _flatten(columns), metrics)
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
    logger.log_hyperparams(flat)  # hparams.yaml next to the events
    _write_session(logger, flat, metrics)


def _write_session(logger: loggers.TensorBoardLogger, params: dict[str, Any], metrics: Mapping[str, float]) -> None:
    """The summaries Lightning's log_hyperparams writes, without its scalar copies of the metrics."""
    writer = logger.experiment._get_file_writer()  # as Lightning does
    for summary in hparams(params, {name: 0.0 for name in metrics}):  # names only: values are the curves'
        writer.add_summary(summary)
    writer.flush()
