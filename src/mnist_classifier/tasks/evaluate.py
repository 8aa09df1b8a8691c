"""Evaluation task: rebuild the model from a checkpoint alone and test it on the official test set; or, for
`ckpt_path=[a,b,c]`, the ensemble of those checkpoints (models/ensemble.py)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import EXAMPLE_PATH, load_checkpoint
from mnist_classifier.console.story import tell
from mnist_classifier.errors import CheckpointError
from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.ensemble import ensemble_paths
from mnist_classifier.models.ensemble_classifier import EnsembleClassifier, load_ensemble
from mnist_classifier.models.from_checkpoint import build_model
from mnist_classifier.models.run_history import run_history
from mnist_classifier.reports.failures import report_errors
from mnist_classifier.runtime.run_checks import check_batch_limits
from mnist_classifier.runtime.trainer import announce_fast_path, build_trainer


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Works for a checkpoint of either model or any experiment: no `model=` is needed."""
    if not cfg.get("ckpt_path"):
        raise CheckpointError(f"eval.py needs a checkpoint: python eval.py ckpt_path={EXAMPLE_PATH}")
    check_batch_limits(cfg.trainer, fit=False, test=True, test_instead="eval.py is nothing but its test")
    checkpoint: dict[str, Any] | None = None
    model: MNISTClassifier | EnsembleClassifier
    if isinstance(cfg.ckpt_path, str):
        checkpoint = load_checkpoint(cfg.ckpt_path)
        model = build_model(checkpoint, cfg.ckpt_path)
    else:
        model = load_ensemble(ensemble_paths(cfg.ckpt_path))
        rank_zero_only(tell)(model.description())
    datamodule = instantiate(cfg.data)
    trainer = build_trainer(cfg)
    if checkpoint is not None:  # the test report reads its best epoch; an ensemble has none (each member had its own)
        run_history(trainer).restore(checkpoint)
    fast_path = announce_fast_path(trainer, model)
    trainer.test(model, datamodule=datamodule, verbose=False)
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics["fast_path"] = fast_path
    if isinstance(model, EnsembleClassifier):
        metrics["ckpt_path"] = model.paths
        metrics["ensemble"] = model.member_rows()
        accuracies = ", ".join(f"{100 * row['test/acc']:.2f}%" for row in metrics["ensemble"])
        rank_zero_only(tell)(f"Members' test accuracy: {accuracies}")
    else:
        metrics["ckpt_path"] = str(cfg.ckpt_path)
    if errors := report_errors(trainer.callbacks):  # type: ignore[attr-defined]  # set by Lightning at run time
        metrics["report_errors"] = errors
    return metrics
