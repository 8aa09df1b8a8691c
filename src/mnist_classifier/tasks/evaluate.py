"""Evaluation task: rebuild the model from a checkpoint alone and test it on the official test set."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import EXAMPLE_PATH, load_checkpoint
from mnist_classifier.errors import CheckpointError
from mnist_classifier.models.from_checkpoint import build_model
from mnist_classifier.models.run_history import run_history
from mnist_classifier.reports.failures import report_errors
from mnist_classifier.runtime.trainer import announce_fast_path, build_trainer


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Works for a checkpoint of either model or any experiment: no `model=` is needed."""
    if not cfg.get("ckpt_path"):
        raise CheckpointError(f"eval.py needs a checkpoint: python eval.py ckpt_path={EXAMPLE_PATH}")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    model = build_model(checkpoint, cfg.ckpt_path)
    datamodule = instantiate(cfg.data)
    trainer = build_trainer(cfg)
    run_history(trainer).restore(checkpoint)  # the test report reads its best epoch
    fast_path = announce_fast_path(trainer, model)
    trainer.test(model, datamodule=datamodule, verbose=False)
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics["fast_path"] = fast_path
    metrics["ckpt_path"] = str(cfg.ckpt_path)
    if errors := report_errors(trainer.callbacks):  # type: ignore[attr-defined]  # set by Lightning at run time
        metrics["report_errors"] = errors
    return metrics
