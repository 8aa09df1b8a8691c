"""The wrapper around train/eval: clear one-paragraph errors, metrics.json even on failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mnist_classifier.errors import UserFacingError
from mnist_classifier.tasks.metrics_file import write_metrics

log = logging.getLogger(__name__)


def user_error_message(err: BaseException) -> str | None:
    """The message for errors caused by bad input (config, paths, files); None for real bugs.

    Our own errors raised while Hydra instantiates a config arrive wrapped in (possibly nested)
    InstantiationExceptions: the innermost one of ours is the message to show.
    """
    cause: BaseException | None = err
    while isinstance(cause, InstantiationException):
        cause = cause.__cause__
    if isinstance(cause, UserFacingError):
        return str(cause)
    if isinstance(err, (UserFacingError, InstantiationException, OmegaConfBaseException)):
        return " ".join(str(err).split())
    return None


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_task(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> dict[str, Any]:
    """Run `task`; a failure is recorded in metrics.json (status, error).

    Single run: bad input ends the process with exit code 2 and the message alone; a bug raises.
    Multirun: the job is logged and recorded as failed and returns no value, so the sweep goes on
    (Optuna marks the trial failed; the sweep summary lists it).
    """
    start = time.perf_counter()
    try:
        metrics = task(cfg)
    except Exception as err:
        message = user_error_message(err)
        failure = {"status": "failed", "error": message or f"{type(err).__name__}: {err}"}
        rank_zero_only(write_metrics)(cfg.paths.output_dir, failure | {"wall_time_s": time.perf_counter() - start})
        if _in_multirun():
            (log.error if message else log.exception)("Job failed: %s", failure["error"])
            return failure
        if message is not None:
            log.error(message)
            raise SystemExit(2) from err
        raise
    metrics = {"status": "ok", **metrics, "wall_time_s": round(time.perf_counter() - start, 2)}
    rank_zero_only(write_metrics)(cfg.paths.output_dir, metrics)
    return metrics


def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value a sweeper optimises (`optimized_metric`); None for a failed job."""
    if not name or metrics.get("status") == "failed":
        return None
    if name not in metrics:
        raise UserFacingError(
            f"optimized_metric={name!r} was not computed in this run; choose one of "
            f"{sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))}."
        )
    return float(metrics[name])
