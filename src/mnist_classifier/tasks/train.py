"""Training task: fit, then test the best checkpoint on the official test set."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import check_weights, load_checkpoint
from mnist_classifier.checkpoint.resume_state import check_optimizer_and_schedule, check_training_progress
from mnist_classifier.errors import CheckpointError, keys_under
from mnist_classifier.models.run_history import run_history
from mnist_classifier.reports.failures import report_errors
from mnist_classifier.runtime.cluster import checkpoint_to_go_on_from, restart_count
from mnist_classifier.runtime.run_checks import FIT_METRICS, check_train_config
from mnist_classifier.runtime.trainer import announce_fast_path, build_trainer
from mnist_classifier.utils.plain import to_plain

log = logging.getLogger(__name__)

try:
    from lightning.pytorch.callbacks import WeightAveraging

    WEIGHT_AVERAGING: tuple[type, ...] = (WeightAveraging,)
except ImportError:  # Lightning before 2.6 has no weight-averaging callbacks
    WEIGHT_AVERAGING = ()


def check_resume(ckpt_path: str, cfg: DictConfig) -> None:
    """A checkpoint to resume: safe to read, of the same network, and with training left to do."""
    checkpoint = load_checkpoint(ckpt_path)
    saved_net, wanted_net = checkpoint["hyper_parameters"]["net"], to_plain(cfg.model.net)
    if saved_net != wanted_net:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} was trained with net {saved_net}, but this run builds "
            f"{wanted_net}. Resume with the same model/experiment overrides as the original run "
            f"(see its .hydra/overrides.yaml), or use eval.py to test the checkpoint as it is."
        )
    check_weights(checkpoint, ckpt_path)
    check_training_progress(checkpoint, ckpt_path)
    check_optimizer_and_schedule(checkpoint, ckpt_path, cfg.model)
    progress = checkpoint.get("training_progress", {})
    done, planned = progress.get("epochs_completed"), cfg.trainer.max_epochs
    if progress.get("finished") or (isinstance(done, int) and done >= planned):
        raise CheckpointError(
            f"ckpt_path={ckpt_path} is the end of a finished run ({done} of {progress.get('max_epochs')} epochs"
            f"{', stopped early' if done is not None and done < progress.get('max_epochs', done) else ''}): there "
            f"is nothing left to train. Test it with `python eval.py ckpt_path={ckpt_path}`, or start a new run "
            f"(without ckpt_path) to train for longer."
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Returns the final metrics (see metrics.json)."""
    check_train_config(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    fit, test = cfg.get("train", True), cfg.get("test", True)
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path and fit and (previous := checkpoint_to_go_on_from(cfg.paths.output_dir)):
        log.info("Restart %d of this job: going on from %s", restart_count(), previous)
        ckpt_path = str(previous)
    if ckpt_path and fit:
        check_resume(ckpt_path, cfg)
    elif ckpt_path:
        load_checkpoint(ckpt_path)
    elif not fit:
        raise CheckpointError("train=false needs ckpt_path=... (a checkpoint to test); or use eval.py.")

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = build_trainer(cfg)

    metrics: dict[str, Any] = {"fast_path": announce_fast_path(trainer, model)}
    history: list[dict[str, Any]] = []
    if fit:
        with keys_under("data"):  # the datamodule checks its sizes against the files in setup(), during fit
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k in FIT_METRICS})
        history = run_history(trainer).rows()
    if test:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        test_ckpt = best or (None if fit else ckpt_path)
        if test_ckpt is None:
            log.warning("No checkpoint was saved: testing the weights as they are after training.")
        if fit:
            # test the weights the checkpoint holds, which validation chose: restoring it, a weight-averaging
            # callback (EMA) would put its raw training weights back in place of the averaged ones
            callbacks: list[L.Callback] = trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning at run time
            trainer.callbacks = [c for c in callbacks if not isinstance(c, WEIGHT_AVERAGING)]  # type: ignore[attr-defined]
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, verbose=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics["ckpt_path"] = str(test_ckpt) if test_ckpt else None
    metrics.update(
        epochs=len(history), global_step=trainer.global_step, num_threads=torch.get_num_threads(), history=history
    )
    if errors := report_errors(trainer.callbacks):  # type: ignore[attr-defined]  # set by Lightning at run time
        metrics["report_errors"] = errors
    return metrics
