"""The run's own values (seed, epochs, metric names, threads, what to do), checked before anything is
built: one paragraph and exit 2, never a traceback from deep inside Lightning."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from mnist_classifier.errors import ConfigValueError

FIT_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best")
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
    fit, test = cfg.get("train", True), cfg.get("test", True)
    if not fit and not test:
        raise ConfigValueError("train=false and test=false leave nothing to do: drop one of them.")
    check_validation_feeds_monitors(cfg)
    metric = cfg.get("optimized_metric")
    available = (FIT_METRICS if fit else ()) + (TEST_METRICS if test else ())
    if metric is not None and metric not in available:
        raise ConfigValueError(
            f"optimized_metric={metric!r} is not computed by this run; choose one of {', '.join(available)} "
            f"(test/* metrics only when test=true), or optimized_metric=null."
        )


def check_validation_feeds_monitors(cfg: DictConfig) -> None:
    """Callbacks that watch a val/ metric need validation to run."""
    trainer = cfg.trainer
    if trainer.get("limit_val_batches") != 0 and trainer.get("check_val_every_n_epoch", 1) is not None:
        return
    for name, callback in (cfg.get("callbacks") or {}).items():
        monitor = callback.get("monitor") if callback is not None else None
        if isinstance(monitor, str) and monitor.startswith("val/"):
            raise ConfigValueError(
                f"Validation is off (trainer.limit_val_batches=0), but callbacks.{name} watches {monitor}. "
                f"Switch it off too (callbacks.{name}=null), or keep validation."
            )
