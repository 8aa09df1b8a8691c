"""The run's own values (seed, epochs, metric names, threads, what to do), checked before anything is
built: one paragraph and exit 2, never a traceback from deep inside Lightning."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.utils.numbers import is_number

FIT_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best")
# what a callback may monitor: the metrics, the step values the module logs, and Lightning's own counters
MONITORABLE = (*FIT_METRICS, "train/loss_step", "train/lr", "step", "epoch")
TEST_METRICS = ("test/loss", "test/acc")
MAX_SEED = 2**32 - 1  # numpy's limit, which seed_everything applies


def check_integer(value: Any, key: str, minimum: int, maximum: int | None = None, null_means: str = "") -> None:
    """`value` is a whole number in range (or null when `null_means` says what null does)."""
    if value is None and null_means:
        return
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= minimum
        and (maximum is None or value <= maximum)
    ):
        return
    bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    null = f", or null for {null_means}" if null_means else ""
    raise ConfigValueError(f"{key} must be a whole number {bounds}{null}; got {value!r}. Example: {key}={minimum}.")


def check_common(cfg: DictConfig) -> None:
    check_integer(cfg.get("num_threads"), "num_threads", 1, null_means="all cores")


def check_train_config(cfg: DictConfig) -> None:
    """train.py's own values (the common ones are checked by the runner)."""
    check_integer(cfg.get("seed"), "seed", 0, MAX_SEED, null_means="a random seed")
    trainer = cfg.trainer
    check_integer(trainer.get("max_epochs"), "trainer.max_epochs", 1)
    check_integer(trainer.get("min_epochs") or 0, "trainer.min_epochs", 0, trainer.max_epochs)
    for key in ("accumulate_grad_batches", "check_val_every_n_epoch"):
        if trainer.get(key) is not None:
            check_integer(trainer.get(key), f"trainer.{key}", 1)
    clip = trainer.get("gradient_clip_val")
    if clip is not None and not (is_number(clip) and 0 <= clip < math.inf):
        raise ConfigValueError(f"trainer.gradient_clip_val must be a number >= 0, or null for none; got {clip!r}.")
    if cfg.get("ckpt_path") == "":
        raise ConfigValueError(
            "ckpt_path is empty: leave it out (or ckpt_path=null) to start a new run, or name the checkpoint to "
            "resume, e.g. ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt."
        )
    fit, test = cfg.get("train", True), cfg.get("test", True)
    for key, flag in (("train", fit), ("test", test)):
        if not isinstance(flag, bool):  # `test=no` read as true
            raise ConfigValueError(f"{key} must be true or false, got {flag!r}.")
    if not fit and not test:
        raise ConfigValueError("train=false and test=false leave nothing to do: drop one of them.")
    check_batch_limits(trainer, fit, test)
    check_validation_feeds_monitors(cfg)
    check_monitors_exist(cfg)
    metric = cfg.get("optimized_metric")
    available = (FIT_METRICS if fit else ()) + (TEST_METRICS if test else ())
    if metric is not None and metric not in available:
        raise ConfigValueError(
            f"optimized_metric={metric!r} is not computed by this run; choose one of {', '.join(available)} "
            f"(test/* metrics only when test=true), or optimized_metric=null."
        )


def check_batch_limits(
    trainer: DictConfig, fit: bool, test: bool, test_instead: str = "to skip the test, set test=false"
) -> None:
    """A stage whose batch limit is 0 runs nothing, and the run said ok with nothing trained or tested."""
    stages = (
        (fit, "limit_train_batches", "training", "to only test a checkpoint, use eval.py ckpt_path=..."),
        (test, "limit_test_batches", "test", test_instead),
    )
    for on, key, stage, instead in stages:
        if on and trainer.get(key) == 0:
            raise ConfigValueError(
                f"trainer.{key}=0 leaves the {stage} without a batch, so the run would have nothing to report. "
                f"For a short run set a few batches (trainer.{key}=5); {instead}."
            )


def check_monitors_exist(cfg: DictConfig) -> None:
    """A callback watching a metric that is never logged (a typo) failed after the first epoch's work."""
    for name, callback in (cfg.get("callbacks") or {}).items():
        monitor = callback.get("monitor") if callback is not None else None
        if isinstance(monitor, str) and monitor not in MONITORABLE:
            raise ConfigValueError(
                f"callbacks.{name}.monitor={monitor!r} is not a value training logs; choose one of "
                f"{', '.join(MONITORABLE)}."
            )


def check_validation_feeds_monitors(cfg: DictConfig) -> None:
    """Callbacks that watch a val/ metric need validation to run."""
    trainer = cfg.trainer
    if trainer.get("limit_val_batches") != 0 and trainer.get("check_val_every_n_epoch", 1) is not None:
        return
    off = (
        "trainer.limit_val_batches=0"
        if trainer.get("limit_val_batches") == 0
        else "trainer.check_val_every_n_epoch=null"
    )
    for name, callback in (cfg.get("callbacks") or {}).items():
        monitor = callback.get("monitor") if callback is not None else None
        if isinstance(monitor, str) and monitor.startswith("val/"):
            raise ConfigValueError(
                f"Validation is off ({off}), but callbacks.{name} watches {monitor}. "
                f"Switch it off too (callbacks.{name}=null), or keep validation."
            )
