"""OmegaConf resolvers used by configs/; registered by train.py, eval.py, predict.py and export.py (runtime/entry.py)
before Hydra composes their config. serve.py's config uses none of them."""

from __future__ import annotations

import math

from omegaconf import OmegaConf

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.runtime import cluster, run_identity

LR_SCALING_RULES = ("linear", "sqrt")


def scaled_lr(base_lr: float, base_batch_size: int, batch_size: int, rule: str = "linear") -> float:
    """The learning rate for `batch_size`, from one tuned at `base_batch_size`: in proportion to the batch
    (`linear`, the rule for SGD) or to its square root (`sqrt`, for Adam). A recipe then survives
    `data.batch_size=...` without diverging (larger batch) or crawling (smaller)."""
    if rule not in LR_SCALING_RULES:
        raise ConfigValueError(f"scaled_lr: rule must be one of {LR_SCALING_RULES}, got {rule!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigValueError(f"data.batch_size must be a positive integer, got {batch_size!r}.")
    ratio = batch_size / base_batch_size
    return float(base_lr) * (ratio if rule == "linear" else math.sqrt(ratio))


def auto_precision(accelerator: str = "auto") -> str:
    """utils/fast_path.py's choice, which imports torch: only when the trainer's config is read, after Hydra
    composed the config (a typo'd override fails before torch loads)."""
    from mnist_classifier.utils.fast_path import auto_precision as choose

    return choose(accelerator)


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("auto_precision", auto_precision, replace=True)
    OmegaConf.register_new_resolver("scaled_lr", scaled_lr, replace=True)
    # run dirs of jobs started by torchrun or SLURM (runtime/cluster.py); cached, like Hydra's `now`: the
    # sweep dir stays the same for every job of a multirun
    OmegaConf.register_new_resolver("run_name", cluster.run_name, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("rank_log_name", cluster.rank_log_name, replace=True)
    OmegaConf.register_new_resolver("rank_zero_subdir", cluster.rank_zero_subdir, replace=True)
    # the experiment loggers' run names and a sweep job's HPARAMS columns (runtime/run_identity.py)
    OmegaConf.register_new_resolver("run_label", run_identity.run_label, replace=True)
    OmegaConf.register_new_resolver("swept_values", run_identity.swept_values, replace=True)
