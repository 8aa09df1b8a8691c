"""Training task: fit, then test the best checkpoint on the official test set."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import read_checkpoint
from mnist_classifier.errors import CheckpointError, ConfigValueError
from mnist_classifier.tasks.console import print_run_summary
from mnist_classifier.tasks.trainer import build_trainer
from mnist_classifier.utils.plain import to_plain
from mnist_classifier.utils.threads import limit_threads

log = logging.getLogger(__name__)

_SUMMARY_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc")


def _check_resume(ckpt_path: str, model_cfg: DictConfig) -> None:
    saved_net = read_checkpoint(ckpt_path)["hyper_parameters"]["net"]
    wanted_net = to_plain(model_cfg.net)
    if saved_net != wanted_net:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} was trained with net {saved_net}, but this run builds "
            f"{wanted_net}. Resume with the same model/experiment overrides as the original run "
            f"(see its .hydra/overrides.yaml), or use eval.py to test the checkpoint as it is."
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Returns the final metrics (see metrics.json)."""
    limit_threads(cfg.get("num_threads"))
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path:
        _check_resume(ckpt_path, cfg.model)
    elif not cfg.get("train", True):
        raise ConfigValueError("train=false needs ckpt_path=... (a checkpoint to test); or use eval.py.")

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = build_trainer(cfg)

    metrics: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k in _SUMMARY_KEYS})
        history = list(model.history)
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        test_ckpt = best or (None if cfg.get("train", True) else ckpt_path)
        if test_ckpt is None:
            log.warning("No checkpoint was saved: testing the weights as they are after training.")
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics["ckpt_path"] = str(test_ckpt) if test_ckpt else None
    metrics.update(
        epochs=len(history), global_step=trainer.global_step, num_threads=torch.get_num_threads(), history=history
    )
    if trainer.is_global_zero:
        print_run_summary(history, metrics, run_dir=cfg.paths.output_dir)
    return metrics
