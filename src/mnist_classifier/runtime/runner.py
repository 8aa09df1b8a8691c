"""The wrapper around every task: exit codes, one-paragraph errors, interrupts, and metrics.json always.

Exit codes (documented in the README): 0 done; 1 a bug (with its traceback), a grid sweep in which a
job failed, or a prediction in which some inputs could not be read; 2 bad input (config value, path,
file, checkpoint, a full disk or unwritable folder, a diverged run), the message alone; 130 / 143
interrupted by SIGINT / SIGTERM, after saving what can be resumed.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mnist_classifier.console.config_tree import print_config_tree
from mnist_classifier.console.formatter import lightning_logs_through_the_run
from mnist_classifier.console.noise import quiet_library_warnings
from mnist_classifier.console.results import print_results
from mnist_classifier.console.story import tell
from mnist_classifier.runtime.cluster import is_rank_zero, job_id, restart_count
from mnist_classifier.runtime.command_line import command_line, override_key, override_value
from mnist_classifier.runtime.error_messages import EXIT_BAD_INPUT, user_error_message
from mnist_classifier.runtime.interrupts import InterruptGuard, RunInterrupted, interrupt_guard
from mnist_classifier.runtime.metrics_file import earlier_record, write_metrics
from mnist_classifier.runtime.run_checks import check_common
from mnist_classifier.utils.threads import limit_threads

log = logging.getLogger(__name__)
EXIT_PARTIAL = 1


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _resume_command(guard: InterruptGuard) -> str:
    """How to go on: resume from the checkpoint with the run's overrides; test a finished training with
    eval.py; rerun a run that saved nothing."""
    script = sys.argv[0]
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in overrides if override_key(o) != "ckpt_path"]
    best = guard.best_checkpoint or guard.checkpoint
    if guard.training_finished and best is not None:
        return command_line(str(Path(script).with_name("eval.py")), [f"ckpt_path={override_value(best)}"])
    if guard.checkpoint is not None:
        return command_line(script, [*kept, f"ckpt_path={override_value(guard.checkpoint)}"])
    return command_line(script, overrides)


def _interrupted_record(stop: RunInterrupted, guard: InterruptGuard) -> dict[str, Any]:
    command = _resume_command(guard)
    if guard.training_finished:
        where = " after training had finished"
    elif guard.last_completed_epoch is not None:
        where = f" after epoch {guard.last_completed_epoch} (and part of the next)"
    else:
        where = " before a training epoch was complete" if guard.training_started else ""
    best = guard.best_checkpoint or guard.checkpoint
    if guard.training_finished and best is not None:
        saved = f" Its best checkpoint: {best}."
    else:
        saved = f" Saved {guard.checkpoint}." if guard.checkpoint else (" No checkpoint was saved." if where else "")
    verb = "Test it" if guard.training_finished else ("Resume" if guard.checkpoint else "Run it again")
    log.warning("Interrupted by %s%s.%s %s with:\n  %s", stop.signal_name, where, saved, verb, command)
    return {
        "status": "interrupted",
        "signal": stop.signal_name,
        "last_completed_epoch": guard.last_completed_epoch,
        "training_finished": guard.training_finished,
        "ckpt_path": str(guard.checkpoint) if guard.checkpoint else None,
        "resume_command": command,
        "history": [epoch.as_row() for epoch in guard.epochs],
    }


def _requeued_grid_job() -> bool:
    """A job of a grid sweep (Hydra's basic sweeper) that SLURM requeued: its number means the same values
    as before, so a finished one's results stand. (An Optuna study numbers its jobs again on a requeue.)"""
    if restart_count() < 1 or not (job_id() or "").startswith("slurm-") or not in_multirun():
        return False
    return str(HydraConfig.get().sweeper.get("_target_", "")).endswith("BasicSweeper")


def run_task(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> dict[str, Any]:
    """Check the common values and limit the threads, then run `task`; what happened is recorded in
    metrics.json (status ok / failed / interrupted).

    Single run: bad input ends the process with exit code 2 and the message alone, an interrupt with
    130/143, a bug raises. Multirun: the job is recorded and the sweep goes on (Optuna marks the trial
    failed; the sweep summary lists it), except after an interrupt, which ends the sweep (sweeps/summary.py).
    """
    start = time.perf_counter()
    quiet_library_warnings()  # again: a job of hydra/launcher=joblib runs in a worker process of its own
    lightning_logs_through_the_run()
    if is_rank_zero():
        tell(f"Run dir: {cfg.paths.output_dir}")
        if cfg.get("extras", {}).get("print_config"):
            print_config_tree(cfg, cfg.paths.output_dir)
    earlier = earlier_record(cfg.paths.output_dir) or {}  # a resume in place, a requeued job (run_dir_guard.py)
    if earlier.get("status") == "ok" and _requeued_grid_job():
        tell(f"Restart {restart_count()} of {job_id()}: this run had finished; its results stand.")
        return earlier
    # a resume in place that fails before it trains (another network, more epochs) keeps the interrupted record
    resumes_in_place = bool(cfg.get("train") is True and cfg.get("ckpt_path") and restart_count() == 0)

    def record(metrics: dict[str, Any]) -> dict[str, Any]:
        metrics = {**metrics, "tags": list(cfg.get("tags") or []), "wall_time_s": round(time.perf_counter() - start, 2)}
        kept = (
            resumes_in_place
            and not in_multirun()
            and metrics["status"] == "failed"
            and earlier.get("status") == "interrupted"
            and not guard.training_started
        )
        if is_rank_zero() and not kept:
            write_metrics(cfg.paths.output_dir, metrics)
        return metrics

    with interrupt_guard() as guard:
        try:
            check_common(cfg)  # the values every task reads; each task checks its own
            limit_threads(cfg.get("num_threads"))
            metrics = task(cfg)
        except RunInterrupted as stop:
            interrupted = record(_interrupted_record(stop, guard))
            if in_multirun():
                return interrupted
            raise SystemExit(stop.exit_code) from None
        except Exception as err:
            message = user_error_message(err)
            failure = record({"status": "failed", "error": message or f"{type(err).__name__}: {err}"})
            if in_multirun():
                (log.error if message else log.exception)("Job failed: %s", failure["error"])
                return failure
            if message is not None:
                log.error(message)
                raise SystemExit(EXIT_BAD_INPUT) from err
            raise
    done = record({"status": "ok", **metrics})
    if is_rank_zero():
        print_results(done, cfg.paths.output_dir)
    if done["status"] == "partial" and not in_multirun():  # some inputs failed, the others are done
        raise SystemExit(EXIT_PARTIAL)
    return done


def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value a sweeper optimises (`optimized_metric`); None for a job that did not finish."""
    if not name or metrics.get("status") != "ok" or name not in metrics:
        return None
    return float(metrics[name])
